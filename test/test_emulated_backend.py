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

"""Tests of the emulated NPU backend (for throughput benchmarks only)."""

import time

import numpy as np
import pytest

from rk_yolo_ros.yolo.backends.base import BackendError
from rk_yolo_ros.yolo.backends.emulated import EmulatedBackend


def test_outputs_have_real_yolo_shapes():
    """Ultralytics layout: (1, 84, 8400); model-zoo layout: 3 strides x (64, 80, 1) channels."""
    single = EmulatedBackend(latency_s=0.0)
    single.load()
    image = np.zeros((1, 640, 640, 3), np.uint8)
    assert [o.shape for o in single.infer(image)] == [(1, 84, 8400)]
    split = EmulatedBackend(latency_s=0.0, layout='rknn_split', num_classes=2)
    split.load()
    shapes = [o.shape for o in split.infer(image)]
    assert shapes == [(1, 64, 80, 80), (1, 2, 80, 80), (1, 1, 80, 80),
                      (1, 64, 40, 40), (1, 2, 40, 40), (1, 1, 40, 40),
                      (1, 64, 20, 20), (1, 2, 20, 20), (1, 1, 20, 20)]


def test_latency_is_at_least_the_configured_one():
    """Each inference takes the configured latency (a lower bound; sleeping can overshoot)."""
    backend = EmulatedBackend(latency_s=0.02)
    backend.load()
    image = np.zeros((1, 640, 640, 3), np.uint8)
    started = time.perf_counter()
    for _ in range(5):
        backend.infer(image)
    assert time.perf_counter() - started >= 5 * 0.02


def test_recorded_outputs_are_returned_and_bad_inputs_refused():
    """Recorded outputs replace the synthetic ones; a wrong input shape is an error."""
    recorded = [np.arange(6, dtype=np.float32).reshape(1, 6, 1)]
    backend = EmulatedBackend(latency_s=0.0, recorded_outputs=recorded)
    with pytest.raises(BackendError, match='before load'):
        backend.infer(np.zeros((1, 640, 640, 3), np.uint8))
    backend.load()
    assert np.array_equal(backend.infer(np.zeros((1, 640, 640, 3), np.uint8))[0], recorded[0])
    with pytest.raises(BackendError, match=r'expected a \(1, 640, 640, 3\) uint8'):
        backend.infer(np.zeros((1, 320, 320, 3), np.uint8))
    with pytest.raises(ValueError, match='layout'):
        EmulatedBackend(layout='nope')


def _infer_times(lock_dir, core_mask, count, out):
    """Run ``count`` 50 ms inferences on one core mask; put (start, end) of each on ``out``."""
    backend = EmulatedBackend(latency_s=0.05, npu_lock_dir=lock_dir, core_mask=core_mask)
    backend.load()
    image = np.zeros((1, 640, 640, 3), np.uint8)
    for _ in range(count):
        started = time.monotonic()
        backend.infer(image)
        out.put((core_mask, started, time.monotonic()))
    backend.release()
    backend.release()


def test_npu_lock_runs_one_inference_at_a_time_per_core_across_processes(tmp_path):
    """
    With npu_lock_dir, two processes on core mask 1 take turns, each core its own lock file.

    Eight 50 ms inferences on one core take at least 400 ms however the two processes
    interleave (without the lock they overlap: about 200 ms).
    """
    import multiprocessing
    context = multiprocessing.get_context('spawn')
    out = context.Queue()
    processes = [context.Process(target=_infer_times, args=(str(tmp_path), mask, 4, out))
                 for mask in (1, 1, 2)]
    for process in processes:
        process.start()
    spans = [out.get(timeout=60) for _ in range(12)]
    for process in processes:
        process.join(30)
        assert process.exitcode == 0
    core_1 = [(start, end) for mask, start, end in spans if mask == 1]
    assert len(core_1) == 8
    assert max(end for _, end in core_1) - min(start for start, _ in core_1) >= 8 * 0.05
    assert sorted(p.name for p in tmp_path.iterdir()) == ['npu_core_1.lock', 'npu_core_2.lock']
