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
A pool of worker processes, one per NPU core, with explicit per-worker task and result pipes.

Each worker has its own pipes, so the pool always knows which frames a worker holds: when a worker
dies its frames are re-run on the others while it restarts, and a worker killed mid-write cannot
wedge a queue lock that other workers share. Its process sentinel wakes the pool the moment it
dies.

NOTE [shutdown]: ``stop`` sends the ``STOP`` sentinel to every live worker, waits up to the
timeout, then kills what is left (workers ignore SIGINT, SIGTERM and SIGHUP: the main process
alone decides when they stop), and closes every pipe. It is idempotent.
Frames still held by workers are not reported here: the pipeline owns frame accounting and reports
them as cancelled (see ``FramePipeline.close``).

Bounded state: a frame is in the pool from ``submit`` until its result, its failure or the pool's
end: queued (``_pending``) or held by one worker (``in_flight``, at most ``max_in_flight`` each),
with one attempt count (``_attempts``). So the pool holds at most as many frames as the
pipeline has frame slots, and nothing once they are reported.
"""

from collections import deque, OrderedDict
from dataclasses import dataclass, field
import enum
import logging
import multiprocessing
from multiprocessing.connection import wait as wait_for_objects
import os
import signal
import time
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

from rk_yolo_ros.core import settings
from rk_yolo_ros.core.frame_processing import FailureStage, FrameStatus
from rk_yolo_ros.core.frame_slots import SlotLayout
from rk_yolo_ros.core.worker_messages import (FrameDone, FrameError, FrameJob, STOP,
                                              WorkerInitFailed, WorkerReady)
from rk_yolo_ros.core.worker_process import run_worker


class WorkerStatus(str, enum.Enum):
    """Where a worker process is in its life, as the main process sees it."""

    STARTING = 'starting'  # started, building its processor
    READY = 'ready'  # takes frames
    UNREACHABLE = 'unreachable'  # its task pipe broke; its sentinel will report the death
    DEAD = 'dead'  # exited; restarted unless its restarts are used up
    STOPPED = 'stopped'  # stopped by the pool

    @property
    def watched(self) -> bool:
        """Return True while a process runs that the pool watches."""
        return self in (WorkerStatus.STARTING, WorkerStatus.READY, WorkerStatus.UNREACHABLE)

    @property
    def active(self) -> bool:
        """Return True for a worker that takes frames or soon will."""
        return self in (WorkerStatus.STARTING, WorkerStatus.READY)


class WorkerStartError(RuntimeError):
    """A worker could not build its processor (e.g. the model failed to load)."""


@dataclass
class PoolEvent:
    """A frame a worker finished (OK) or failed on, or that could not run (FAILED)."""

    status: FrameStatus
    frame_id: int
    worker: Optional[int]
    result: Any = None
    error: str = ''
    seconds: float = 0.0
    stage: FailureStage = FailureStage.PROCESS  # where a FAILED frame failed
    source_size: Optional[Tuple[int, int]] = None  # (width, height) the worker decoded


@dataclass(frozen=True)
class WorkerInfo:
    """One worker's health at one moment (for diagnostics and summaries)."""

    index: int
    pid: Optional[int]
    status: WorkerStatus
    core_mask: int
    cpu: Optional[int]  # the CPU it is pinned to; None: unpinned
    in_flight: int
    frames_done: int
    frames_failed: int
    restarts: int


@dataclass
class WorkerState:
    """The main process's view of one worker slot in the pool."""

    index: int
    core_mask: int
    cpu: Optional[int]
    process: Any = None
    task_conn: Any = None
    result_conn: Any = None
    state: WorkerStatus = WorkerStatus.STOPPED
    pid: Optional[int] = None
    in_flight: 'OrderedDict[int, FrameJob]' = field(default_factory=OrderedDict)
    restarts: int = 0
    started_at: float = 0.0
    frames_done: int = 0
    frames_failed: int = 0
    last_error: str = ''

    def describe(self) -> str:
        """Name this worker for log messages."""
        return f'worker {self.index} (pid {self.pid}, core mask {self.core_mask})'


