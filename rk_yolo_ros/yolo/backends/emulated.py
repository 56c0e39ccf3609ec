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
Emulated NPU backend: a fixed latency and raw outputs of a real YOLO shape.

For throughput benchmarks only: it measures the pipeline around inference, never accuracy. Every
number it produces must be labelled as coming from the emulated backend.

A sleep does not contend for anything: two processes emulating inferences on the same NPU core
would both run at full speed, which no board does. With ``npu_lock_dir`` (benchmarks only, e.g.
one process per camera against one shared pool) the backend holds an exclusive ``fcntl.flock``
on ``<npu_lock_dir>/npu_core_<mask>.lock`` while it sleeps, so inferences on one core mask run
one at a time across processes, as RKNN runs them on one NPU core.
"""

import fcntl
import os
import time
from typing import List, Optional, Sequence, Tuple

import numpy as np

from rk_yolo_ros.yolo.backends.base import Backend, BackendError

LAYOUTS = ('ultralytics', 'rknn_split')
STRIDES = (8, 16, 32)


def _synthetic_ultralytics(width, height, num_classes, rng) -> List[np.ndarray]:
    """Return one (1, 4 + nc, anchors) output with a few confident boxes among low scores."""
    anchors = sum((width // s) * (height // s) for s in STRIDES)
    output = np.zeros((1, 4 + num_classes, anchors), np.float32)
    output[0, 0] = rng.uniform(0, width, anchors)
    output[0, 1] = rng.uniform(0, height, anchors)
    output[0, 2:4] = rng.uniform(8, 96, (2, anchors))
    output[0, 4:] = rng.uniform(0.0, 0.05, (num_classes, anchors))
    hits = rng.choice(anchors, size=min(12, anchors), replace=False)
    classes = rng.integers(0, num_classes, hits.size)
    output[0, 4 + classes, hits] = rng.uniform(0.5, 0.95, hits.size)
    return [output]


def _synthetic_rknn_split(width, height, num_classes, rng) -> List[np.ndarray]:
    """
    Return model-zoo split heads per stride: box (64 ch), class scores (nc), score sum (1).

    Background class scores are as low as a trained model's (a sigmoid of a strongly negative
    logit, well under 1/nc), so their clipped sum stays under the confidence threshold and the
    score-sum prefilter works as it does on real outputs.
    """
    outputs = []
    background = 0.1 / max(1, num_classes)  # summed over the classes: at most 0.1
    for stride in STRIDES:
        grid_h, grid_w = height // stride, width // stride
        box = rng.normal(0.0, 1.0, (1, 64, grid_h, grid_w)).astype(np.float32)
        scores = rng.uniform(0.0, background,
                             (1, num_classes, grid_h, grid_w)).astype(np.float32)
        hits = rng.choice(grid_h * grid_w, size=min(4, grid_h * grid_w), replace=False)
        scores.reshape(num_classes, -1)[rng.integers(0, num_classes, hits.size), hits] = 0.8
        outputs += [box, scores, np.clip(scores.sum(axis=1, keepdims=True), 0, 1)]
    return outputs


class EmulatedBackend(Backend):
    """Sleep a fixed latency per inference and return fixed raw outputs (benchmarks only)."""

    name = 'emulated'

    def __init__(self, latency_s: float = 0.0167, input_size: Tuple[int, int] = (640, 640),
                 layout: str = 'ultralytics', num_classes: int = 80, seed: int = 0,
                 recorded_outputs: Optional[Sequence[np.ndarray]] = None,
                 npu_lock_dir: Optional[str] = None, core_mask: int = 1):
        """
        Store the settings; ``recorded_outputs`` replaces the synthetic outputs.

        ``npu_lock_dir`` (benchmarks only): serialize inferences per ``core_mask`` across
        processes (see the module docstring).
        """
        if latency_s < 0:
            raise ValueError(f'latency_s must be >= 0, got {latency_s}')
        if layout not in LAYOUTS:
            raise ValueError(f'layout must be one of {LAYOUTS}, got {layout!r}')
        self.latency_s = float(latency_s)
        self._input_size = (int(input_size[0]), int(input_size[1]))
        self._layout = layout
        self._num_classes = int(num_classes)
        self._seed = seed
        self._recorded = recorded_outputs
        self._outputs: Optional[List[np.ndarray]] = None
        self.npu_lock_path = (os.path.join(npu_lock_dir, f'npu_core_{int(core_mask)}.lock')
                              if npu_lock_dir else None)
        self._npu_lock = None  # the open lock file, once loaded

    def load(self) -> None:
        """Build (or take) the outputs once; open the NPU core's lock file if one is used."""
        if self.npu_lock_path is not None and self._npu_lock is None:
            try:
                self._npu_lock = open(self.npu_lock_path, 'a')
            except OSError as error:
                raise BackendError(f'emulated backend: cannot open the NPU lock file '
                                   f'{self.npu_lock_path}: {error}') from error
        if self._recorded is not None:
            self._outputs = [np.asarray(output) for output in self._recorded]
            return
        width, height = self._input_size
        rng = np.random.default_rng(self._seed)
        make = _synthetic_ultralytics if self._layout == 'ultralytics' else _synthetic_rknn_split
        self._outputs = make(width, height, self._num_classes, rng)

    @property
    def input_size(self) -> Tuple[int, int]:
        """Model input size as (width, height)."""
        return self._input_size

    def infer(self, image_nhwc: np.ndarray) -> List[np.ndarray]:
        """Check the input, wait out the latency, return the fixed outputs."""
        started = time.perf_counter()
        if self._outputs is None:
            raise BackendError('emulated backend: infer() called before load()')
        width, height = self._input_size
        if image_nhwc.shape != (1, height, width, 3) or image_nhwc.dtype != np.uint8:
            raise BackendError(f'emulated backend: expected a (1, {height}, {width}, 3) uint8 '
                               f'input, got {image_nhwc.dtype} {image_nhwc.shape}')
        if self._npu_lock is None:
            remaining = self.latency_s - (time.perf_counter() - started)
            if remaining > 0:
                time.sleep(remaining)
            return self._outputs
        # one inference at a time on this core, whichever process asks: the wait for the
        # core is part of the inference, the emulated latency starts once it is ours
        fcntl.flock(self._npu_lock.fileno(), fcntl.LOCK_EX)
        try:
            time.sleep(self.latency_s)
        finally:
            fcntl.flock(self._npu_lock.fileno(), fcntl.LOCK_UN)
        return self._outputs

    def release(self) -> None:
        """Close the NPU lock file; safe to call twice."""
        lock, self._npu_lock = self._npu_lock, None
        if lock is not None:
            lock.close()
