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


"""Tests for the split-head export on the real Ultralytics ONNX model."""

import functools

from module_checks import optional, requires
import numpy as np
import pytest

from rk_yolo_ros.split_head_export import export_split_heads, SplitHeadExportError

onnx = optional('onnx')
ort = optional('onnxruntime')
pytestmark = requires('onnx', 'onnxruntime')


@functools.lru_cache(maxsize=None)
def _session(path):
    return ort.InferenceSession(path, providers=['CPUExecutionProvider'])


def _run(path, image):
    session = _session(str(path))
    name = session.get_inputs()[0].name
    return session, session.run(None, {name: image})


def test_outputs_follow_model_zoo_layout(split_head_model):
    session, outputs = _run(split_head_model, np.zeros((1, 3, 640, 640), np.float32))
    names = [o.name for o in session.get_outputs()]
    assert names == ['box_s8', 'cls_s8', 'score_sum_s8', 'box_s16', 'cls_s16',
                     'score_sum_s16', 'box_s32', 'cls_s32', 'score_sum_s32']
    shapes = [o.shape for o in outputs]
    assert shapes == [(1, 64, 80, 80), (1, 2, 80, 80), (1, 1, 80, 80),
                      (1, 64, 40, 40), (1, 2, 40, 40), (1, 1, 40, 40),
                      (1, 64, 20, 20), (1, 2, 20, 20), (1, 1, 20, 20)]


def test_class_scores_are_sigmoid_and_score_sum_is_their_clipped_sum(split_head_model,
                                                                     demo_images):
    import cv2
    image = cv2.resize(cv2.imread(str(demo_images[0])), (640, 640))[:, :, ::-1]
    tensor = np.ascontiguousarray(image.transpose(2, 0, 1)[None], np.float32) / 255.0
    _, outputs = _run(split_head_model, tensor)
    for cls, score_sum in zip(outputs[1::3], outputs[2::3]):
        assert cls.min() >= 0.0 and cls.max() <= 1.0
        np.testing.assert_allclose(score_sum[:, 0], np.minimum(cls.sum(axis=1), 1.0),
                                   atol=1e-5)
    assert max(c.max() for c in outputs[1::3]) > 0.5  # people in bus.jpg give real scores


def test_non_yolo_model_is_rejected_with_its_name(tmp_path):
    from onnx import helper, TensorProto
    node = helper.make_node('Relu', ['x'], ['y'])
    graph = helper.make_graph([node], 'not_yolo',
                              [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 3])])
    src = tmp_path / 'relu.onnx'
    onnx.save(helper.make_model(graph), str(src))
    with pytest.raises(SplitHeadExportError, match='relu.onnx.*Concat'):
        export_split_heads(src, tmp_path / 'out.onnx')


def test_missing_and_corrupt_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='absent.onnx'):
        export_split_heads(tmp_path / 'absent.onnx', tmp_path / 'out.onnx')
    corrupt = tmp_path / 'corrupt.onnx'
    corrupt.write_bytes(b'not a protobuf at all')
    with pytest.raises(SplitHeadExportError, match='corrupt.onnx'):
        export_split_heads(corrupt, tmp_path / 'out.onnx')


def _letterboxed(image_path):
    import cv2
    from rk_yolo_ros.letterbox import Letterbox
    canvas, _ = Letterbox((640, 640))(cv2.imread(str(image_path)))
    return np.ascontiguousarray(canvas.transpose(0, 3, 1, 2), np.float32) / 255.0


@pytest.fixture(scope='module')
def both_outputs(demo_model, split_head_model, demo_images):
    """Return (single-output, split-head outputs) of the real model for each demo image."""
    pairs = []
    for image_path in demo_images:
        tensor = _letterboxed(image_path)
        pairs.append((_run(demo_model, tensor)[1], _run(split_head_model, tensor)[1]))
    return pairs


@pytest.mark.parametrize('conf', [0.1, 0.25, 0.5])
def test_split_head_decode_matches_the_original_model(both_outputs, conf):
    from rk_yolo_ros.frame_processing import DetectionSettings
    from rk_yolo_ros.yolo_decode import YoloDecoder
    settings = DetectionSettings(conf_threshold=conf)
    for single, split in both_outputs:
        decoder = YoloDecoder((640, 640))
        assert decoder.family(single) == 'ultralytics' and decoder.family(split) == 'rknn_split'
        expected = decoder.decode(single, settings)
        assert len(expected[1]) >= 1
        order = np.random.default_rng(int(conf * 100)).permutation(len(split))
        shuffled = [split[i] for i in order]
        variants = [split, shuffled,
                    [np.ascontiguousarray(o.transpose(0, 2, 3, 1)) for o in shuffled]]
        for outputs in variants:
            boxes, scores, class_ids = YoloDecoder((640, 640)).decode(outputs, settings)
            assert class_ids.tolist() == expected[2].tolist()
            np.testing.assert_allclose(scores, expected[1], atol=1e-5)
            np.testing.assert_allclose(boxes, expected[0], atol=0.05)


def test_node_names_do_not_matter(demo_model, split_head_model, tmp_path):
    model = onnx.load(str(demo_model))
    for index, node in enumerate(model.graph.node):
        node.name = f'n{len(model.graph.node) - index}'  # nothing like '/model.22/...'
    renamed = tmp_path / 'renamed.onnx'
    onnx.save(model, str(renamed))
    exported = export_split_heads(renamed, tmp_path / 'renamed_split.onnx')
    tensor = np.random.default_rng(0).random((1, 3, 640, 640), np.float32)
    for ours, reference in zip(_run(exported, tensor)[1], _run(split_head_model, tensor)[1]):
        np.testing.assert_allclose(ours, reference, atol=1e-5)
