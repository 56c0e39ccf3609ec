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
The messages between the main process and a worker, one named type each (never bare tuples).

On a worker's task pipe: ``FrameJob`` items, then ``STOP``. On its result pipe: ``WorkerReady``
or ``WorkerInitFailed`` once, then one ``FrameDone`` or ``FrameError`` per job, in job order.
NamedTuples pickle small and fast, and are read by field name on both sides.
"""

from typing import Any, NamedTuple, Optional, Tuple

from rk_yolo_ros.core.frame_processing import FailureStage, FrameTask

STOP = None  # on the task pipe: finish what you hold, then exit


class FrameJob(NamedTuple):
    """One frame for a worker: where it is in shared memory and what to do with it."""

    frame_id: int
    slot: int
    height: int  # of the output-size frame area of the slot
    width: int
    task: FrameTask
    staged: Optional[Tuple[int, int]] = None  # (height, width) of a source in staging
    # > 0: staging holds this many bytes of a compressed source, which the worker decodes;
    # height, width and the task's source_size are then unknown (0) until it has
    encoded: int = 0


class WorkerReady(NamedTuple):
    """The worker built its processor and takes jobs."""

    worker: int
    pid: int
    note: str = ''  # e.g. the CPU it is pinned to, or why pinning failed


class WorkerInitFailed(NamedTuple):
    """The worker could not build its processor (e.g. the model did not load)."""

    worker: int
    pid: int
    error: str  # the traceback


class FrameDone(NamedTuple):
    """A job processed; ``result`` is the processor's small result (e.g. Detections)."""

    worker: int
    frame_id: int
    result: Any
    seconds: float
    source_size: Optional[Tuple[int, int]] = None  # (width, height) of a source it decoded


class FrameError(NamedTuple):
    """A job whose processing raised; ``error`` is the exception and its traceback."""

    worker: int
    frame_id: int
    error: str
    seconds: float
    stage: FailureStage = FailureStage.PROCESS  # DECODE: its compressed bytes did not decode
    source_size: Optional[Tuple[int, int]] = None  # (width, height) of a source it decoded