def _exit_reason(exitcode: Optional[int]) -> str:
    """Say in words how a process ended."""
    if exitcode is None:
        return 'still running'
    if exitcode < 0:
        try:
            return f'killed by {signal.Signals(-exitcode).name}'
        except ValueError:
            return f'killed by signal {-exitcode}'
    return f'exit code {exitcode}'


def validate_core_masks(core_masks: Sequence[int]) -> Tuple[int, ...]:
    """Return the NPU core masks to use round-robin (the settings' rule; empty: 1, 2, 4)."""
    return tuple(settings.check('core_masks', list(core_masks))) or settings.RKNN_CORE_MASKS


class WorkerPool:
    """Start, feed, watch and restart the worker processes."""

    def __init__(self, workers: int, processor_factory: Callable[[int, int], Any],
                 layout: SlotLayout, core_masks: Sequence[int] = settings.RKNN_CORE_MASKS,
                 cpus: Optional[Sequence[Optional[int]]] = None, start_method: str = 'spawn',
                 max_in_flight: int = 3, max_restarts: int = 5, max_attempts: int = 2,
                 start_timeout: float = 60.0, logger: Optional[logging.Logger] = None):
        """Describe the pool; nothing starts until ``start``."""
        if int(workers) < 1:
            raise ValueError(f'workers must be >= 1, got {workers}')
        settings.check('start_method', start_method)
        masks = validate_core_masks(core_masks)
        cpus = list(cpus or [])
        self._context = multiprocessing.get_context(start_method)
        self._factory = processor_factory
        self._layout = layout
        self._max_in_flight = max_in_flight
        self._max_restarts = max_restarts
        self._max_attempts = max_attempts
        self._start_timeout = start_timeout
        self._log = logger or logging.getLogger(__name__)
        self._attempts: Dict[int, int] = {}
        self._pending: Deque[FrameJob] = deque()
        self._next_worker = 0
        self._stopped = False
        self._started = False  # start() has finished: from then on, restarts are timed here
        self.workers = [WorkerState(i, masks[i % len(masks)], cpus[i] if i < len(cpus) else None)
                        for i in range(int(workers))]

    # ----------------------------------------------------------------------------- lifecycle
    def _spawn(self, worker: WorkerState) -> None:
        """Start (or restart) one worker process with fresh pipes."""
        task_reader, task_writer = self._context.Pipe(duplex=False)
        result_reader, result_writer = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=run_worker, name=f'rk_yolo_worker_{worker.index}', daemon=True,
            args=(worker.index, worker.core_mask, worker.cpu, self._layout, self._factory,
                  task_reader, result_writer, os.getpid()))
        process.start()
        # Our copies of the child's ends must go, or we would never see EOF from a dead worker.
        task_reader.close()
        result_writer.close()
        worker.process, worker.pid = process, process.pid
        worker.task_conn, worker.result_conn = task_writer, result_reader
        worker.state = WorkerStatus.STARTING
        worker.started_at = time.monotonic()

    def start(self, timeout: float = 60.0) -> None:
        """
        Start every worker and wait until each has built its processor.

        Raises WorkerStartError naming the worker and carrying its traceback if one fails, or
        if one is not ready within ``timeout`` seconds; the pool is stopped in that case.
        """
        for worker in self.workers:
            self._spawn(worker)
        deadline = time.monotonic() + timeout
        try:
            while any(w.state is WorkerStatus.STARTING for w in self.workers):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    slow = [w.describe() for w in self.workers
                            if w.state is WorkerStatus.STARTING]
                    raise WorkerStartError(f'not ready after {timeout:.0f} s: {", ".join(slow)}')
                self.collect(wait_for_objects(self.wait_objects(), remaining))
                failed = [w for w in self.workers if w.state is WorkerStatus.DEAD]
                if failed:
                    raise WorkerStartError(f'{failed[0].describe()} failed to start:\n'
                                           f'{failed[0].last_error}')
        except BaseException:
            self.stop(timeout=2.0)
            raise
        self._started = True

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every worker; see NOTE [shutdown] at the top of this module."""
        if self._stopped:
            return
        self._stopped = True
        for worker in self.workers:
            if worker.state.watched:
                try:
                    worker.task_conn.send(STOP)
                except (OSError, ValueError):
                    pass
        deadline = time.monotonic() + timeout
        for worker in self.workers:
            process = worker.process
            if process is None:
                continue
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                self._log.warning('%s did not stop in %.1f s; killing it', worker.describe(),
                                  timeout)
                process.kill()
                process.join(1.0)
            for conn in (worker.task_conn, worker.result_conn):
                if conn is not None:
                    conn.close()
            worker.task_conn = worker.result_conn = None
            worker.state = WorkerStatus.STOPPED

    # ------------------------------------------------------------------------------ frames
    def submit(self, job: FrameJob) -> None:
        """Queue one frame for the least-loaded ready worker."""
        self._attempts[job.frame_id] = 0
        self._pending.append(job)
        self._dispatch_pending()

    def _dispatch_pending(self) -> None:
        """
        Send queued frames to ready workers with room (at most max_in_flight each).

        Three in flight let a staged worker prepare one frame and finish another while a third
        is on the NPU.
        """
        count = len(self.workers)
        while self._pending:
            best = None
            for offset in range(count):  # rotate the start so ties go round-robin
                worker = self.workers[(self._next_worker + offset) % count]
                if worker.state is not WorkerStatus.READY \
                        or len(worker.in_flight) >= self._max_in_flight:
                    continue
                if best is None or len(worker.in_flight) < len(best.in_flight):
                    best = worker
            if best is None:
                return
            job = self._pending.popleft()
            try:
                best.task_conn.send(job)
            except OSError:
                # It just died; its sentinel will report it. Keep the frame queued.
                self._pending.appendleft(job)
                best.state = WorkerStatus.UNREACHABLE
                continue
            best.in_flight[job.frame_id] = job
            self._next_worker = (best.index + 1) % count

    def wait_objects(self) -> List[Any]:
        """Return what to wait on: result pipes and process sentinels of running workers."""
        objects = []
        for worker in self.workers:
            if worker.state.watched:
                objects.append(worker.result_conn)
                objects.append(worker.process.sentinel)
        return objects

    def collect(self, ready: Sequence[Any]) -> List[PoolEvent]:
        """Handle what ``wait`` found ready: read results, notice and restart dead workers."""
        events: List[PoolEvent] = []
        ready = set(ready)
        for worker in self.workers:
            if not worker.state.watched:
                continue
            if worker.result_conn in ready or worker.process.sentinel in ready:
                self._read_messages(worker, events)
            if worker.process.sentinel in ready or worker.state is WorkerStatus.DEAD:
                self._handle_death(worker, events)
        self._kill_stuck_starters()
        self._dispatch_pending()
        if not self.has_workers():
            events.extend(self._fail_everything('no worker process is left to run it'))
        return events

    def _kill_stuck_starters(self) -> None:
        """
        Kill a restarted worker that is not ready within the start timeout.

        Its sentinel then reports the death and the usual restart logic takes over, so a
        worker that hangs while starting (e.g. forked from a process with threads) cannot sit
        in the pool forever.
        """
        now = time.monotonic()
        for worker in self.workers:
            if (self._started and worker.state is WorkerStatus.STARTING
                    and now - worker.started_at > self._start_timeout):
                self._log.error('%s was not ready within %.0f s; killing it', worker.describe(),
                                self._start_timeout)
                worker.process.kill()
                worker.started_at = float('inf')  # report once

    def _read_messages(self, worker: WorkerState, events: List[PoolEvent]) -> None:
        """Drain every message this worker has sent (a dead worker's last results count too)."""
        conn = worker.result_conn
        try:
            while conn.poll():
                self._handle_message(worker, conn.recv(), events)
        except (EOFError, OSError):
            worker.state = WorkerStatus.DEAD

    def _handle_message(self, worker: WorkerState, message: Any, events: List[PoolEvent]):
        """Apply one message from a worker."""
        if isinstance(message, WorkerReady):
            worker.state = WorkerStatus.READY
            if message.note:
                self._log.info('worker %d (pid %d): %s', worker.index, message.pid, message.note)
        elif isinstance(message, WorkerInitFailed):
            worker.last_error = message.error
            worker.state = WorkerStatus.DEAD
            worker.restarts = self._max_restarts  # it would fail the same way again
            self._log.error('%s could not start:\n%s', worker.describe(), message.error)
        elif isinstance(message, (FrameDone, FrameError)):
            worker.in_flight.pop(message.frame_id, None)
            self._attempts.pop(message.frame_id, None)
            if isinstance(message, FrameDone):
                worker.frames_done += 1
                events.append(PoolEvent(FrameStatus.OK, message.frame_id, worker.index,
                                        result=message.result, seconds=message.seconds,
                                        source_size=message.source_size))
            else:
                worker.frames_failed += 1
                events.append(PoolEvent(FrameStatus.FAILED, message.frame_id, worker.index,
                                        error=message.error, seconds=message.seconds,
                                        stage=message.stage, source_size=message.source_size))
        else:
            raise TypeError(f'{worker.describe()} sent an unknown message {message!r}')

    def _handle_death(self, worker: WorkerState, events: List[PoolEvent]) -> None:
        """Re-queue a dead worker's frames and restart it (within max_restarts)."""
        worker.process.join(1.0)
        reason = _exit_reason(worker.process.exitcode)
        lost = list(worker.in_flight.items())
        worker.in_flight.clear()
        for conn in (worker.task_conn, worker.result_conn):
            conn.close()
        worker.task_conn = worker.result_conn = None
        worker.state = WorkerStatus.DEAD
        if lost:
            # Frames run in order, so the oldest one is the frame it was working on.
            culprit = lost[0][0]
            self._attempts[culprit] = self._attempts.get(culprit, 0) + 1
            retry = []
            for frame_id, job in lost:
                if self._attempts.get(frame_id, 0) >= self._max_attempts:
                    self._attempts.pop(frame_id, None)
                    events.append(PoolEvent(
                        FrameStatus.FAILED, frame_id, worker.index,
                        error=f'worker processes died {self._max_attempts} times running this '
                              f'frame (last: {worker.describe()}, {reason})'))
                else:
                    retry.append(job)
            self._pending.extendleft(reversed(retry))
        if worker.last_error and worker.restarts >= self._max_restarts:
            return  # failed to initialise: already logged, restarting cannot help
        self._log.error('%s died (%s); re-running frames %s', worker.describe(), reason,
                        [frame_id for frame_id, _ in lost])
        if worker.restarts >= self._max_restarts or self._stopped:
            self._log.error('%s will not be restarted: it was restarted %d times already',
                            worker.describe(), worker.restarts)
            return
        worker.restarts += 1
        self._spawn(worker)
        self._log.warning('restarted worker %d as pid %d (restart %d of %d)', worker.index,
                          worker.pid, worker.restarts, self._max_restarts)

    def _fail_everything(self, why: str) -> List[PoolEvent]:
        """Fail every queued frame (used when no worker is left)."""
        events = [PoolEvent(FrameStatus.FAILED, job.frame_id, None, error=why)
                  for job in self._pending]
        for job in self._pending:
            self._attempts.pop(job.frame_id, None)
        self._pending.clear()
        return events

    # ------------------------------------------------------------------------------ status
    def has_workers(self) -> bool:
        """Return True while at least one worker runs or is starting."""
        return any(w.state.watched for w in self.workers)

    def status(self) -> List[WorkerInfo]:
        """Describe each worker (for diagnostics)."""
        return [WorkerInfo(w.index, w.pid, w.state, w.core_mask, w.cpu, len(w.in_flight),
                           w.frames_done, w.frames_failed, w.restarts)
                for w in self.workers]
