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


"""The interface every inference backend implements."""

import abc
from typing import List, Tuple

import numpy as np


class BackendError(RuntimeError):
    """A backend could not load its model or run it; the message names the model and why."""


class Backend(abc.ABC):
    """
    Run a detection model on one letterboxed image.

    A backend is constructed and loaded inside a worker process (RKNN contexts do not survive
    fork), so constructors only store settings; ``load`` does the work. ``infer`` takes the
    model-sized RGB uint8 image as ``(1, H, W, 3)`` (NHWC, what RKNNLite takes; a backend that
    wants float NCHW converts inside) and returns the raw output tensors, unmodified.
    """

    name = 'abstract'

    @abc.abstractmethod
    def load(self) -> None:
        """Load the model; raise BackendError with the model path and reason on failure."""

    @property
    @abc.abstractmethod
    def input_size(self) -> Tuple[int, int]:
        """Model input size as (width, height); valid after ``load``."""

    @abc.abstractmethod
    def infer(self, image_nhwc: np.ndarray) -> List[np.ndarray]:
        """Run the model on a (1, H, W, 3) RGB uint8 image; return its raw outputs."""

    def check_input(self, image_nhwc: np.ndarray, where: str) -> None:
        """Raise BackendError naming ``where`` unless the image is (1, H, W, 3) uint8."""
        width, height = self.input_size
        if image_nhwc.shape != (1, height, width, 3) or image_nhwc.dtype != np.uint8:
            raise BackendError(f'{where} expects a (1, {height}, {width}, 3) uint8 image, '
                               f'got {image_nhwc.shape} {image_nhwc.dtype}')

    def release(self) -> None:
        """Free the model; safe to call twice."""
