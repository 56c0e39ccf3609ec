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
Frames shorter than the output are not enlarged before inference: `rk-yolo run` on small images.

bus.jpg and zidane.jpg shrunk to 360 and 480 rows (test/fixtures/small_images, written by
scripts/make_ultralytics_reference.py with the Ultralytics reference for them, ``small_images``
in test/fixtures/ultralytics_reference.json). Through ``rk-yolo run`` with default settings
(3 workers, the demo model) every image must give the reference's detections: the same boxes
(IoU >= 0.95) and scores (within 0.02), and, since the model now sees the image's own pixels
as Ultralytics' predictor does, within 0.001 and IoU >= 0.995, which the old intake (every
frame enlarged to 720 rows first) misses.
"""

import json
import pathlib

from module_checks import requires
from offline_helpers import read_jsonl
import pytest

from rk_yolo_ros import cli
from test_accuracy import box_iou, match

pytestmark = requires('onnxruntime')

FIXTURES = pathlib.Path(__file__).parent / 'fixtures'
MIN_IOU, MAX_SCORE_DIFF = 0.95, 0.02  # the contract
EXACT_IOU, EXACT_SCORE_DIFF = 0.995, 1e-3  # the detector on the image's own pixels


@pytest.fixture(scope='module')
def reference():
    return json.loads((FIXTURES / 'ultralytics_reference.json').read_text())


def pairs_with(expected, detections):
    """Pair each reference detection with our same-class one of highest IoU, one-to-one."""
    pairs, used = [], set()
    for box, score, class_id in zip(expected['boxes_xyxy'], expected['scores'],
                                    expected['class_ids']):
        candidates = [(box_iou(box, d['box']), k) for k, d in enumerate(detections)
                      if k not in used and d['class_id'] == class_id]
        assert candidates, (expected['image'], 'a reference detection has no match')
        iou, k = max(candidates)
        used.add(k)
        pairs.append((iou, abs(detections[k]['score'] - score)))
    return pairs


def test_small_images_match_ultralytics_through_rk_yolo_run(reference, demo_model, tmp_path):
    folder = FIXTURES.parents[1] / reference['small_images_folder']
    expected = reference['small_images']
    assert sorted(p.name for p in folder.iterdir()) == [e['image'] for e in expected]
    assert max(e['size'][1] for e in expected) < 720  # all shorter than the output frames
    jsonl = tmp_path / 'detections.jsonl'
    assert cli.main(['run', str(folder), '--jsonl', str(jsonl)]) == 0
    records = read_jsonl(jsonl)
    assert [r['index'] for r in records] == list(range(len(expected)))
    for record, reference_image in zip(records, expected):  # the folder is read in name order
        name = reference_image['image']
        assert record['status'] == 'ok', name
        assert [record['width'], record['height']] == reference_image['size'], name
        assert len(record['detections']) == len(reference_image['scores']), name
        assert sorted(d['label'] for d in record['detections']) == \
            sorted(reference_image['labels']), name
        pairs = pairs_with(reference_image, record['detections'])
        assert min(iou for iou, _ in pairs) >= MIN_IOU, (name, pairs)
        assert max(diff for _, diff in pairs) <= MAX_SCORE_DIFF, (name, pairs)
        # JSON lines round scores to 4 decimals and boxes to 0.1 pixel
        assert min(iou for iou, _ in pairs) >= EXACT_IOU, (name, pairs)
        assert max(diff for _, diff in pairs) <= EXACT_SCORE_DIFF + 1e-4, (name, pairs)


def test_enlarging_first_would_miss_the_exact_match(reference, demo_model):
    """The old intake's path, for contrast: so the exact check above can tell them apart."""
    import cv2

    from rk_yolo_ros.core.frame_processing import DetectionSettings, FrameTask
    from rk_yolo_ros.yolo.detector import YoloDetectorFactory

    detector = YoloDetectorFactory(model_path=str(demo_model), backend='onnx')(0, 1)
    folder = FIXTURES / 'small_images'
    worst_iou, worst_diff = 1.0, 0.0
    try:
        for expected in reference['small_images']:
            image = cv2.imread(str(folder / expected['image']))
            height, width = image.shape[:2]
            enlarged = cv2.resize(image, (int(round(width * 720 / height)), 720),
                                  interpolation=cv2.INTER_LINEAR)
            ours = detector.process(enlarged, FrameTask(0, (width, height),
                                                        DetectionSettings(draw=False)))
            pairs = match(expected, ours)
            worst_iou = min([worst_iou] + [iou for iou, _ in pairs])
            worst_diff = max([worst_diff] + [diff for _, diff in pairs if diff is not None])
    finally:
        detector.close()
    assert worst_iou < EXACT_IOU or worst_diff > EXACT_SCORE_DIFF + 1e-4
