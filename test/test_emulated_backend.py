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
