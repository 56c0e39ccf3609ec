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
Accuracy against the Ultralytics predictor on real images with the real model.

The reference detections live in test/fixtures/ultralytics_reference.json, made by
scripts/make_ultralytics_reference.py (it records the ultralytics, torch and onnxruntime
versions). Our detector runs the same ONNX model through the same path as in the pipeline:
the image is first resized to 720 rows, then YoloDetector letterboxes, infers, decodes, NMSes
and maps boxes back to the original image's pixels.
"""

import json
import pathlib

import cv2
from module_checks import requires
import numpy as np
import pytest

from rk_yolo_ros.core.frame_processing import DetectionSettings, FrameTask
from rk_yolo_ros.yolo.detector import YoloDetectorFactory

needs_onnxruntime = requires('onnxruntime')  # all but the fixture check run the ONNX model

FIXTURE = pathlib.Path(__file__).parent / 'fixtures' / 'ultralytics_reference.json'
MIN_IOU = 0.9
MAX_SCORE_DIFF = 0.02


def box_iou(a, b):
    """Return the IoU of two x1y1x2y2 boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def match(reference, ours):
    """Pair each reference detection with our same-class detection of highest IoU, one-to-one."""
    pairs, used = [], set()
    for ref_box, ref_score, ref_class in zip(reference['boxes_xyxy'], reference['scores'],
                                             reference['class_ids']):
        candidates = [(box_iou(ref_box, box), k) for k, box in enumerate(ours.boxes.tolist())
                      if k not in used and int(ours.class_ids[k]) == ref_class]
        if not candidates:
            pairs.append((0.0, None))
            continue
        best_iou, k = max(candidates)
        used.add(k)
        pairs.append((best_iou, abs(float(ours.scores[k]) - ref_score)))
    return pairs


def detect_like_the_pipeline(detector, image, settings):
    """Resize to 720 rows as the intake does, then run the detector with the original size."""
    height, width = image.shape[:2]
    frame = cv2.resize(image, (int(round(width * 720 / height)), 720),
                       interpolation=cv2.INTER_LINEAR)  # as the intake does
    return detector.process(frame, FrameTask(0, (width, height), settings))


@pytest.fixture(scope='module')
def reference():
    return json.loads(FIXTURE.read_text())


def test_fixture_records_its_provenance(reference):
    assert set(reference['versions']) >= {'ultralytics', 'torch', 'onnxruntime'}
    assert reference['model']['file'] == 'best_fp16.onnx'
    assert sum(len(image['scores']) for image in reference['images']) >= 4


@needs_onnxruntime
def test_detections_match_ultralytics(reference, demo_model, demo_images):
    settings_ref = reference['settings']
    settings = DetectionSettings(conf_threshold=settings_ref['conf_threshold'],
                                 iou_threshold=settings_ref['iou_threshold'],
                                 max_detections=settings_ref['max_detections'], draw=False)
    detector = YoloDetectorFactory(model_path=str(demo_model), backend='onnx')(0, 1)
    paths = {p.name: p for p in demo_images}
    try:
        for expected in reference['images']:
            image = cv2.imread(str(paths[expected['image']]))
            assert [image.shape[1], image.shape[0]] == expected['size']
            ours = detect_like_the_pipeline(detector, image, settings)
            assert len(ours) == len(expected['scores']), expected['image']
            pairs = match(expected, ours)
            ious = [p[0] for p in pairs]
            diffs = [p[1] for p in pairs if p[1] is not None]
            assert min(ious) >= MIN_IOU, (expected['image'], ious)
            assert len(diffs) == len(pairs) and max(diffs) <= MAX_SCORE_DIFF, \
                (expected['image'], diffs)
            assert list(ours.labels) == [detector.names[c] for c in ours.class_ids.tolist()]
            assert sorted(ours.labels) == sorted(expected['labels'])
    finally:
        detector.close()


@needs_onnxruntime
def test_original_resolution_matches_ultralytics_almost_exactly(reference, demo_model,
                                                                demo_images):
    """Without the 720-row resize the pixels equal Ultralytics' own letterbox input."""
    settings = DetectionSettings(conf_threshold=reference['settings']['conf_threshold'],
                                 iou_threshold=reference['settings']['iou_threshold'],
                                 draw=False)
    detector = YoloDetectorFactory(model_path=str(demo_model), backend='onnx')(0, 1)
    paths = {p.name: p for p in demo_images}
    try:
        for expected in reference['images']:
            image = cv2.imread(str(paths[expected['image']]))
            height, width = image.shape[:2]
            ours = detector.process(image, FrameTask(0, (width, height), settings))
            pairs = match(expected, ours)
            assert len(ours) == len(expected['scores'])
            assert min(p[0] for p in pairs) >= 0.995
            assert max(p[1] for p in pairs) <= 1e-3
    finally:
        detector.close()


def summary(reference, demo_model, demo_images):
    """Return per-image match counts, min IoU and max score difference (for reports)."""
    detector = YoloDetectorFactory(model_path=str(demo_model), backend='onnx')(0, 1)
    paths = {p.name: p for p in demo_images}
    rows = []
    for expected in reference['images']:
        image = cv2.imread(str(paths[expected['image']]))
        ours = detect_like_the_pipeline(detector, image, DetectionSettings(
            conf_threshold=reference['settings']['conf_threshold'],
            iou_threshold=reference['settings']['iou_threshold'], draw=False))
        pairs = match(expected, ours)
        rows.append({'image': expected['image'], 'reference': len(expected['scores']),
                     'ours': len(ours), 'matched': sum(p[1] is not None for p in pairs),
                     'min_iou': float(np.min([p[0] for p in pairs])),
                     'max_score_diff': float(np.max([p[1] for p in pairs]))})
    detector.close()
    return rows


if __name__ == '__main__':
    # Print the comparison numbers: PYTHONPATH=. python test/test_accuracy.py
    from rk_yolo_ros.yolo import demo_assets
    print(json.dumps(summary(json.loads(FIXTURE.read_text()), demo_assets.fetch_model(),
                             demo_assets.fetch_images()), indent=1))


@needs_onnxruntime
def test_full_pipeline_detections_match_ultralytics(reference, demo_model, demo_images):
    """The whole pipeline (intake, shared memory, 2 workers, reorder) matches the reference."""
    from rk_yolo_ros.core.pipeline import FramePipeline, PipelineConfig

    settings_ref = reference['settings']
    released = []
    factory = YoloDetectorFactory(model_path=str(demo_model), backend='onnx')
    config = PipelineConfig(workers=2, cpu_affinity=None)
    paths = {p.name: p for p in demo_images}
    with FramePipeline(config, factory, released.append) as pipeline:
        pipeline.settings = DetectionSettings(
            conf_threshold=settings_ref['conf_threshold'],
            iou_threshold=settings_ref['iou_threshold'],
            max_detections=settings_ref['max_detections'])
        for expected in reference['images']:
            pipeline.submit(cv2.imread(str(paths[expected['image']])), meta=expected)
        assert pipeline.flush(timeout=120)
    assert [frame.status for frame in released] == ['ok'] * len(reference['images'])
    for frame in released:
        expected, ours = frame.meta, frame.result
        assert list(frame.source_size) == expected['size']
        assert len(ours) == len(expected['scores']), expected['image']
        pairs = match(expected, ours)
        assert min(p[0] for p in pairs) >= MIN_IOU, (expected['image'], pairs)
        assert max(p[1] for p in pairs) <= MAX_SCORE_DIFF, (expected['image'], pairs)
