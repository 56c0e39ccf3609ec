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
strictly in source order, and its counters account for all of them. A bag read with several
image topics (cameras) gives each topic a stream of its own: each topic's records come strictly
in its order, and the topics' records interleave as they are released (the summary counts
every topic on its own too). The run always ends in a
``RunSummary`` that accounts for every frame read (processed, failed, cancelled; skipped is 0 by
construction and checked) and says what each output holds, and it always closes its outputs,
also on an output error, a source error or a stop signal, so what was processed until then is
kept and readable.

NOTE (stopping): the first stop signal (Ctrl-C, SIGTERM, SIGHUP; see ``stop_signals``) stops
reading and lets the frames already accepted finish (up to ``drain_timeout_s``); a second one
cancels those, and they are reported as cancelled. An output error stops reading at once and
nothing more is written to any output, so the outputs stay consistent with each other.
"""

from collections import Counter
from dataclasses import asdict, dataclass, field
import logging
import queue
import re
import signal
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

from rk_yolo_ros.core import settings as settings_table
from rk_yolo_ros.core.counters import reason_key
from rk_yolo_ros.core.frame_processing import DetectionSettings, FailureStage, FrameStatus
from rk_yolo_ros.core.pipeline import (BackpressureTimeout, CompletedFrame, FramePipeline,
                                       PipelineConfig, PipelineError, PipelineStats,
                                       WorkerStartError)
from rk_yolo_ros.offline.progress import ProgressBar
from rk_yolo_ros.offline.sinks import FrameRecord, input_fields, ResultSink, SinkError
from rk_yolo_ros.offline.sources import FrameSource, SourceError, SourceFrame
from rk_yolo_ros.offline.stop_signals import exit_code_for, signal_name, StopSignals
from rk_yolo_ros.yolo.drawing import draw_overlay, draw_track_ids
from rk_yolo_ros.yolo.tracking import StreamTrackers

EXIT_OK = 0
EXIT_ERROR = 1  # stopped by an error (output, source, workers)
EXIT_USAGE = 2  # bad arguments, source, model or output path: refused before any work
EXIT_FRAMES_FAILED = 3  # finished, but some frames failed
# A stop signal ends a run with 128 + its number: 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP.
FAILURES_SHOWN = 10  # failures the printed summary lists
FAILURES_KEPT = 1000  # failures RunSummary keeps (summary.json); the JSON lines have every one
SUBMIT_POLL_S = 0.2  # how often a submit waiting for a free slot looks for a stop signal


def concise_error(text: str) -> str:
    """
    Return an error text in one line: a traceback becomes its first line and its exception.

    'worker 0 ... failed to start:' + a traceback ending in 'pkg.mod.DecodeError: why' reads
    'worker 0 ... failed to start: DecodeError: why'.
    """
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    if not lines:
        return ''
    if 'Traceback (most recent call last):' not in lines:
        return ' '.join(lines) if len(lines) < 4 else lines[0]
    last = re.sub(r'^(?:\w+\.)+(\w+:)', r'\1', lines[-1])  # drop the module path
    first = lines[0]
    return last if first.startswith('Traceback') else f'{first.rstrip(":")}: {last}'


@dataclass
class RunSummary:
    """What a run did with every frame it read, and what each output holds."""

    source: str
    frames_read: int = 0
    processed: int = 0
    failed: int = 0
    cancelled: int = 0
    skipped: int = 0
    failure_reasons: Dict[str, int] = field(default_factory=dict)
    failures: List[Dict[str, Any]] = field(default_factory=list)  # the first FAILURES_KEPT
    failures_omitted: int = 0  # failures beyond FAILURES_KEPT (each one is in the JSON lines)
    elapsed_s: float = 0.0
    fps: float = 0.0
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    workers: List[Dict[str, Any]] = field(default_factory=list)
    # with several image topics: each topic's frames read, processed, failed, cancelled
    topics: Dict[str, Dict[str, int]] = field(default_factory=dict)
    outputs: List[Dict[str, Any]] = field(default_factory=list)  # ResultSink.report() each
    stopped_by: str = ''  # '' (ran to the end), 'max-frames', 'interrupted', 'error'
    signal: str = ''  # the stop signal that ended the run ('Ctrl-C', 'SIGTERM', 'SIGHUP')
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

    def __init__(self, sinks: Sequence[ResultSink], on_sink_error: Callable[[SinkError], None],
                 depth: int = 8):
        self.sinks = list(sinks)
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
        failed = record.status is FrameStatus.FAILED
        if failed:
            if len(self.summary.failures) < FAILURES_KEPT:
                failure = input_fields(record.meta)
                failure.update(stage=FailureStage(record.stage).value,
                               reason=reason_key(record.error))
                self.summary.failures.append(failure)
            else:
                self.summary.failures_omitted += 1
        if self.progress is not None:
            self.progress.update(1, int(failed))
        self.writer.put(record)


class OfflineRun:
    """Wire a frame source through the pipeline into result sinks, and summarize."""

    def __init__(self, source: FrameSource, processor_factory: Callable[[int, int], Any],
                 config: PipelineConfig, settings: DetectionSettings,
                 sinks: Sequence[ResultSink], progress: Optional[ProgressBar] = None,
                 max_frames: Optional[int] = None, drain_timeout_s: float = 30.0,
                 logger: Optional[logging.Logger] = None,
                 signals: Optional[StopSignals] = None,
                 trackers: Optional[StreamTrackers] = None):
        """
        Keep the parts; ``run`` does the work.

        ``signals`` are the command's stop signals; without them the run catches SIGINT,
        SIGTERM and SIGHUP itself while it runs (in the main thread). ``trackers`` (on or off)
        see every frame of each stream in order and give the records their track ids.
        """
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
        self.signals = signals or StopSignals()
        self.trackers = trackers or StreamTrackers(False)
        self.several = len(source.topics) > 1  # several cameras: one stream per bag topic
        self.summary = RunSummary(source=source.description)
        self._stop = threading.Event()  # an output failed: stop reading
        self._writer = _SinkWriter(self.sinks, self._sink_failed)
        self._outputs = _Outputs(self._writer, self.summary, progress)
        self._stats: Optional[PipelineStats] = None  # the pipeline's, once it closed

    def _sink_failed(self, error: SinkError) -> None:
        """Stop reading after an output error (called from the releasing thread)."""
        self.log.error('%s; stopping (the frames before it are kept)', error)
        self._stop.set()

    def _on_frame(self, frame: CompletedFrame) -> None:
        """Pipeline callback (collector thread, frame order): turn the frame into a record."""
        detections = self.trackers.observe(frame.stream, frame.status, frame.result)
        # the image is a view of a shared-memory slot, reused once this callback returns
        image = None
        if frame.status is FrameStatus.OK and self.settings.draw:  # else no output shows it
            image = frame.image.copy()
            draw_track_ids(image, detections, frame.source_size)
            # the input's own frame number on every frame makes the no-skip guarantee
            # visible in the video (a failed frame shows as a gap in the numbers)
            camera = f'{settings_table.camera_name(frame.stream)}  ' if self.several else ''
            draw_overlay(image, [
                f'{camera}frame {frame.meta.index}  skipped 0',
                f'worker {frame.worker} of {self.config.workers}  '
                f'{frame.latency_s * 1000.0:.0f} ms'])
        self._outputs.emit(FrameRecord(frame.meta, frame.status, detections, image,
                                       frame.source_size, frame.error, frame.latency_s,
                                       frame.worker, frame.stage or FailureStage.PROCESS))

    def run(self) -> RunSummary:
        """Process the source to its end (or max_frames, an error, a stop signal); summarize."""
        installed = not self.signals.installed
        self.signals.install()
        try:
            return self._run()
        finally:
            if installed:
                self.signals.restore()

    def _run(self) -> RunSummary:
        summary = self.summary
        pipeline = FramePipeline(self.config, self.factory, self._on_frame, self.log)
        try:
            with self.signals.raising():  # nothing to finish yet: a signal aborts the start
                pipeline.start()
        except KeyboardInterrupt as error:  # Interrupted (a stop signal), or a bare Ctrl-C
            pipeline.close(drain=False)
            self._interrupted(getattr(error, 'signum', signal.SIGINT), 'while the workers '
                              'started')
            self._close_sinks()
            return summary
        except (WorkerStartError, ValueError, OSError) as error:
            pipeline.close(drain=False)
            summary.error = f'the workers could not start: {concise_error(str(error))}'
            summary.stopped_by, summary.exit_code = 'error', EXIT_ERROR
            self._close_sinks()
            return summary
        self._writer.start()
        started = time.monotonic()
        try:
            self._feed(pipeline)
            self._drain(pipeline, deadline=None, until_stop_signal=True)
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

    def _stopping(self) -> bool:
        """Return True once reading must stop (an output failed, or a stop signal came)."""
        return self._stop.is_set() or self.signals.requested.is_set()

    def _feed(self, pipeline: FramePipeline) -> None:
        """Read the source and submit its frames; decode failures go straight to the outputs."""
        # frames_read is counted at the end (accepted + decode failures): a frame read when a
        # stop signal came is not taken in, so it is not "read".
        read = 0
        for item in self.source.encoded_frames():  # compressed frames: the workers decode
            if self._stopping():
                return
            if item.image is None and item.encoded is None:
                pipeline.submit_failed(item.meta, item.error, stream=item.meta.topic)
            elif not self._submit(pipeline, item):
                return
            read += 1
            if self.max_frames is not None and read >= self.max_frames:
                self.summary.stopped_by = 'max-frames'
                return

    def _submit(self, pipeline: FramePipeline, item: SourceFrame) -> bool:
        """Submit one frame, waiting for a free slot; False if a stop came first."""
        while not self._stopping():
            try:
                # a bag topic is the frame's stream ('' for other sources): its own order
                if item.encoded is not None:  # compressed: a worker decodes it
                    pipeline.submit_encoded(item.encoded, meta=item.meta,
                                            settings=self.settings, timeout=SUBMIT_POLL_S,
                                            stream=item.meta.topic)
                else:
                    pipeline.submit(item.image, meta=item.meta, settings=self.settings,
                                    timeout=SUBMIT_POLL_S, stream=item.meta.topic)
                return True
            except BackpressureTimeout:
                continue  # every slot busy: look for a stop signal, then wait again
        return False

    def _drain(self, pipeline: FramePipeline, deadline: Optional[float],
               until_stop_signal: bool = False) -> bool:
        """Wait until every accepted frame is released; False if stopped or out of time."""
        while not self._stop.is_set() and not self.signals.cancel.is_set():
            if until_stop_signal and self.signals.requested.is_set():
                return False
            if deadline is not None and time.monotonic() >= deadline:
                return False
            if pipeline.flush(timeout=0.2):
                return True
        return False

    def _interrupted(self, signum: int, when: str) -> None:
        """Record that a stop signal ended the run (an error found before it stays the cause)."""
        summary = self.summary
        if summary.stopped_by == 'error':
            return
        name = signal_name(signum)
        summary.stopped_by, summary.signal = 'interrupted', name
        summary.exit_code = exit_code_for(signum)
        summary.error = f'interrupted ({name}) {when}'

    def _shut_down(self, pipeline: FramePipeline) -> None:
        """Let accepted frames finish (a second signal cancels them), stop workers, close sinks."""
        try:
            if self.signals.first is not None:
                self._interrupted(self.signals.first, 'and stopped reading')
                self.log.warning('interrupted (%s): finishing the %d frame(s) in flight (a '
                                 'second signal cancels them)', signal_name(self.signals.first),
                                 pipeline.stats().counters.in_flight)
            try:
                self._drain(pipeline, deadline=time.monotonic() + self.drain_timeout_s)
            except PipelineError:
                pass  # whatever is left is released as cancelled below
            self.summary.workers = [
                {'index': w.index, 'pid': w.pid, 'core_mask': w.core_mask, 'cpu': w.cpu,
                 'frames_done': w.frames_done, 'frames_failed': w.frames_failed,
                 'restarts': w.restarts} for w in pipeline.stats().workers]
            # anything still in flight is released as cancelled
            self._stats = pipeline.close(drain=False)
        finally:
            self._close_sinks()

    def _close_sinks(self) -> None:
        """Let the writer write what is queued and close every sink; keep the first error."""
        self._writer.finish()
        for error in self._writer.close_errors:
            self.log.error('%s', error)
        first = [self._writer.sink_error] if self._writer.sink_error else []
        for error in first + self._writer.close_errors:
            if not self.summary.error:  # the first cause is the run's error
                self.summary.error = str(error)
                self.summary.stopped_by, self.summary.exit_code = 'error', EXIT_ERROR
        self.summary.outputs = [sink.report() for sink in self.sinks]
        if self.progress is not None:
            self.progress.close()

    def _finish(self, started: float) -> None:
        """Fill in the counts, timings and the skip check from the counters; pick the exit code."""
        summary = self.summary
        counters = self._stats.counters if self._stats is not None else None
        if counters is not None:
            summary.frames_read = counters.accepted
            summary.processed, summary.failed = counters.ok, counters.failed
            summary.cancelled = counters.cancelled
            summary.failure_reasons = {key.split(': ', 1)[1]: count
                                       for key, count in counters.reasons.items()
                                       if key.startswith('failed: ')}
            summary.latency_p50_ms = counters.latency_p50_ms
            summary.latency_p99_ms = counters.latency_p99_ms
            if self.several:
                summary.topics = {
                    topic: {'frames_read': stream.counters.accepted,
                            'processed': stream.counters.ok, 'failed': stream.counters.failed,
                            'cancelled': stream.counters.cancelled}
                    for topic, stream in self._stats.streams.items()}
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


def _input_label(failure: Dict[str, Any]) -> str:
    """Name a failed frame: 'frame 5 (a.jpg)', unless its reason names the input already."""
    where = failure.get('file') or ''
    if failure.get('topic'):
        where = f'{failure["topic"]} at t={failure.get("bag_timestamp_ns")} ns'
        if failure['topic'] in failure['reason']:
            where = ''
    if where and where in failure['reason']:
        where = ''
    return f'frame {failure["index"]}' + (f' ({where})' if where else '')


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
        for failure in summary.failures[:FAILURES_SHOWN]:
            lines.append(f'            {_input_label(failure)}: {failure["reason"]}')
        if summary.failed > FAILURES_SHOWN:
            kept = len(summary.failures)
            lines.append(f'            ... and {summary.failed - FAILURES_SHOWN} more ('
                         + (f'summary.json lists all {kept}' if not summary.failures_omitted
                            else f'summary.json lists the first {kept}')
                         + '; the JSON lines output has every one)')
    for topic, counts in summary.topics.items():
        lines.append(f'topic:      {topic}: {counts["frames_read"]} read, '
                     f'{counts["processed"]} processed, {counts["failed"]} failed, '
                     f'{counts["cancelled"]} cancelled')
    lines.append(f'speed:      {summary.fps:.1f} fps over {summary.elapsed_s:.1f} s; latency '
                 f'p50 {summary.latency_p50_ms:.0f} ms, p99 {summary.latency_p99_ms:.0f} ms')
    if summary.workers:
        used = '; '.join(f'#{w["index"]} pid {w["pid"]} core mask {w["core_mask"]} '
                         f'cpu {w["cpu"] if w["cpu"] is not None else "any"}: '
                         f'{w["frames_done"]} frames' for w in summary.workers)
        lines.append(f'workers:    {len(summary.workers)} ({used})')
    for output in summary.outputs:
        lines.append(f'output:     {output["text"]}')
    if summary.stopped_by == 'max-frames':
        lines.append(f'stopped:    after --max-frames {summary.frames_read} frames')
    if summary.error:
        lines.append(f'error:      {summary.error}')
    return '\n'.join(lines)
