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

``submit`` puts a frame into a free slot and hands it to the worker pool; with no free slot it
blocks (backpressure) instead of dropping anything. ``submit_encoded`` does the same with the
bytes of a compressed frame, which the worker decodes. ``submit_failed`` takes a frame that
could not be read (its id keeps the sequence whole). A collector thread reads results, restarts
dead workers, and calls ``on_frame`` once per accepted frame, in strict frame order (within
its stream, see below), then frees the slot. Every accepted frame ends in exactly one call,
with a ``FrameStatus``: OK, FAILED (it could not be read or decoded, the worker raised, or
workers died on it repeatedly) or CANCELLED (shut down first).

Several streams (cameras) share one pipeline: each frame carries its stream's key (``stream``,
a string; ``DEFAULT_STREAM`` for a single stream). Slots and workers serve every stream, and
frame ids are global (a worker sees nothing else), but the order is per stream: each stream has
its own sequence numbers and reorder buffer, so its frames are released strictly in its order,
and no order is imposed across streams (one camera's slow frame never holds back another's
results). Counters are kept per stream beside the total (``PipelineStats.streams``), and
``reject``, ``count_lost`` and ``count_undelivered`` take the stream they count for.

NOTE [fair admission]: a free slot goes to the waiting stream that holds the fewest slots (ties:
whichever submit call looks first), and a stream that no other stream waits beside takes any
free slot. So the pipeline is work-conserving (a lone camera uses every slot, and a slot is never
left free while a submit call waits), and under overload each of n streams that keep asking
holds about 1/n of the slots, so of the workers: a bursty or faster camera cannot take every
slot and starve the others, and a stream below its share never waits behind one above it. A
stream's backpressure is its own: its submit call blocks, the others' go on.

Bounded state: nothing is kept per frame once it is released. Until then a frame has one entry
in the accepted frames and, once its result is in, one in its stream's reorder buffer; together
they hold at most ``slot_count() + MAX_UNREAD_WAITING`` frames, because ``submit`` waits for a
free slot and ``submit_failed`` waits while ``MAX_UNREAD_WAITING`` frames that hold no slot
wait for an earlier frame. The worker pool holds only frames that have a slot (its bounds:
worker_pool); the counters are bounded by themselves (counters). Per stream the pipeline keeps
its counters, reorder buffer and next sequence number for its life, for at most
``MAX_STREAMS`` streams (a stream beyond them is refused).

