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

"""Tests for class names: COCO default, ONNX metadata, labels files."""

import pytest

from rk_yolo_ros.yolo.labels import (COCO80, label_for, LabelsError, load_labels,
                                     onnx_metadata_names, read_labels_file)


def test_default_is_coco80():
    names = load_labels()
    assert len(names) == 80 and names[0] == 'person' and names[79] == 'toothbrush'
    assert load_labels('model.rknn') == list(COCO80)


def test_names_from_ultralytics_onnx_metadata(demo_model):
    assert onnx_metadata_names(demo_model) == ['Normal', 'Fall']
    assert load_labels(demo_model) == ['Normal', 'Fall']


def test_onnx_without_names_falls_back_to_coco(tmp_path):
    onnx = pytest.importorskip('onnx')
    from onnx import helper, TensorProto
    graph = helper.make_graph(
        [helper.make_node('Identity', ['x'], ['y'])], 'plain',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1])])
    path = tmp_path / 'plain.onnx'
    onnx.save(helper.make_model(graph), str(path))
    assert onnx_metadata_names(path) is None
    assert load_labels(path) == list(COCO80)


def test_labels_file_wins_over_model_metadata(demo_model, tmp_path):
    labels = tmp_path / 'labels.txt'
    labels.write_text('cat\ndog\n\n')
    assert load_labels(demo_model, labels) == ['cat', 'dog']


def test_yaml_names_list_and_mapping(tmp_path):
    as_list = tmp_path / 'data.yaml'
    as_list.write_text('path: x\nnames:\n  - helmet\n  - vest\n')
    assert read_labels_file(as_list) == ['helmet', 'vest']
    as_map = tmp_path / 'map.yml'
    as_map.write_text('names:\n  0: helmet\n  2: boots\n')
    assert read_labels_file(as_map) == ['helmet', '1', 'boots']


def test_bad_labels_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='absent.txt'):
        read_labels_file(tmp_path / 'absent.txt')
    no_names = tmp_path / 'no_names.yaml'
    no_names.write_text('nc: 3\n')
    with pytest.raises(LabelsError, match='no_names.yaml.*names'):
        read_labels_file(no_names)
    empty = tmp_path / 'empty.txt'
    empty.write_text('\n\n')
    with pytest.raises(LabelsError, match='empty.txt'):
        read_labels_file(empty)
    bad_keys = tmp_path / 'bad.yaml'
    bad_keys.write_text('names:\n  helmet: 0\n')
    with pytest.raises(LabelsError, match='bad.yaml'):
        read_labels_file(bad_keys)


def test_corrupt_onnx_model_is_named(tmp_path):
    pytest.importorskip('onnx')
    corrupt = tmp_path / 'corrupt.onnx'
    corrupt.write_bytes(b'\x00\x01garbage')
    with pytest.raises(LabelsError, match='corrupt.onnx'):
        load_labels(corrupt)


def test_label_for_out_of_range_ids():
    assert label_for(['a', 'b'], 1) == 'b'
    assert label_for(['a', 'b'], 5) == '5'
