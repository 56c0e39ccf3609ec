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
Frames lost before they reached us, estimated from gaps in the input stamps of a steady stream.

A camera or a bag replay sends frames at a steady rate; when the middleware drops some on the way
(a keep_last queue that overflowed behind a slower node), the stamps that do arrive show a gap
of several periods. ``StampGapDetector`` learns the period as the median of recent intervals and
counts ``round(gap / period) - 1`` frames for a gap above ``GAP_FACTOR`` periods. It stays quiet
while it has too few intervals to know the period, and restarts on a stamp that goes back (a
looped bag, a restarted camera), so an unsteady or restarted stream does not produce false losses.
"""

from collections import deque
from typing import Deque, Optional

import numpy as np

GAP_FACTOR = 1.8  # a gap this many periods long (or more) means frames are missing
MIN_INTERVALS = 8  # intervals seen before the period is trusted
INTERVALS_KEPT = 32  # the period is the median of this many recent intervals


class StampGapDetector:
    """Estimate frames missing from a steady stream by its stamps (nanoseconds)."""

    def __init__(self):
        """Start without a period."""
        self._last: Optional[int] = None
        self._intervals: Deque[int] = deque(maxlen=INTERVALS_KEPT)

    @property
    def period_ns(self) -> Optional[float]:
        """Return the learnt frame period, or None while it is not known yet."""
        if len(self._intervals) < MIN_INTERVALS:
            return None
        return float(np.median(np.fromiter(self._intervals, np.float64)))

    def observe(self, stamp_ns: int) -> int:
        """Take the next frame's stamp; return how many frames seem to be missing before it."""
        last, self._last = self._last, int(stamp_ns)
        if last is None:
            return 0
        interval = self._last - last
        if interval <= 0:  # back in time or a duplicate: a new stream
            self._intervals.clear()
            return 0
        period = self.period_ns
        missing = 0
        if period and interval >= GAP_FACTOR * period:
            missing = int(round(interval / period)) - 1
        else:
            self._intervals.append(interval)  # gaps do not teach the period
        return missing
