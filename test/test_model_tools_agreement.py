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

"""Tests of the agreement metrics between a converted model's detections and its reference."""

import numpy as np
import pytest

from rk_yolo_ros.model_tools.agreement import (AgreementThresholds, box_iou, compare_image,
                                               DetectionSet, format_summary, match_boxes,
                                               summarize)


def dets(boxes, scores, class_ids):
    """Build a DetectionSet from plain lists."""
    return DetectionSet.of({'boxes': boxes, 'scores': scores, 'class_ids': class_ids})


REFERENCE = dets([[0, 0, 100, 100], [200, 200, 300, 400], [500, 100, 600, 200]],
                 [0.9, 0.8, 0.6], [0, 1, 0])


def test_box_iou_of_known_overlaps():
    iou = box_iou([[0, 0, 10, 10]], [[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    assert iou.shape == (1, 3)
    np.testing.assert_allclose(iou[0], [1.0, 50 / 150, 0.0], rtol=1e-6)


def test_match_boxes_pairs_best_iou_first_one_to_one():
    reference = [[0, 0, 10, 10], [0, 0, 10, 12]]
    candidate = [[0, 0, 10, 12]]
    pairs = match_boxes(np.array(reference), np.array(candidate), 0.5)
    assert [(i, j) for i, j, _ in pairs] == [(1, 0)]  # the exact match wins, one pair only
    assert match_boxes(np.array(reference), np.zeros((0, 4)), 0.5) == []


def test_identical_detections_agree_perfectly():
    image = compare_image(REFERENCE, REFERENCE, conf_threshold=0.25)
    counts = (image['matched'], image['missed'], image['extra'], image['class_flips'])
    assert counts == (3, 0, 0, 0)
    summary = summarize([image])
    assert summary['passed'] and summary['failures'] == []
    assert summary['recall'] == summary['precision'] == summary['mean_iou'] == 1.0
    assert summary['mean_abs_score_drift'] == 0.0


def test_shifted_box_lowers_iou_and_drift_is_signed():
    candidate = dets([[0, 0, 100, 100], [200, 250, 300, 450], [500, 100, 600, 200]],
                     [0.85, 0.8, 0.75], [0, 1, 0])
    image = compare_image(REFERENCE, candidate, conf_threshold=0.25)
    assert image['matched'] == 3
    assert sorted(image['ious'])[0] == pytest.approx(150 / 250, abs=1e-4)  # 100x150 of 100x250
    assert sorted(image['score_drifts']) == pytest.approx([-0.05, 0.0, 0.15], abs=1e-4)
    summary = summarize([image])
    assert summary['mean_iou'] == pytest.approx(2.6 / 3, abs=1e-3)  # passes 0.85
    assert summary['mean_score_drift'] == pytest.approx(0.1 / 3, abs=1e-3)
    assert summary['mean_abs_score_drift'] == pytest.approx(0.2 / 3, abs=1e-3)
    assert not summary['passed']
    assert [f for f in summary['failures'] if 'scores drifted' in f] == summary['failures']
    tighter = summarize([image], AgreementThresholds(min_mean_iou=0.9, max_mean_score_drift=0.1))
    assert len(tighter['failures']) == 1 and 'mean IoU' in tighter['failures'][0]


def test_class_flip_is_counted_not_missed():
    candidate = dets(REFERENCE.boxes, REFERENCE.scores, [0, 0, 0])
    image = compare_image(REFERENCE, candidate, conf_threshold=0.25)
    assert (image['matched'], image['missed'], image['extra']) == (3, 0, 0)
    assert image['class_flips'] == 1 and image['flipped'] == [(1, 0)]
    summary = summarize([image])
    assert summary['class_flip_rate'] == pytest.approx(1 / 3, abs=1e-3)
    assert any('changed class' in failure for failure in summary['failures'])


def test_missed_and_extra_boxes_lower_recall_and_precision():
    candidate = dets([[0, 0, 100, 100], [800, 800, 900, 900]], [0.9, 0.7], [0, 0])
    image = compare_image(REFERENCE, candidate, conf_threshold=0.25)
    assert (image['reference'], image['candidate']) == (3, 2)
    assert (image['matched'], image['missed'], image['extra']) == (1, 2, 1)
    summary = summarize([image])
    assert summary['recall'] == pytest.approx(1 / 3, abs=1e-3)
    assert summary['precision'] == pytest.approx(0.5)
    assert not summary['passed']


def test_near_threshold_boxes_are_not_counted_as_missed_or_extra():
    # The reference's 0.27 box drops to 0.22 (below 0.25, above 0.25 - margin): found, not missed.
    reference = dets([[0, 0, 100, 100], [300, 300, 400, 400]], [0.9, 0.27], [0, 0])
    candidate = dets([[0, 0, 100, 100], [300, 300, 400, 400], [600, 600, 700, 700]],
                     [0.9, 0.22, 0.2], [0, 0, 0])
    image = compare_image(reference, candidate, conf_threshold=0.25)
    assert (image['reference'], image['candidate']) == (2, 1)
    assert (image['missed'], image['extra'], image['matched']) == (0, 0, 2)
    # With no margin the same change is a miss.
    strict = AgreementThresholds(score_margin=0.0)
    low_cut = dets(candidate.boxes[:1], candidate.scores[:1], candidate.class_ids[:1])
    image = compare_image(reference, low_cut, conf_threshold=0.25, thresholds=strict)
    assert image['missed'] == 1


def test_summary_pools_images_and_fails_on_empty_reference():
    empty = dets(np.zeros((0, 4)), [], [])
    summary = summarize([compare_image(empty, empty, 0.25)])
    assert not summary['passed']
    assert 'found nothing' in summary['failures'][0]
    both = summarize([compare_image(REFERENCE, REFERENCE, 0.25),
                      compare_image(empty, empty, 0.25)])
    assert both['images'] == 2 and both['reference'] == 3 and both['passed']
    text = format_summary(both, 'test')
    assert text.startswith('test: PASS') and 'recall 1.00' in text


def test_thresholds_are_validated_and_lengths_checked():
    with pytest.raises(ValueError, match='min_recall'):
        AgreementThresholds(min_recall=1.5)
    with pytest.raises(ValueError, match='disagree in length'):
        DetectionSet.of({'boxes': [[0, 0, 1, 1]], 'scores': [0.5, 0.4], 'class_ids': [0]})