This module and ``frame_processing``, ``settings`` and ``counters`` are the core's public API;
the adapters (ROS node, ``rk-yolo``, model tools, benchmarks) use nothing else of the core.
"""

from collections import deque
from dataclasses import dataclass, field
import logging
from multiprocessing.connection import wait as wait_for_objects
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np

from rk_yolo_ros.core import frame_decoding, settings as settings_table
from rk_yolo_ros.core.counters import CounterSnapshot, FrameCounters
from rk_yolo_ros.core.cpu_affinity import plan_worker_cpus, RK3588_BIG_CORES
from rk_yolo_ros.core.frame_processing import (DEFAULT_STREAM, FailureStage, FrameStatus,
                                               FrameTask)
from rk_yolo_ros.core.frame_slots import FrameSlots, output_size, remove_stale_segments
from rk_yolo_ros.core.reorder import ReorderBuffer
from rk_yolo_ros.core.worker_messages import FrameJob
from rk_yolo_ros.core.worker_pool import (PoolEvent, WorkerInfo, WorkerPool, WorkerStartError,
                                          WorkerStatus)

COLLECT_POLL_SECONDS = 0.2
MAX_UNREAD_WAITING = 64  # frames that could not be read, waiting for an earlier frame's release
MAX_STREAMS = 64  # distinct streams one pipeline keeps book for (cameras on one robot: a few)


class PipelineError(RuntimeError):
    """The pipeline cannot take frames: closed, out of workers, or the frame handler failed."""


class BackpressureTimeout(TimeoutError):
    """No slot became free within the submit timeout; the frame was not accepted."""


@dataclass
class PipelineConfig:
    """How the pipeline is shaped; validated by ``FramePipeline``."""

    workers: int = settings_table.default('workers')
    slots: Optional[int] = None  # default: 3 per worker + 2
    output_height: int = settings_table.default('output_height')
    # frames wider than 16:9 are scaled to fit this width
    max_output_width: int = settings_table.max_output_width(
        settings_table.default('output_height'))
    # Inputs up to this many pixels (and any input no larger than the output frame) are
    # copied as they come into the slot's staging area; the worker makes the model input from
    # them and resizes them, off the main process (the one serial stage). Larger inputs are
    # resized by the main process. 1920x1080 covers the common cameras. The staging area also
    # bounds the compressed frames a worker decodes (see staging_bytes).
    staging_pixels: int = 1920 * 1080
    core_masks: Sequence[int] = settings_table.RKNN_CORE_MASKS
    cpu_affinity: Optional[Sequence[int]] = RK3588_BIG_CORES
    start_method: str = settings_table.default('start_method')
    start_timeout: float = 60.0
    submit_timeout: Optional[float] = None  # None: wait for a slot as long as it takes
    max_restarts: int = 5
    max_attempts: int = 2  # runs of one frame that may kill a worker before it is failed

    @classmethod
    def from_settings(cls, values: Mapping[str, Any]) -> 'PipelineConfig':
        """Build from setting values (workers, slots, output_height, masks, CPUs, start)."""
        output_height = settings_table.check('output_height', values['output_height'])
        cpus = settings_table.check('cpu_affinity', values['cpu_affinity'])
        return cls(workers=settings_table.check('workers', values['workers']),
                   slots=settings_table.check('slots', values['slots']) or None,
                   output_height=output_height,
                   max_output_width=settings_table.max_output_width(output_height),
                   core_masks=tuple(settings_table.check('core_masks', values['core_masks'])
                                    or settings_table.RKNN_CORE_MASKS),
                   cpu_affinity=tuple(cpus) or None,
                   start_method=settings_table.check('start_method', values['start_method']))

    def staging_bytes(self) -> int:
        """Return the bytes of a slot's staging area: staging_pixels, at least one output frame."""
        return 3 * max(self.staging_pixels, self.output_height * self.max_output_width)

    def slot_count(self) -> int:
        """Return the number of frame slots to allocate (a worker holds up to three frames)."""
        return self.slots if self.slots is not None else 3 * self.workers + 2


@dataclass
class CompletedFrame:
    """One accepted frame at release time; ``image`` is only valid inside ``on_frame``."""

    frame_id: int
    status: FrameStatus
    result: Any
    # the (annotated) output-size frame, a view of its slot; undefined for a staged processor's
    # frame submitted with DetectionSettings(draw=False): no one asked for an image
    image: Optional[np.ndarray]
    # (width, height) of the input; None: never read (or compressed and not decoded)
    source_size: Optional[Tuple[int, int]]
    meta: Any = None
    error: str = ''
    stage: Optional[FailureStage] = None  # where a FAILED frame failed
    worker: Optional[int] = None
    latency_s: float = 0.0  # from intake (a slot taken) to this release
    process_s: float = 0.0  # in the worker
    settings: Any = None  # what was submitted with it (e.g. DetectionSettings)
    stream: str = DEFAULT_STREAM  # the stream (camera) it came in on
    seq: int = 0  # its position in its stream, from 0 (frame_id: in the pipeline)


@dataclass
class _Accepted:
    """Book-keeping for a frame between submit and release."""

    slot: Optional[int]  # None: failed before intake, holds no slot
    shape: Optional[Tuple[int, int]]  # (height, width) in the slot; None: not known yet
    source_size: Optional[Tuple[int, int]]  # None: unread, or compressed and not decoded yet
    meta: Any
    accepted_at: float
    error: str = ''  # why it could not be read (slot None)
    settings: Any = None  # what travelled with it to the worker
    stream: str = DEFAULT_STREAM
    seq: int = 0  # position in its stream (set on acceptance)


@dataclass
class _Stream:
    """One stream's book-keeping: its order, its share of the slots, its counters."""

    counters: FrameCounters = field(default_factory=FrameCounters)
    reorder: ReorderBuffer = field(default_factory=ReorderBuffer)  # by the stream's seq
    next_seq: int = 0
    held: int = 0  # slots its accepted frames hold
    waiting: int = 0  # its submit calls waiting for a slot


