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

"""Tests for the onnx and rknn backends and the backend factory."""

import platform
import sys
import types

from module_checks import optional, requires
import numpy as np
import pytest

from rk_yolo_ros.yolo.backends.base import BackendError
from rk_yolo_ros.yolo.backends.emulated import EmulatedBackend
from rk_yolo_ros.yolo.backends.factory import check_backend, create_backend, resolve_backend_name
from rk_yolo_ros.yolo.backends.onnx_backend import OnnxBackend
from rk_yolo_ros.yolo.backends.rknn_backend import RknnBackend

onnx = optional('onnx')
# Only the tests that build or run ONNX models need these; the rest run without them.
needs_onnx = requires('onnx', 'onnxruntime')
needs_onnxruntime = requires('onnxruntime')


def identity_model(path, shape, elem_type, scale=None):
    """Write a tiny ONNX model that returns its input as float (times ``scale`` if given)."""
    from onnx import helper, numpy_helper, TensorProto
    nodes = [helper.make_node('Cast', ['image'], ['as_float'], to=TensorProto.FLOAT)]
    inits = []
    if scale is not None:
        inits.append(numpy_helper.from_array(np.array(scale, np.float32), 'scale'))
        nodes.append(helper.make_node('Mul', ['as_float', 'scale'], ['out']))
    else:
        nodes.append(helper.make_node('Identity', ['as_float'], ['out']))
    graph = helper.make_graph(nodes, 'identity',
                              [helper.make_tensor_value_info('image', elem_type, shape)],
                              [helper.make_tensor_value_info('out', TensorProto.FLOAT, shape)],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _image(width=32, height=24, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (1, height, width, 3), np.uint8)


# ------------------------------------------------------------------ onnx
@needs_onnx
def test_float_nchw_model_gets_scaled_planar_input(tmp_path):
    from onnx import TensorProto
    backend = OnnxBackend(identity_model(tmp_path / 'f.onnx', [1, 3, 24, 32], TensorProto.FLOAT))
    backend.load()
    assert backend.input_size == (32, 24)
    image = _image()
    (out,) = backend.infer(image)
    np.testing.assert_allclose(out, image.transpose(0, 3, 1, 2) / 255.0, atol=1e-6)


@needs_onnx
def test_uint8_nhwc_model_gets_the_image_unscaled(tmp_path):
    from onnx import TensorProto
    backend = OnnxBackend(identity_model(tmp_path / 'u.onnx', [1, 24, 32, 3], TensorProto.UINT8))
    backend.load()
    image = _image()
    (out,) = backend.infer(image)
    np.testing.assert_array_equal(out, image.astype(np.float32))


@needs_onnxruntime
def test_real_model_reads_its_input_size_and_threads(demo_model):
    backend = OnnxBackend(demo_model, threads=2)
    backend.load()
    assert backend.input_size == (640, 640)
    assert backend._session.get_session_options().intra_op_num_threads == 2
    outputs = backend.infer(np.full((1, 640, 640, 3), 114, np.uint8))
    assert [o.shape for o in outputs] == [(1, 6, 8400)]
    backend.release()
    backend.release()


@needs_onnxruntime
def test_wrong_image_size_names_model_and_expected_shape(demo_model):
    backend = OnnxBackend(demo_model)
    backend.load()
    with pytest.raises(BackendError, match=r'best_fp16.onnx expects a \(1, 640, 640, 3\) uint8'):
        backend.infer(np.zeros((1, 320, 320, 3), np.uint8))


@needs_onnxruntime
def test_missing_and_corrupt_models_are_named(tmp_path):
    with pytest.raises(BackendError, match='absent.onnx'):
        OnnxBackend(tmp_path / 'absent.onnx').load()
    corrupt = tmp_path / 'corrupt.onnx'
    corrupt.write_bytes(b'definitely not protobuf')
    with pytest.raises(BackendError, match='corrupt.onnx'):
        OnnxBackend(corrupt).load()


@needs_onnx
def test_non_image_input_is_rejected_with_the_expected_layout(tmp_path):
    from onnx import TensorProto
    path = identity_model(tmp_path / 'gray.onnx', [1, 1, 64, 64], TensorProto.FLOAT)
    with pytest.raises(BackendError, match=r'gray.onnx.*\[1, 1, 64, 64\].*3 color channels'):
        OnnxBackend(path).load()
    flat = identity_model(tmp_path / 'flat.onnx', [1, 12], TensorProto.FLOAT)
    with pytest.raises(BackendError, match='flat.onnx.*4-D image'):
        OnnxBackend(flat).load()


# ------------------------------------------------------------------ rknn
class FakeRKNNLite:
    """
    Stand-in for rknnlite.api.RKNNLite, which exists only on aarch64 boards.

    rknn-toolkit-lite2 cannot be installed on this x86 machine, so these tests inject this
    class via sys.modules ONLY to prove that every RKNNLite return code is checked. It mimics
    the real API's contract: 0 / -1 return codes and None from a failed inference.
    """

    load_result = 0
    init_result = 0
    outputs = [np.zeros((1, 6, 8400), np.float32)]
    instances = []

    def __init__(self):
        self.calls = []
        type(self).instances.append(self)

    def load_rknn(self, path):
        self.calls.append(('load_rknn', path))
        return self.load_result

    def init_runtime(self, core_mask=None):
        self.calls.append(('init_runtime', core_mask))
        return self.init_result

    def inference(self, inputs=None):
        self.calls.append(('inference', inputs[0].shape))
        return self.outputs

    def release(self):
        self.calls.append(('release',))


@pytest.fixture
def fake_rknnlite(monkeypatch):
    """Install FakeRKNNLite as rknnlite.api.RKNNLite for one test."""
    package = types.ModuleType('rknnlite')
    api = types.ModuleType('rknnlite.api')
    api.RKNNLite = type('RKNNLite', (FakeRKNNLite,), {'instances': []})
    package.api = api
    monkeypatch.setitem(sys.modules, 'rknnlite', package)
    monkeypatch.setitem(sys.modules, 'rknnlite.api', api)
    return api.RKNNLite


@pytest.fixture
def rknn_file(tmp_path):
    path = tmp_path / 'yolo.rknn'
    path.write_bytes(b'RKNN model bytes')
    return path


def test_rknn_runs_on_the_workers_core(fake_rknnlite, rknn_file):
    backend = RknnBackend(rknn_file, core_mask=4)
    backend.load()
    outputs = backend.infer(np.zeros((1, 640, 640, 3), np.uint8))
    assert [o.shape for o in outputs] == [(1, 6, 8400)]
    backend.release()
    backend.release()
    calls = fake_rknnlite.instances[0].calls
    assert calls == [('load_rknn', str(rknn_file)), ('init_runtime', 4),
                     ('inference', (1, 640, 640, 3)), ('release',)]


def test_rknn_load_failure_names_model_and_core(fake_rknnlite, rknn_file):
    fake_rknnlite.load_result = -1
    with pytest.raises(BackendError, match=r'load_rknn failed \(-1\) for .*yolo.rknn on NPU '
                                           r'core 1'):
        RknnBackend(rknn_file, core_mask=2).load()
    assert fake_rknnlite.instances[0].calls[-1] == ('release',)


def test_rknn_init_runtime_failure_names_model_and_core(fake_rknnlite, rknn_file):
    fake_rknnlite.init_result = -1
    with pytest.raises(BackendError, match=r'init_runtime failed \(-1\) for .*yolo.rknn on NPU '
                                           r'core 2'):
        RknnBackend(rknn_file, core_mask=4).load()


def test_rknn_inference_none_is_an_error(fake_rknnlite, rknn_file):
    fake_rknnlite.outputs = None
    backend = RknnBackend(rknn_file, core_mask=1)
    backend.load()
    with pytest.raises(BackendError, match=r'inference returned None for .*yolo.rknn on NPU '
                                           r'core 0'):
        backend.infer(np.zeros((1, 640, 640, 3), np.uint8))


def test_rknn_wrong_image_size(fake_rknnlite, rknn_file):
    backend = RknnBackend(rknn_file, core_mask=1, input_size=(320, 320))
    backend.load()
    with pytest.raises(BackendError, match=r'yolo.rknn.*expects a \(1, 320, 320, 3\)'):
        backend.infer(np.zeros((1, 640, 640, 3), np.uint8))


def test_rknn_missing_model_is_named(fake_rknnlite, tmp_path):
    with pytest.raises(BackendError, match='absent.rknn'):
        RknnBackend(tmp_path / 'absent.rknn').load()


def test_rknn_without_rknnlite_says_what_to_install(rknn_file):
    try:
        import rknnlite  # noqa: F401
        pytest.skip('rknnlite is really installed here')
    except ImportError:
        pass
    with pytest.raises(BackendError, match='rknn-toolkit-lite2.*aarch64'):
        RknnBackend(rknn_file).load()


# ------------------------------------------------------------------ factory
def test_unknown_backend_lists_the_choices(demo_model):
    with pytest.raises(ValueError, match="backend must be one of 'auto', 'onnx', 'rknn', "
                                         "'emulated', got 'tensorrt'"):
        check_backend('tensorrt', demo_model)
    with pytest.raises(ValueError, match='tensorrt'):
        create_backend('tensorrt', demo_model)


def test_missing_model_fails_early(tmp_path):
    with pytest.raises(FileNotFoundError, match='absent.onnx'):
        check_backend('onnx', tmp_path / 'absent.onnx')
    with pytest.raises(FileNotFoundError, match='absent.rknn'):
        check_backend('auto', tmp_path / 'absent.rknn')


def test_auto_picks_by_suffix(tmp_path):
    assert resolve_backend_name('auto', 'm.onnx') == 'onnx'
    assert resolve_backend_name('auto', 'm.RKNN') == 'rknn'
    with pytest.raises(ValueError, match=r'weights.pt.*\.onnx or \.rknn'):
        resolve_backend_name('auto', tmp_path / 'weights.pt')


@needs_onnxruntime
def test_auto_accepts_an_onnx_model_where_onnxruntime_is_installed(demo_model):
    assert check_backend('auto', demo_model) == 'onnx'


def test_backend_and_model_type_must_fit(demo_model, rknn_file):
    with pytest.raises(ValueError, match=r"'onnx' needs a \.onnx model.*yolo.rknn"):
        check_backend('onnx', rknn_file)


@pytest.mark.skipif(platform.machine() in ('aarch64', 'arm64'), reason='needs a non-ARM machine')
def test_rknn_on_this_machine_fails_early_with_the_reason(rknn_file):
    with pytest.raises(BackendError, match=f'{platform.machine()}.*aarch64'):
        check_backend('rknn', rknn_file)
    with pytest.raises(BackendError, match='rknn-toolkit-lite2'):
        check_backend('auto', rknn_file)


def test_create_backend_builds_each_kind(demo_model, rknn_file):
    onnx_backend = create_backend('auto', demo_model, core_mask=2, threads=3)
    assert isinstance(onnx_backend, OnnxBackend) and onnx_backend.threads == 3
    rknn_backend = create_backend('rknn', rknn_file, core_mask=2, input_size=(416, 416))
    assert isinstance(rknn_backend, RknnBackend)
    assert rknn_backend.core_mask == 2 and rknn_backend.input_size == (416, 416)


def test_emulated_backend_needs_no_model():
    assert check_backend('emulated', None) == 'emulated'
    backend = create_backend('emulated', None, 1, latency_s=0.0, input_size=(320, 320),
                             layout='rknn_split', num_classes=3)
    assert isinstance(backend, EmulatedBackend)
    backend.load()
    assert backend.input_size == (320, 320)
    assert len(backend.infer(np.zeros((1, 320, 320, 3), np.uint8))) == 9
