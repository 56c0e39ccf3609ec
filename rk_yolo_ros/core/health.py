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
How the pipeline's health is reported: diagnostics levels that recover, and reasons logged once.

ROS-free, so the policy is tested without a ROS graph; the node turns ``Report`` items into
diagnostic_msgs and log lines.

- ``HealthMonitor.reports`` gives one pipeline status (all streams), one per camera when asked
  (``cameras``: the pipeline's streams, for a node serving several cameras) and one per worker.
  The pipeline is ERROR when it stopped, WARN while a worker is down or while frames failed,
  were rejected, lost or undelivered within the last ``RECOVERY_S`` seconds, and OK again once
  that stops. A camera's status follows the same rule with its own counters (ERROR when the
  pipeline stopped, WARN for its own problems).
- ``ReasonLog`` says each problem the first time it occurs, then only a periodic summary with
  counts, so a stream of bad frames cannot flood the log and no reason is hidden behind another.
"""

from dataclasses import dataclass, field
import enum
import time
from typing import Dict, List, Optional, Sequence, Tuple

from rk_yolo_ros.core.counters import CounterSnapshot, reason_key

RECOVERY_S = 10.0  # a problem keeps the level at WARN this long after it last happened
SUMMARY_S = 10.0  # repeated reasons are summarized at most this often
MAX_REASONS_SEEN = 200  # reasons remembered as already logged (then all are new again)
MAX_REASONS_PENDING = 20  # distinct reasons in one summary (the rest: 'other reasons')
PROBLEMS = ('failed', 'rejected', 'lost', 'undelivered')  # counters that mean trouble


class Level(enum.IntEnum):
    """A status level, in diagnostic_msgs' order."""

    OK = 0
    WARN = 1
    ERROR = 2


@dataclass
class Report:
    """One status: a name, a level, a message and key/values (all shown as text)."""

    name: str
    level: Level
    message: str
    values: Dict[str, str] = field(default_factory=dict)


class HealthMonitor:
    """Turn pipeline stats into diagnostics reports; see the module docstring for the levels."""

    def __init__(self, recovery_s: float = RECOVERY_S, clock=time.monotonic):
        """Remember nothing yet; ``clock`` is injectable for tests."""
        self._recovery_s = recovery_s
        self._clock = clock
        self._previous: Dict[Optional[str], CounterSnapshot] = {}  # by stream; None: all
        self._last_problem: Dict[Tuple[Optional[str], str], float] = {}

    def _recent_problems(self, key: Optional[str], counters: CounterSnapshot,
                         now: float) -> List[str]:
        """Return the problems of the last recovery_s, of one stream or (None) all."""
        previous = self._previous.get(key)
        for name in PROBLEMS:
            if getattr(counters, name) > (getattr(previous, name) if previous else 0):
                self._last_problem[(key, name)] = now
        self._previous[key] = counters
        return [name for name in PROBLEMS
                if now - self._last_problem.get((key, name), -1e9) <= self._recovery_s]

    def _level(self, recent: List[str]) -> Tuple[Level, str]:
        if recent:
            return Level.WARN, ('running; frames ' + ', '.join(recent)
                                + f' in the last {self._recovery_s:.0f} s')
        return Level.OK, 'running'

    def reports(self, stats, running: bool, cameras: Sequence[str] = ()) -> List[Report]:
        """
        Return the pipeline's report, one per camera and one per worker for ``stats``.

        ``stats`` is a PipelineStats; ``cameras`` names the streams to report on their own
        ('camera <name>'), in that order.
        """
        counters = stats.counters
        now = self._clock()
        recent = self._recent_problems(None, counters, now)
        total = len(stats.workers)
        if not running:
            level, message = Level.ERROR, 'pipeline stopped'
        elif stats.active_workers < total:
            level, message = Level.WARN, f'{total - stats.active_workers} of {total} workers down'
        else:
            level, message = self._level(recent)
        values = _counter_values(counters)
        values.update({'slots_in_use': str(stats.slots_in_use),
                       'slots_total': str(stats.slots_total),
                       'workers_active': f'{stats.active_workers}/{total}'})
        values.update(_reason_values(counters))
        reports = [Report('pipeline', level, message, values)]
        for name in cameras:
            stream = stats.streams.get(name)
            camera = stream.counters if stream is not None else CounterSnapshot()
            level, message = self._level(self._recent_problems(name, camera, now))
            if not running:
                level, message = Level.ERROR, 'pipeline stopped'
            values = _counter_values(camera)
            values.update({'slots_in_use': str(stream.slots_in_use if stream else 0),
                           'waiting_for_a_slot': str(stream.waiting if stream else 0)})
            values.update(_reason_values(camera))
            reports.append(Report(f'camera {name}', level, message, values))
        for worker in stats.workers:
            reports.append(Report(
                f'worker {worker.index}', Level.OK if worker.status.active else Level.ERROR,
                worker.status.value,
                {'pid': str(worker.pid), 'state': worker.status.value,
                 'core_mask': str(worker.core_mask),
                 'cpu': str(worker.cpu) if worker.cpu is not None else 'unpinned',
                 'in_flight': str(worker.in_flight), 'frames_done': str(worker.frames_done),
                 'frames_failed': str(worker.frames_failed), 'restarts': str(worker.restarts)}))
        return reports


