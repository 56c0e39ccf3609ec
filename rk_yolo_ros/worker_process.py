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

Messages are tuples on two one-way pipes per worker (tasks in, results out):

- in:  ``(frame_id, slot, height, width, FrameTask)`` or ``None`` (stop);
- out: ``('ready', index, pid, note)``, ``('init_error', index, pid, text)``,
  ``('done', index, frame_id, result, seconds)``, ``('error', index, frame_id, text, seconds)``.

A worker never swallows a processing error: it goes back as an ``error`` message for that frame.
"""

import os
import signal
import time
import traceback
from typing import Any, Callable, Optional

from rk_yolo_ros.cpu_affinity import pin_current_process
from rk_yolo_ros.frame_slots import FrameSlots, SlotLayout

PARENT_CHECK_SECONDS = 0.5


def _limit_cpu_threads() -> None:
    """Keep each worker to one OpenCV thread: workers are pinned, one per core."""
    try:
        import cv2
        cv2.setNumThreads(1)
    except ImportError:
        pass


def run_worker(index: int, core_mask: int, cpu: Optional[int], layout: SlotLayout,
               processor_factory: Callable[[int, int], Any], task_conn, result_conn,
               parent_pid: int) -> None:
    """Worker process entry point (a module-level function so every start method can run it)."""
    # Ctrl-C reaches the whole process group; the main process decides how to stop us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _limit_cpu_threads()
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
            result_conn.send(('init_error', index, os.getpid(), traceback.format_exc()))
            return
        result_conn.send(('ready', index, os.getpid(), note))
        _serve(index, slots, processor, task_conn, result_conn, parent_pid)
    except (BrokenPipeError, EOFError, ConnectionResetError):
        pass  # the main process is gone; exit quietly, it reports what it lost
    finally:
        if processor is not None:
            processor.close()
        slots.close()


def _serve(index, slots, processor, task_conn, result_conn, parent_pid) -> None:
    """Process tasks until the stop sentinel, or until the parent process is gone."""
    while True:
        while not task_conn.poll(PARENT_CHECK_SECONDS):
            if os.getppid() != parent_pid:
                return
        message = task_conn.recv()
        if message is None:
            return
        frame_id, slot, height, width, task = message
        frame = slots.view(slot, height, width)
        started = time.perf_counter()
        try:
            result = processor.process(frame, task)
        except Exception as exc:
            text = f'{type(exc).__name__}: {exc}\n{traceback.format_exc()}'
            result_conn.send(('error', index, frame_id, text, time.perf_counter() - started))
        else:
            result_conn.send(('done', index, frame_id, result, time.perf_counter() - started))
        finally:
            del frame
