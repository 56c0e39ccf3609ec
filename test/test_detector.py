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

"""Tests for YoloDetector and its picklable factory on the real model and images."""

import pickle

import cv2
from module_checks import requires
import numpy as np
import pytest

from rk_yolo_ros.core.frame_processing import Detections, DetectionSettings, FrameTask
from rk_yolo_ros.yolo.backends.emulated import EmulatedBackend
from rk_yolo_ros.yolo.decode import DecodeError
from rk_yolo_ros.yolo.detector import YoloDetector, YoloDetectorFactory

# Only the tests that run the ONNX model need these; the rest run without them.
needs_onnxruntime = requires('onnxruntime')
needs_onnx = requires('onnx', 'onnxruntime')


def to_720p(image):
    """Resize like the pipeline's intake: 720 rows, aspect kept."""
    height, width = image.shape[:2]
    return cv2.resize(image, (int(round(width * 720 / height)), 720),
                      interpolation=cv2.INTER_AREA)


def iou(a, b):
    """Return the IoU of two x1y1x2y2 boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope='module')
def detector(demo_model):
    factory = YoloDetectorFactory(model_path=str(demo_model), backend='onnx')
    built = pickle.loads(pickle.dumps(factory))(worker_index=0, core_mask=1)
    yield built
    built.close()


@pytest.fixture(scope='module')
def bus(demo_images):
    return cv2.imread(str(demo_images[0]))


@needs_onnxruntime
def test_factory_checks_and_names_classes_in_the_main_process(demo_model):
    factory = YoloDetectorFactory(model_path=str(demo_model))
    assert factory.check() == 'onnx'
    assert factory.class_names() == ['Normal', 'Fall']


@needs_onnxruntime
def test_detects_people_in_source_coordinates_and_draws(detector, bus):
    frame = to_720p(bus)
    before = frame.copy()
    height, width = bus.shape[:2]
    result = detector.process(frame, FrameTask(7, (width, height), DetectionSettings()))
    assert isinstance(result, Detections) and len(result) >= 3
    assert set(result.labels) == {'Normal'}
    assert result.boxes.dtype == np.float32 and result.class_ids.dtype == np.int32
    assert (result.boxes[:, 0::2] >= 0).all() and (result.boxes[:, 0::2] <= width).all()
    assert (result.boxes[:, 1::2] >= 0).all() and (result.boxes[:, 1::2] <= height).all()
    assert (result.boxes[:, 3] - result.boxes[:, 1] > 300).all()  # standing people, full size
    changed = np.any(frame != before, axis=2)
    x1, y1, x2, y2 = (result.boxes[0] * 720 / height).astype(int)
    assert changed[y1:y2, x1].any() or changed[y1:y2, x1 + 1].any()  # box edge drawn
    assert not changed[y1 + 40:y2 - 40, x1 + 40:x2 - 40].all()  # interior left as is


@needs_onnxruntime
def test_same_boxes_from_720p_frame_and_from_the_original(detector, bus):
    height, width = bus.shape[:2]
    settings = DetectionSettings(draw=False)
    from_720p = detector.process(to_720p(bus), FrameTask(0, (width, height), settings))
    from_original = detector.process(bus.copy(), FrameTask(1, (width, height), settings))
    assert len(from_720p) == len(from_original)
    for box in from_original.boxes:
        assert max(iou(box, other) for other in from_720p.boxes) > 0.95


@needs_onnxruntime
def test_a_source_is_letterboxed_at_its_own_size_and_drawn_into_the_frame(detector, bus):
    """
    Given the source, the model input is made from its own pixels, not the output frame's.

    A 360-row frame is not enlarged to 720 rows first: the detections equal those of the
    source processed on its own, in its pixels, and the boxes are drawn into the 720p frame.
    """
    height, width = bus.shape[:2]
    small = cv2.resize(bus, (int(round(width * 360 / height)), 360), interpolation=cv2.INTER_AREA)
    task = FrameTask(0, (small.shape[1], small.shape[0]), DetectionSettings())
    alone = detector.process(small.copy(), task)
    frame = to_720p(small)
    before = frame.copy()
    from_source = detector.process(frame, task, source=small)
    enlarged = detector.process(to_720p(small), task)  # what the old intake did
    assert len(alone) >= 2
    np.testing.assert_array_equal(from_source.boxes, alone.boxes)
    np.testing.assert_array_equal(from_source.scores, alone.scores)
    assert not np.array_equal(enlarged.scores, alone.scores)  # enlarging changes the input
    changed = np.any(frame != before, axis=2)
    x1, y1, x2, y2 = (from_source.boxes[0] * 2).astype(int)  # source -> 720p frame pixels
    assert changed[y1:y2, x1].any() or changed[y1:y2, x1 + 1].any()  # box edge drawn


@needs_onnxruntime
def test_no_drawing_when_disabled(detector, bus):
    frame = to_720p(bus)
    before = frame.copy()
    detector.process(frame, FrameTask(0, (bus.shape[1], bus.shape[0]),
                                      DetectionSettings(draw=False)))
    np.testing.assert_array_equal(frame, before)


@needs_onnxruntime
def test_settings_change_from_frame_to_frame(detector, bus):
    frame = to_720p(bus)
    size = (bus.shape[1], bus.shape[0])
    low = detector.process(frame.copy(), FrameTask(0, size, DetectionSettings(draw=False)))
    high = detector.process(frame.copy(), FrameTask(1, size, DetectionSettings(
        conf_threshold=0.65, draw=False)))
    none = detector.process(frame.copy(), FrameTask(2, size, DetectionSettings(
        classes=(1,), draw=False)))
    capped = detector.process(frame.copy(), FrameTask(3, size, DetectionSettings(
        max_detections=1, draw=False)))
    assert len(low) > len(high) >= 1
    assert (high.scores > 0.65).all()
    assert len(none) == 0
    assert len(capped) == 1 and capped.scores[0] == low.scores.max()
    default = detector.process(frame.copy(), FrameTask(4, size, None))
    assert len(default) == len(low)


@needs_onnx
def test_model_with_unexpected_outputs_fails_at_start_naming_it(tmp_path):
    import onnx
    from onnx import helper, TensorProto
    nodes = [helper.make_node('ReduceMean', ['images'], ['pooled'], axes=[2, 3], keepdims=0)]
    graph = helper.make_graph(
        nodes, 'classifier',
        [helper.make_tensor_value_info('images', TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info('pooled', TensorProto.FLOAT, [1, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8
    path = tmp_path / 'classifier.onnx'
    onnx.save(model, str(path))
    with pytest.raises(DecodeError, match=r'classifier.onnx: unexpected output shape \(1, 3\)'):
        YoloDetectorFactory(model_path=str(path), backend='onnx')(0, 1)


def test_emulated_backend_through_the_factory():
    for layout in ('ultralytics', 'rknn_split'):
        factory = YoloDetectorFactory(backend='emulated', emulated_latency_s=0.0,
                                      emulated_layout=layout, input_size=(640, 640))
        assert factory.check() == 'emulated'
        detector = pickle.loads(pickle.dumps(factory))(0, 1)
        assert isinstance(detector, YoloDetector)
        assert isinstance(detector.backend, EmulatedBackend)
        frame = np.zeros((720, 1280, 3), np.uint8)
        result = detector.process(frame, FrameTask(0, (1920, 1080), DetectionSettings()))
        assert len(result) > 0 and all(label for label in result.labels)
        assert (result.boxes[:, 0::2] <= 1920).all() and (result.boxes[:, 1::2] <= 1080).all()


@needs_onnxruntime
def test_class_count_mismatch_is_reported(demo_model, tmp_path):
    labels = tmp_path / 'three.txt'
    labels.write_text('a\nb\nc\n')
    factory = YoloDetectorFactory(model_path=str(demo_model), backend='onnx',
                                  labels_file=str(labels))
    with pytest.warns(UserWarning, match='best_fp16.onnx has 2 classes but 3 class names'):
        factory(0, 1).close()
