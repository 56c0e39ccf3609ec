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
Choose and build a backend by name: 'onnx', 'rknn', 'auto' or 'emulated'.

``check_backend`` runs in the main process before any worker starts, so an unknown name, a
missing model file or rknn on a machine that cannot run it fail at once with a clear message.
``create_backend`` runs inside each worker and returns the (not yet loaded) backend.
"""

import pathlib
import platform
from typing import Optional

from rk_yolo_ros.core import settings
from rk_yolo_ros.yolo.backends.base import Backend, BackendError

MODEL_SUFFIXES = {'.onnx': 'onnx', '.rknn': 'rknn'}


def resolve_backend_name(name: str, model_path) -> str:
    """Return the concrete backend for a name ('auto' picks from the model file's suffix)."""
    settings.check('backend', name)
    if name != 'auto':
        return name
    if model_path is None:
        raise ValueError("backend 'auto' needs a model file (.onnx or .rknn), got none")
    suffix = pathlib.Path(model_path).suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise ValueError(f"backend 'auto' cannot pick a backend for {model_path}: expected a "
                         '.onnx or .rknn model file')
    return MODEL_SUFFIXES[suffix]


def check_backend(name: str, model_path: Optional[str] = None) -> str:
    """
    Fail early, in the main process, when a backend cannot run here; return its concrete name.

    Raise ValueError for an unknown name or a model whose type does not fit, FileNotFoundError
    for a missing model file, BackendError for rknn where RKNNLite cannot run (not aarch64, or
    rknn-toolkit-lite2 not installed) or onnx without onnxruntime.
    """
    concrete = resolve_backend_name(name, model_path)
    if concrete == 'emulated':
        return concrete  # needs no model file
    if model_path is None:
        raise ValueError(f'backend {concrete!r} needs a model file, got none')
    path = pathlib.Path(model_path)
    if not path.is_file():
        raise FileNotFoundError(f'model file not found: {path}')
    expected_suffix = '.' + concrete
    if path.suffix.lower() != expected_suffix:
        raise ValueError(f'backend {concrete!r} needs a {expected_suffix} model, got {path}')
    if concrete == 'rknn':
        from rk_yolo_ros.yolo.backends.rknn_backend import import_rknnlite, INSTALL_HINT
        if platform.machine() not in ('aarch64', 'arm64'):
            raise BackendError(f'cannot run {path} with the rknn backend on a '
                               f'{platform.machine()} machine: {INSTALL_HINT}')
        import_rknnlite()
    if concrete == 'onnx':
        try:
            import onnxruntime  # noqa: F401
        except ImportError as error:
            raise BackendError(f'cannot run {path} with the onnx backend: onnxruntime is not '
                               'installed (pip install onnxruntime)') from error
    return concrete


def create_backend(name: str, model_path=None, core_mask: int = 1, **options) -> Backend:
    """
    Build the named backend (not loaded yet: call ``load()`` in the worker).

    Options: onnx: ``threads`` (intra-op threads, default 1); rknn: ``input_size`` (w, h);
    emulated: ``latency_s``, ``input_size``, ``layout``, ``num_classes``, ``seed``,
    ``recorded_outputs``, ``npu_lock_dir`` (benchmarks only: one inference at a time per
    core mask across processes). Options that do not apply to the chosen backend are ignored so one
    configuration can serve every backend.
    """
    concrete = resolve_backend_name(name, model_path)
    if concrete == 'onnx':
        from rk_yolo_ros.yolo.backends.onnx_backend import OnnxBackend
        return OnnxBackend(model_path, threads=options.get('threads', 1))
    if concrete == 'rknn':
        from rk_yolo_ros.yolo.backends.rknn_backend import RknnBackend
        return RknnBackend(model_path, core_mask=core_mask,
                           input_size=options.get('input_size') or (640, 640))
    from rk_yolo_ros.yolo.backends.emulated import EmulatedBackend
    keys = ('latency_s', 'input_size', 'layout', 'num_classes', 'seed', 'recorded_outputs',
            'npu_lock_dir')
    return EmulatedBackend(core_mask=core_mask,
                           **{k: options[k] for k in keys if options.get(k) is not None})
