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
Decode a compressed frame (JPEG, PNG, anything OpenCV reads) into the pipeline's BGR pixels.

One rule for every place that decodes: a worker decoding the bytes it found in its slot, the
pipeline's main-process fallback for a frame too large for a slot, and the message conversion
of the offline path (``rk_yolo_ros.messages.image_conversion``). Grey and BGRA become BGR;
anything else that is not 8-bit colour is refused with ``FrameDecodeError`` naming what was
decoded and what was expected.
"""

from typing import Any, Optional

import cv2
import numpy as np

# Colour as BGR, grey as one channel; 16-bit PNGs come out 8-bit.
DECODE_FLAGS = cv2.IMREAD_ANYCOLOR


class FrameDecodeError(ValueError):
    """Compressed bytes that do not decode into an 8-bit grey or colour image."""


def byte_array(data: Any) -> np.ndarray:
    """Return bytes-like ``data`` (bytes, array.array, memoryview, uint8 array) as flat uint8."""
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8) if data.dtype.itemsize == 1 else \
            np.frombuffer(data.tobytes(), np.uint8)
    if isinstance(data, (list, tuple)):
        return np.asarray(data, np.uint8)
    return np.frombuffer(data, np.uint8)


def to_bgr(image: Optional[np.ndarray], what: str) -> np.ndarray:
    """
    Return a decoder's output as BGR uint8 (H, W, 3); ``what`` names the data in errors.

    ``None`` or an empty array (the decoder gave up), a depth other than 8 bits, or a shape
    other than grey, BGR or BGRA raise FrameDecodeError.
    """
    if image is None or image.size == 0:
        raise FrameDecodeError(f'{what} could not be decoded')
    if image.dtype != np.uint8:
        raise FrameDecodeError(f'{what} decoded to {image.dtype}; expected 8-bit colour or grey')
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise FrameDecodeError(f'{what} decoded to shape {image.shape}; expected grey or colour')


def decode(data: Any) -> Optional[np.ndarray]:
    """Decode compressed bytes with OpenCV as they come (colour BGR, grey 2-D); None if not."""
    return cv2.imdecode(byte_array(data), DECODE_FLAGS)


def decode_frame(data: Any, what: str = '') -> np.ndarray:
    """Decode compressed bytes into a BGR uint8 (H, W, 3) frame; raise FrameDecodeError."""
    payload = byte_array(data)
    what = what or f'compressed frame of {payload.size} bytes'
    if payload.size == 0:
        raise FrameDecodeError(f'{what} is empty')
    try:
        image = cv2.imdecode(payload, DECODE_FLAGS)
    except cv2.error as error:  # some OpenCV builds raise on garbage instead of returning None
        raise FrameDecodeError(f'{what} could not be decoded: {error}') from error
    return to_bgr(image, what)
