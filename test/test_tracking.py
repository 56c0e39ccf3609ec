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

"""Tests of the multi-object tracker on synthetic streams and a real TUD ground truth."""

import pathlib
import pickle
import sys

import numpy as np
import pytest

from rk_yolo_ros.core.frame_processing import Detections, FrameStatus, NO_TRACK_ID
from rk_yolo_ros.yolo.tracking import MultiObjectTracker, StreamTrackers, TrackerSettings

pytest.importorskip('scipy.optimize', reason='tracking needs scipy (the tracking/test extras)')

PERSON, CAR = 0, 2


def frame(*objects, rng=None):
    """Build Detections from (x1, y1, x2, y2, score, class) tuples, shuffled when rng is given."""
    objects = list(objects)
    if rng is not None:
        rng.shuffle(objects)
    rows = np.array(objects, np.float64).reshape(-1, 6)
    return Detections(boxes=rows[:, :4].astype(np.float32),
                      scores=rows[:, 4].astype(np.float32),
                      class_ids=rows[:, 5].astype(np.int32))


def box_at(x, y, width=60, height=120, score=0.9, cls=PERSON):
    """Return a detection tuple with its top-left corner at (x, y)."""
    return (x, y, x + width, y + height, score, cls)


def ids_by_box(result):
    """Map each detection's rounded top-left corner to its track id."""
    return {(int(round(box[0])), int(round(box[1]))): int(track_id)
            for box, track_id in zip(result.boxes, result.track_ids)}


def corner(obj):
    """Return the rounded top-left corner of a detection tuple."""
    return int(round(obj[0])), int(round(obj[1]))


def test_detections_default_untracked_and_pickle_with_track_ids():
    """Detections stay backwards compatible: no track ids unless a tracker set them."""
    plain = Detections(boxes=np.zeros((2, 4), np.float32), scores=np.ones(2, np.float32),
                       class_ids=np.zeros(2, np.int32))
    assert plain.track_ids.shape == (0,) and not plain.tracked
    tracked = MultiObjectTracker(TrackerSettings(min_hits=1)).update(plain)
    assert tracked.tracked and tracked is not plain and not plain.tracked
    copy = pickle.loads(pickle.dumps(tracked))
    assert copy.track_ids.tolist() == tracked.track_ids.tolist() == [1, 2]


def test_crossing_targets_keep_their_ids_through_missed_and_failed_frames():
    """Two people walk through each other; misses and a failed frame do not swap or drop ids."""
    tracker = MultiObjectTracker()
    rng = np.random.default_rng(3)
    seen = {'left': [], 'right': []}
    # the paths cross at frame 30; the right one is unseen for the six frames before it
    missed = {'left': {9, 10, 24}, 'right': set(range(26, 32))}
    for index in range(60):
        if index == 18:
            assert tracker.update(None) is None  # the frame failed in the worker
            continue
        left = box_at(100 + 6 * index, 200)  # walking right
        right = box_at(460 - 6 * index, 250, width=64, height=128)  # walking left
        objects = [obj for name, obj in (('left', left), ('right', right))
                   if index not in missed[name]]
        by_corner = ids_by_box(tracker.update(frame(*objects, rng=rng)))
        for name, obj in (('left', left), ('right', right)):
            if index not in missed[name]:
                seen[name].append(by_corner[corner(obj)])
    assert len(set(seen['left'])) == 1 and len(set(seen['right'])) == 1
    assert seen['left'][0] != seen['right'][0]
    assert NO_TRACK_ID not in seen['left'] + seen['right']


def test_failed_frame_neither_confirms_nor_drops_a_tentative_track():
    """A failed frame is no observation: a new track waits for the next real frame."""
    tracker = MultiObjectTracker(TrackerSettings(confirm_at_start=False))
    assert tracker.update(frame(box_at(10, 10))).track_ids.tolist() == [NO_TRACK_ID]
    assert tracker.update(None) is None
    assert len(tracker) == 1 and tracker.confirmed_count == 0
    assert tracker.update(frame(box_at(12, 10))).track_ids.tolist() == [1]


def test_ids_are_never_reused_over_births_and_deaths():
    """Objects come, go and come back; an appearance after a death gets a fresh, larger id."""
    tracker = MultiObjectTracker(TrackerSettings(max_age=5))
    owner = {}  # track id -> object
    for index in range(300):
        # object k is visible in frames [20k, 20k + 30) in lane k % 4: a lane is empty for 50
        # frames (more than max_age) before its next object comes
        visible = {corner(box_at(80 * (k % 4), 100 + index)): k
                   for k in range(16) if 20 * k <= index < 20 * k + 30}
        result = tracker.update(frame(*[box_at(x, y) for x, y in visible]))
        for place, track_id in ids_by_box(result).items():
            if track_id != NO_TRACK_ID:
                assert owner.setdefault(track_id, visible[place]) == visible[place]
    # 15 objects were seen long enough: 15 ids, handed out in order of appearance
    assert owner == {k + 1: k for k in range(15)}


