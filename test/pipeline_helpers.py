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


"""Frame processors for the pipeline tests (importable by spawned worker processes)."""

from dataclasses import dataclass
import os
import threading
import time
from typing import NamedTuple, Tuple

import numpy as np

from rk_yolo_ros.core.frame_processing import FrameProcessor, StagedFrameProcessor


@dataclass
class Report:
    """What a test processor saw: enough to check routing, content and in-place drawing."""

    frame_id: int
    worker: int
    core_mask: int
    pid: int
    mean: float
    shape: Tuple[int, ...]
    cpus: Tuple[int, ...]
    stream: str = ''  # the stream the worker was told the frame is of


class RecordingProcessor(FrameProcessor):
    """Sleep a per-frame latency, mark the frame in place, report what it saw."""

    def __init__(self, worker, core_mask, max_latency_s, fail_ids, exit_ids, seed,
                 crash_once_dir, gate_dir='', held_ids=()):
        """Keep the settings of its factory."""
        self.worker, self.core_mask = worker, core_mask
        self.max_latency_s, self.fail_ids, self.exit_ids = max_latency_s, fail_ids, exit_ids
        self.seed, self.crash_once_dir = seed, crash_once_dir
        self.gate_dir, self.held_ids = gate_dir, held_ids

    def wait_for_gate(self, frame_id):
        """Hold the frame until the test opens the gate (all frames, or just this one)."""
        if not self.gate_dir or (self.held_ids and frame_id not in self.held_ids):
            return
        marker = os.path.join(self.gate_dir, 'open')
        while not os.path.exists(marker):
            time.sleep(0.005)

    def process(self, frame, task):
        """Process one frame as the factory asked."""
        self.wait_for_gate(task.frame_id)
        if task.frame_id in self.exit_ids:
            os._exit(3)  # a hard crash, as a segfaulting driver would
        if self.crash_once_dir and task.frame_id == 2:
            marker = os.path.join(self.crash_once_dir, 'crashed')
            if not os.path.exists(marker):
                open(marker, 'w').close()
                frame[:] = 0  # scribble on the frame, then die mid-way
                os._exit(3)
        if task.frame_id in self.fail_ids:
            raise RuntimeError(f'injected failure on frame {task.frame_id}')
        rng = np.random.default_rng(self.seed * 100003 + task.frame_id)
        time.sleep(float(rng.uniform(0.0, self.max_latency_s)))
        mean = float(frame.mean())
        frame[0, 0] = 255 - frame[0, 0]  # drawn in place: the main process must see it
        return Report(task.frame_id, self.worker, self.core_mask, os.getpid(), mean,
                      frame.shape, tuple(sorted(os.sched_getaffinity(0))), task.stream)


@dataclass
class RecordingFactory:
    """Picklable factory for RecordingProcessor."""

    max_latency_s: float = 0.0
    fail_ids: Tuple[int, ...] = ()
    exit_ids: Tuple[int, ...] = ()
    seed: int = 0
    crash_once_dir: str = ''  # crash on frame 2 once, after scribbling on it
    hang_on_restart_dir: str = ''  # a restarted worker hangs while starting
    gate_dir: str = ''  # frames wait until <gate_dir>/open exists
    held_ids: Tuple[int, ...] = ()  # only these frames wait at the gate (empty: all)

    def __call__(self, worker, core_mask):
        """Build the processor inside the worker."""
        if self.hang_on_restart_dir:
            marker = os.path.join(self.hang_on_restart_dir, f'started_{worker}')
            if os.path.exists(marker):
                time.sleep(3600)
            open(marker, 'w').close()
        return RecordingProcessor(worker, core_mask, self.max_latency_s, set(self.fail_ids),
                                  set(self.exit_ids), self.seed, self.crash_once_dir,
                                  self.gate_dir, set(self.held_ids))


class StagedReport(NamedTuple):
    """What a staged test processor saw in each stage, and on which thread."""

    frame_id: int
    input_mean: float  # of what prepare read: the source, else the frame
    input_shape: Tuple[int, ...]
    source_size: Tuple[int, int]  # the task's (width, height)
    prepare_thread: str
    infer_thread: str
    finish_thread: str
    frame_shape: Tuple[int, ...]  # of the output-size frame finish got
    frame_mean: float  # of that frame, before finish marked it


class StagedRecordingProcessor(StagedFrameProcessor):
    """Record which thread ran each stage and in what order; fail in a chosen stage."""

    def __init__(self, worker, core_mask, latency_s, fail_stage):
        """Keep the settings of its factory."""
        self.worker, self.core_mask = worker, core_mask
        self.latency_s, self.fail_stage = latency_s, fail_stage

    def _maybe_fail(self, stage, frame_id):
        if self.fail_stage.get(frame_id) == stage:
            raise ValueError(f'injected {stage} failure on frame {frame_id}')

    def prepare(self, frame, task, source=None):
        """Read the input: the source the worker holds, else the frame the main process wrote."""
        self._maybe_fail('prepare', task.frame_id)
        pixels = source if source is not None else frame
        return task.frame_id, float(pixels.mean()), pixels.shape, task.source_size, \
            threading.current_thread().name

    def infer(self, prepared):
        """Sleep like an NPU call."""
        self._maybe_fail('infer', prepared[0])
        time.sleep(self.latency_s)
        return prepared + (threading.current_thread().name,)

    def finish(self, frame, task, inferred):
        """Mark the frame and report (with the mean of the frame as filled by the worker)."""
        self._maybe_fail('finish', task.frame_id)
        mean = float(frame.mean())
        frame[0, 0] = 255 - frame[0, 0]
        return StagedReport(*inferred, threading.current_thread().name, frame.shape, mean)


@dataclass
class StagedFactory:
    """Picklable factory for StagedRecordingProcessor."""

    latency_s: float = 0.0
    fail_stage: Tuple[Tuple[int, str], ...] = ()

    def __call__(self, worker, core_mask):
        """Build the processor inside the worker."""
        return StagedRecordingProcessor(worker, core_mask, self.latency_s, dict(self.fail_stage))


@dataclass
class BrokenFactory:
    """A factory whose processor cannot be built (like a model that fails to load)."""

    message: str = 'model file /nonexistent.rknn not found'

    def __call__(self, worker, core_mask):
        """Fail the way a backend fails to load."""
        raise FileNotFoundError(self.message)


def make_frame(frame_id: int, width: int = 320, height: int = 180) -> np.ndarray:
    """Return a frame whose uniform value encodes its id (so content can be checked)."""
    return np.full((height, width, 3), frame_id % 200 + 20, np.uint8)
