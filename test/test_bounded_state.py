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
Every per-frame structure stays within its documented bound over a long stream (issue #17).

The pipeline, the worker pool and the counters are watched through a real pipeline fed a fast
synthetic stream; the offline run's summary and the node's reason log and stamp-gap detector
through their own long streams. Memory over time is benchmarks/soak.py's job; these tests
check the bounds by design, with no timing.
"""

from collections import Counter
import os
import threading
import time

from pipeline_helpers import make_frame, RecordingFactory

from rk_yolo_ros.core import counters as counters_module
from rk_yolo_ros.core import health
from rk_yolo_ros.core.frame_processing import DetectionSettings, FrameStatus
from rk_yolo_ros.core.pipeline import FramePipeline, MAX_UNREAD_WAITING, PipelineConfig
from rk_yolo_ros.core.stamp_gaps import INTERVALS_KEPT, StampGapDetector
from rk_yolo_ros.offline.run import FAILURES_KEPT, OfflineRun
from rk_yolo_ros.offline.sources import FrameMeta, FrameSource, SourceFrame
from rk_yolo_ros.yolo.letterbox import GEOMETRIES_KEPT, Letterbox

FRAMES = 20000


def small_config(workers=2):
    """Return a pipeline config for small, unpinned test frames."""
    return PipelineConfig(workers=workers, output_height=96, max_output_width=320,
                          cpu_affinity=None, start_timeout=60.0)


class SizeWatch:
    """An on_frame handler that records the largest size of each per-frame structure."""

    def __init__(self):
        """Start with nothing seen."""
        self.pipeline = None
        self.largest = Counter()
        self.statuses = Counter()
        self.next_id = 0
        self.out_of_order = 0

    def sizes(self):
        """Return the sizes now (under the pipeline's lock, so nothing changes meanwhile)."""
        pipeline = self.pipeline
        with pipeline._cond:
            pool = pipeline._pool
            return {'accepted': len(pipeline._accepted),
                    'reorder': sum(len(s.reorder) for s in pipeline._streams.values()),
                    'unread_waiting': pipeline._unread_waiting,
                    'pool_frames': len(pool._pending) + sum(len(w.in_flight)
                                                            for w in pool.workers),
                    'attempts': len(pool._attempts),
                    'latencies': len(pipeline._counters._latencies),
                    'releases': len(pipeline._counters._releases),
                    'reasons': len(pipeline._counters._reasons)}

    def __call__(self, frame):
        """Note one released frame and the sizes now."""
        self.out_of_order += frame.frame_id != self.next_id
        self.next_id = frame.frame_id + 1
        self.statuses[frame.status] += 1
        for name, size in self.sizes().items():
            self.largest[name] = max(self.largest[name], size)


def test_pipeline_state_stays_within_its_bounds_over_a_long_stream():
    """20k frames, some failing in the worker, some unreadable: every structure stays bounded."""
    config = small_config()
    slots = config.slot_count()
    # failing in the worker, each with its own reason (the reasons' cap); never an unread one
    fail_ids = tuple(i for i in range(97, FRAMES, 389) if i % 50 != 49)
    watch = SizeWatch()
    pipeline = FramePipeline(config, RecordingFactory(fail_ids=fail_ids), watch)
    watch.pipeline = pipeline
    unread = 0
    with pipeline:
        for index in range(FRAMES):
            if index % 50 == 49:
                pipeline.submit_failed({'index': index}, f'unreadable frame {index}')
                unread += 1
            else:
                pipeline.submit(make_frame(index), meta={'index': index})
        assert pipeline.flush(timeout=120)
        after = watch.sizes()
    largest = watch.largest
    assert watch.out_of_order == 0 and sum(watch.statuses.values()) == FRAMES
    assert watch.statuses[FrameStatus.FAILED] == unread + len(fail_ids)
    assert largest['accepted'] <= slots + MAX_UNREAD_WAITING
    assert largest['reorder'] <= slots + MAX_UNREAD_WAITING
    assert largest['unread_waiting'] <= MAX_UNREAD_WAITING
    assert largest['pool_frames'] <= slots and largest['attempts'] <= slots
    assert largest['latencies'] <= counters_module.LATENCY_WINDOW
    assert largest['releases'] <= counters_module.RATE_SAMPLES
    assert largest['reasons'] <= counters_module.MAX_REASONS + 1  # + 'failed: other reasons'
    # nothing is kept for a released frame
    assert after['accepted'] == after['reorder'] == after['unread_waiting'] == 0
    assert after['pool_frames'] == after['attempts'] == 0


def test_unreadable_frames_behind_a_slow_one_wait_instead_of_piling_up(tmp_path):
    """submit_failed blocks while MAX_UNREAD_WAITING unread frames wait; nothing is lost."""
    gate = tmp_path / 'open'
    released = []
    pipeline = FramePipeline(small_config(workers=1), GateFactory(str(gate)),
                             lambda frame: released.append((frame.frame_id, frame.status)))
    extra = 20
    with pipeline:
        pipeline.submit(make_frame(0))  # held by the worker until the gate opens

        def feed():
            for index in range(MAX_UNREAD_WAITING + extra):
                pipeline.submit_failed(index, 'unreadable')

        feeder = threading.Thread(target=feed)
        feeder.start()
        deadline = time.monotonic() + 30
        while pipeline.stats().counters.accepted < 1 + MAX_UNREAD_WAITING:
            assert time.monotonic() < deadline, 'the unread frames were not accepted'
            time.sleep(0.01)
        time.sleep(0.3)  # room to overrun the bound, if it could
        assert pipeline.stats().counters.accepted == 1 + MAX_UNREAD_WAITING
        assert feeder.is_alive() and released == []
        gate.touch()
        feeder.join(30)
        assert not feeder.is_alive()
        assert pipeline.flush(timeout=30)
    assert [frame_id for frame_id, _ in released] == list(range(1 + MAX_UNREAD_WAITING + extra))
    assert released[0][1] is FrameStatus.OK
    assert {status for _, status in released[1:]} == {FrameStatus.FAILED}


def test_frames_failed_for_want_of_workers_leave_nothing_behind():
    """When the last worker is gone, its frames fail and the pool forgets them."""
    released = []
    config = PipelineConfig(workers=1, output_height=96, max_output_width=320,
                            cpu_affinity=None, max_restarts=0)
    pipeline = FramePipeline(config, RecordingFactory(exit_ids=(0,)),
                             lambda frame: released.append(frame.status))
    with pipeline:
        for index in range(3):
            pipeline.submit(make_frame(index))
        deadline = time.monotonic() + 30
        while len(released) < 3:
            assert time.monotonic() < deadline, 'the frames were not failed'
            time.sleep(0.01)
        with pipeline._cond:
            assert pipeline._pool._attempts == {} and not pipeline._accepted
    assert released == [FrameStatus.FAILED] * 3


class GateFactory:
    """Picklable factory: frame 0 waits until the gate file exists; the others pass."""

    def __init__(self, gate):
        """Remember the gate file."""
        self.gate = gate

    def __call__(self, worker, core_mask):
        """Build the processor inside the worker."""
        return self

    def process(self, frame, task):
        """Hold frame 0 at the gate."""
        while task.frame_id == 0 and not os.path.exists(self.gate):
            time.sleep(0.01)
        return task.frame_id

    def close(self):
        """Nothing to release."""


class ManyFramesSource(FrameSource):
    """A long synthetic stream: every other frame cannot be read, each for its own reason."""

    def __init__(self, count):
        """Yield ``count`` items."""
        super().__init__(f'{count} synthetic frames')
        self.count = count
        self.total = count
        self.image = make_frame(1, 64, 48)

    def frames(self, select=None):
        """Yield the items in order."""
        for index in range(self.count):
            meta = FrameMeta(index, index * 33_000_000, 'synthetic')
            if index % 2:
                yield SourceFrame(meta, None, f'frame {index} is corrupt in its own way')
            else:
                yield SourceFrame(meta, self.image)


def test_offline_summary_keeps_a_bounded_list_of_failures():
    """A run with thousands of distinct failures keeps only the first few and the counts."""
    count = 4000
    run = OfflineRun(ManyFramesSource(count), RecordingFactory(), small_config(),
                     DetectionSettings(), sinks=[])
    summary = run.run()
    assert summary.frames_read == count and summary.failed == count // 2
    assert summary.skipped == 0
    assert len(summary.failures) == FAILURES_KEPT
    assert len(summary.failure_reasons) <= counters_module.MAX_REASONS + 1


def test_node_reason_log_stays_bounded_over_a_long_stream():
    """Ever new reasons: the seen set and the pending summary stay within their bounds."""
    clock = Clock()
    log = health.ReasonLog(clock=clock)
    largest_seen = largest_pending = 0
    for index in range(FRAMES):
        for kind in health.PROBLEMS:
            log.note(kind, f'reason {index % 997}, case {index}')
        largest_seen = max(largest_seen, len(log._seen))
        largest_pending = max(largest_pending, len(log._pending))
        clock.now += 0.01
        log.summary()
    assert largest_seen <= health.MAX_REASONS_SEEN
    assert largest_pending <= health.MAX_REASONS_PENDING + len(health.PROBLEMS)


def test_node_health_and_stamp_gaps_stay_bounded_over_a_long_stream():
    """The health monitor and the stamp-gap detector keep a fixed amount whatever the length."""
    detector = StampGapDetector()
    period = 33_333_333
    stamp = 0
    missing = 0
    for index in range(FRAMES):
        stamp += period * (3 if index % 100 == 99 else 1)  # a gap of 2 frames every 100
        missing += detector.observe(stamp)
        assert len(detector._intervals) <= INTERVALS_KEPT
    assert missing == 2 * (FRAMES // 100)
    clock = Clock()
    monitor = health.HealthMonitor(clock=clock)
    stats = StatsStub()
    for index in range(FRAMES // 10):
        stats.counters = counters_module.CounterSnapshot(
            accepted=index, ok=index, failed=index // 7, rejected=index // 11,
            lost=index // 13, undelivered=index // 17)
        clock.now += 1.0
        monitor.reports(stats, True)
        assert len(monitor._last_problem) <= len(health.PROBLEMS)


def test_letterbox_keeps_a_bounded_number_of_geometries():
    """Frames of ever new sizes (a folder of photos) do not grow the geometry cache."""
    letterbox = Letterbox((64, 64))
    for width in range(16, 16 + 300):
        tensor, geometry = letterbox(make_frame(0, width, 40))
        assert geometry.frame_size == (width, 40)
        assert len(letterbox._geometries) <= GEOMETRIES_KEPT


class Clock:
    """A settable clock."""

    def __init__(self):
        """Start at 1000 s."""
        self.now = 1000.0

    def __call__(self):
        """Return the time now."""
        return self.now


class StatsStub:
    """The part of PipelineStats the health monitor reads."""

    counters = counters_module.CounterSnapshot()
    workers = []
    slots_total = 8
    slots_in_use = 0
    active_workers = 0
