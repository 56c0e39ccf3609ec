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
RKNNLite backend: runs an .rknn model on one RK3588 NPU core.

rknn-toolkit-lite2 exists only for aarch64 Linux boards (RK3588/RK3576/RK3566...). RKNNLite
logs its errors and returns -1 or None instead of raising, so every return value is checked
here and turned into a BackendError that names the model and the NPU core.
"""

import pathlib
import platform
from typing import List, Tuple

import numpy as np

from rk_yolo_ros.yolo.backends.base import Backend, BackendError

INSTALL_HINT = ('the rknn backend needs RKNNLite from rknn-toolkit-lite2, which runs only on '
                'aarch64 Rockchip boards (RK3588 and relatives): install the '
                'rknn_toolkit_lite2 wheel matching your Python from airockchip/rknn-toolkit2 '
                '(rknn-toolkit-lite2/packages) and the librknnrt.so runtime on the board; on '
                'other machines use the onnx backend with an .onnx model')

CORE_NAMES = {1: 'NPU core 0', 2: 'NPU core 1', 4: 'NPU core 2', 3: 'NPU cores 0-1',
              7: 'NPU cores 0-2', 0: 'NPU auto core'}


def import_rknnlite():
    """Return the RKNNLite class, or raise BackendError saying what to install and where."""
    try:
        from rknnlite.api import RKNNLite
    except ImportError as error:
        raise BackendError(f'{INSTALL_HINT} (this machine: {platform.machine()}, '
                           f'import failed: {error})') from error
    return RKNNLite


class RknnBackend(Backend):
    """Run an .rknn model with RKNNLite on the NPU core(s) given by ``core_mask``."""

    name = 'rknn'

    def __init__(self, model_path, core_mask: int = 1, input_size=(640, 640)):
        """Store the model, the NPU core mask (1, 2, 4 for one core) and the input size."""
        self.model_path = pathlib.Path(model_path)
        self.core_mask = int(core_mask)
        self._input_size = (int(input_size[0]), int(input_size[1]))
        self._rknn = None

    @property
    def _where(self) -> str:
        core = CORE_NAMES.get(self.core_mask, f'core mask {self.core_mask}')
        return f'{self.model_path} on {core}'

    def load(self) -> None:
        """Load the model and start the runtime on this worker's core; check every return."""
        rknnlite_class = import_rknnlite()
        if not self.model_path.is_file():
            raise BackendError(f'RKNN model not found: {self.model_path}')
        rknn = rknnlite_class()
        status = rknn.load_rknn(str(self.model_path))
        if status != 0:
            self._release_quietly(rknn)
            raise BackendError(f'RKNNLite.load_rknn failed ({status}) for {self._where}: the '
                               'file is corrupt or was built for another RKNN version/platform')
        status = rknn.init_runtime(core_mask=self.core_mask)
        if status != 0:
            self._release_quietly(rknn)
            raise BackendError(f'RKNNLite.init_runtime failed ({status}) for {self._where}: '
                               'is the NPU driver loaded, librknnrt.so installed, and the '
                               'model built for this SoC (target_platform)?')
        self._rknn = rknn

    @property
    def input_size(self) -> Tuple[int, int]:
        """Model input size as (width, height) (RKNNLite cannot report it; it is configured)."""
        return self._input_size

    def infer(self, image_nhwc: np.ndarray) -> List[np.ndarray]:
        """Run the model on a (1, H, W, 3) RGB uint8 image; return its raw outputs."""
        if self._rknn is None:
            raise BackendError(f'{self._where}: infer() called before load()')
        self.check_input(image_nhwc, self._where)
        outputs = self._rknn.inference(inputs=[image_nhwc])
        if outputs is None or len(outputs) == 0:
            raise BackendError(f'RKNNLite.inference returned {outputs!r} for {self._where}; '
                               'see the RKNN log above for the cause')
        return list(outputs)

    def release(self) -> None:
        """Release the RKNN context; safe to call twice."""
        rknn, self._rknn = self._rknn, None
        if rknn is not None:
            rknn.release()

    @staticmethod
    def _release_quietly(rknn) -> None:
        try:
            rknn.release()
        except Exception:  # the load error being raised matters more than this one
            pass
