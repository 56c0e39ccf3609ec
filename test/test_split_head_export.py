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


"""Tests for the split-head export: real and synthetic Ultralytics ONNX, old and 8.4 layouts."""

import functools

from module_checks import optional, requires
import numpy as np
import pytest

from rk_yolo_ros.model_tools.split_head_export import export_split_heads, SplitHeadExportError
from split_head_graphs import head_layout, LAYOUTS, write_ultralytics_onnx

onnx = optional('onnx')
ort = optional('onnxruntime')
# Every test here builds or rewrites ONNX graphs (onnx); only those that run them need
# onnxruntime.
pytestmark = requires('onnx')
needs_onnxruntime = requires('onnxruntime')


@functools.lru_cache(maxsize=None)
def _session(path):
    return ort.InferenceSession(path, providers=['CPUExecutionProvider'])


def _run(path, image):
    session = _session(str(path))
    name = session.get_inputs()[0].name
    return session, session.run(None, {name: image})


@needs_onnxruntime
def test_outputs_follow_model_zoo_layout(split_head_model):
    session, outputs = _run(split_head_model, np.zeros((1, 3, 640, 640), np.float32))
    names = [o.name for o in session.get_outputs()]
    assert names == ['box_s8', 'cls_s8', 'score_sum_s8', 'box_s16', 'cls_s16',
                     'score_sum_s16', 'box_s32', 'cls_s32', 'score_sum_s32']
    shapes = [o.shape for o in outputs]
    assert shapes == [(1, 64, 80, 80), (1, 2, 80, 80), (1, 1, 80, 80),
                      (1, 64, 40, 40), (1, 2, 40, 40), (1, 1, 40, 40),
                      (1, 64, 20, 20), (1, 2, 20, 20), (1, 1, 20, 20)]


@needs_onnxruntime
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
    from rk_yolo_ros.yolo.letterbox import Letterbox
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


@needs_onnxruntime
@pytest.mark.parametrize('conf', [0.1, 0.25, 0.5])
def test_split_head_decode_matches_the_original_model(both_outputs, conf):
    from rk_yolo_ros.core.frame_processing import DetectionSettings
    from rk_yolo_ros.yolo.decode import YoloDecoder
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


@needs_onnxruntime
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


# --- Head layouts: Ultralytics 8.4 (box and class not concatenated per stride) and older ----

SYNTHETIC_SIZE = 128
# (layout, classes): 64 classes give box and class Convs the same channel count, 1 class a
# class tensor as narrow as the score sum; the export must still tell every branch apart.
SYNTHETIC_CASES = [('8.4', 3), ('8.4', 64), ('8.4', 1), ('concat', 3), ('concat', 64)]


def _random_images(count, size, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.random((1, 3, size, size), np.float32) for _ in range(count)]


def _assert_same_detections(original, split_head, size, images, conf):
    """Decode both models on ``images``; assert equal detections and return their count."""
    from rk_yolo_ros.core.frame_processing import DetectionSettings
    from rk_yolo_ros.yolo.decode import YoloDecoder
    settings = DetectionSettings(conf_threshold=conf, max_detections=300)
    total = 0
    for image in images:
        single, split = _run(original, image)[1], _run(split_head, image)[1]
        decoder = YoloDecoder((size, size))
        assert decoder.family(single) == 'ultralytics' and decoder.family(split) == 'rknn_split'
        expected = decoder.decode(single, settings)
        boxes, scores, class_ids = YoloDecoder((size, size)).decode(split, settings)
        assert class_ids.tolist() == expected[2].tolist()
        np.testing.assert_allclose(scores, expected[1], atol=1e-5)
        np.testing.assert_allclose(boxes, expected[0], atol=1e-3)
        for cls, score_sum in zip(split[1::3], split[2::3]):
            assert cls.min() >= 0.0 and cls.max() <= 1.0
            np.testing.assert_allclose(score_sum[:, 0], np.minimum(cls.sum(axis=1), 1.0),
                                       atol=1e-5)
        total += len(class_ids)
    return total


@pytest.mark.parametrize('layout', LAYOUTS)
def test_synthetic_graphs_have_the_head_layout_they_claim(tmp_path, layout):
    path = write_ultralytics_onnx(tmp_path / 'model.onnx', layout)
    assert head_layout(path) == layout


