# Copyright 2026 rk_yolo_ros maintainers
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""
Turn sensor_msgs/Image and sensor_msgs/CompressedImage messages into the pipeline's BGR input.

One set of rules for the ROS node and the offline bag path. Messages are duck-typed (rclpy's
generated classes and rosbags' classes both work): a raw image needs ``encoding``, ``width``,
``height``, ``step`` and ``data``; a compressed one ``format`` and ``data``. Everything is
validated before any decoding, and anything that does not fit raises ``ImageConversionError``
naming the encoding (or format) and the sizes involved.

Decoding the bytes is pluggable: the node hands in cv_bridge's ``imgmsg_to_cv2``, the offline
path uses the numpy/OpenCV decoders here. A compressed image need not be decoded here at all:
``check_compressed_image`` (format, signature, end marker: cheap) runs where the message
arrives, and the pipeline's workers decode the bytes (``FramePipeline.submit_encoded``) with
the same rule as ``compressed_image_to_bgr`` (``rk_yolo_ros.core.frame_decoding``).
(rosbags-image was not used: it ignores ``step``, so a padded row stride yields a sheared image,
and it asserts instead of raising on undecodable data.)
"""

from typing import Any, Callable, Dict, Optional

import cv2
import numpy as np

from rk_yolo_ros.core import frame_decoding
from rk_yolo_ros.core.frame_decoding import byte_array, FrameDecodeError, to_bgr

# Supported raw encodings: channels per pixel and the OpenCV conversion to BGR (None: already).
# OpenCV names Bayer patterns by the second row, so ROS 'rggb' is OpenCV 'BG' and so on.
RAW_ENCODINGS: Dict[str, tuple] = {
    'bgr8': (3, None),
    'rgb8': (3, cv2.COLOR_RGB2BGR),
    'bgra8': (4, cv2.COLOR_BGRA2BGR),
    'rgba8': (4, cv2.COLOR_RGBA2BGR),
    'mono8': (1, cv2.COLOR_GRAY2BGR),
    'bayer_rggb8': (1, cv2.COLOR_BayerBG2BGR),
    'bayer_bggr8': (1, cv2.COLOR_BayerRG2BGR),
    'bayer_gbrg8': (1, cv2.COLOR_BayerGR2BGR),
    'bayer_grbg8': (1, cv2.COLOR_BayerGB2BGR),
}
COMPRESSED_FORMATS = ('jpeg', 'png')
_JPEG_START = b'\xff\xd8\xff'
_JPEG_END = b'\xff\xd9'
_PNG_START = b'\x89PNG\r\n\x1a\n'
_PNG_END = b'IEND\xaeB`\x82'
# Encoders may pad the end of a compressed stream; the end marker must be in this many bytes.
_END_MARKER_WINDOW = 32


class ImageConversionError(ValueError):
    """An image message cannot be turned into a BGR frame; the text names what and why."""


def describe_raw(msg: Any) -> str:
    """Describe a raw image message for error messages: encoding, size, step and byte count."""
    try:
        size = len(msg.data)
    except TypeError:
        size = '?'
    return (f'{msg.encoding!r} image {msg.width}x{msg.height} (step {msg.step}, '
            f'{size} bytes of data)')


def check_raw_image(msg: Any) -> int:
    """
    Check a raw image's encoding, size, step and data length; return channels per pixel.

    Raise ImageConversionError for an unsupported encoding, an empty size, a step shorter than
    one row, or data that is not exactly ``step x height`` bytes (truncated or oversized).
    """
    encoding = msg.encoding
    if encoding not in RAW_ENCODINGS:
        raise ImageConversionError(
            f'unsupported image encoding {encoding!r} ({describe_raw(msg)}); expected one of '
            f'{", ".join(RAW_ENCODINGS)}')
    channels = RAW_ENCODINGS[encoding][0]
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    if width < 1 or height < 1:
        raise ImageConversionError(f'empty image: {describe_raw(msg)}')
    if step < width * channels:
        raise ImageConversionError(
            f'step {step} is shorter than one row of {width} {encoding} pixels '
            f'({width * channels} bytes): {describe_raw(msg)}')
    expected = step * height
    size = len(msg.data)
    if size < expected:
        raise ImageConversionError(
            f'truncated image data: {describe_raw(msg)} needs step x height = {expected} bytes')
    if size > expected:
        raise ImageConversionError(
            f'image data does not match its size: {describe_raw(msg)} should hold step x height '
            f'= {expected} bytes')
    return channels


def unpack_raw_pixels(msg: Any) -> np.ndarray:
    """Return the pixels of a checked raw image as (H, W) or (H, W, C) uint8, honouring step."""
    channels = RAW_ENCODINGS[msg.encoding][0]
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    rows = byte_array(msg.data)[:step * height].reshape(height, step)
    pixels = rows[:, :width * channels]  # drop row padding (a strided view, no copy)
    return pixels.reshape(height, width, channels) if channels > 1 else pixels


def pixels_to_bgr(pixels: np.ndarray, encoding: str) -> np.ndarray:
    """Convert unpacked pixels of a supported encoding to a BGR uint8 (H, W, 3) array."""
    conversion = RAW_ENCODINGS[encoding][1]
    if pixels.dtype != np.uint8:
        raise ImageConversionError(f'{encoding!r} pixels must be uint8, got {pixels.dtype}')
    if conversion is None:
        return pixels
    # Bayer demosaicing needs contiguous rows; cvtColor copies anyway.
    return cv2.cvtColor(np.ascontiguousarray(pixels), conversion)


def raw_image_to_bgr(msg: Any,
                     unpack: Optional[Callable[[Any], np.ndarray]] = None) -> np.ndarray:
    """
    Check a sensor_msgs/Image and return its pixels as BGR uint8 (H, W, 3).

    ``unpack(msg)`` returns the pixels in the message's own encoding (cv_bridge's
    ``imgmsg_to_cv2`` with 'passthrough' in the node); by default ``unpack_raw_pixels``.
    """
    channels = check_raw_image(msg)
    pixels = (unpack or unpack_raw_pixels)(msg)
    expected = (int(msg.height), int(msg.width)) + ((channels,) if channels > 1 else ())
    if pixels is None or tuple(pixels.shape) != expected:
        got = None if pixels is None else tuple(pixels.shape)
        raise ImageConversionError(f'decoding {describe_raw(msg)} gave pixels of shape {got}, '
                                   f'expected {expected}')
    return pixels_to_bgr(pixels, msg.encoding)


def compressed_kind(format_text: str, data: np.ndarray) -> str:
    """
    Return 'jpeg' or 'png' for a CompressedImage ``format`` and the data's magic bytes.

    The format may be plain ('jpeg', 'png') or image_transport's ('bgr8; jpeg compressed
    bgr8'); an empty format is taken from the magic bytes. Depth images ('compressedDepth')
    and other codecs are rejected.
    """
    text = (format_text or '').lower()
    head = data[:8].tobytes()
    sniffed = 'jpeg' if head.startswith(_JPEG_START) else 'png' if head.startswith(_PNG_START) \
        else None
    if 'compresseddepth' in text:
        raise ImageConversionError(f'unsupported compressed format {format_text!r}: depth images '
                                   'cannot be detected on; expected jpeg or png colour images')
    if 'jpeg' in text or 'jpg' in text:
        declared = 'jpeg'
    elif 'png' in text:
        declared = 'png'
    elif not text.strip():
        declared = sniffed
    else:
        declared = None
    if declared is None:
        raise ImageConversionError(f'unsupported compressed format {format_text!r} '
                                   f'({data.size} bytes); expected jpeg or png')
    if sniffed != declared:
        raise ImageConversionError(
            f'compressed image says {format_text!r} but its {data.size} bytes do not start with '
            f'a {declared} signature (they start with {head[:4].hex()})')
    return declared


def check_compressed_image(msg: Any) -> str:
    """Check a CompressedImage's format, signature and end marker; return 'jpeg' or 'png'."""
    data = byte_array(msg.data)
    if data.size == 0:
        raise ImageConversionError(f'empty compressed image (format {msg.format!r})')
    kind = compressed_kind(msg.format, data)
    tail = data[-_END_MARKER_WINDOW:].tobytes()
    end = _JPEG_END if kind == 'jpeg' else _PNG_END
    if end not in tail:
        raise ImageConversionError(
            f'truncated {kind} data: {data.size} bytes (format {msg.format!r}) without the {kind} '
            'end marker')
    return kind