def _counter_values(counters: CounterSnapshot) -> Dict[str, str]:
    """Return the counters as diagnostics values (rates, latencies, counts by outcome)."""
    return {'fps': f'{counters.fps:.2f}', 'latency_p50_ms': f'{counters.latency_p50_ms:.1f}',
            'latency_p99_ms': f'{counters.latency_p99_ms:.1f}',
            'in_flight': str(counters.in_flight), 'frames_accepted': str(counters.accepted),
            'frames_ok': str(counters.ok), 'frames_failed': str(counters.failed),
            'frames_cancelled': str(counters.cancelled),
            'frames_rejected': str(counters.rejected), 'frames_lost': str(counters.lost),
            'frames_undelivered': str(counters.undelivered)}


def _reason_values(counters: CounterSnapshot) -> Dict[str, str]:
    """Return one 'reason: ...' value per distinct reason, with its count."""
    return {f'reason: {reason}': str(count)
            for reason, count in sorted(counters.reasons.items())}


class ReasonLog:
    """Decide which problem reports become log lines (first time each, then summaries)."""

    def __init__(self, summary_s: float = SUMMARY_S, clock=time.monotonic):
        """Start with nothing seen; ``clock`` is injectable for tests."""
        self._summary_s = summary_s
        self._clock = clock
        self._seen = set()
        self._pending: Dict[str, int] = {}
        self._last_summary = clock()

    def note(self, kind: str, reason: str, count: int = 1) -> Optional[str]:
        """Count one occurrence; return the line to log now if this reason is new, else None."""
        key = (kind, reason_key(reason))
        if key not in self._seen:
            if len(self._seen) >= MAX_REASONS_SEEN:
                self._seen.clear()  # bounded; a reason seen long ago is said again
            self._seen.add(key)
            return (f'{count} frame(s) {kind}: {reason.strip()} (said once; repeats are '
                    f'summarized every {self._summary_s:.0f} s)')
        pending = f'{kind}: {key[1]}'
        if pending not in self._pending and len(self._pending) >= MAX_REASONS_PENDING:
            pending = f'{kind}: other reasons'
        self._pending[pending] = self._pending.get(pending, 0) + count
        return None

    def summary(self, force: bool = False) -> Optional[str]:
        """Return a line with the repeats since the last summary if one is due, else None."""
        now = self._clock()
        if not self._pending or (not force and now - self._last_summary < self._summary_s):
            return None
        items: List[Tuple[str, int]] = sorted(self._pending.items(), key=lambda i: -i[1])
        self._pending.clear()
        self._last_summary = now
        return 'since the last summary: ' + '; '.join(
            f'{count} x {reason}' for reason, count in items)
