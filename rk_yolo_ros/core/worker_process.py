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
The worker process: attach the slots, build the processor, process frames until told to stop.

The messages on its two one-way pipes (jobs in, results out) are the named types of
``worker_messages``: ``FrameJob`` or ``STOP`` in; ``WorkerReady`` or ``WorkerInitFailed``, then
``FrameDone`` or ``FrameError`` per job out. A job's ``staged`` is the (height, width) of a
source frame waiting in the slot's staging area, resized here; its ``encoded`` is the size of
compressed bytes waiting there, decoded here (a frame that does not decode goes back as a
``FrameError`` at the DECODE stage; the worker goes on). The staging area is only read, so a
frame re-run after a worker died starts again from the clean input.

A ``StagedFrameProcessor`` runs on three threads (intake + prepare, infer, finish + reply) so
CPU work hides behind inference; any other processor runs frame by frame. Either way results go
back in the order the frames came, and a processing error goes back as an ``error`` message for
that frame, never swallowed.
"""

import dataclasses
import os
import queue
import signal
import threading
import time
import traceback
from typing import Any, Callable, NamedTuple, Optional

import cv2
import numpy as np

from rk_yolo_ros.core.cpu_affinity import pin_current_process
from rk_yolo_ros.core.frame_decoding import decode_frame, FrameDecodeError
from rk_yolo_ros.core.frame_processing import (DetectionSettings, FailureStage, FrameTask,
                                               StagedFrameProcessor)
from rk_yolo_ros.core.frame_slots import FrameSlots, output_size, SlotLayout
from rk_yolo_ros.core.worker_messages import (FrameDone, FrameError, FrameJob, STOP,
                                              WorkerInitFailed, WorkerReady)

PARENT_CHECK_SECONDS = 0.5


def run_worker(index: int, core_mask: int, cpu: Optional[int], layout: SlotLayout,
               processor_factory: Callable[[int, int], Any], task_conn, result_conn,
               parent_pid: int) -> None:
    """Worker process entry point (a module-level function so every start method can run it)."""
    # Ctrl-C and a closing terminal reach the whole process group, systemd's stop the whole
    # cgroup: the main process decides how to stop us (it drains, then sends STOP; a worker
    # killed here would be restarted, or its frames failed). If the main process dies, we
    # notice (next_job) and exit.
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    cv2.setNumThreads(1)  # one core per worker: OpenCV's thread pool would only contend
    note = ''
    if cpu is not None:
        try:
            pin_current_process(cpu)
            note = f'pinned to CPU {cpu}'
        except OSError as exc:
            note = str(exc)
    slots = FrameSlots.attach(layout)
    processor = None
    try:
        try:
            processor = processor_factory(index, core_mask)
        except Exception:
            result_conn.send(WorkerInitFailed(index, os.getpid(), traceback.format_exc()))
            return
        result_conn.send(WorkerReady(index, os.getpid(), note))
        worker = _Worker(index, slots, processor, task_conn, result_conn, parent_pid)
        if isinstance(processor, StagedFrameProcessor):
            worker.serve_staged()
        else:
            worker.serve()
    except (BrokenPipeError, EOFError, ConnectionResetError):
        pass  # the main process is gone; exit quietly, it reports what it lost
    finally:
        if processor is not None:
            processor.close()
        slots.close()


def _error_text(exc: BaseException) -> str:
    """Format a processing error for the main process's log and the frame's status."""
    return f'{type(exc).__name__}: {exc}\n{traceback.format_exc()}'


class _Input(NamedTuple):
    """One job's pixels in this worker: the output-size frame, and the source if we hold it."""

    frame: np.ndarray  # the slot's output-size view (filled from source by ``fill``)
    source: Optional[np.ndarray]  # the input at its own size; None: ``frame`` already holds it
    task: FrameTask  # with the source size of a frame decoded here
    decoded: bool  # it came compressed and was decoded here


def wants_image(task: FrameTask) -> bool:
    """Return False when no one will look at the output-size frame (DetectionSettings.draw)."""
    return not isinstance(task.settings, DetectionSettings) or task.settings.draw


def fill(item: _Input) -> None:
    """Resize (or copy) the source into the output-size frame; nothing when there is none."""
    if item.source is None:
        return
    if item.source.shape == item.frame.shape:
        np.copyto(item.frame, item.source)
    else:
        cv2.resize(item.source, (item.frame.shape[1], item.frame.shape[0]), dst=item.frame,
                   interpolation=cv2.INTER_LINEAR)