@dataclass(frozen=True)
class StreamStats:
    """One stream's counters, the slots it holds and its waiting submit calls at one moment."""

    counters: CounterSnapshot = field(default_factory=CounterSnapshot)
    slots_in_use: int = 0
    waiting: int = 0  # submit calls of this stream blocked for a slot (its backpressure)


@dataclass
class PipelineStats:
    """The counters, the slots and the workers at one moment (for diagnostics and summaries)."""

    counters: CounterSnapshot = field(default_factory=CounterSnapshot)  # all streams
    slots_total: int = 0
    slots_in_use: int = 0
    workers: List[WorkerInfo] = field(default_factory=list)
    streams: Dict[str, StreamStats] = field(default_factory=dict)  # by stream, in first-seen order

    @property
    def active_workers(self) -> int:
        """Return how many workers take frames or soon will."""
        return sum(w.status.active for w in self.workers)


class FramePipeline:
    """Move frames through shared-memory slots to worker processes and back, in order."""

    def __init__(self, config: PipelineConfig, processor_factory: Callable[[int, int], Any],
                 on_frame: Callable[[CompletedFrame], None],
                 logger: Optional[logging.Logger] = None):
        """Validate the configuration; ``start`` creates the slots and workers."""
        settings_table.check('workers', config.workers)
        if config.slot_count() < config.workers + 1:
            raise ValueError(f'slots ({config.slot_count()}) must exceed workers '
                             f'({config.workers}) or the workers starve')
        settings_table.check('output_height', config.output_height)
        if config.max_output_width < 16:
            raise ValueError(f'max_output_width must be >= 16, got {config.max_output_width}')
        self.config = config
        self._factory = processor_factory
        self._on_frame = on_frame
        self._log = logger or logging.getLogger('rk_yolo_ros')
        self._cond = threading.Condition()
        self._slots: Optional[FrameSlots] = None
        self._pool: Optional[WorkerPool] = None
        self._free_slots: deque = deque()
        self._accepted: Dict[int, _Accepted] = {}
        self._unread_waiting = 0  # accepted frames that hold no slot (submit_failed)
        self._streams: Dict[str, _Stream] = {}
        self._next_id = 0
        self._state = 'new'  # 'new' | 'running' | 'closing' | 'closed'
        self._fatal: Optional[str] = None
        self._collector: Optional[threading.Thread] = None
        self._counters = FrameCounters()
        self._release_lock = threading.Lock()  # see _push_and_release
        self._staging_bytes = config.staging_bytes()
        self._warned_large = False  # a compressed frame too large for staging was logged

    # ----------------------------------------------------------------------------- lifecycle
    def start(self) -> 'FramePipeline':
        """Create the slots, start the workers and the collector; raise if a worker fails."""
        if self._state != 'new':
            raise PipelineError(f'start() called on a {self._state} pipeline')
        config = self.config
        remove_stale_segments()
        plan = plan_worker_cpus(config.cpu_affinity, config.workers)
        for note in plan.notes:
            self._log.info(note)
        for warning in plan.warnings:
            self._log.warning(warning)
        self._slots = FrameSlots.create(config.slot_count(), config.output_height,
                                        config.max_output_width,
                                        staging_bytes=self._staging_bytes)
        self._free_slots.extend(range(config.slot_count()))
        try:
            self._pool = WorkerPool(config.workers, self._factory, self._slots.layout,
                                    core_masks=config.core_masks, cpus=plan.cpus,
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
    def submit(self, image: np.ndarray, meta: Any = None, settings: Any = None,
               timeout: Optional[float] = -1.0, stream: str = DEFAULT_STREAM) -> int:
        """
        Accept one BGR frame and return its frame id; block while every slot is busy.

        ``meta`` comes back with the frame (e.g. its header); ``settings`` travel with it to
        the worker (e.g. the DetectionSettings in force when it was accepted). ``timeout``
        (seconds; ``None`` waits forever; default: the config's submit_timeout) bounds the wait:
        on expiry BackpressureTimeout is raised and the frame is not accepted. ``stream`` names
        the stream (camera) it belongs to: it is released in that stream's order, and it waits
        for a slot by the fair-admission rule (NOTE [fair admission]).
        """
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
                or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
            described = (f'{image.dtype} array of shape {image.shape}'
                         if isinstance(image, np.ndarray) else type(image).__name__)
            raise ValueError(f'expected a BGR image as a uint8 array of shape (H, W, 3), got '
                             f'{described}')
        source_height, source_width = image.shape[:2]
        width, height = output_size(source_width, source_height, self.config.output_height,
                                    self.config.max_output_width)
        staged = None
        if image.nbytes <= self._staging_bytes:
            # The worker makes the model input from these pixels and resizes them into the
            # frame area itself: off the main process, and a small frame is never enlarged
            # before inference. The input stays untouched in staging, so a frame re-run after
            # a worker died mid-drawing starts again from the clean input.
            staged = (source_height, source_width)

            def write(slot):
                np.copyto(self._slots.staging_view(slot, source_height, source_width), image)
        elif (width, height) == (source_width, source_height):
            def write(slot):
                np.copyto(self._slots.view(slot, height, width), image)
        else:  # larger than staging, so larger than the output frame: shrink it here
            def write(slot):
                cv2.resize(image, (width, height), dst=self._slots.view(slot, height, width),
                           interpolation=cv2.INTER_LINEAR)
        return self._intake(write, (height, width), (source_width, source_height), meta,
                            settings, timeout, stream, staged=staged)

    def submit_encoded(self, data: Any, meta: Any = None, settings: Any = None,
                       timeout: Optional[float] = -1.0, stream: str = DEFAULT_STREAM) -> int:
        """
        Accept one compressed frame (JPEG, PNG: what OpenCV decodes); return its frame id.

        The bytes (bytes, array.array, memoryview or a uint8 array) are copied into a slot
        and a worker decodes them, so the main process, the one serial stage, does not. A
        frame whose bytes do not decode is released FAILED at the DECODE stage with the
        reason, in its place in the order. Bytes larger than a slot's staging area
        (``PipelineConfig.staging_bytes``) are decoded here instead, then submitted as a
        decoded frame: slower, never refused. Otherwise as ``submit``.
        """
        payload = frame_decoding.byte_array(data)
        if payload.size == 0:
            raise ValueError('expected the bytes of a compressed image, got 0 bytes')
        if payload.size > self._staging_bytes:
            if not self._warned_large:
                self._warned_large = True
                self._log.warning(
                    'a compressed frame of %d bytes exceeds the %d-byte staging area of a slot; '
                    'frames that large are decoded in the main process (raise '
                    'PipelineConfig.staging_pixels to decode them in the workers)',
                    payload.size, self._staging_bytes)
            try:
                image = frame_decoding.decode_frame(payload)
            except frame_decoding.FrameDecodeError as error:
                return self.submit_failed(meta, str(error), stream)
            return self.submit(image, meta, settings, timeout, stream)

        def write(slot):
            np.copyto(self._slots.staging_bytes(slot, payload.size), payload)
        return self._intake(write, None, None, meta, settings, timeout, stream,
                            encoded=payload.size)

    def _intake(self, write: Callable[[int], None], shape: Optional[Tuple[int, int]],
                source_size: Optional[Tuple[int, int]], meta: Any, settings: Any,
                timeout: Optional[float], stream: str,
                staged: Optional[Tuple[int, int]] = None, encoded: int = 0) -> int:
        """
        Take a free slot (waiting up to ``timeout``), ``write(slot)`` the input, accept it.

        ``shape`` (height, width) and ``source_size`` (width, height) are None for compressed
        input; the worker reports them once it has decoded it.
        """
        if timeout == -1.0:
            timeout = self.config.submit_timeout
        with self._cond:
            self._raise_if_unusable()
            state = self._stream(stream)
            state.waiting += 1
            try:
                admitted = self._cond.wait_for(
                    lambda: self._may_take_slot(state) or self._state != 'running'
                    or self._fatal, timeout)
            finally:
                state.waiting -= 1
            if not admitted:
                self._cond.notify_all()  # a stream that waited less may be first now
                raise BackpressureTimeout(
                    f'no free frame slot within {timeout} s ({self.config.slot_count()} slots, '
                    'all waiting for workers); the frame was not accepted')
            self._raise_if_unusable()
            slot = self._free_slots.popleft()
            state.held += 1
            if self._free_slots:
                self._cond.notify_all()  # another waiting stream may be first now
        taken_at = time.monotonic()
        try:
            write(slot)
        except BaseException:
            with self._cond:  # not accepted: no id was assigned, the slot goes back
                self._free_slots.append(slot)
                state.held -= 1
                self._cond.notify_all()
            raise
        with self._cond:
            if self._state == 'closed':  # closed while we copied: not accepted
                self._free_slots.append(slot)
                state.held -= 1
                raise PipelineError('the pipeline closed before the frame was accepted')
            # The id is assigned only once the frame is in its slot, so ids have no gaps.
            info = _Accepted(slot, shape, source_size, meta, taken_at, settings=settings,
                             stream=stream)
            frame_id = self._accept(info, state)
            height, width = shape or (0, 0)
            task = FrameTask(frame_id, source_size or (0, 0), settings, stream)
            self._pool.submit(FrameJob(frame_id, slot, height, width, task, staged, encoded))
        return frame_id

    def _may_take_slot(self, state: _Stream) -> bool:
        """
        Return True if a stream waiting for a slot takes one now (caller holds the lock).

        NOTE [fair admission] in the module docstring: a free slot goes to a waiting stream
        that holds no more slots than any other waiting stream.
        """
        if not self._free_slots:
            return False
        return all(other.held >= state.held for other in self._streams.values()
                   if other.waiting and other is not state)

    def submit_failed(self, meta: Any, reason: str, stream: str = DEFAULT_STREAM) -> int:
        """
        Accept a frame that could not be read (e.g. undecodable) and return its frame id.

        It takes no slot and reaches no worker; it is released in its place in its stream's
        order, FAILED at the DECODE stage with ``reason``, so a consumer sees every input
        exactly once. While ``MAX_UNREAD_WAITING`` such frames wait for an earlier frame it
        blocks, as ``submit`` does without a free slot, so a long run of unreadable frames behind
        a slow one cannot pile up.
        """
        with self._cond:
            self._raise_if_unusable()
            state = self._stream(stream)
            self._cond.wait_for(lambda: self._unread_waiting < MAX_UNREAD_WAITING
                                or self._state != 'running' or self._fatal)
            self._raise_if_unusable()
            self._unread_waiting += 1
            frame_id = self._accept(_Accepted(None, None, None, meta, time.monotonic(),
                                              reason or 'the frame could not be read',
                                              stream=stream), state)
        self._push_and_release([(frame_id, None)])
        return frame_id

    def reject(self, reason: str, stream: str = DEFAULT_STREAM) -> None:
        """Count a frame refused before intake (not accepted, so it gets no id)."""
        self._counters.rejected(reason)
        self._stream_counters(stream).rejected(reason)

    def count_lost(self, count: int, reason: str, stream: str = DEFAULT_STREAM) -> None:
        """Count frames lost before they reached the pipeline (e.g. in the middleware)."""
        self._counters.lost(count, reason)
        self._stream_counters(stream).lost(count, reason)

    def count_undelivered(self, reason: str, stream: str = DEFAULT_STREAM) -> None:
        """Count a processed frame an output could not take (e.g. publishing failed)."""
        self._counters.undelivered(reason)
        self._stream_counters(stream).undelivered(reason)

    def frame_rate(self, stream: Optional[str] = None) -> float:
        """Return frames released per second now, of one stream or (None) all (cheap)."""
        if stream is None:
            return self._counters.frame_rate()
        return self._stream_counters(stream).frame_rate()

    def _stream(self, stream: str) -> _Stream:
        """Return a stream's book-keeping, made on its first use (caller holds the lock)."""
        state = self._streams.get(stream)
        if state is None:
            if not isinstance(stream, str):
                raise ValueError(f'a stream is named by a string, got {stream!r}')
            if len(self._streams) >= MAX_STREAMS:
                raise ValueError(f'stream {stream!r} would be stream {MAX_STREAMS + 1} of this '
                                 f'pipeline; it keeps book for at most {MAX_STREAMS}')
            state = self._streams[stream] = _Stream()
        return state

    def _stream_counters(self, stream: str) -> FrameCounters:
        with self._cond:
            return self._stream(stream).counters

    def _accept(self, info: _Accepted, state: _Stream) -> int:
        """Give a frame the next id and its stream's next seq (caller holds the lock)."""
        frame_id = self._next_id
        self._next_id += 1
        info.seq = state.next_seq
        state.next_seq += 1
        self._accepted[frame_id] = info
        self._counters.accepted()
        state.counters.accepted()
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
            if not self._pool.has_workers() and not self._fatal:
                self._fatal = 'every worker process has died and none could be restarted'
                self._log.error(self._fatal)
                self._cond.notify_all()
        self._push_and_release([(event.frame_id, event) for event in events])
        return True

    def _push_and_release(self, results: List[Tuple[int, Optional[PoolEvent]]]) -> None:
        """
        Put results into their streams' reorder buffers; release what became ready, in order.

        The collector and ``submit_failed`` both release; the release lock makes each
        push-and-release whole, so one can never overtake the other's earlier frames.
        """
        with self._release_lock:
            with self._cond:
                released = []
                for frame_id, event in results:
                    info = self._accepted[frame_id]
                    released.extend(item for _, item in self._streams[info.stream].reorder.push(
                        info.seq, (frame_id, event)))
            for frame_id, event in released:
                self._release(frame_id, event)

    def _release(self, frame_id: int, event: Optional[PoolEvent]) -> None:
        """Hand one frame to on_frame, then free its slot (called in frame order)."""
        with self._cond:
            info = self._accepted.pop(frame_id)
        now = time.monotonic()
        stage = None
        source_size, shape = info.source_size, info.shape
        if info.slot is None:  # failed before intake
            status, result, error, worker, seconds = FrameStatus.FAILED, None, info.error, \
                None, 0.0
            stage = FailureStage.DECODE
        elif event is None:
            status, result, error, worker, seconds = FrameStatus.CANCELLED, None, \
                'cancelled at shutdown before it was processed', None, 0.0
        else:
            status, result, error, worker, seconds = event.status, event.result, event.error, \
                event.worker, event.seconds
            if status is FrameStatus.FAILED:
                stage = event.stage
            if event.source_size is not None:  # decoded by the worker: now we know its size
                source_size = tuple(event.source_size)
                width, height = output_size(*source_size, self.config.output_height,
                                            self.config.max_output_width)
                shape = (height, width)
        image = None
        if info.slot is not None and shape is not None:
            image = self._slots.view(info.slot, *shape)
        frame = CompletedFrame(frame_id, status, result, image, source_size, info.meta,
                               error, stage, worker, now - info.accepted_at, seconds,
                               info.settings, info.stream, info.seq)
        if stage is FailureStage.PROCESS:
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
        self._counters.released(status, now - info.accepted_at, error)
        with self._cond:
            state = self._streams[info.stream]
            state.counters.released(status, now - info.accepted_at, error)
            if info.slot is not None:
                self._free_slots.append(info.slot)
                state.held -= 1
            else:
                self._unread_waiting -= 1
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
            with self._release_lock:
                # by frame id, which keeps each stream's order (ids grow within a stream)
                leftovers = dict(item for state in self._streams.values()
                                 for _, item in state.reorder.pop_all())
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
        if stats.counters.cancelled:
            self._log.warning('%d accepted frame(s) were cancelled at shutdown (not processed)',
                              stats.counters.cancelled)
        return stats

    # ------------------------------------------------------------------------------ status
    def stats(self) -> PipelineStats:
        """Return the counters, slot use and worker health now, in all and per stream."""
        with self._cond:
            slots_in_use = self.config.slot_count() - len(self._free_slots)
            workers = self._pool.status() if self._pool is not None else []
            streams = [(name, state.counters, state.held, state.waiting)
                       for name, state in self._streams.items()]
        return PipelineStats(self._counters.snapshot(), self.config.slot_count(), slots_in_use,
                             workers, {name: StreamStats(counters.snapshot(), held, waiting)
                                       for name, counters, held, waiting in streams})

    @property
    def running(self) -> bool:
        """Return True while the pipeline accepts frames."""
        return self._state == 'running' and not self._fatal


__all__ = ['BackpressureTimeout', 'CompletedFrame', 'DEFAULT_STREAM', 'FailureStage',
           'FramePipeline', 'FrameStatus', 'MAX_STREAMS', 'output_size', 'PipelineConfig',
           'PipelineError', 'PipelineStats', 'StreamStats', 'WorkerInfo', 'WorkerStartError',
           'WorkerStatus']
