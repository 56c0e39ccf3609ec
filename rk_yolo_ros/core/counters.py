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
The one set of frame counters: counts by outcome and reason, frame rate, latency percentiles.

The pipeline keeps one ``FrameCounters``; the node's overlay and /diagnostics, ``rk-yolo``'s
summary and the benchmarks all read its ``snapshot``, so they report the same numbers. Every
structure here is bounded: latencies over the last ``LATENCY_WINDOW`` frames, release times over
the last ``RATE_WINDOW_S`` seconds (at most ``RATE_SAMPLES``), at most ``MAX_REASONS`` distinct
reasons (the rest are counted under 'other reasons').
"""

from collections import deque
from dataclasses import dataclass, field
import threading
import time
from typing import Deque, Dict, Iterable, Optional, Sequence, Tuple

import numpy as np

from rk_yolo_ros.core.frame_processing import FrameStatus

LATENCY_WINDOW = 2000  # frames whose latency the percentiles cover
RATE_WINDOW_S = 2.0  # the frame rate is measured over this many seconds
RATE_SAMPLES = 4096  # release times kept for it (bounds memory at very high rates)
MAX_REASONS = 20  # distinct failure/rejection reasons kept
REASON_CHARS = 160
OTHER_REASONS = 'other reasons'


def percentiles_ms(latencies_s: Iterable[float], points: Sequence[float] = (50, 99)
                   ) -> Tuple[float, ...]:
    """Return the given percentiles of latencies in seconds, in milliseconds (0 if none)."""
    values = np.fromiter(latencies_s, dtype=np.float64)
    if values.size == 0:
        return tuple(0.0 for _ in points)
    return tuple(float(v) for v in np.percentile(values, points) * 1000.0)


def reason_key(reason: str) -> str:
    """Return the first line of a reason, shortened: what reasons are grouped by."""
    lines = reason.strip().splitlines()
    return (lines[0] if lines else 'unknown')[:REASON_CHARS]


@dataclass(frozen=True)
class CounterSnapshot:
    """The counters at one moment."""

    accepted: int = 0  # taken into the pipeline (each ends ok, failed or cancelled)
    ok: int = 0
    failed: int = 0
    cancelled: int = 0
    rejected: int = 0  # refused before intake (e.g. an image that cannot be converted)
    lost: int = 0  # lost before they reached us (e.g. dropped by the middleware)
    undelivered: int = 0  # processed, but an output could not take them (publish failed)
    fps: float = 0.0  # frames released per second over the last RATE_WINDOW_S
    mean_fps: float = 0.0  # processed frames per second since the first frame
    latency_p50_ms: float = 0.0  # intake to release, over the last LATENCY_WINDOW frames
    latency_p99_ms: float = 0.0
    reasons: Dict[str, int] = field(default_factory=dict)  # 'failed: why' -> count

    @property
    def released(self) -> int:
        """Return how many accepted frames have been released."""
        return self.ok + self.failed + self.cancelled

    @property
    def in_flight(self) -> int:
        """Return how many accepted frames are not released yet."""
        return self.accepted - self.released


class FrameCounters:
    """Thread-safe frame counters; see the module docstring for what is kept and its bounds."""

    def __init__(self, clock=time.monotonic):
        """Start from zero; ``clock`` is injectable for tests."""
        self._clock = clock
        self._lock = threading.Lock()
        self._counts = {'accepted': 0, 'ok': 0, 'failed': 0, 'cancelled': 0, 'rejected': 0,
                        'lost': 0, 'undelivered': 0}
        self._reasons: Dict[str, int] = {}
        self._latencies: Deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._releases: Deque[float] = deque(maxlen=RATE_SAMPLES)
        self._first_accept: Optional[float] = None
        self._last_release: Optional[float] = None

    def accepted(self) -> None:
        """Count one frame taken in."""
        with self._lock:
            self._counts['accepted'] += 1
            if self._first_accept is None:
                self._first_accept = self._clock()

    def released(self, status: FrameStatus, latency_s: float = 0.0, reason: str = '') -> None:
        """Count one accepted frame's outcome (with its latency, or its reason)."""
        status = FrameStatus(status)
        now = self._clock()
        with self._lock:
            self._counts[status.value] += 1
            self._releases.append(now)
            self._last_release = now
            if status is FrameStatus.OK:
                self._latencies.append(latency_s)
            else:
                self._add_reason(f'{status.value}: {reason_key(reason)}')

    def rejected(self, reason: str) -> None:
        """Count one frame refused before intake, by reason."""
        with self._lock:
            self._counts['rejected'] += 1
            self._add_reason(f'rejected: {reason_key(reason)}')

    def lost(self, count: int, reason: str) -> None:
        """Count frames lost before they reached us (reported by the middleware, or a gap)."""
        if count <= 0:
            return
        with self._lock:
            self._counts['lost'] += count
            self._add_reason(f'lost: {reason_key(reason)}', count)

    def undelivered(self, reason: str) -> None:
        """Count one processed frame that an output could not take, by reason."""
        with self._lock:
            self._counts['undelivered'] += 1
            self._add_reason(f'undelivered: {reason_key(reason)}')

    def _add_reason(self, key: str, count: int = 1) -> None:
        if key not in self._reasons and len(self._reasons) >= MAX_REASONS:
            key = key.split(':', 1)[0] + ': ' + OTHER_REASONS
        self._reasons[key] = self._reasons.get(key, 0) + count

    def frame_rate(self) -> float:
        """Return frames released per second over the last RATE_WINDOW_S (cheap)."""
        now = self._clock()
        with self._lock:
            return self._frame_rate(now)

    def _frame_rate(self, now: float) -> float:
        """Frames per second over the window (caller holds the lock)."""
        releases = self._releases
        recent = 0
        for index in range(len(releases) - 1, -1, -1):  # newest first; stop at the window
            if now - releases[index] > RATE_WINDOW_S:
                break
            recent += 1
        if not recent or self._first_accept is None:
            return 0.0
        span = min(RATE_WINDOW_S, now - self._first_accept)
        return recent / span if span > 0 else 0.0

    def snapshot(self) -> CounterSnapshot:
        """Return the counts, rates and latency percentiles now."""
        now = self._clock()
        with self._lock:
            counts = dict(self._counts)
            reasons = dict(self._reasons)
            latencies = list(self._latencies)
            fps = self._frame_rate(now)
            first, last = self._first_accept, self._last_release
        mean_fps = 0.0
        if first is not None and last is not None and last > first:
            mean_fps = counts['ok'] / (last - first)
        p50, p99 = percentiles_ms(latencies)
        return CounterSnapshot(fps=fps, mean_fps=mean_fps, latency_p50_ms=p50,
                               latency_p99_ms=p99, reasons=reasons, **counts)
