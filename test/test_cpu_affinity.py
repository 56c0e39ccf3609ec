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

"""Tests of the CPU pinning plan and of NPU core-mask assignment."""

import os

import pytest

from rk_yolo_ros.core.cpu_affinity import available_cpus, pin_current_process, plan_worker_cpus
from rk_yolo_ros.core.frame_slots import FrameSlots
from rk_yolo_ros.core.worker_pool import validate_core_masks, WorkerPool


def test_plan_uses_listed_cpus_that_exist():
    """Worker i gets the i-th listed CPU when the machine has it."""
    cpus = sorted(available_cpus())
    plan = plan_worker_cpus(cpus, len(cpus))
    assert plan.cpus == cpus and plan.warnings == [] and plan.notes == []


def test_plan_warns_for_missing_cpus_and_short_lists():
    """A layout that partly fits degrades to unpinned workers with a warning each."""
    first = min(available_cpus())
    plan = plan_worker_cpus([first, 4096], 3)
    assert plan.cpus == [first, None, None]
    assert len(plan.warnings) == 2 and plan.notes == []
    assert 'CPU 4096 is not available' in plan.warnings[0]
    assert 'no CPU listed' in plan.warnings[1]
    assert plan_worker_cpus(None, 2).cpus == [None, None]


def test_plan_on_a_machine_without_any_listed_cpu_notes_it_once():
    """The RK3588 big cores on a PC that lacks them: all unpinned, one note, no warnings."""
    plan = plan_worker_cpus([4096, 4097], 3)
    assert plan.cpus == [None, None, None] and plan.warnings == []
    assert len(plan.notes) == 1 and '[4096, 4097]' in plan.notes[0]


def test_pin_current_process_reports_the_cpu_on_failure():
    """Pinning to a CPU that does not exist raises an error naming it."""
    before = os.sched_getaffinity(0)
    with pytest.raises(OSError, match='CPU 4096'):
        pin_current_process(4096)
    assert os.sched_getaffinity(0) == before


def test_core_masks_are_single_npu_cores_round_robin():
    """Worker i gets [1, 2, 4][i % 3]; the joint mask 7 and non-core masks are refused."""
    slots = FrameSlots.create(1, 8, 8)
    try:
        pool = WorkerPool(5, print, slots.layout)
        assert [w.core_mask for w in pool.workers] == [1, 2, 4, 1, 2]
    finally:
        slots.close()
    with pytest.raises(ValueError, match='mask 7 runs one model on all three NPU cores'):
        validate_core_masks([1, 7])
    with pytest.raises(ValueError, match='mask 3 is not a single RK3588 NPU core'):
        validate_core_masks([3])
    with pytest.raises(ValueError, match='start_method'):
        WorkerPool(1, print, None, start_method='thread')
