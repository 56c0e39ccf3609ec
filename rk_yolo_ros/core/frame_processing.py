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


"""What a worker does to one frame: the task it gets, the processor interface, the result types."""

import abc
from dataclasses import dataclass, field
import enum
from typing import Any, Mapping, Optional, Sequence, Tuple

import numpy as np

from rk_yolo_ros.core import settings


class FrameStatus(str, enum.Enum):
    """How an accepted frame ended; every entry point reports exactly these."""

    OK = 'ok'  # processed: its detections are published or written
    FAILED = 'failed'  # could not be read, or the worker raised / died on it
    CANCELLED = 'cancelled'  # shut down before it was processed


class FailureStage(str, enum.Enum):
    """Where a failed frame failed."""

    DECODE = 'decode'  # before intake: the source could not read or decode it
    PROCESS = 'process'  # in a worker: it raised, or died on the frame repeatedly


@dataclass(frozen=True)
class DetectionSettings:
    """Thresholds in force when a frame was accepted; they travel with the frame to the worker."""

    conf_threshold: float = settings.default('conf_threshold')
    iou_threshold: float = settings.default('iou_threshold')
    max_detections: int = settings.default('max_detections')
    classes: Optional[Tuple[int, ...]] = None  # keep only these class ids; None keeps all
    draw: bool = True  # draw the annotation into the frame's slot

    def __post_init__(self):
        """Reject values outside their ranges with the settings' message."""
        for name in ('conf_threshold', 'iou_threshold', 'max_detections'):
            object.__setattr__(self, name, settings.check(name, getattr(self, name)))
        if self.classes is not None:
            object.__setattr__(self, 'classes',
                               tuple(sorted(set(settings.check('classes', self.classes))))
                               or None)

    @classmethod
    def from_settings(cls, values: Mapping[str, Any], draw: bool = True
                      ) -> 'DetectionSettings':
        """Build from setting values (conf/iou thresholds, max_detections, classes)."""
        return cls(conf_threshold=values['conf_threshold'],
                   iou_threshold=values['iou_threshold'],
                   max_detections=values['max_detections'],
                   classes=tuple(values['classes'] or ()) or None, draw=draw)


DEFAULT_STREAM = ''  # the stream of a frame submitted without one (a single-camera pipeline)


@dataclass(frozen=True)
class FrameTask:
    """The small descriptor a worker gets with each frame (the pixels are in its slot)."""

    frame_id: int
    source_size: Tuple[int, int]  # (width, height) of the input before the 720p resize
    settings: Any = None  # DetectionSettings for YOLO processors
    stream: str = DEFAULT_STREAM  # the stream (camera) it is of; any stream reaches any worker


NO_TRACK_ID = -1  # the track id of a detection that belongs to no confirmed track


@dataclass
class Detections:
    """
    Detections of one frame, boxes as x1, y1, x2, y2 in the source input's pixels.

    ``track_ids`` is empty when the frame went through no tracker; after a tracker it holds one
    id per detection: a confirmed track's id (>= 1, never reused), or ``NO_TRACK_ID``.
    """

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    class_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int32))
    labels: Sequence[str] = ()
    track_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))

    def __len__(self):
        """Return the number of detections."""
        return int(self.scores.shape[0])

    @property
    def tracked(self) -> bool:
        """Whether ``track_ids`` holds one id per detection (the frame went through a tracker)."""
        return self.track_ids.shape[0] == self.scores.shape[0]


class FrameProcessor(abc.ABC):
    """
    Worker-side processing of one frame (letterbox, infer, decode, draw).

    Built inside the worker process by a picklable factory called as
    ``factory(worker_index, core_mask)``, so backends load after the process starts.
    """

    @abc.abstractmethod
    def process(self, frame: np.ndarray, task: FrameTask) -> Any:
        """
        Process the 720p BGR frame (a writable view of its slot); return a small result.

        Draw the annotation into ``frame`` in place. The result crosses a pipe back to the
        main process, so it must be small and picklable (``Detections`` for YOLO).
        """

    def close(self) -> None:
        """Release what the processor holds; safe to call twice."""


class StagedFrameProcessor(FrameProcessor):
    """
    A processor split in three so a worker can overlap frames.

    A worker runs ``prepare`` (CPU: letterbox), ``infer`` (the accelerator: the NPU call, during
    which other threads run) and ``finish`` (CPU: decode, draw) on three threads, so the CPU work
    of neighbouring frames hides behind the current frame's inference and one worker keeps its
    NPU core busy back to back. ``prepare`` of one frame may run while ``infer`` of the previous
    one is still reading its input, so ``prepare`` must not reuse a buffer still in use (a ring
    of three is enough: the worker holds at most three frames).

    Where the worker has the input at its own size (it was staged, or decoded in the worker),
    ``prepare`` gets it as ``source``: the model input is made from the source's own pixels (a
    frame smaller than the output is never enlarged first, and a larger one is resized once,
    not twice), and ``frame`` is filled from the source while the frame is on the NPU, so
    ``prepare`` must not read ``frame`` then. ``finish`` always gets ``frame`` filled.
    """

    @abc.abstractmethod
    def prepare(self, frame: np.ndarray, task: FrameTask,
                source: Optional[np.ndarray] = None) -> Any:
        """Do the CPU work before inference (from ``source`` if given); return infer's input."""

    @abc.abstractmethod
    def infer(self, prepared: Any) -> Any:
        """Run the model on what ``prepare`` returned."""

    @abc.abstractmethod
    def finish(self, frame: np.ndarray, task: FrameTask, inferred: Any) -> Any:
        """Turn the inference output into the frame's result; draw into ``frame``."""

    def process(self, frame: np.ndarray, task: FrameTask,
                source: Optional[np.ndarray] = None) -> Any:
        """Run the three stages in a row (``frame`` filled, ``source`` optional)."""
        return self.finish(frame, task, self.infer(self.prepare(frame, task, source)))