class _Worker:
    """The loops of one worker process."""

    def __init__(self, index, slots, processor, task_conn, result_conn, parent_pid):
        """Keep what the loops need."""
        self.index, self.slots, self.processor = index, slots, processor
        self.task_conn, self.result_conn, self.parent_pid = task_conn, result_conn, parent_pid

    def next_job(self) -> Optional[FrameJob]:
        """Return the next job, or STOP on the stop sentinel or when the parent is gone."""
        while not self.task_conn.poll(PARENT_CHECK_SECONDS):
            if os.getppid() != self.parent_pid:
                return STOP
        return self.task_conn.recv()

    def open_input(self, job: FrameJob) -> _Input:
        """
        Find the job's pixels: decode compressed bytes, or view a staged source, or the frame.

        Raises FrameDecodeError for bytes that do not decode. Nothing is resized here.
        """
        if job.encoded:
            source = decode_frame(self.slots.staging_bytes(job.slot, job.encoded))
            height, width = source.shape[:2]
            layout = self.slots.layout
            out_w, out_h = output_size(width, height, layout.max_height, layout.max_width)
            return _Input(self.slots.view(job.slot, out_h, out_w), source,
                          dataclasses.replace(job.task, source_size=(width, height)), True)
        frame = self.slots.view(job.slot, job.height, job.width)
        if job.staged is not None:
            return _Input(frame, self.slots.staging_view(job.slot, *job.staged), job.task,
                          False)
        return _Input(frame, None, job.task, False)

    def reply(self, job: FrameJob, item: Optional[_Input], result: Any, error: Optional[str],
              started: float, stage: FailureStage = FailureStage.PROCESS) -> None:
        """Send one job's result, or its error text, to the main process."""
        seconds = time.perf_counter() - started
        size = item.task.source_size if item is not None and item.decoded else None
        if error is None:
            self.result_conn.send(FrameDone(self.index, job.frame_id, result, seconds, size))
        else:
            self.result_conn.send(FrameError(self.index, job.frame_id, error, seconds, stage,
                                             size))

    def serve(self) -> None:
        """Process frames one at a time until told to stop."""
        while True:
            job = self.next_job()
            if job is STOP:
                return
            started = time.perf_counter()
            try:
                item = self.open_input(job)
            except FrameDecodeError as exc:
                self.reply(job, None, None, str(exc), started, FailureStage.DECODE)
                continue
            try:
                fill(item)
                result = self.processor.process(item.frame, item.task)
            except Exception as exc:
                self.reply(job, item, None, _error_text(exc), started)
            else:
                self.reply(job, item, result, None, started)

    def serve_staged(self) -> None:
        """
        Overlap frames on three threads: intake + prepare + fill, infer, finish + reply.

        The intake thread prepares the model input from the source, hands it to inference,
        and only then fills the output-size frame from the source, so that resize runs while
        the frame is on the NPU instead of before; ``finish`` waits until it is filled.
        """
        to_infer = queue.Queue(maxsize=1)
        to_finish = queue.Queue(maxsize=1)
        failure = []  # an intake thread's unexpected exception, re-raised here

        def intake():
            try:
                while True:
                    job = self.next_job()
                    if job is STOP:
                        return
                    started = time.perf_counter()
                    filled = threading.Event()
                    try:
                        item = self.open_input(job)
                    except FrameDecodeError as exc:
                        filled.set()
                        to_infer.put((job, None, started, None, filled,
                                      (str(exc), FailureStage.DECODE)))
                        continue
                    try:
                        prepared = self.processor.prepare(item.frame, item.task, item.source)
                    except Exception as exc:
                        filled.set()
                        to_infer.put((job, item, started, None, filled,
                                      (_error_text(exc), FailureStage.PROCESS)))
                        continue
                    to_infer.put((job, item, started, prepared, filled, None))
                    try:
                        if wants_image(item.task):  # else the resize is wasted work
                            fill(item)
                    finally:
                        filled.set()
                    del item, prepared
            except BaseException as exc:  # a broken pipe: let the main thread end the process
                failure.append(exc)
            finally:
                to_infer.put(None)

        def infer():
            while True:
                entry = to_infer.get()
                if entry is None:
                    to_finish.put(None)
                    return
                job, item, started, prepared, filled, error = entry
                inferred = None
                if error is None:
                    try:
                        inferred = self.processor.infer(prepared)
                    except Exception as exc:
                        error = (_error_text(exc), FailureStage.PROCESS)
                to_finish.put((job, item, started, inferred, filled, error))
                del entry, item, prepared, inferred

        threads = [threading.Thread(target=intake, name='intake', daemon=True),
                   threading.Thread(target=infer, name='infer', daemon=True)]
        for thread in threads:
            thread.start()
        while True:
            entry = to_finish.get()
            if entry is None:
                break
            job, item, started, inferred, filled, error = entry
            result = None
            filled.wait()
            if error is None:
                try:
                    result = self.processor.finish(item.frame, item.task, inferred)
                except Exception as exc:
                    error = (_error_text(exc), FailureStage.PROCESS)
            if error is None:
                self.reply(job, item, result, None, started)
            else:
                self.reply(job, item, None, error[0], started, error[1])
            del entry, item, result, inferred
        for thread in threads:
            thread.join()
        if failure:
            raise failure[0]
