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


"""CPU pinning: which CPU each worker gets, and pinning the current process to it."""

from dataclasses import dataclass, field
import logging
import os
from typing import List, Optional, Sequence, Set

import psutil

RK3588_BIG_CORES = (4, 5, 6, 7)  # the Cortex-A76 cores; CPUs 0-3 are the A55 little cores
_logger = logging.getLogger(__name__)


def available_cpus() -> Set[int]:
    """Return the CPUs this process may run on."""
    if hasattr(os, 'sched_getaffinity'):
        return set(os.sched_getaffinity(0))
    return set(range(psutil.cpu_count() or 1))


@dataclass
class CpuPlan:
    """Which CPU each worker gets (None: unpinned), and what to tell the user about it."""

    cpus: List[Optional[int]]
    warnings: List[str] = field(default_factory=list)  # a layout that only partly fits
    notes: List[str] = field(default_factory=list)  # e.g. not an RK3588: nothing to pin


def plan_worker_cpus(requested: Optional[Sequence[int]], workers: int) -> CpuPlan:
    """
    Give worker i the CPU ``requested[i]`` where this machine has it, else None.

    A layout that partly fits warns once per unpinned worker, naming the CPU asked for and the
    CPUs available, so it degrades loudly, never crashes. A layout none of whose CPUs exist
    here (the RK3588 default on a PC) leaves every worker unpinned with one note.
    """
    if not requested:
        return CpuPlan([None] * workers)
    usable = available_cpus()
    if not usable.intersection(int(cpu) for cpu in requested):
        return CpuPlan([None] * workers, notes=[
            f'none of the CPUs {list(requested)} is on this machine (it has '
            f'{sorted(usable)}); the workers run unpinned'])
    plan = CpuPlan([])
    for index in range(workers):
        if index >= len(requested):
            plan.cpus.append(None)
            plan.warnings.append(f'worker {index}: no CPU listed for it in cpu_affinity '
                                 f'{list(requested)}; it runs unpinned')
            continue
        cpu = int(requested[index])
        if cpu in usable:
            plan.cpus.append(cpu)
        else:
            plan.cpus.append(None)
            plan.warnings.append(f'worker {index}: CPU {cpu} is not available on this machine '
                                 f'(available: {sorted(usable)}); it runs unpinned')
    return plan


def pin_current_process(cpu: int) -> None:
    """Pin the calling process to one CPU; raise OSError with the CPU named on failure."""
    try:
        psutil.Process().cpu_affinity([cpu])
    except (psutil.Error, OSError, ValueError) as exc:
        raise OSError(f'could not pin process {os.getpid()} to CPU {cpu}: {exc}') from exc
