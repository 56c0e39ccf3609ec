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

"""Tests of image message -> BGR conversion with rosbags' real sensor_msgs classes."""

import array

import cv2
import numpy as np
import pytest

from rk_yolo_ros.messages.image_conversion import (compressed_image_to_bgr, ImageConversionError,
                                                   message_to_bgr, raw_image_to_bgr)

try:
    from rosbags import typesys
except ImportError:  # a module-level skip would skip the whole folder under launch_testing
    typesys = None

pytestmark = pytest.mark.skipif(typesys is None, reason='rosbags is not installed (pip extra '
                                '"bag"); its message classes are what these tests use')
TYPES = typesys.get_typestore(typesys.Stores.ROS2_HUMBLE).types if typesys else {}
Image = TYPES.get('sensor_msgs/msg/Image')
CompressedImage = TYPES.get('sensor_msgs/msg/CompressedImage')
Header = TYPES.get('std_msgs/msg/Header')
Time = TYPES.get('builtin_interfaces/msg/Time')


def header():
    """Return a header like a camera driver's."""
    return Header(stamp=Time(sec=12, nanosec=345), frame_id='camera')


def pattern(width=64, height=48):
    """Return a BGR test image with distinct values in every row, column and channel."""
    rows, cols = np.mgrid[0:height, 0:width]
    return np.stack([(rows * 5) % 256, (cols * 3) % 256, (rows + cols) % 256],
                    axis=2).astype(np.uint8)


def raw_message(pixels, encoding, padding=0, data=None):
    """Build a rosbags sensor_msgs/Image from pixels, with ``padding`` bytes after each row."""
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1)
    if padding:
        rows = np.concatenate([rows, np.full((height, padding), 7, np.uint8)], axis=1)
    payload = rows.reshape(-1) if data is None else data
    return Image(header=header(), height=height, width=width, encoding=encoding, is_bigendian=0,
                 step=rows.shape[1], data=payload)


def compressed_message(image, extension='.jpg', format_text='jpeg'):
    """Build a rosbags sensor_msgs/CompressedImage by encoding an image with OpenCV."""
    ok, encoded = cv2.imencode(extension, image)
    assert ok
    return CompressedImage(header=header(), format=format_text, data=encoded.reshape(-1))


@pytest.mark.parametrize('encoding,to_message', [
    ('bgr8', lambda bgr: bgr),
    ('rgb8', lambda bgr: bgr[:, :, ::-1]),
    ('bgra8', lambda bgr: np.dstack([bgr, np.full(bgr.shape[:2], 200, np.uint8)])),
    ('rgba8', lambda bgr: np.dstack([bgr[:, :, ::-1], np.full(bgr.shape[:2], 9, np.uint8)])),
])
@pytest.mark.parametrize('padding', [0, 5])
def test_colour_encodings_come_out_as_the_same_bgr(encoding, to_message, padding):
    """Every colour encoding, with or without row padding, yields the original BGR pixels."""
    bgr = pattern()
    msg = raw_message(np.ascontiguousarray(to_message(bgr)), encoding, padding)
    np.testing.assert_array_equal(raw_image_to_bgr(msg), bgr)
    np.testing.assert_array_equal(message_to_bgr(msg), bgr)


def test_mono8_is_replicated_into_three_channels():
    """A grey image becomes BGR with equal channels, padding dropped."""
    grey = pattern()[:, :, 0].copy()
    out = raw_image_to_bgr(raw_message(grey, 'mono8', padding=3))
    assert out.shape == grey.shape + (3,)
    for channel in range(3):
        np.testing.assert_array_equal(out[:, :, channel], grey)