def test_weak_detections_extend_tracks_but_never_start_them():
    """A score between low_score and high_score keeps a track; alone it starts nothing."""
    settings = TrackerSettings()
    weak = (settings.low_score + settings.high_score) / 2
    tracker = MultiObjectTracker(settings)
    for index in range(5):
        tracker.update(frame(box_at(100 + 3 * index, 50)))
    for index in range(5, 15):  # the person gets half hidden: weak detections, same id
        result = tracker.update(frame(box_at(100 + 3 * index, 50, score=weak),
                                      box_at(400, 300, score=weak)))  # and a weak stranger
        assert ids_by_box(result) == {(100 + 3 * index, 50): 1, (400, 300): NO_TRACK_ID}
    assert len(tracker) == 1  # the stranger never even became a tentative track
    # below low_score a detection is ignored altogether: the track goes lost
    tracker.update(frame(box_at(145, 50, score=settings.low_score / 2)))
    assert tracker.update(frame(box_at(148, 50))).track_ids.tolist() == [1]


def test_a_track_only_takes_boxes_of_its_own_class():
    """A car box where a person is predicted starts its own track; the person's id waits."""
    for class_aware, car_takes_person_id in ((True, False), (False, True)):
        tracker = MultiObjectTracker(TrackerSettings(class_aware=class_aware))
        for index in range(5):
            tracker.update(frame(box_at(100 + 2 * index, 50)))
        result = tracker.update(frame(box_at(110, 50, cls=CAR)))
        assert (result.track_ids.tolist() == [1]) == car_takes_person_id
        if class_aware:
            # the person comes back on the next frame under its old id
            assert tracker.update(frame(box_at(112, 50))).track_ids.tolist() == [1]


def test_reset_starts_new_tracks_with_new_ids():
    """After reset the same object is a new track with an id never used before."""
    tracker = MultiObjectTracker()
    for index in range(3):
        first = tracker.update(frame(box_at(10 + index, 10), box_at(300, 10)))
    assert sorted(first.track_ids.tolist()) == [1, 2]
    tracker.reset()
    assert len(tracker) == 0
    again = tracker.update(frame(box_at(13, 10), box_at(300, 10)))
    assert sorted(again.track_ids.tolist()) == [3, 4]


def test_state_stays_bounded_over_a_long_stream():
    """Thousands of births and deaths: tracks held stay under both documented bounds."""
    settings = TrackerSettings(max_age=10)
    tracker = MultiObjectTracker(settings)
    rng = np.random.default_rng(0)
    most_per_frame, held = 0, []
    for index in range(3000):
        # 0-12 objects at random places each frame: nearly every one a birth and a death
        count = int(rng.integers(0, 13))
        corners = rng.uniform(0, 2000, (count, 2))
        tracker.update(frame(*[box_at(x, y, score=0.9) for x, y in corners]))
        most_per_frame = max(most_per_frame, count)
        held.append(len(tracker))
    assert max(held) <= (settings.max_age + 1) * most_per_frame
    assert tracker.confirmed_count < len(tracker) or len(tracker) == 0
    for _ in range(settings.max_age + 1):  # nothing seen any more: everything dies
        tracker.update(frame())
    assert len(tracker) == 0

    capped = MultiObjectTracker(TrackerSettings(max_tracks=20))
    people = [box_at(70 * k, 100) for k in range(15)]
    for index in range(5):
        capped.update(frame(*people))
    ids = capped.update(frame(*people)).track_ids.tolist()
    for index in range(50):  # 30 new random boxes a frame on top of 15 tracked people
        clutter = [box_at(x, y) for x, y in rng.uniform(1200, 3000, (30, 2))]
        result = capped.update(frame(*(people + clutter)))
        assert len(capped) <= 20
        assert result.track_ids[:15].tolist() == ids  # the people keep their ids


def test_settings_reject_values_outside_their_ranges():
    """Each bad value is named in the error."""
    for values, name in (({'high_score': 1.5}, 'high_score'),
                         ({'low_score': 0.6, 'high_score': 0.5}, 'low_score'),
                         ({'new_track_score': 0.2}, 'new_track_score'),
                         ({'min_hits': 0}, 'min_hits'), ({'max_age': -1}, 'max_age'),
                         ({'max_tracks': 0}, 'max_tracks'),
                         ({'position_noise': 0.0}, 'position_noise')):
        with pytest.raises(ValueError, match=name):
            TrackerSettings(**values)
    with pytest.raises(ValueError, match='class_ids'):
        MultiObjectTracker().update(Detections(boxes=np.zeros((2, 4), np.float32),
                                               scores=np.ones(2, np.float32)))


