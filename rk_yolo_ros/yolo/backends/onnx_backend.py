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

"""ONNX Runtime backend: runs a YOLO ONNX model on the CPU, anywhere."""

import pathlib
from typing import List, Optional, Tuple

import numpy as np

from rk_yolo_ros.yolo.backends.base import Backend, BackendError


class OnnxBackend(Backend):
    """
    Run an ONNX model with ONNX Runtime's CPU provider.

    ``infer`` takes the (1, H, W, 3) RGB uint8 image and converts it to what the model's input
    wants: float (32 or 16) NCHW scaled to [0, 1], or uint8 NCHW / NHWC unscaled.
    """

    name = 'onnx'

    def __init__(self, model_path, threads: int = 1, default_input_size=(640, 640)):
        """Store the model path, intra-op thread count and the size to use for dynamic inputs."""
        if int(threads) < 1:
            raise ValueError(f'onnx threads must be >= 1, got {threads}')
        self.model_path = pathlib.Path(model_path)
        self.threads = int(threads)
        self.default_input_size = tuple(default_input_size)
        self._session = None
        self._input_name = None
        self._input_size: Optional[Tuple[int, int]] = None
        self._nchw = True
        self._dtype = np.float32
        self._buffer = None

    def load(self) -> None:
        """Create the ONNX Runtime session and read the input size and type from the model."""
        try:
            import onnxruntime
        except ImportError as error:
            raise BackendError('the onnx backend needs onnxruntime: pip install onnxruntime') \
                from error
        if not self.model_path.is_file():
            raise BackendError(f'ONNX model not found: {self.model_path}')
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        try:
            session = onnxruntime.InferenceSession(str(self.model_path), sess_options=options,
                                                   providers=['CPUExecutionProvider'])
        except Exception as error:
            raise BackendError(f'{self.model_path} could not be loaded by ONNX Runtime '
                               f'(corrupt or not an ONNX model?): {error}') from error
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise BackendError(f'{self.model_path} has {len(inputs)} inputs; expected one '
                               'image input')
        self._configure_input(inputs[0])
        self._session = session

    def _configure_input(self, model_input) -> None:
        shape = list(model_input.shape)
        if len(shape) != 4:
            raise BackendError(f'{self.model_path} input {model_input.name!r} has shape '
                               f'{shape}; expected a 4-D image (1, 3, H, W) or (1, H, W, 3)')
        if shape[1] == 3:
            self._nchw, (height, width) = True, shape[2:4]
        elif shape[3] == 3:
            self._nchw, (height, width) = False, shape[1:3]
        else:
            raise BackendError(f'{self.model_path} input {model_input.name!r} has shape '
                               f'{shape}; expected 3 color channels (1, 3, H, W) or (1, H, W, 3)')
        types = {'tensor(float)': np.float32, 'tensor(float16)': np.float16,
                 'tensor(uint8)': np.uint8}
        if model_input.type not in types:
            raise BackendError(f'{self.model_path} input type {model_input.type}; expected '
                               'float, float16 or uint8')
        self._dtype = types[model_input.type]
        if not isinstance(height, int) or not isinstance(width, int):
            width, height = self.default_input_size  # a dynamic-size export
        self._input_name = model_input.name
        self._input_size = (int(width), int(height))
        layout = (1, 3, height, width) if self._nchw else (1, height, width, 3)
        self._buffer = np.empty(layout, self._dtype)

    @property
    def input_size(self) -> Tuple[int, int]:
        """Model input size as (width, height)."""
        if self._input_size is None:
            raise BackendError(f'{self.model_path}: input_size read before load()')
        return self._input_size

    def infer(self, image_nhwc: np.ndarray) -> List[np.ndarray]:
        """Run the model on a (1, H, W, 3) RGB uint8 image; return its raw outputs."""
        if self._session is None:
            raise BackendError(f'{self.model_path}: infer() called before load()')
        self.check_input(image_nhwc, str(self.model_path))
        source = image_nhwc.transpose(0, 3, 1, 2) if self._nchw else image_nhwc
        if self._dtype == np.uint8:
            self._buffer[...] = source
        else:
            np.multiply(source, self._dtype(1.0 / 255.0), out=self._buffer, casting='unsafe')
        try:
            return self._session.run(None, {self._input_name: self._buffer})
        except Exception as error:
            raise BackendError(f'{self.model_path}: ONNX Runtime inference failed: {error}') \
                from error

    def release(self) -> None:
        """Drop the session; safe to call twice."""
        self._session = None