def mosaic(colour_bgr, ros_pattern, width=32, height=24):
    """Return the Bayer mosaic a sensor with ``ros_pattern`` (e.g. 'rggb') sees of one colour."""
    value = {'b': colour_bgr[0], 'g': colour_bgr[1], 'r': colour_bgr[2]}
    tile = np.array([[value[ros_pattern[0]], value[ros_pattern[1]]],
                     [value[ros_pattern[2]], value[ros_pattern[3]]]], np.uint8)
    return np.tile(tile, (height // 2, width // 2))


@pytest.mark.parametrize('ros_pattern', ['rggb', 'bggr', 'gbrg', 'grbg'])
def test_bayer_patterns_demosaic_to_the_right_colour(ros_pattern):
    """A uniform orange scene mosaiced with each ROS pattern comes back orange, not swapped."""
    colour = (30, 140, 250)  # B, G, R
    out = raw_image_to_bgr(raw_message(mosaic(colour, ros_pattern), 'bayer_' + ros_pattern + '8'))
    centre = out[4:-4, 4:-4].reshape(-1, 3)
    np.testing.assert_allclose(centre.mean(axis=0), colour, atol=2)


def test_rclpy_style_array_data_is_accepted():
    """Accept rclpy's uint8[] storage, array.array('B'), with the same rules."""
    bgr = pattern(8, 4)
    msg = raw_message(bgr, 'bgr8')
    msg.data = array.array('B', bgr.tobytes())
    np.testing.assert_array_equal(raw_image_to_bgr(msg), bgr)


@pytest.mark.parametrize('encoding', ['16UC1', 'yuv422', 'mono16', '32FC1', 'bgr16', 'nv12'])
def test_unsupported_encodings_are_rejected_by_name(encoding):
    """Encodings the detector cannot use raise an error naming them and the supported ones."""
    msg = Image(header=header(), height=4, width=4, encoding=encoding, is_bigendian=0, step=8,
                data=np.zeros(32, np.uint8))
    with pytest.raises(ImageConversionError) as error:
        raw_image_to_bgr(msg)
    assert repr(encoding) in str(error.value)
    assert 'bgr8' in str(error.value) and '4x4' in str(error.value)


def test_step_shorter_than_a_row_is_rejected():
    """A step that cannot hold one row names the step and the row length."""
    msg = raw_message(pattern(10, 4), 'bgr8')
    msg.step = 20
    msg.data = msg.data[:80]
    with pytest.raises(ImageConversionError, match=r'step 20 is shorter than one row.*30 bytes'):
        raw_image_to_bgr(msg)


def test_truncated_raw_data_is_rejected():
    """Data shorter than step x height is reported as truncated, with both sizes."""
    msg = raw_message(pattern(10, 4), 'rgb8')
    msg.data = msg.data[:100]
    with pytest.raises(ImageConversionError,
                       match=r'truncated.*\'rgb8\' image 10x4.*100 bytes.*120 bytes'):
        raw_image_to_bgr(msg)


def test_oversized_raw_data_is_rejected():
    """Data longer than step x height does not match the declared size."""
    msg = raw_message(pattern(10, 4), 'bgr8')
    msg.data = np.concatenate([msg.data, np.zeros(3, np.uint8)])
    with pytest.raises(ImageConversionError, match=r'does not match its size.*123 bytes'):
        raw_image_to_bgr(msg)


def test_empty_size_is_rejected():
    """A 0x0 image is an error, not an empty frame."""
    msg = Image(header=header(), height=0, width=0, encoding='bgr8', is_bigendian=0, step=0,
                data=np.zeros(0, np.uint8))
    with pytest.raises(ImageConversionError, match='empty image'):
        raw_image_to_bgr(msg)


def test_a_custom_unpacker_is_checked():
    """The node's cv_bridge unpacker is used after validation and its output is checked."""
    msg = raw_message(pattern(8, 4), 'bgr8')
    with pytest.raises(ImageConversionError, match=r'shape \(4, 7, 3\), expected \(4, 8, 3\)'):
        raw_image_to_bgr(msg, unpack=lambda m: np.zeros((4, 7, 3), np.uint8))


def test_unpacker_is_not_called_on_invalid_messages():
    """Validation happens before decoding, so a broken message never reaches the decoder."""
    calls = []
    msg = raw_message(pattern(8, 4), 'bgr8')
    msg.encoding = '16UC1'
    with pytest.raises(ImageConversionError):
        raw_image_to_bgr(msg, unpack=calls.append)
    assert calls == []


@pytest.mark.parametrize('format_text', ['jpeg', 'bgr8; jpeg compressed bgr8', 'JPG', ''])
def test_jpeg_decodes_to_bgr(format_text):
    """JPEG in any of the usual format spellings decodes close to the original."""
    bgr = cv2.GaussianBlur(pattern(), (5, 5), 0)
    out = compressed_image_to_bgr(compressed_message(bgr, '.jpg', format_text))
    assert out.shape == bgr.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - bgr.astype(int)).mean() < 6


def test_png_is_lossless_and_grey_png_becomes_bgr():
    """PNG comes back exactly; a grey PNG is replicated into three channels."""
    bgr = pattern()
    np.testing.assert_array_equal(message_to_bgr(compressed_message(bgr, '.png', 'png')), bgr)
    grey = bgr[:, :, 1].copy()
    out = compressed_image_to_bgr(compressed_message(grey, '.png', 'rgb8; png compressed bgr8'))
    np.testing.assert_array_equal(out, np.dstack([grey] * 3))


def test_truncated_jpeg_is_rejected_before_decoding():
    """A JPEG cut short (which OpenCV would half-decode with a warning) is an error."""
    msg = compressed_message(pattern(), '.jpg')
    msg.data = msg.data[:len(msg.data) // 2]
    with pytest.raises(ImageConversionError,
                       match=r'truncated jpeg data: \d+ bytes \(format \'jpeg\'\)'):
        compressed_image_to_bgr(msg)


def test_truncated_png_is_rejected():
    """A PNG without its IEND chunk is truncated."""
    msg = compressed_message(pattern(), '.png', 'png')
    msg.data = msg.data[:-20]
    with pytest.raises(ImageConversionError, match='truncated png data'):
        compressed_image_to_bgr(msg)


@pytest.mark.parametrize('format_text', ['16UC1; compressedDepth png', 'h264', 'theora'])
def test_other_compressed_formats_are_rejected_by_name(format_text):
    """Depth PNGs and video codecs are named in the error."""
    msg = compressed_message(pattern(), '.png', format_text)
    with pytest.raises(ImageConversionError) as error:
        compressed_image_to_bgr(msg)
    assert repr(format_text) in str(error.value)


def test_format_and_signature_must_agree():
    """PNG bytes labelled jpeg are rejected with the signature they do have."""
    msg = compressed_message(pattern(), '.png', 'jpeg')
    with pytest.raises(ImageConversionError, match='do not start with a jpeg signature.*89504e47'):
        compressed_image_to_bgr(msg)


def test_undecodable_data_with_valid_markers_is_rejected():
    """Garbage between a valid JPEG start and end marker fails decoding with a clear error."""
    data = np.frombuffer(b'\xff\xd8\xff' + bytes(200) + b'\xff\xd9', np.uint8)
    msg = CompressedImage(header=header(), format='jpeg', data=data)
    with pytest.raises(ImageConversionError, match='could not be decoded'):
        compressed_image_to_bgr(msg)


def test_empty_compressed_image_is_rejected():
    """No bytes at all is an error naming the format."""
    msg = CompressedImage(header=header(), format='jpeg', data=np.zeros(0, np.uint8))
    with pytest.raises(ImageConversionError, match="empty compressed image.*'jpeg'"):
        compressed_image_to_bgr(msg)
