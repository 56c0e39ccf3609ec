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
Multi-object tracking on the ordered detection stream (ByteTrack-style).

The tracker runs in the main process after the reorder stage and sees every accepted frame once,
in order: ``tracker.update(detections)`` for a frame with a result, ``tracker.update(None)`` for a
frame that failed (no observation: the tracks are only predicted, so their ids survive it). It
returns the frame's detections with ``track_ids`` filled in (``Detections.track_ids``).

Per observed frame:

1. every track's box is predicted by a constant-velocity Kalman filter;
2. detections scoring at least ``high_score`` are matched to the confirmed tracks (tracked and
   lost) by IoU, weighted by the detection's score (``fuse_score``);
3. detections scoring in ``[low_score, high_score)`` are matched to the confirmed tracks that were
   matched on the previous observed frame and are still free: a weak detection extends a track
   (a person half hidden) but never starts one;
4. still-free strong detections are matched to tentative tracks (born on an earlier frame, not
   yet confirmed); a tentative track that misses an observed frame is dropped;
5. still-free detections scoring at least ``new_track_score`` start tentative tracks; a track is
   confirmed, and gets its id, after ``min_hits`` consecutive matches (on the first frame after a
   reset at once, as ByteTrack does: there is nothing to confirm against yet);
6. a confirmed track unmatched for more than ``max_age`` frames (failed frames count) is removed.

Association is class-aware (a track only takes boxes of its own class) and uses an optimal
assignment (``scipy.optimize.linear_sum_assignment``) whose unmatched pairs cost the gate, which
is the same optimum as ByteTrack's ``lapjv`` with a cost limit. Unlike ByteTrack, a track's
similarity fades with the frames since its last match (linearly, to zero after ``max_age``): a
lost track's prediction drifts, so a person seen on the previous frame wins a contested box, and
a long-lost track needs a close overlap to come back. On the TUD benchmark
(``benchmarks/tracking.py``) this halves the identity switches.

