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
Run the no-skip pipeline over an offline source and write every frame's outcome, in order.

Source frames go into the pipeline; frames the source cannot decode go in as failed
(``FramePipeline.submit_failed``), so the pipeline releases one record per source frame,
strictly in source order, and its counters account for all of them. The run always ends in a
``RunSummary`` that accounts for every frame read (processed, failed, cancelled; skipped is 0 by
construction and checked), and always closes its outputs, also on an output error, a source
error or Ctrl-C, so what was processed until then is kept.

NOTE (stopping): the first Ctrl-C stops reading and lets the frames already accepted finish
(up to ``drain_timeout_s``); a second Ctrl-C cancels those. An output error stops reading at
once and nothing more is written to any output, so the outputs stay consistent with each other.
"""

from collections import Counter
from dataclasses import asdict, dataclass, field
import logging
import queue
import signal
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

from rk_yolo_ros.core.counters import CounterSnapshot, reason_key
from rk_yolo_ros.core.frame_processing import DetectionSettings, FailureStage, FrameStatus
from rk_yolo_ros.core.pipeline import (CompletedFrame, FramePipeline, PipelineConfig,
                                       PipelineError, WorkerStartError)
from rk_yolo_ros.offline.progress import ProgressBar
from rk_yolo_ros.offline.sinks import FrameRecord, ResultSink, SinkError
from rk_yolo_ros.offline.sources import FrameSource, SourceError
from rk_yolo_ros.yolo.drawing import draw_overlay

EXIT_OK = 0
EXIT_ERROR = 1  # stopped by an error (output, source, workers)
EXIT_USAGE = 2  # bad arguments or a source that cannot be opened
EXIT_FRAMES_FAILED = 3  # finished, but some frames failed
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT
FAILURES_LISTED = 10


@dataclass
class RunSummary:
    """What a run did with every frame it read."""

    source: str
    frames_read: int = 0
    processed: int = 0
    failed: int = 0
    cancelled: int = 0
    skipped: int = 0
    written: int = 0  # frames whose records reached the outputs
    failure_reasons: Dict[str, int] = field(default_factory=dict)
    failures: List[Dict[str, Any]] = field(default_factory=list)  # the first few, with reasons
    elapsed_s: float = 0.0
    fps: float = 0.0
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    workers: List[Dict[str, Any]] = field(default_factory=list)
    outputs: List[str] = field(default_factory=list)
    stopped_by: str = ''  # '' (ran to the end), 'max-frames', 'interrupted', 'error'
    error: str = ''
    exit_code: int = EXIT_OK

    def to_json(self) -> Dict[str, Any]:
        """Return the summary as a JSON-able dict."""
        return asdict(self)


class _SinkWriter:
    """
    The one thread that opens, writes and closes every sink (sqlite3 needs one thread).

    Its queue is bounded: a slow disk holds up the pipeline's release, which frees no slots,
    which blocks intake. Backpressure all the way back to the source, never a dropped frame.
    """

    def __init__(self, sinks: Sequence[ResultSink], summary: RunSummary,
                 on_sink_error: Callable[[SinkError], None], depth: int = 8):
        self.sinks = list(sinks)
        self.summary = summary
        self.on_sink_error = on_sink_error
        self.sink_error: Optional[SinkError] = None
        self.close_errors: List[SinkError] = []
        self._queue: 'queue.Queue[Optional[FrameRecord]]' = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._loop, name='rk_yolo_sink_writer',
                                        daemon=True)

    def start(self) -> None:
        """Start the writer thread (it creates the sinks)."""
        self._thread.start()

    def put(self, record: FrameRecord) -> None:
        """Queue one record (blocks while the queue is full)."""
        self._queue.put(record)

    def finish(self) -> None:
        """Let the thread write what is queued, close the sinks and end; wait for it."""
        if self._thread.ident is None:  # never started: nothing was opened
            self._close_all()
            return
        self._queue.put(None)
        while self._thread.is_alive():
            self._thread.join(0.2)

    def _loop(self) -> None:
        try:
            for sink in self.sinks:
                sink.create()
        except SinkError as error:
            self._failed(error)
        try:
            while True:
                record = self._queue.get()
                if record is None:
                    return
                if self.sink_error is not None:
                    continue  # an output failed: write nothing more anywhere (consistency)
                try:
                    for sink in self.sinks:
                        sink.write(record)
                except SinkError as error:
                    self._failed(error)
                else:
                    self.summary.written += 1
        finally:
            self._close_all()

    def _close_all(self) -> None:
        for sink in self.sinks:
            try:
                sink.close()
            except SinkError as error:
                self.close_errors.append(error)

    def _failed(self, error: SinkError) -> None:
        self.sink_error = error
        self.on_sink_error(error)


class _Outputs:
    """Account for records (already in source order) and pass them to the writer."""

    def __init__(self, writer: _SinkWriter, summary: RunSummary,
                 progress: Optional[ProgressBar]):
        self.writer = writer
        self.summary = summary
        self.progress = progress
        self.last_release = 0.0

    def emit(self, record: FrameRecord) -> None:
        """Take one record (its image must be a private copy)."""
        self.last_release = time.monotonic()
        if record.status is FrameStatus.FAILED and len(self.summary.failures) < FAILURES_LISTED:
            self.summary.failures.append({'index': record.meta.index,
                                          'reason': reason_key(record.error)})
        if self.progress is not None:
            self.progress.update(1, int(record.status is FrameStatus.FAILED))
        self.writer.put(record)


class OfflineRun:
    """Wire a frame source through the pipeline into result sinks, and summarize."""

    def __init__(self, source: FrameSource, processor_factory: Callable[[int, int], Any],
                 config: PipelineConfig, settings: DetectionSettings,
                 sinks: Sequence[ResultSink], progress: Optional[ProgressBar] = None,
                 max_frames: Optional[int] = None, drain_timeout_s: float = 30.0,
                 logger: Optional[logging.Logger] = None):
        """Keep the parts; ``run`` does the work."""
        if max_frames is not None and max_frames < 1:
            raise ValueError(f'max_frames must be >= 1, got {max_frames}')
        self.source = source
        self.factory = processor_factory
        self.config = config
        self.settings = settings
        self.sinks = list(sinks)
        self.progress = progress
        self.max_frames = max_frames
        self.drain_timeout_s = drain_timeout_s
        self.log = logger or logging.getLogger('rk_yolo_ros.offline')
        self.summary = RunSummary(source=source.description)
        self._stop = threading.Event()
        self._writer = _SinkWriter(self.sinks, self.summary, self._sink_failed)
        self._outputs = _Outputs(self._writer, self.summary, progress)
        self._counters: Optional[CounterSnapshot] = None  # the pipeline's, once it closed

    def _sink_failed(self, error: SinkError) -> None:
        """Stop reading after an output error (called from the releasing thread)."""
        self.log.error('%s; stopping (the frames before it are kept)', error)
        self._stop.set()

    def _on_frame(self, frame: CompletedFrame) -> None:
        """Pipeline callback (collector thread, frame order): turn the frame into a record."""
        # the image is a view of a shared-memory slot, reused once this callback returns
        image = None
        if frame.status is FrameStatus.OK:
            image = frame.image.copy()
            # the frame id on every frame makes the no-skip guarantee visible in the video
            draw_overlay(image, [
                f'frame {frame.frame_id}  skipped 0',
                f'worker {frame.worker} of {self.config.workers}  '
                f'{frame.latency_s * 1000.0:.0f} ms'])
        self._outputs.emit(FrameRecord(frame.meta, frame.status, frame.result, image,
                                       frame.source_size, frame.error, frame.latency_s,
                                       frame.worker, frame.stage or FailureStage.PROCESS))

    def run(self) -> RunSummary:
        """Process the source to its end (or max_frames, an error, Ctrl-C); return the summary."""
        summary = self.summary
        pipeline = FramePipeline(self.config, self.factory, self._on_frame, self.log)
        try:
            pipeline.start()
        except (WorkerStartError, ValueError, OSError, KeyboardInterrupt) as error:
            interrupted = isinstance(error, KeyboardInterrupt)
            summary.error = ('interrupted (Ctrl-C) while the workers started' if interrupted
                             else f'the workers could not start: {error}')
            summary.stopped_by = 'interrupted' if interrupted else 'error'
            summary.exit_code = EXIT_INTERRUPTED if interrupted else EXIT_ERROR
            self._close_sinks()
            return summary
        self._writer.start()
        started = time.monotonic()
        try:
            self._feed(pipeline)
            if not self._stop.is_set():
                pipeline.flush()
        except KeyboardInterrupt:
            summary.stopped_by, summary.exit_code = 'interrupted', EXIT_INTERRUPTED
            summary.error = 'interrupted (Ctrl-C): stopped reading'
            self.log.warning('interrupted: finishing the %d frame(s) in flight (Ctrl-C again to '
                             'cancel them)', pipeline.stats().counters.in_flight)
        except SourceError as error:
            summary.stopped_by, summary.exit_code = 'error', EXIT_ERROR
            summary.error = str(error)
        except PipelineError as error:
            summary.stopped_by, summary.exit_code = 'error', EXIT_ERROR
            summary.error = f'the pipeline stopped: {error}'
        finally:
            self._shut_down(pipeline)
        self._finish(started)
        return summary

    def _feed(self, pipeline: FramePipeline) -> None:
        """Read the source and submit its frames; decode failures go straight to the outputs."""
        # frames_read is counted at the end (accepted + decode failures): a frame that Ctrl-C
        # caught before the pipeline accepted it was not taken in, so it is not "read".
        read = 0
        for item in self.source.encoded_frames():  # compressed frames: the workers decode
            if self._stop.is_set():
                return
            if item.encoded is not None:
                pipeline.submit_encoded(item.encoded, meta=item.meta, settings=self.settings,
                                        timeout=None)
            elif item.image is None:
                pipeline.submit_failed(item.meta, item.error)
            else:
                pipeline.submit(item.image, meta=item.meta, settings=self.settings,
                                timeout=None)
            read += 1
            if self.max_frames is not None and read >= self.max_frames:
                self.summary.stopped_by = 'max-frames'
                return

    def _shut_down(self, pipeline: FramePipeline) -> None:
        """Let accepted frames finish (Ctrl-C again cancels them), stop workers, close sinks."""
        second_interrupt = threading.Event()
        restore = None
        if threading.current_thread() is threading.main_thread():
            restore = signal.signal(signal.SIGINT, lambda *_: second_interrupt.set())
        try:
            deadline = time.monotonic() + self.drain_timeout_s
            while not self._stop.is_set() and not second_interrupt.is_set() \
                    and time.monotonic() < deadline:
                try:
                    if pipeline.flush(timeout=0.2):
                        break
                except PipelineError:
                    break
            self.summary.workers = [
                {'index': w.index, 'pid': w.pid, 'core_mask': w.core_mask, 'cpu': w.cpu,
                 'frames_done': w.frames_done, 'frames_failed': w.frames_failed,
                 'restarts': w.restarts} for w in pipeline.stats().workers]
            # anything still in flight is released as cancelled
            self._counters = pipeline.close(drain=False).counters
        finally:
            try:
                self._close_sinks()  # a Ctrl-C now must not leave the bag without metadata
            finally:
                if restore is not None:
                    signal.signal(signal.SIGINT, restore)

    def _close_sinks(self) -> None:
        """Let the writer write what is queued and close every sink; keep the first error."""
        self._writer.finish()
        if self._writer.sink_error is not None and not self.summary.error:
            self.summary.error = str(self._writer.sink_error)
            self.summary.stopped_by, self.summary.exit_code = 'error', EXIT_ERROR
        for error in self._writer.close_errors:
            self.log.error('%s', error)
            if not self.summary.error:
                self.summary.error = str(error)
                self.summary.stopped_by, self.summary.exit_code = 'error', EXIT_ERROR
        self.summary.outputs = [sink.describe() for sink in self.sinks]
        if self.progress is not None:
            self.progress.close()

    def _finish(self, started: float) -> None:
        """Fill in the counts, timings and the skip check from the counters; pick the exit code."""
        summary, counters = self.summary, self._counters
        sink_error = self._writer.sink_error
        if sink_error is not None and summary.exit_code in (EXIT_OK, EXIT_FRAMES_FAILED):
            summary.stopped_by, summary.exit_code = 'error', EXIT_ERROR
            summary.error = str(sink_error)
        if counters is not None:
            summary.frames_read = counters.accepted
            summary.processed, summary.failed = counters.ok, counters.failed
            summary.cancelled = counters.cancelled
            summary.failure_reasons = {key.split(': ', 1)[1]: count
                                       for key, count in counters.reasons.items()
                                       if key.startswith('failed: ')}
            summary.latency_p50_ms = counters.latency_p50_ms
            summary.latency_p99_ms = counters.latency_p99_ms
        end = self._outputs.last_release or time.monotonic()
        summary.elapsed_s = max(0.0, end - started)
        if summary.elapsed_s > 0:
            summary.fps = summary.processed / summary.elapsed_s
        # Every frame read must be accounted for; anything else is a bug, said loudly.
        summary.skipped = summary.frames_read - summary.processed - summary.failed \
            - summary.cancelled
        if summary.skipped:
            summary.error = (summary.error + '; ' if summary.error else '') + \
                f'BUG: {summary.skipped} frame(s) unaccounted for'
            summary.exit_code = EXIT_ERROR
        if summary.exit_code == EXIT_OK and summary.failed:
            summary.exit_code = EXIT_FRAMES_FAILED


def format_summary(summary: RunSummary) -> str:
    """Return the human-readable closing summary."""
    lines = [f'source:     {summary.source}',
             f'frames:     {summary.frames_read} read, {summary.processed} processed, '
             f'{summary.failed} failed, {summary.cancelled} cancelled',
             f'skipped:    {summary.skipped} (the pipeline never skips: every frame read is '
             'processed or reported as failed)' if not summary.skipped else
             f'skipped:    {summary.skipped} (unexpected: please report this)']
    if summary.failed:
        kinds = ', '.join(f'{kind}: {count}' for kind, count in
                          Counter(summary.failure_reasons).most_common())
        lines.append(f'failures:   {kinds}')
        for failure in summary.failures:
            lines.append(f'            frame {failure["index"]}: {failure["reason"]}')
        if summary.failed > len(summary.failures):
            lines.append(f'            ... and {summary.failed - len(summary.failures)} more '
                         '(see the JSON lines output)')
    lines.append(f'speed:      {summary.fps:.1f} fps over {summary.elapsed_s:.1f} s; latency '
                 f'p50 {summary.latency_p50_ms:.0f} ms, p99 {summary.latency_p99_ms:.0f} ms')
    if summary.workers:
        used = '; '.join(f'#{w["index"]} pid {w["pid"]} core mask {w["core_mask"]} '
                         f'cpu {w["cpu"] if w["cpu"] is not None else "any"}: '
                         f'{w["frames_done"]} frames' for w in summary.workers)
        lines.append(f'workers:    {len(summary.workers)} ({used})')
    for output in summary.outputs:
        lines.append(f'output:     {output}')
    if summary.stopped_by == 'max-frames':
        lines.append(f'stopped:    after --max-frames {summary.frames_read} frames')
    if summary.error:
        lines.append(f'error:      {summary.error}')
    return '\n'.join(lines)
