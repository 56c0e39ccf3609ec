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

"""Tests of the health policy: diagnostics levels that recover, reasons logged once."""

from rk_yolo_ros.core.counters import CounterSnapshot
from rk_yolo_ros.core.health import HealthMonitor, Level, ReasonLog
from rk_yolo_ros.core.pipeline import PipelineStats, StreamStats, WorkerInfo, WorkerStatus


class Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        """Start at 1000 s."""
        self.now = 1000.0

    def __call__(self):
        """Return the current time."""
        return self.now


def stats(workers_up=3, **counts):
    """Return PipelineStats with the given counts and three workers, some down."""
    workers = [WorkerInfo(i, 100 + i, WorkerStatus.READY if i < workers_up else
                          WorkerStatus.DEAD, [1, 2, 4][i], None, 0, 10, 0, 0)
               for i in range(3)]
    return PipelineStats(CounterSnapshot(**counts), 11, 2, workers)


def pipeline_report(monitor, stats_now, running=True):
    """Return the pipeline report."""
    return monitor.reports(stats_now, running)[0]


def test_levels_follow_the_problems_and_recover():
    """OK; WARN after a rejected frame; OK again RECOVERY_S later; ERROR when stopped."""
    clock = Clock()
    monitor = HealthMonitor(recovery_s=10.0, clock=clock)
    assert pipeline_report(monitor, stats(accepted=5, ok=5)).level is Level.OK
    clock.now += 1
    report = pipeline_report(monitor, stats(accepted=6, ok=6, rejected=1))
    assert report.level is Level.WARN and 'rejected' in report.message
    clock.now += 5
    assert pipeline_report(monitor, stats(accepted=9, ok=9, rejected=1)).level is Level.WARN
    clock.now += 6  # 11 s after the rejection
    report = pipeline_report(monitor, stats(accepted=12, ok=12, rejected=1))
    assert report.level is Level.OK and report.values['frames_rejected'] == '1'
    report = pipeline_report(monitor, stats(accepted=12, ok=12, lost=4))
    assert report.level is Level.WARN and 'lost' in report.message
    assert pipeline_report(monitor, stats(), running=False).level is Level.ERROR


def test_a_worker_down_warns_and_is_reported_itself():
    """One dead worker: the pipeline WARNs, the worker's own status is ERROR."""
    reports = HealthMonitor().reports(stats(workers_up=2), True)
    assert reports[0].level is Level.WARN and '1 of 3 workers down' in reports[0].message
    assert [r.level for r in reports[1:]] == [Level.OK, Level.OK, Level.ERROR]
    assert reports[3].values['state'] == 'dead' and reports[3].values['cpu'] == 'unpinned'


def test_each_camera_gets_a_status_of_its_own_problems():
    """Camera statuses follow their own counters; the pipeline's follows the total."""
    clock = Clock()
    monitor = HealthMonitor(recovery_s=10.0, clock=clock)

    def with_streams(left, right, **total):
        now = stats(**total)
        now.streams = {'left': StreamStats(CounterSnapshot(**left), 3, 1),
                       'right': StreamStats(CounterSnapshot(**right), 1, 0)}
        return now
    monitor.reports(with_streams({'ok': 5}, {'ok': 5}, ok=10), True, ['left', 'right'])
    clock.now += 1
    reports = monitor.reports(with_streams({'ok': 6, 'rejected': 1}, {'ok': 6},
                                           ok=12, rejected=1), True, ['left', 'right'])
    assert [r.name for r in reports] == ['pipeline', 'camera left', 'camera right',
                                         'worker 0', 'worker 1', 'worker 2']
    assert reports[0].level is Level.WARN
    left, right = reports[1], reports[2]
    assert left.level is Level.WARN and 'rejected' in left.message
    assert right.level is Level.OK
    assert (left.values['frames_ok'], left.values['slots_in_use'],
            left.values['waiting_for_a_slot']) == ('6', '3', '1')
    assert 'workers_active' not in left.values
    clock.now += 11
    reports = monitor.reports(with_streams({'ok': 9, 'rejected': 1}, {'ok': 9},
                                           ok=18, rejected=1), True, ['left', 'right'])
    assert [r.level for r in reports[:3]] == [Level.OK] * 3
    reports = monitor.reports(with_streams({}, {}), False, ['left', 'right'])
    assert [r.level for r in reports[:3]] == [Level.ERROR] * 3
    # a camera with no frames yet is reported all the same
    assert monitor.reports(stats(), True, ['rear'])[1].values['frames_ok'] == '0'


def test_each_reason_is_said_once_then_summarized_with_counts():
    """The first occurrence of a reason is logged; repeats come in a periodic summary."""
    clock = Clock()
    log = ReasonLog(summary_s=10.0, clock=clock)
    first = log.note('rejected', 'bad image: step 3 is shorter than one row')
    assert first.startswith('1 frame(s) rejected: bad image: step 3 is shorter')
    assert log.note('rejected', 'bad image: step 3 is shorter than one row') is None
    other = log.note('rejected', "bad image: unsupported image encoding '16UC1'")
    assert other is not None  # another reason is never hidden behind the first
    for _ in range(4):
        log.note('rejected', 'bad image: step 3 is shorter than one row')
    assert log.summary() is None  # not due yet
    clock.now += 10
    summary = log.summary()
    assert summary == 'since the last summary: 5 x rejected: bad image: step 3 is shorter ' \
                      'than one row'
    assert log.summary(force=True) is None  # nothing new