Kalman filter: the state per track is the box centre, width and height and their velocities;
process and measurement noise are proportional to the box size (ByteTrack's weights), and the
motion model treats the four coordinates independently, so the covariance is four 2x2 blocks per
track. The filter keeps those blocks as arrays over all tracks and updates them element-wise,
which is exactly the full 8x8 filter with diagonal noise, without a matrix product per track.

Bound on the state: the tracker holds at most ``max_tracks`` tracks (the stalest lost tracks go
first, then the weakest new ones); the tracks matched on the current frame are always kept.
Below that cap a track lives at most ``max_age`` frames after its last match and a frame matches
or starts at most one track per detection, so at most ``(max_age + 1) * d`` tracks are held for at
most ``d`` detections a frame. Removed tracks leave nothing behind but the id counter.
"""

from dataclasses import dataclass, replace
import threading
from typing import Dict, Optional

import numpy as np

from rk_yolo_ros.core.frame_processing import Detections, FrameStatus, NO_TRACK_ID

__all__ = ['MultiObjectTracker', 'StreamTracker', 'StreamTrackers', 'TrackerSettings']

# rows of a track's Kalman state (5, 4): per coordinate (centre x, centre y, width, height) its
# value, its change per frame, and the covariance blocks position-position, -velocity and
# velocity-velocity
POS, VEL, P_PP, P_PV, P_VV = range(5)


@dataclass(frozen=True)
class TrackerSettings:
    """
    The tracker's parameters, each with its default (the one place they are defined).

    Scores are the detector's confidences in [0, 1]; IoU gates are minimum overlaps between a
    track's predicted box and a detection; ages are counted in frames (failed frames included).
    """

    high_score: float = 0.3  # detections at or above: first association, may start tracks
    low_score: float = 0.1  # detections in [low_score, high_score): only extend tracks
    new_track_score: float = 0.4  # a detection starts a tentative track only at or above this
    match_iou: float = 0.2  # IoU gate of the first association (strong detections)
    low_match_iou: float = 0.5  # IoU gate of the second association (weak detections)
    tentative_match_iou: float = 0.3  # IoU gate between tentative tracks and strong detections
    fuse_score: bool = True  # weight IoU by the detection score in the strong associations
    min_hits: int = 2  # consecutive matches (the birth included) that confirm a track
    max_age: int = 30  # frames a confirmed track survives unmatched before it is removed
    max_tracks: int = 1000  # hard cap on tracks held (tentative, tracked and lost together)
    class_aware: bool = True  # a track only takes detections of its own class
    confirm_at_start: bool = True  # tracks born on the first observed frame are confirmed at once
    position_noise: float = 1.0 / 20  # std of position noise, per frame, as a box-size fraction
    velocity_noise: float = 1.0 / 160  # std of velocity noise, per frame, as a box-size fraction

    def __post_init__(self):
        """Reject values outside their ranges with a message naming the value."""
        for name in ('high_score', 'low_score', 'new_track_score', 'match_iou', 'low_match_iou',
                     'tentative_match_iou'):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f'{name} must be in [0, 1], got {value}')
        if self.low_score > self.high_score:
            raise ValueError(f'low_score ({self.low_score}) must not exceed high_score '
                             f'({self.high_score})')
        if self.new_track_score < self.high_score:
            raise ValueError(f'new_track_score ({self.new_track_score}) must be at least '
                             f'high_score ({self.high_score}): weak detections never start '
                             'tracks')
        if self.min_hits < 1:
            raise ValueError(f'min_hits must be >= 1, got {self.min_hits}')
        if self.max_age < 0:
            raise ValueError(f'max_age must be >= 0, got {self.max_age}')
        if self.max_tracks < 1:
            raise ValueError(f'max_tracks must be >= 1, got {self.max_tracks}')
        for name in ('position_noise', 'velocity_noise'):
            value = getattr(self, name)
            if not value > 0.0:
                raise ValueError(f'{name} must be > 0, got {value}')


def _linear_sum_assignment():
    """Return scipy's solver, or raise an ImportError that says how to install it."""
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError as exc:
        raise ImportError(
            'tracking needs scipy: apt install python3-scipy (ROS), or '
            "pip install 'rk_yolo_ros[tracking]'") from exc
    return linear_sum_assignment


def _box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Return the (len(a), len(b)) IoU matrix of two x1y1x2y2 box arrays."""
    a = boxes_a[:, None, :]
    b = boxes_b[None, :, :]
    width = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    height = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    inter = np.maximum(width, 0.0) * np.maximum(height, 0.0)
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-9)


class MultiObjectTracker:
    """
    ByteTrack-style tracker over one ordered stream of ``Detections``.

    Not thread-safe: feed it from the one thread that releases frames in order.
    """

    # the per-track arrays, all indexed by track row (kept in creation order)
    _ARRAYS = ('_state', '_cls', '_ids', '_hits', '_age', '_lost')

    def __init__(self, settings: Optional[TrackerSettings] = None):
        """Create an empty tracker; scipy is imported here, with a clear error when missing."""
        self.settings = settings if settings is not None else TrackerSettings()
        self._assign = _linear_sum_assignment()
        self._next_id = 1  # never decreases, not even on reset: ids are never reused
        self.reset()

    def reset(self) -> None:
        """Drop every track; later detections start new tracks with new ids."""
        self._state = np.zeros((0, 5, 4))  # Kalman state per track, rows POS ... P_VV
        self._cls = np.zeros((0,), np.int64)
        self._ids = np.zeros((0,), np.int64)  # NO_TRACK_ID while tentative
        self._hits = np.zeros((0,), np.int64)  # consecutive matches
        self._age = np.zeros((0,), np.int64)  # frames since the last match
        self._lost = np.zeros((0,), bool)  # unmatched on the last observed frame
        self._at_start = True  # no frame observed since the reset

    def __len__(self) -> int:
        """Return the number of tracks held (tentative, tracked and lost)."""
        return int(self._ids.shape[0])

    @property
    def confirmed_count(self) -> int:
        """Return the number of confirmed tracks held (tracked and lost)."""
        return int(np.count_nonzero(self._ids != NO_TRACK_ID))

    def update(self, detections: Optional[Detections]) -> Optional[Detections]:
        """
        Advance one frame; return ``detections`` with ``track_ids`` set (a new object).

        ``None`` stands for a failed frame: the tracks are predicted and age by one frame, none
        is dropped for missing it except by ``max_age``, and ``None`` is returned.
        """
        # a lost track keeps moving but stops growing or shrinking (as ByteTrack does)
        self._state[self._lost, VEL, 2:] = 0.0
        _predict(self._state, self.settings)
        self._age += 1
        if detections is None:
            self._keep(self._age <= self.settings.max_age)
            return None
        track_ids = self._observe(detections)
        return replace(detections, track_ids=track_ids)

    def _observe(self, detections: Detections) -> np.ndarray:
        """Associate, update, start and remove tracks; return one track id per detection."""
        settings = self.settings
        count = len(detections)
        boxes = np.asarray(detections.boxes, np.float64)
        scores = np.asarray(detections.scores, np.float64)
        classes = np.asarray(detections.class_ids, np.int64)
        if boxes.shape != (count, 4) or classes.shape != (count,):
            raise ValueError(f'detections need boxes ({count}, 4) and class_ids ({count},) for '
                             f'{count} scores, got {boxes.shape} and {classes.shape}')
        det_track = np.full(count, -1, np.int64)  # matched track row per detection

        iou = _box_iou(_cxcywh_to_xyxy(self._state[:, POS]), boxes)
        if settings.class_aware:
            iou[self._cls[:, None] != classes[None, :]] = 0.0
        confirmed = self._ids != NO_TRACK_ID
        strong = scores >= settings.high_score
        weak = ~strong & (scores >= settings.low_score)

        # 1. strong detections and the confirmed tracks, tracked or lost
        self._match(iou, scores, np.flatnonzero(confirmed), np.flatnonzero(strong),
                    settings.match_iou, settings.fuse_score, det_track)
        # 2. weak detections and the confirmed tracks matched on the last observed frame
        taken = np.zeros(len(self), bool)
        taken[det_track[det_track >= 0]] = True
        self._match(iou, scores, np.flatnonzero(confirmed & ~self._lost & ~taken),
                    np.flatnonzero(weak), settings.low_match_iou, False, det_track)
        # 3. still-free strong detections and the tentative tracks
        self._match(iou, scores, np.flatnonzero(~confirmed),
                    np.flatnonzero(strong & (det_track < 0)), settings.tentative_match_iou,
                    settings.fuse_score, det_track)

        matched_dets = np.flatnonzero(det_track >= 0)
        rows = det_track[matched_dets]
        unmatched = np.ones(len(self), bool)
        unmatched[rows] = False
        self._correct(rows, _xyxy_to_cxcywh(boxes[matched_dets]))
        self._hits[rows] += 1
        self._hits[unmatched] = 0
        self._age[rows] = 0
        self._lost = unmatched
        self._confirm(rows[(self._ids[rows] == NO_TRACK_ID)
                           & (self._hits[rows] >= settings.min_hits)])
        track_ids = np.full(count, NO_TRACK_ID, np.int64)
        track_ids[matched_dets] = self._ids[rows]

        # a tentative track that missed an observed frame was a false start
        keep = ~(unmatched & (self._ids == NO_TRACK_ID)) & (self._age <= settings.max_age)
        births = self._births(keep, np.flatnonzero((det_track < 0)
                                                   & (scores >= settings.new_track_score)), scores)
        if births.size:
            first = len(self)
            self._start(_xyxy_to_cxcywh(boxes[births]), classes[births])
            keep = np.concatenate([keep, np.ones(births.size, bool)])
            if settings.min_hits <= 1 or (settings.confirm_at_start and self._at_start):
                new_rows = np.arange(first, first + births.size)
                self._confirm(new_rows)
                track_ids[births] = self._ids[new_rows]
        self._keep(keep)
        self._at_start = False
        return track_ids

    def _births(self, keep: np.ndarray, births: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """
        Make room for ``births`` within ``max_tracks``; return the births that fit.

        Drops the stalest unmatched tracks from ``keep`` first (in place), then the weakest
        births; the tracks matched on this frame always stay.
        """
        kept = np.flatnonzero(keep)
        excess = kept.size + births.size - self.settings.max_tracks
        if excess <= 0:
            return births
        stale = kept[self._age[kept] > 0]
        dropped = stale[np.argsort(-self._age[stale], kind='stable')[:excess]]
        keep[dropped] = False
        excess -= dropped.size
        if excess <= 0:
            return births
        strongest = np.argsort(-scores[births], kind='stable')[:max(births.size - excess, 0)]
        return np.sort(births[strongest])

    def _match(self, iou: np.ndarray, scores: np.ndarray, tracks: np.ndarray, dets: np.ndarray,
               min_iou: float, fuse_score: bool, det_track: np.ndarray) -> None:
        """Assign ``dets`` to ``tracks`` optimally within the gate; record it in ``det_track``."""
        if tracks.size == 0 or dets.size == 0:
            return
        similarity = iou[np.ix_(tracks, dets)]
        # a track's prediction grows stale while it goes unmatched: its similarity fades
        # linearly from full (matched on the previous frame) to none after max_age frames
        fading = 1.0 - (self._age[tracks] - 1) / (self.settings.max_age + 1.0)
        similarity = similarity * fading[:, None]
        if fuse_score:
            similarity = similarity * scores[dets]
        allowed = similarity >= min_iou
        if not allowed.any():
            return
        # Pairs outside the gate cost exactly the gate: leaving a track and a detection both
        # unmatched then costs what matching them at the gate would, which is the optimum of
        # the assignment extended with "unmatched" at half the gate per side (lapjv's limit).
        cost = np.where(allowed, 1.0 - similarity, 1.0 - min_iou)
        track_index, det_index = self._assign(cost)
        good = allowed[track_index, det_index]
        det_track[dets[det_index[good]]] = tracks[track_index[good]]

    def _correct(self, rows: np.ndarray, measured: np.ndarray) -> None:
        """Kalman-update the tracks ``rows`` with their matched boxes (centre, size)."""
        if rows.size:
            self._state[rows] = _update(self._state[rows], measured, self.settings)

    def _start(self, boxes: np.ndarray, classes: np.ndarray) -> None:
        """Append tentative tracks at ``boxes`` (one hit, at rest, wide velocity prior)."""
        settings = self.settings
        count = boxes.shape[0]
        scale = _noise_scale(boxes)
        state = np.zeros((count, 5, 4))
        state[:, POS] = boxes
        state[:, P_PP] = (2.0 * settings.position_noise * scale) ** 2
        state[:, P_VV] = (10.0 * settings.velocity_noise * scale) ** 2
        self._state = np.concatenate([self._state, state])
        self._cls = np.concatenate([self._cls, classes])
        self._ids = np.concatenate([self._ids, np.full(count, NO_TRACK_ID, np.int64)])
        self._hits = np.concatenate([self._hits, np.ones(count, np.int64)])
        self._age = np.concatenate([self._age, np.zeros(count, np.int64)])
        self._lost = np.concatenate([self._lost, np.zeros(count, bool)])

    def _confirm(self, rows: np.ndarray) -> None:
        """Give the tentative tracks ``rows`` the next ids, in row (creation) order."""
        if rows.size:
            rows = np.sort(rows)
            self._ids[rows] = np.arange(self._next_id, self._next_id + rows.size)
            self._next_id += int(rows.size)

    def _keep(self, mask: np.ndarray) -> None:
        """Keep only the tracks where ``mask`` is true."""
        if not mask.all():
            for name in self._ARRAYS:
                setattr(self, name, getattr(self, name)[mask])


class StreamTracker:
    """
    Track one ordered stream of released frames, switched on and off from any thread.

    ``observe`` runs where the frames are released in order (the pipeline's ``on_frame``): an
    OK frame's detections come back with track ids, a FAILED frame advances the tracks without
    an observation, a CANCELLED one is not seen. ``enabled`` may change at any time (a
    parameter): switching it on starts new tracks from the next frame.
    """

    def __init__(self, enabled: bool = False, settings: Optional[TrackerSettings] = None):
        """Start switched on or off; the tracker (and scipy) is only needed once on."""
        self._settings = settings
        self._tracker: Optional[MultiObjectTracker] = None
        self._enabled = False
        self._restart = False
        self._lock = threading.Lock()
        self.enabled = enabled

    @property
    def enabled(self) -> bool:
        """Return whether frames are tracked."""
        return self._enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        """Switch tracking on (new tracks from the next frame) or off; ImportError w/o scipy."""
        with self._lock:
            if value and self._tracker is None:
                self._tracker = MultiObjectTracker(self._settings)  # raises without scipy
            if value and not self._enabled:
                self._restart = True
            self._enabled = bool(value)

    def observe(self, status: FrameStatus, detections: Optional[Detections]
                ) -> Optional[Detections]:
        """Return the frame's detections, with track ids when tracking is on."""
        with self._lock:
            if not self._enabled or status is FrameStatus.CANCELLED:
                return detections
            if self._restart:
                self._tracker.reset()
                self._restart = False
        if status is not FrameStatus.OK:
            self._tracker.update(None)
            return detections
        return self._tracker.update(detections)


class StreamTrackers:
    """
    One ``StreamTracker`` per stream (camera) of a pipeline, switched on and off together.

    A stream's tracker is made on its first frame and sees that stream alone, in its order, so
    the tracks of one camera never take the boxes of another. ``observe`` runs where frames
    are released (one thread); ``enabled`` may change from any thread.
    """

    def __init__(self, enabled: bool = False, settings: Optional[TrackerSettings] = None):
        """Start switched on or off; switched on, raise ImportError now if scipy is missing."""
        self._settings = settings
        self._trackers: Dict[str, StreamTracker] = {}
        self._enabled = False
        self._lock = threading.Lock()
        self.enabled = enabled

    @property
    def enabled(self) -> bool:
        """Return whether frames are tracked."""
        return self._enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        """Switch every stream's tracking on (new tracks from the next frame) or off."""
        with self._lock:
            if value:
                _linear_sum_assignment()  # raises without scipy, before anything changes
            for tracker in self._trackers.values():
                tracker.enabled = value
            self._enabled = bool(value)

    def observe(self, stream: str, status: FrameStatus, detections: Optional[Detections]
                ) -> Optional[Detections]:
        """Return a frame's detections, with its stream's track ids when tracking is on."""
        with self._lock:
            tracker = self._trackers.get(stream)
            if tracker is None:
                tracker = self._trackers[stream] = StreamTracker(self._enabled, self._settings)
        return tracker.observe(status, detections)


def _noise_scale(boxes: np.ndarray) -> np.ndarray:
    """Return the size each coordinate's noise is proportional to (width or height)."""
    return np.maximum(boxes[:, (2, 3, 2, 3)], 1.0)


def _predict(state: np.ndarray, settings: TrackerSettings) -> None:
    """Predict Kalman states (k, 5, 4) one frame ahead, in place (constant velocity)."""
    scale = _noise_scale(state[:, POS])
    state[:, POS] += state[:, VEL]
    state[:, P_PP] += (2.0 * state[:, P_PV] + state[:, P_VV]
                       + (settings.position_noise * scale) ** 2)
    state[:, P_PV] += state[:, P_VV]
    state[:, P_VV] += (settings.velocity_noise * scale) ** 2


def _update(state: np.ndarray, measured: np.ndarray, settings: TrackerSettings) -> np.ndarray:
    """Return Kalman states (k, 5, 4) updated with measured boxes (k, 4) (centre, size)."""
    pos, vel, p_pp, p_pv, p_vv = (state[:, i] for i in range(5))
    innovation_var = p_pp + (settings.position_noise * _noise_scale(pos)) ** 2
    gain_p, gain_v = p_pp / innovation_var, p_pv / innovation_var
    residual = measured - pos
    return np.stack([pos + gain_p * residual, vel + gain_v * residual, (1.0 - gain_p) * p_pp,
                     (1.0 - gain_p) * p_pv, p_vv - gain_v * p_pv], axis=1)


def _cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """Convert centre x, centre y, width, height boxes to x1y1x2y2."""
    half = np.maximum(boxes[:, 2:], 1e-3) / 2.0
    return np.concatenate([boxes[:, :2] - half, boxes[:, :2] + half], axis=1)


def _xyxy_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    """Convert x1y1x2y2 boxes to centre x, centre y, width, height."""
    size = boxes[:, 2:] - boxes[:, :2]
    return np.concatenate([boxes[:, :2] + size / 2.0, size], axis=1)
