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
Letterbox a frame to the model input and map boxes back exactly.

Same geometry as Ultralytics and the RKNN model zoo: scale to fit keeping the aspect ratio,
center, pad with gray 114. The geometry is computed once per frame size (the last
``GEOMETRIES_KEPT`` sizes are kept: a stream of ever new sizes, such as a folder of photos,
cannot grow the cache); the hot path is one ``cv2.resize`` into a view of a preallocated canvas
plus an in-place BGR->RGB conversion.
"""

from dataclasses import dataclass
from typing import Dict, Tuple

import cv2
import numpy as np

PAD_VALUE = 114
GEOMETRIES_KEPT = 16  # frame sizes whose letterbox geometry is cached


@dataclass(frozen=True)
class LetterboxGeometry:
    """Where a frame of a given size lands inside the model input."""

    frame_size: Tuple[int, int]  # (width, height) of the frame that was letterboxed
    resized_size: Tuple[int, int]  # (width, height) of the scaled image inside the canvas
    pad: Tuple[int, int]  # (left, top) offset of the scaled image in the canvas

    @property
    def scale(self) -> Tuple[float, float]:
        """Return the (x, y) factors from frame pixels to model-input pixels."""
        return (self.resized_size[0] / self.frame_size[0],
                self.resized_size[1] / self.frame_size[1])

    def to_frame(self, boxes: np.ndarray) -> np.ndarray:
        """Map (N, 4) x1y1x2y2 boxes from model-input pixels to frame pixels, clipped."""
        scale_x, scale_y = self.scale
        offset = np.array(self.pad * 2, np.float32)
        factor = np.array([scale_x, scale_y, scale_x, scale_y], np.float32)
        mapped = (np.asarray(boxes, np.float32).reshape(-1, 4) - offset) / factor
        width, height = self.frame_size
        np.clip(mapped[:, 0::2], 0, width, out=mapped[:, 0::2])
        np.clip(mapped[:, 1::2], 0, height, out=mapped[:, 1::2])
        return mapped

    def to_model(self, boxes: np.ndarray) -> np.ndarray:
        """Map (N, 4) x1y1x2y2 boxes from frame pixels to model-input pixels."""
        scale_x, scale_y = self.scale
        factor = np.array([scale_x, scale_y, scale_x, scale_y], np.float32)
        return np.asarray(boxes, np.float32).reshape(-1, 4) * factor + np.array(
            self.pad * 2, np.float32)


def letterbox_geometry(frame_size: Tuple[int, int],
                       input_size: Tuple[int, int]) -> LetterboxGeometry:
    """
    Compute the letterbox of a (width, height) frame into a (width, height) model input.

    Rounding follows Ultralytics' LetterBox (``round(dw - 0.1)`` for the left/top padding) so
    the model sees the same pixels as under the Ultralytics predictor.
    """
    frame_w, frame_h = (int(v) for v in frame_size)
    input_w, input_h = (int(v) for v in input_size)
    if frame_w <= 0 or frame_h <= 0:
        raise ValueError(f'frame size must be positive, got {frame_size}')
    if input_w <= 0 or input_h <= 0:
        raise ValueError(f'model input size must be positive, got {input_size}')
    ratio = min(input_w / frame_w, input_h / frame_h)
    resized_w = min(input_w, max(1, int(round(frame_w * ratio))))
    resized_h = min(input_h, max(1, int(round(frame_h * ratio))))
    left = int(round((input_w - resized_w) / 2 - 0.1))
    top = int(round((input_h - resized_h) / 2 - 0.1))
    return LetterboxGeometry((frame_w, frame_h), (resized_w, resized_h),
                             (max(left, 0), max(top, 0)))


class Letterbox:
    """
    Letterbox BGR frames into one reused (1, H, W, 3) RGB uint8 model-input buffer.

    The returned array is a view of that buffer: it is overwritten by the next call, so the
    backend must consume it (ONNX Runtime and RKNNLite copy their inputs) before then.
    """

    def __init__(self, input_size: Tuple[int, int] = (640, 640), pad_value: int = PAD_VALUE):
        """Preallocate the canvas for a (width, height) model input."""
        width, height = (int(v) for v in input_size)
        if width <= 0 or height <= 0:
            raise ValueError(f'model input size must be positive, got {input_size}')
        self.input_size = (width, height)
        self.pad_value = pad_value
        self._canvas = np.full((1, height, width, 3), pad_value, np.uint8)
        self._geometries: Dict[Tuple[int, int], LetterboxGeometry] = {}
        self._painted = None  # geometry whose padding the canvas currently holds

    def geometry(self, frame_shape) -> LetterboxGeometry:
        """Return the cached geometry for a frame of numpy shape (H, W[, C])."""
        key = (int(frame_shape[1]), int(frame_shape[0]))
        geometry = self._geometries.get(key)
        if geometry is None:
            geometry = letterbox_geometry(key, self.input_size)
            if len(self._geometries) >= GEOMETRIES_KEPT:
                del self._geometries[next(iter(self._geometries))]  # the oldest size
            self._geometries[key] = geometry
        return geometry

    def __call__(self, frame_bgr: np.ndarray) -> Tuple[np.ndarray, LetterboxGeometry]:
        """Letterbox an (H, W, 3) BGR uint8 frame; return the (1, H, W, 3) RGB view, geometry."""
        if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3 or frame_bgr.dtype != np.uint8:
            raise ValueError(f'expected an (H, W, 3) uint8 BGR frame, got shape '
                             f'{frame_bgr.shape} dtype {frame_bgr.dtype}')
        geometry = self.geometry(frame_bgr.shape)
        if geometry is not self._painted:
            self._canvas.fill(self.pad_value)  # padding changes only when the frame size does
            self._painted = geometry
        (left, top), (width, height) = geometry.pad, geometry.resized_size
        target = self._canvas[0, top:top + height, left:left + width]
        if (width, height) == geometry.frame_size:
            target[...] = frame_bgr
        else:
            resized = cv2.resize(frame_bgr, (width, height), dst=target,
                                 interpolation=cv2.INTER_LINEAR)
            if resized is not target:  # an OpenCV that would not write into the view
                target[...] = resized
        converted = cv2.cvtColor(target, cv2.COLOR_BGR2RGB, dst=target)
        if converted is not target:
            target[...] = converted
        return self._canvas, geometry
