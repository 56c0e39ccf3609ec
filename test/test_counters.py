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

"""Tests of the one set of frame counters: counts, reasons, rate, latency, and their bounds."""

from rk_yolo_ros.core import counters as counters_module
from rk_yolo_ros.core.counters import (FrameCounters, LATENCY_WINDOW, MAX_REASONS,
                                       percentiles_ms, RATE_SAMPLES, RATE_WINDOW_S)
from rk_yolo_ros.core.frame_processing import FrameStatus


class Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        """Start at 100 s."""
        self.now = 100.0

    def __call__(self):
        """Return the current time."""
        return self.now


def test_counts_by_outcome_and_reason():
    """Accepted frames end ok, failed or cancelled; rejections and losses are counted apart."""
    counters = FrameCounters()
    for _ in range(5):
        counters.accepted()
    counters.released(FrameStatus.OK, 0.010)
    counters.released(FrameStatus.OK, 0.030)
    counters.released(FrameStatus.FAILED, reason='RuntimeError: boom\nTraceback ...')
    counters.released('cancelled', reason='cancelled at shutdown')
    counters.rejected('bad image: unsupported encoding')
    counters.lost(3, 'the middleware dropped them')
    counters.undelivered('publishing failed')
    snapshot = counters.snapshot()
    assert (snapshot.accepted, snapshot.ok, snapshot.failed, snapshot.cancelled) == (5, 2, 1, 1)
    assert (snapshot.rejected, snapshot.lost, snapshot.undelivered) == (1, 3, 1)
    assert snapshot.released == 4 and snapshot.in_flight == 1
    assert snapshot.reasons == {'failed: RuntimeError: boom': 1,
                                'cancelled: cancelled at shutdown': 1,
                                'rejected: bad image: unsupported encoding': 1,
                                'lost: the middleware dropped them': 3,
                                'undelivered: publishing failed': 1}
    assert snapshot.latency_p50_ms == 20.0


def test_frame_rate_is_over_the_window_and_decays_when_frames_stop():
    """30 frames a second are read as 30 fps; once they stop the rate falls to 0."""
    clock = Clock()
    counters = FrameCounters(clock=clock)
    for _ in range(90):  # 3 s at 30 fps
        counters.accepted()
        clock.now += 1 / 30
        counters.released(FrameStatus.OK, 0.02)
    assert abs(counters.frame_rate() - 30.0) < 1.0
    assert abs(counters.snapshot().fps - 30.0) < 1.0
    assert abs(counters.snapshot().mean_fps - 30.0) < 1.0
    clock.now += RATE_WINDOW_S / 2
    assert counters.frame_rate() < 20.0
    clock.now += RATE_WINDOW_S
    assert counters.frame_rate() == 0.0


def test_every_structure_stays_bounded_over_a_long_stream():
    """Latencies, release times and reasons stay within their documented bounds."""
    clock = Clock()
    counters = FrameCounters(clock=clock)
    frames = max(LATENCY_WINDOW, RATE_SAMPLES) * 3
    for index in range(frames):
        counters.accepted()
        clock.now += 0.0001  # 10000 fps: more releases in the window than RATE_SAMPLES
        counters.released(FrameStatus.OK if index % 10 else FrameStatus.FAILED, 0.001,
                          reason=f'error number {index}')
        counters.rejected(f'reason {index}')
    assert len(counters._latencies) == LATENCY_WINDOW
    assert len(counters._releases) == RATE_SAMPLES
    assert len(counters._reasons) <= MAX_REASONS + 2  # + one 'other reasons' per kind
    snapshot = counters.snapshot()
    assert snapshot.accepted == frames and snapshot.released == frames
    assert snapshot.reasons['rejected: ' + counters_module.OTHER_REASONS] > 0
    assert sum(n for k, n in snapshot.reasons.items() if k.startswith('rejected: ')) == frames


def test_percentiles_in_milliseconds():
    """percentiles_ms gives 0 for no data and milliseconds otherwise."""
    assert percentiles_ms([]) == (0.0, 0.0)
    p50, p99 = percentiles_ms([i / 1000 for i in range(1, 101)])
    assert round(p50, 1) == 50.5 and round(p99, 2) == 99.01
