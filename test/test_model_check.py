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

"""The one ONNX model check: read with onnx, or with ONNX Runtime alone; one line when wrong."""

import sys

from module_checks import optional, requires
import pytest

from rk_yolo_ros.yolo.detector import YoloDetectorFactory
from rk_yolo_ros.yolo.model_check import ModelCheckError, read_onnx_model, require_fixed_size

needs_onnx = requires('onnx', 'onnxruntime')
onnx = optional('onnx')  # held here, so the tests can write models while the check cannot


def write_onnx(path, input_shape=(1, 3, 32, 32), output_shape=(1, 3)):
    """Write a small valid ONNX model: image -> pooled channels (a classifier, not YOLO)."""
    helper, TensorProto = onnx.helper, onnx.TensorProto
    nodes = [helper.make_node('GlobalAveragePool', ['images'], ['pooled']),
             helper.make_node('Flatten', ['pooled'], ['logits'])]
    graph = helper.make_graph(
        nodes, 'classifier',
        [helper.make_tensor_value_info('images', TensorProto.FLOAT, list(input_shape))],
        [helper.make_tensor_value_info('logits', TensorProto.FLOAT, list(output_shape))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 7
    onnx.save(model, str(path))
    return path


@pytest.fixture(params=['onnx', 'onnxruntime'])
def reader(request, monkeypatch):
    """Read models with the onnx package, or as where only onnxruntime is installed."""
    if request.param == 'onnxruntime':
        monkeypatch.setitem(sys.modules, 'onnx', None)  # `import onnx` raises ImportError
    return request.param


@needs_onnx
def test_demo_model_reads_the_same_either_way(demo_model, reader):
    info = read_onnx_model(demo_model)
    assert (info.family, info.num_classes, info.input_size) == ('ultralytics', 2, (640, 640))
    assert info.names == ['Normal', 'Fall'] and info.fixed
    assert (info.opset is None) == (reader == 'onnxruntime')  # only onnx reports the opset


@needs_onnx
def test_wrong_output_shape_is_one_clear_line_before_any_worker(tmp_path, reader):
    path = write_onnx(tmp_path / 'classifier.onnx')
    factory = YoloDetectorFactory(model_path=str(path), backend='onnx')
    with pytest.raises(ModelCheckError) as refused:
        factory.check()  # the main process: no worker, no backend loaded
    message = str(refused.value)
    assert '\n' not in message
    assert 'classifier.onnx does not look like a YOLO detector' in message
    assert 'outputs (1, 3)' in message and '1 values per anchor' in message


@needs_onnx
def test_wrong_input_and_unreadable_files(tmp_path, reader):
    grey = write_onnx(tmp_path / 'grey.onnx', input_shape=(1, 1, 32, 32))
    with pytest.raises(ModelCheckError, match=r"input 'images' has shape \(1, 1, 32, 32\)"):
        read_onnx_model(grey)
    garbage = tmp_path / 'garbage.onnx'
    garbage.write_bytes(b'not a protobuf at all')
    with pytest.raises(ModelCheckError, match='garbage.onnx is not a readable ONNX model'):
        read_onnx_model(garbage)
    with pytest.raises(ModelCheckError, match='model file not found'):
        read_onnx_model(tmp_path / 'absent.onnx')


@needs_onnx
def test_dynamic_size_runs_but_does_not_convert(tmp_path, reader):
    """ONNX Runtime runs a dynamic-size export (at 640x640); RKNN conversion needs it fixed."""
    dynamic = write_onnx(tmp_path / 'dynamic.onnx', input_shape=(1, 3, 'h', 'w'))
    info = read_onnx_model(dynamic)
    assert info.input_size is None and not info.fixed
    with pytest.raises(ModelCheckError, match='expected a fixed-size image'):
        require_fixed_size(info)
