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

"""Tests of rk-yolo export and of the model checks every command starts with."""

import subprocess
import sys

from module_checks import optional, requires
import pytest

from rk_yolo_ros.model_tools.errors import ModelToolError
from rk_yolo_ros.model_tools.export import export_model, labels_path_for
from rk_yolo_ros.model_tools.model_check import inspect_onnx

onnx = optional('onnx')
needs_onnx = requires('onnx')  # for the tests that read or write ONNX models


def write_classifier_onnx(path, input_shape=(1, 3, 32, 32)):
    """Write a tiny non-YOLO ONNX (image -> 3 class logits) with onnx.helper."""
    from onnx import helper, TensorProto

    nodes = [helper.make_node('GlobalAveragePool', ['images'], ['pooled']),
             helper.make_node('Flatten', ['pooled'], ['logits'])]
    graph = helper.make_graph(
        nodes, 'classifier',
        [helper.make_tensor_value_info('images', TensorProto.FLOAT, list(input_shape))],
        [helper.make_tensor_value_info('logits', TensorProto.FLOAT, [1, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 7
    onnx.save(model, str(path))
    return path


@needs_onnx
def test_demo_model_exports_to_split_heads_with_labels(demo_model, tmp_path):
    source = tmp_path / 'fall.onnx'
    source.write_bytes(demo_model.read_bytes())
    lines = []
    info = export_model(source, log=lines.append)
    assert info.path == tmp_path / 'fall.split.onnx' and info.path.is_file()
    assert info.family == 'rknn_split' and info.num_classes == 2
    assert info.input_size == (640, 640)
    assert info.output_shapes == [(1, 64, 80, 80), (1, 2, 80, 80), (1, 1, 80, 80),
                                  (1, 64, 40, 40), (1, 2, 40, 40), (1, 1, 40, 40),
                                  (1, 64, 20, 20), (1, 2, 20, 20), (1, 1, 20, 20)]
    labels = labels_path_for(info.path)
    assert labels == tmp_path / 'fall.split.labels.yaml'
    import yaml
    assert yaml.safe_load(labels.read_text()) == {'names': {0: 'Normal', 1: 'Fall'}}
    assert any('wrote labels' in line for line in lines)
    # Exporting the split model again copies it (already split) instead of failing.
    again = export_model(info.path, output=tmp_path / 'copy.onnx', log=lines.append)
    assert again.family == 'rknn_split' and (tmp_path / 'copy.labels.yaml').is_file()


@needs_onnx
def test_non_yolo_onnx_is_rejected_with_its_outputs_named(tmp_path):
    path = write_classifier_onnx(tmp_path / 'classifier.onnx')
    with pytest.raises(ModelToolError, match=r'does not look like a YOLO detector.*\(1, 3\)'):
        inspect_onnx(path)
    with pytest.raises(ModelToolError, match='classifier.onnx does not look like a YOLO'):
        export_model(path, log=lambda line: None)


def test_missing_or_foreign_model_files_get_clear_errors(tmp_path):
    with pytest.raises(ModelToolError, match='model file not found'):
        export_model(tmp_path / 'absent.onnx')
    text = tmp_path / 'model.tflite'
    text.write_bytes(b'x')
    with pytest.raises(ModelToolError, match=r'expected an Ultralytics \.pt or \.onnx'):
        export_model(text)


@needs_onnx
def test_unreadable_or_dynamic_onnx_gets_clear_errors(tmp_path):
    garbage = tmp_path / 'garbage.onnx'
    garbage.write_bytes(b'not a protobuf at all')
    with pytest.raises(ModelToolError, match='garbage.onnx is not a readable ONNX model'):
        export_model(garbage)
    dynamic = write_classifier_onnx(tmp_path / 'dynamic.onnx', (1, 3, 'h', 'w'))
    with pytest.raises(ModelToolError, match='expected a fixed-size image'):
        inspect_onnx(dynamic)


def test_pt_without_ultralytics_says_how_to_export(tmp_path, monkeypatch):
    probe = subprocess.run([sys.executable, '-c', 'import ultralytics'],
                           stderr=subprocess.DEVNULL)
    if probe.returncode == 0:
        pytest.skip('ultralytics is installed here, so .pt export would run')
    monkeypatch.setenv('RK_YOLO_RKNN_ENV', str(tmp_path / 'no-toolkit-env'))
    weights = tmp_path / 'yolov8n.pt'
    weights.write_bytes(b'pickle')
    with pytest.raises(ModelToolError, match=r'needs ultralytics and torch.*'
                       r'setup_rknn_toolkit\.sh --with-ultralytics'):
        export_model(weights, log=lambda line: None)