def decode_compressed(msg: Any) -> Optional[np.ndarray]:
    """Decode compressed bytes with OpenCV (colour as BGR, grey as 2-D); None if undecodable."""
    return frame_decoding.decode(msg.data)


def compressed_image_to_bgr(msg: Any,
                            decode: Optional[Callable[[Any], np.ndarray]] = None) -> np.ndarray:
    """
    Check a sensor_msgs/CompressedImage and return it decoded as BGR uint8 (H, W, 3).

    ``decode(msg)`` returns OpenCV's decoding (cv_bridge's ``compressed_imgmsg_to_cv2`` where
    the node decodes in its own process); by default ``decode_compressed``. The pipeline's
    workers decode with the same rule (``rk_yolo_ros.core.frame_decoding``).
    """
    kind = check_compressed_image(msg)
    try:
        return to_bgr((decode or decode_compressed)(msg),
                      f'{kind} data of {len(msg.data)} bytes (format {msg.format!r})')
    except FrameDecodeError as error:
        raise ImageConversionError(str(error)) from error


def is_compressed(msg: Any) -> bool:
    """Return True for a CompressedImage (it has ``format``), False for a raw Image."""
    return hasattr(msg, 'format') and not hasattr(msg, 'encoding')


def message_to_bgr(msg: Any) -> np.ndarray:
    """Convert a raw or compressed image message to BGR with the numpy/OpenCV decoders."""
    return compressed_image_to_bgr(msg) if is_compressed(msg) else raw_image_to_bgr(msg)