@pytest.mark.parametrize('layout,num_classes', SYNTHETIC_CASES)
@needs_onnxruntime
def test_synthetic_model_exports_and_decodes_like_the_original(tmp_path, layout, num_classes):
    source = write_ultralytics_onnx(tmp_path / 'model.onnx', layout, num_classes,
                                    SYNTHETIC_SIZE)
    exported = export_split_heads(source, tmp_path / 'split.onnx')
    session, outputs = _run(exported, _random_images(1, SYNTHETIC_SIZE)[0])
    assert [o.name for o in session.get_outputs()] == [
        f'{kind}_s{stride}' for stride in (8, 16, 32) for kind in ('box', 'cls', 'score_sum')]
    assert [o.shape for o in outputs] == [
        (1, channels, SYNTHETIC_SIZE // stride, SYNTHETIC_SIZE // stride)
        for stride in (8, 16, 32) for channels in (64, num_classes, 1)]
    detections = _assert_same_detections(source, exported, SYNTHETIC_SIZE,
                                         _random_images(3, SYNTHETIC_SIZE), conf=0.01)
    assert detections >= 3  # random weights at conf 0.01 still give boxes to compare


@needs_onnxruntime
def test_reg_max_is_read_from_the_dfl(tmp_path):
    source = write_ultralytics_onnx(tmp_path / 'model.onnx', '8.4', 3, SYNTHETIC_SIZE,
                                    reg_max=8)
    exported = export_split_heads(source, tmp_path / 'split.onnx')
    _, outputs = _run(exported, _random_images(1, SYNTHETIC_SIZE)[0])
    assert [o.shape[1] for o in outputs[0::3]] == [32, 32, 32]


def test_dynamic_input_size_is_rejected_with_its_name(tmp_path):
    model = onnx.load(str(write_ultralytics_onnx(tmp_path / 'model.onnx', '8.4')))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = 'height', 'width'
    dynamic = tmp_path / 'dynamic.onnx'
    onnx.save(model, str(dynamic))
    with pytest.raises(SplitHeadExportError, match='dynamic.onnx.*fixed input size'):
        export_split_heads(dynamic, tmp_path / 'out.onnx')


def test_single_conv_model_is_rejected_with_its_name(tmp_path):
    from onnx import helper, numpy_helper, TensorProto
    weight = numpy_helper.from_array(np.ones((4, 3, 1, 1), np.float32), 'w')
    node = helper.make_node('Conv', ['x', 'w'], ['y'])
    graph = helper.make_graph([node], 'one_conv',
                              [helper.make_tensor_value_info('x', TensorProto.FLOAT,
                                                             [1, 3, 8, 8])],
                              [helper.make_tensor_value_info('y', TensorProto.FLOAT,
                                                             [1, 4, 8, 8])], [weight])
    src = tmp_path / 'one_conv.onnx'
    onnx.save(helper.make_model(graph), str(src))
    with pytest.raises(SplitHeadExportError, match='one_conv.onnx.*found 1 head Conv'):
        export_split_heads(src, tmp_path / 'out.onnx')


# A random-weight yolo11n (opset 17) and yolov8n (opset 12) with 3 classes, exported by the
# installed Ultralytics (no weights download); class biases spread so conf 0.01 gives boxes.
_REAL_EXPORT_SCRIPT = """
import pathlib
import sys

import torch
import ultralytics
import yaml
from ultralytics import YOLO
from ultralytics.nn.tasks import yaml_model_load

out = pathlib.Path(sys.argv[1])
print('ULTRALYTICS', ultralytics.__version__, flush=True)
for name, opset in (('yolo11n', 17), ('yolov8n', 12)):
    torch.manual_seed(0)
    config = yaml_model_load(name + '.yaml')
    config['nc'] = 3
    folder = out / name
    folder.mkdir()
    (folder / (name + '.yaml')).write_text(yaml.safe_dump(config))  # the name gives the scale
    model = YOLO(str(folder / (name + '.yaml')))
    for branch in model.model.model[-1].cv3:
        torch.nn.init.normal_(branch[-1].bias, -2.0, 1.0)
    exported = model.export(format='onnx', imgsz=320, opset=opset, simplify=False,
                            dynamic=False)
    pathlib.Path(exported).rename(out / (name + '.onnx'))
"""
REAL_EXPORT_SIZE = 320


@pytest.fixture(scope='module')
def real_exports(tmp_path_factory):
    """Return (ultralytics version, folder) of yolo11n/yolov8n ONNX exported by Ultralytics."""
    import os
    import subprocess
    from rk_yolo_ros.model_tools.export import find_ultralytics_python
    python = find_ultralytics_python()
    if python is None:
        pytest.skip('no python with ultralytics (neither this one nor the rknn-toolkit2 '
                    'environment from scripts/setup_rknn_toolkit.sh --with-ultralytics)')
    folder = tmp_path_factory.mktemp('ultralytics_export')
    env = dict(os.environ, YOLO_OFFLINE='1', YOLO_CONFIG_DIR=str(folder / 'settings'))
    env.pop('PYTHONPATH', None)
    run = subprocess.run([python, '-c', _REAL_EXPORT_SCRIPT, str(folder)], cwd=str(folder),
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, timeout=300)
    if run.returncode != 0:
        pytest.fail(f'{python}: Ultralytics export failed:\n{run.stdout[-3000:]}')
    version = run.stdout.split('ULTRALYTICS', 1)[1].split()[0]
    return version, folder


@needs_onnxruntime
@pytest.mark.parametrize('name', ['yolo11n', 'yolov8n'])
def test_real_ultralytics_export_decodes_like_the_original(real_exports, tmp_path, name):
    version, folder = real_exports
    source = folder / f'{name}.onnx'
    if tuple(int(part) for part in version.split('.')[:2]) >= (8, 4):
        assert head_layout(source) == '8.4', f'Ultralytics {version} export'
    exported = export_split_heads(source, tmp_path / 'split.onnx')
    detections = _assert_same_detections(source, exported, REAL_EXPORT_SIZE,
                                         _random_images(2, REAL_EXPORT_SIZE), conf=0.01)
    assert detections >= 2
