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
The no-skip frame pipeline: intake into shared-memory slots, workers, in-order release.

``submit`` resizes a frame to the output height straight into a free slot and hands it to the
worker pool; with no free slot it blocks (backpressure) instead of dropping anything. A collector
thread reads results, restarts dead workers, and calls ``on_frame`` once per accepted frame, in
strict frame order, then frees the slot. Every accepted frame ends in exactly one call: ``ok``,
``error`` (the worker raised, or died on it repeatedly) or ``cancelled`` (shut down first).
"""

from collections import deque
from dataclasses import dataclass, field
import logging
from multiprocessing.connection import wait as wait_for_objects
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from rk_yolo_ros.core.cpu_affinity import plan_worker_cpus, RK3588_BIG_CORES
from rk_yolo_ros.core.frame_processing import FrameTask
from rk_yolo_ros.core.frame_slots import FrameSlots, remove_stale_segments
from rk_yolo_ros.core.reorder import ReorderBuffer
from rk_yolo_ros.core.worker_pool import PoolEvent, RKNN_CORE_MASKS, WorkerPool

COLLECT_POLL_SECONDS = 0.2
LATENCY_WINDOW = 2000


class PipelineError(RuntimeError):
    """The pipeline cannot take frames: closed, out of workers, or the frame handler failed."""


class BackpressureTimeout(TimeoutError):
    """No slot became free within the submit timeout; the frame was not accepted."""


@dataclass
class PipelineConfig:
    """How the pipeline is shaped; validated by ``FramePipeline``."""

    workers: int = 3
    slots: Optional[int] = None  # default: 2 per worker + 3
    output_height: int = 720
    max_output_width: int = 1280  # frames wider than 16:9 are scaled to fit this width
    # Inputs up to this many pixels are copied as they come into the slot's staging area and
    # resized by the worker, off the main process (the one serial stage); larger inputs, or 0
    # here, are resized by the main process. 1920x1080 covers the common cameras.
    staging_pixels: int = 1920 * 1080
    core_masks: Sequence[int] = RKNN_CORE_MASKS
    cpu_affinity: Optional[Sequence[int]] = RK3588_BIG_CORES
    start_method: str = 'spawn'
    start_timeout: float = 60.0
    submit_timeout: Optional[float] = None  # None: wait for a slot as long as it takes
    max_restarts: int = 5
    max_attempts: int = 2  # runs of one frame that may kill a worker before it is failed

    def slot_count(self) -> int:
        """Return the number of frame slots to allocate (a worker holds up to three frames)."""
        return self.slots if self.slots is not None else 3 * self.workers + 2


@dataclass
class CompletedFrame:
    """One accepted frame at release time; ``image`` is only valid inside ``on_frame``."""

    frame_id: int
    status: str  # 'ok' | 'error' | 'cancelled'
    result: Any
    image: np.ndarray  # the (annotated) output-height frame, a view of its slot
    source_size: Tuple[int, int]
    meta: Any = None
    error: str = ''
    worker: Optional[int] = None
    latency_s: float = 0.0
    process_s: float = 0.0


@dataclass
class _Accepted:
    """Book-keeping for a frame between submit and release."""

    slot: int
    shape: Tuple[int, int]
    source_size: Tuple[int, int]
    meta: Any
    accepted_at: float


@dataclass
class PipelineStats:
    """Counters and timings for diagnostics and summaries."""

    accepted: int = 0
    delivered: int = 0
    ok: int = 0
    errors: int = 0
    cancelled: int = 0
    in_flight: int = 0
    slots_total: int = 0
    slots_in_use: int = 0
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    fps: float = 0.0
    workers: List[Dict[str, Any]] = field(default_factory=list)
    error_reasons: Dict[str, int] = field(default_factory=dict)


def output_size(source_width: int, source_height: int, height: int,
                max_width: int) -> Tuple[int, int]:
    """Size (width, height) a source frame is resized to: ``height`` rows, aspect kept."""
    scale = height / source_height
    if source_width * scale > max_width:
        scale = max_width / source_width
    return max(1, int(round(source_width * scale))), max(1, int(round(source_height * scale)))


class FramePipeline:
    """Move frames through shared-memory slots to worker processes and back, in order."""

    def __init__(self, config: PipelineConfig, processor_factory: Callable[[int, int], Any],
                 on_frame: Callable[[CompletedFrame], None],
                 logger: Optional[logging.Logger] = None):
        """Validate the configuration; ``start`` creates the slots and workers."""
        if int(config.workers) < 1:
            raise ValueError(f'workers must be >= 1, got {config.workers}')
        if config.slot_count() < config.workers + 1:
            raise ValueError(f'slots ({config.slot_count()}) must exceed workers '
                             f'({config.workers}) or the workers starve')
        if config.output_height < 16 or config.max_output_width < 16:
            raise ValueError(f'output size {config.max_output_width}x{config.output_height} '
                             'is too small')
        self.config = config
        self._factory = processor_factory
        self._on_frame = on_frame
        self._log = logger or logging.getLogger('rk_yolo_ros')
        self._cond = threading.Condition()
        self._slots: Optional[FrameSlots] = None
        self._pool: Optional[WorkerPool] = None
        self._free_slots: deque = deque()
        self._accepted: Dict[int, _Accepted] = {}
        self._reorder = ReorderBuffer()
        self._next_id = 0
        self._state = 'new'  # 'new' | 'running' | 'closing' | 'closed'
        self._fatal: Optional[str] = None
        self._collector: Optional[threading.Thread] = None
        self._stats = PipelineStats(slots_total=config.slot_count())
        self._latencies: deque = deque(maxlen=LATENCY_WINDOW)
        self._release_times: deque = deque(maxlen=120)
        self.settings: Any = None  # travels with each frame (e.g. DetectionSettings)

    # ----------------------------------------------------------------------------- lifecycle
    def start(self) -> 'FramePipeline':
        """Create the slots, start the workers and the collector; raise if a worker fails."""
        if self._state != 'new':
            raise PipelineError(f'start() called on a {self._state} pipeline')
        config = self.config
        remove_stale_segments()
        cpus, warnings = plan_worker_cpus(config.cpu_affinity, config.workers)
        for warning in warnings:
            self._log.warning(warning)
        self._slots = FrameSlots.create(config.slot_count(), config.output_height,
                                        config.max_output_width,
                                        staging_bytes=3 * max(0, config.staging_pixels))
        self._free_slots.extend(range(config.slot_count()))
        try:
            self._pool = WorkerPool(config.workers, self._factory, self._slots.layout,
                                    core_masks=config.core_masks, cpus=cpus,
                                    start_method=config.start_method,
                                    max_restarts=config.max_restarts,
                                    max_attempts=config.max_attempts,
                                    start_timeout=config.start_timeout, logger=self._log)
            self._pool.start(timeout=config.start_timeout)
        except BaseException:
            self._slots.close()
            self._state = 'closed'
            raise
        self._state = 'running'
        self._collector = threading.Thread(target=self._collect_loop, name='rk_yolo_collector',
                                           daemon=True)
        self._collector.start()
        return self

    def __enter__(self):
        """Start the pipeline."""
        return self.start()

    def __exit__(self, *exc_info):
        """Close the pipeline: drain on a normal exit, cancel on an exception."""
        self.close(drain=exc_info[0] is None)

    # ------------------------------------------------------------------------------ intake
    def submit(self, image: np.ndarray, meta: Any = None,
               timeout: Optional[float] = -1.0) -> int:
        """
        Accept one BGR frame and return its frame id; block while every slot is busy.

        ``timeout`` (seconds; ``None`` waits forever; default: the config's submit_timeout)
        bounds the wait: on expiry BackpressureTimeout is raised and the frame is not accepted.
        """
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
                or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
            described = (f'{image.dtype} array of shape {image.shape}'
                         if isinstance(image, np.ndarray) else type(image).__name__)
            raise ValueError(f'expected a BGR image as a uint8 array of shape (H, W, 3), got '
                             f'{described}')
        if timeout == -1.0:
            timeout = self.config.submit_timeout
        source_height, source_width = image.shape[:2]
        width, height = output_size(source_width, source_height, self.config.output_height,
                                    self.config.max_output_width)
        with self._cond:
            self._raise_if_unusable()
            if not self._cond.wait_for(lambda: self._free_slots or self._state != 'running'
                                       or self._fatal, timeout):
                raise BackpressureTimeout(
                    f'no free frame slot within {timeout} s ({self._stats.slots_total} slots, '
                    'all waiting for workers); the frame was not accepted')
            self._raise_if_unusable()
            slot = self._free_slots.popleft()
        staged = None
        try:
            if source_width * source_height <= self.config.staging_pixels:
                # The worker resizes (or copies) it into the frame area. The input stays
                # untouched in staging, so a frame re-run after a worker died mid-drawing
                # starts again from the clean input.
                np.copyto(self._slots.staging_view(slot, source_height, source_width), image)
                staged = (source_height, source_width)
            elif (width, height) == (source_width, source_height):
                np.copyto(self._slots.view(slot, height, width), image)
            else:
                cv2.resize(image, (width, height), dst=self._slots.view(slot, height, width),
                           interpolation=cv2.INTER_LINEAR)
        except BaseException:
            with self._cond:  # not accepted: no id was assigned, the slot goes back
                self._free_slots.append(slot)
                self._cond.notify_all()
            raise
        with self._cond:
            if self._state == 'closed':  # closed while we copied: not accepted
                self._free_slots.append(slot)
                raise PipelineError('the pipeline closed before the frame was accepted')
            # The id is assigned only once the frame is in its slot, so ids have no gaps.
            frame_id = self._next_id
            self._next_id += 1
            self._accepted[frame_id] = _Accepted(slot, (height, width),
                                                 (source_width, source_height), meta,
                                                 time.monotonic())
            self._stats.accepted += 1
            task = FrameTask(frame_id, (source_width, source_height), self.settings)
            self._pool.submit(frame_id, (frame_id, slot, height, width, task, staged))
        return frame_id

    def _raise_if_unusable(self) -> None:
        """Raise PipelineError if frames cannot be accepted now (caller holds the lock)."""
        if self._fatal:
            raise PipelineError(self._fatal)
        if self._state != 'running':
            raise PipelineError(f'the pipeline is {self._state}; it takes no frames')

    # ------------------------------------------------------------------------------ output
    def _collect_loop(self) -> None:
        """Collector thread: run ``_collect_once`` until closed; a bug here fails loudly."""
        try:
            while self._collect_once():
                pass
        except BaseException as exc:
            self._log.exception('the result collector failed')
            with self._cond:
                self._fatal = f'the result collector failed: {type(exc).__name__}: {exc}'
                self._cond.notify_all()

    def _collect_once(self) -> bool:
        """Wait for worker messages once and release what is ready; False when closed."""
        with self._cond:
            if self._state == 'closed' or self._pool is None:
                return False
            objects = self._pool.wait_objects()
        if not objects:
            time.sleep(COLLECT_POLL_SECONDS)
            ready = []
        else:
            ready = wait_for_objects(objects, COLLECT_POLL_SECONDS)
        with self._cond:
            if self._state == 'closed':
                return False
            events = self._pool.collect(ready)
            released = []
            for event in events:
                released.extend(self._reorder.push(event.frame_id, event))
            if not self._pool.has_workers() and not self._fatal:
                self._fatal = 'every worker process has died and none could be restarted'
                self._log.error(self._fatal)
                self._cond.notify_all()
        for frame_id, event in released:
            self._release(frame_id, event)
        return True

    def _release(self, frame_id: int, event: Optional[PoolEvent]) -> None:
        """Hand one frame to on_frame, then free its slot (called in frame order)."""
        with self._cond:
            info = self._accepted.pop(frame_id)
        now = time.monotonic()
        if event is None:
            status, result, error, worker, seconds = 'cancelled', None, 'cancelled at shutdown', \
                None, 0.0
        elif event.kind == 'done':
            status, result, error, worker, seconds = 'ok', event.result, '', event.worker, \
                event.seconds
        else:
            status, result, error, worker, seconds = 'error', None, event.text, event.worker, \
                event.seconds
        height, width = info.shape
        image = self._slots.view(info.slot, height, width)
        frame = CompletedFrame(frame_id, status, result, image, info.source_size, info.meta,
                               error, worker,
                               now - info.accepted_at, seconds)
        if status == 'error':
            self._log.error('frame %d failed: %s', frame_id, error.strip().splitlines()[0])
        try:
            self._on_frame(frame)
        except Exception as exc:
            self._log.exception('the frame handler raised on frame %d', frame_id)
            with self._cond:
                self._fatal = self._fatal or f'the frame handler raised on frame {frame_id}: ' \
                                             f'{type(exc).__name__}: {exc}'
        finally:
            frame.image = image = None
        with self._cond:
            stats = self._stats
            stats.delivered += 1
            if status == 'ok':
                stats.ok += 1
                self._latencies.append(now - info.accepted_at)
            elif status == 'error':
                stats.errors += 1
                reason = error.strip().splitlines()[0][:120] if error.strip() else 'unknown'
                stats.error_reasons[reason] = stats.error_reasons.get(reason, 0) + 1
            else:
                stats.cancelled += 1
            self._release_times.append(now)
            self._free_slots.append(info.slot)
            self._cond.notify_all()

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Wait until every accepted frame has been released; return False on timeout."""
        with self._cond:
            done = self._cond.wait_for(
                lambda: not self._accepted or self._state == 'closed' or self._fatal, timeout)
            if self._fatal and self._accepted:
                raise PipelineError(self._fatal)
            return bool(done) and not self._accepted

    # ---------------------------------------------------------------------------- shutdown
    def close(self, drain: bool = True, timeout: float = 10.0) -> PipelineStats:
        """
        Stop taking frames, finish or cancel the ones in flight, stop workers, free memory.

        With ``drain`` the frames in flight get up to ``timeout`` seconds to finish; whatever is
        left is released as ``cancelled``, in order, so every accepted frame is accounted for.
        Idempotent: a second call returns the same final stats.
        """
        with self._cond:
            if self._state in ('closed', 'closing'):
                return self.stats()
            was_running = self._state == 'running'
            self._state = 'closing'
            self._cond.notify_all()
        try:
            if was_running and drain:
                with self._cond:
                    self._cond.wait_for(lambda: not self._accepted or self._fatal, timeout)
            with self._cond:
                self._state = 'closed'
            if self._collector is not None and self._collector is not threading.current_thread():
                self._collector.join()
            leftovers = dict(self._reorder.pop_all())
            for frame_id in sorted(self._accepted):
                self._release(frame_id, leftovers.get(frame_id))
        finally:
            if self._pool is not None:
                self._pool.stop()
            if self._slots is not None:
                self._slots.close()
            with self._cond:
                self._state = 'closed'
                self._cond.notify_all()
        stats = self.stats()
        if stats.cancelled:
            self._log.warning('%d accepted frame(s) were cancelled at shutdown (not processed)',
                              stats.cancelled)
        return stats

    # ------------------------------------------------------------------------------ status
    def stats(self) -> PipelineStats:
        """Return a snapshot of the counters, latency percentiles and worker health."""
        with self._cond:
            snapshot = PipelineStats(**{**self._stats.__dict__,
                                        'error_reasons': dict(self._stats.error_reasons)})
            snapshot.in_flight = len(self._accepted)
            snapshot.slots_in_use = snapshot.slots_total - len(self._free_slots)
            snapshot.workers = self._pool.status() if self._pool is not None else []
            latencies = np.array(self._latencies, dtype=np.float64)
            times = list(self._release_times)
        if latencies.size:
            snapshot.latency_p50_ms = float(np.percentile(latencies, 50) * 1000.0)
            snapshot.latency_p99_ms = float(np.percentile(latencies, 99) * 1000.0)
        if len(times) > 1 and times[-1] > times[0]:
            snapshot.fps = (len(times) - 1) / (times[-1] - times[0])
        return snapshot

    @property
    def running(self) -> bool:
        """Return True while the pipeline accepts frames."""
        return self._state == 'running' and not self._fatal