def test_missing_scipy_says_how_to_install_it(monkeypatch):
    """Without scipy the tracker fails at construction with the install command."""
    monkeypatch.setitem(sys.modules, 'scipy.optimize', None)
    with pytest.raises(ImportError, match='python3-scipy'):
        MultiObjectTracker()
    with pytest.raises(ImportError, match='python3-scipy'):
        StreamTrackers(True)
    trackers = StreamTrackers(False)
    with pytest.raises(ImportError, match='python3-scipy'):
        trackers.enabled = True
    assert not trackers.enabled


def test_each_stream_has_its_own_tracks_and_all_switch_together():
    """Two cameras' streams: their own ids, untouched by the other; on/off for all at once."""
    trackers = StreamTrackers(True)
    ok = FrameStatus.OK
    for index in range(3):
        left = trackers.observe('left', ok, frame(box_at(10 + index, 10), box_at(300, 10)))
        # the right camera sees a person where the left one saw none: no id of left's
        right = trackers.observe('right', ok, frame(box_at(600, 200 + index)))
    assert sorted(left.track_ids.tolist()) == [1, 2] and right.track_ids.tolist() == [1]
    assert trackers.observe('left', FrameStatus.FAILED, None) is None  # advances left alone
    right = trackers.observe('right', ok, frame(box_at(600, 203)))
    assert right.track_ids.tolist() == [1]
    trackers.enabled = False
    assert not trackers.observe('left', ok, frame(box_at(13, 10))).tracked
    trackers.enabled = True  # new tracks from now on, in every stream
    assert trackers.observe('left', ok, frame(box_at(14, 10))).track_ids.tolist() == [3]
    assert trackers.observe('right', ok, frame(box_at(600, 204))).track_ids.tolist() == [2]
    # a stream first seen while on starts tracking at once
    assert trackers.observe('rear', ok, frame(box_at(5, 5))).track_ids.tolist() == [1]


def _tud_ground_truth(name):
    """Return {frame: (ids, boxes x1y1x2y2)} of a TUD sequence shipped inside motmetrics."""
    motmetrics = pytest.importorskip(
        'motmetrics', reason='motmetrics (benchmark-only) carries the TUD ground truth')
    rows = np.loadtxt(pathlib.Path(motmetrics.__file__).parent / 'data' / name / 'gt.txt',
                      delimiter=',', ndmin=2)
    return motmetrics, {int(f): (rows[rows[:, 0] == f, 1].astype(int),
                                 np.concatenate([rows[rows[:, 0] == f, 2:4],
                                                 rows[rows[:, 0] == f, 2:4]
                                                 + rows[rows[:, 0] == f, 4:6]], axis=1))
                        for f in np.unique(rows[:, 0])}


def test_tud_campus_ground_truth_with_dropped_boxes_tracks_well():
    """TUD-Campus boxes with 15% dropped and jitter: high MOTA and IDF1, few switches."""
    motmetrics, ground_truth = _tud_ground_truth('TUD-Campus')
    rng = np.random.default_rng(11)
    tracker = MultiObjectTracker()
    accumulator = motmetrics.MOTAccumulator(auto_id=True)
    for index in sorted(ground_truth):
        gt_ids, gt_boxes = ground_truth[index]
        kept = gt_boxes[rng.random(len(gt_boxes)) >= 0.15]
        size = kept[:, 2:] - kept[:, :2]
        jittered = kept + np.tile(rng.normal(0, 0.03, size.shape) * size, 2)
        result = tracker.update(Detections(
            boxes=jittered.astype(np.float32),
            scores=rng.uniform(0.5, 0.95, len(kept)).astype(np.float32),
            class_ids=np.zeros(len(kept), np.int32)))
        out = result.track_ids >= 0
        accumulator.update(list(gt_ids), result.track_ids[out].tolist(),
                           1.0 - _iou_or_nan(gt_boxes, result.boxes[out].astype(np.float64)))
    summary = motmetrics.metrics.create().compute(
        accumulator, metrics=['mota', 'idf1', 'num_switches'])
    # 15% of the boxes are gone, so MOTA cannot pass 0.85; without velocity in the filter
    # this run has 4 switches and IDF1 0.78
    assert summary['mota'].iloc[0] > 0.8
    assert summary['idf1'].iloc[0] > 0.85
    assert summary['num_switches'].iloc[0] <= 1


def _iou_or_nan(first, second):
    """Return the IoU matrix with pairs under 0.5 as NaN (motmetrics' 'cannot match')."""
    top_left = np.maximum(first[:, None, :2], second[None, :, :2])
    bottom_right = np.minimum(first[:, None, 2:], second[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area = np.prod(first[:, 2:] - first[:, :2], axis=1)[:, None] + \
        np.prod(second[:, 2:] - second[:, :2], axis=1)[None, :]
    iou = inter / (area - inter)
    return np.where(iou >= 0.5, iou, np.nan)
