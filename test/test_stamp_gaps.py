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

"""Tests of the lost-frame estimate from gaps in the stamps of a steady stream."""

import numpy as np

from rk_yolo_ros.core.stamp_gaps import StampGapDetector

PERIOD = 50_000_000  # 20 Hz in nanoseconds


def feed(detector, stamps):
    """Return the missing counts the detector reports for each stamp."""
    return [detector.observe(int(stamp)) for stamp in stamps]


def test_a_steady_stream_with_holes_counts_the_missing_frames():
    """Frames 20-22 and 40 dropped from a 20 Hz stream with jitter: 4 missing, no others."""
    rng = np.random.default_rng(0)
    kept = [i for i in range(60) if i not in (20, 21, 22, 40)]
    stamps = [i * PERIOD + rng.integers(-3_000_000, 3_000_000) for i in kept]
    missing = feed(StampGapDetector(), stamps)
    assert sum(missing) == 4
    assert missing[kept.index(23)] == 3 and missing[kept.index(41)] == 1


def test_no_estimate_before_the_period_is_known():
    """A gap among the first few frames is not counted (the period is not known yet)."""
    assert sum(feed(StampGapDetector(), [0, PERIOD, 5 * PERIOD, 6 * PERIOD])) == 0


def test_a_stamp_going_back_starts_over():
    """A looped bag (stamps jump back) is a new stream, not a loss."""
    detector = StampGapDetector()
    feed(detector, [i * PERIOD for i in range(20)])
    assert detector.observe(0) == 0 and detector.period_ns is None
    assert sum(feed(detector, [i * PERIOD for i in range(1, 20)])) == 0
