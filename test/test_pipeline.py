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


"""Tests of the no-skip frame pipeline: order, backpressure, crashes, shutdown, clean /dev/shm."""

import logging
import os
import signal
import subprocess
import sys
import threading
import time

from pipeline_helpers import BrokenFactory, make_frame, RecordingFactory, StagedFactory
import pytest

from rk_yolo_ros.core.frame_slots import SEGMENT_PREFIX
from rk_yolo_ros.core.pipeline import (BackpressureTimeout, FailureStage, FramePipeline,
                                       FrameStatus, output_size, PipelineConfig,
                                       PipelineError)
from rk_yolo_ros.core.worker_pool import WorkerStartError

# launch_testing's pytest plugin makes loggers created after it non-propagating (launch's
# LaunchLogger), which would hide our records from caplog; give the pipelines a logger that does.
LOGGER = logging.getLogger('rk_yolo_ros_test_pipeline')
LOGGER.propagate = True


def our_segments():
    """Return this process's shared-memory segments in /dev/shm."""
    return [n for n in os.listdir('/dev/shm') if n.startswith(f'{SEGMENT_PREFIX}{os.getpid()}_')]


def small_config(**overrides):
    """Return a config for small frames, unpinned (the test machine has no big cores)."""
    values = {'workers': 3, 'output_height': 180, 'max_output_width': 320,
              'cpu_affinity': None, 'start_timeout': 60.0}
    values.update(overrides)
    return PipelineConfig(**values)


class Collector:
    """An on_frame handler that records what the pipeline released."""

    def __init__(self, pipeline_ref=None):
        """Start empty."""
        self.frames = []
        self.first_pixels = []
        self.max_in_flight = 0
        self.pipeline = pipeline_ref

    def __call__(self, frame):
        """Record one released frame."""
        self.frames.append(frame)
        if frame.image is not None:  # None: the frame failed before intake
            self.first_pixels.append(int(frame.image[0, 0, 0]))
        if self.pipeline is not None:
            self.max_in_flight = max(self.max_in_flight, self.pipeline.stats().counters.in_flight)


def run_frames(pipeline, count, **frame_args):
    """Submit ``count`` frames and wait for all of them."""
    for index in range(count):
        pipeline.submit(make_frame(index, **frame_args), meta={'seq': index})
    assert pipeline.flush(timeout=60)


def test_output_size_keeps_aspect_and_caps_width():
    """Frames go to 720 rows with the aspect kept; too-wide ones fit the width cap."""
    assert output_size(1920, 1080, 720, 1280) == (1280, 720)
    assert output_size(640, 480, 720, 1280) == (960, 720)
    assert output_size(4000, 1000, 720, 1280) == (1280, 320)


def test_frames_come_back_in_order_under_random_latency():
    """Random per-frame latencies on 3 workers: every frame once, in order, content intact."""
    collector = Collector()
    pipeline = FramePipeline(small_config(), RecordingFactory(max_latency_s=0.02, seed=1),
                             collector)
    with pipeline:
        run_frames(pipeline, 60)
        stats = pipeline.stats()
    ids = [f.frame_id for f in collector.frames]
    assert ids == list(range(60))
    assert [f.meta['seq'] for f in collector.frames] == list(range(60))
    assert all(f.status == 'ok' for f in collector.frames)
    for frame in collector.frames:
        assert frame.result.frame_id == frame.frame_id
        assert frame.result.mean == pytest.approx(frame.frame_id % 200 + 20)
        assert frame.result.shape == (180, 320, 3)
        assert frame.source_size == (320, 180)
    # each worker marked the pixel in place, and the main process saw the mark
    assert collector.first_pixels == [255 - (i % 200 + 20) for i in range(60)]
    assert {f.worker for f in collector.frames} == {0, 1, 2}
    assert {f.result.core_mask for f in collector.frames} == {1, 2, 4}
    assert all(f.result.core_mask == [1, 2, 4][f.worker] for f in collector.frames)
    counters = stats.counters
    assert (counters.ok, counters.accepted, counters.cancelled) == (60, 60, 0)
    assert our_segments() == []


def test_frames_are_resized_to_output_height():
    """A 640x360 input arrives in the worker as 320x180 (the configured output height)."""
    collector = Collector()
    with FramePipeline(small_config(workers=1), RecordingFactory(), collector) as pipeline:
        pipeline.submit(make_frame(3, width=640, height=360))
        assert pipeline.flush(timeout=30)
    assert collector.frames[0].result.shape == (180, 320, 3)
    assert collector.frames[0].source_size == (640, 360)


def test_backpressure_blocks_producer_and_drops_nothing():
    """A slow worker and a fast producer: submit blocks, nothing is dropped, slots bound it."""
    collector = Collector()
    config = small_config(workers=1, slots=3)
    pipeline = FramePipeline(config, RecordingFactory(max_latency_s=0.06, seed=2), collector)
    collector.pipeline = pipeline
    with pipeline:
        waits = []
        for index in range(12):
            before = time.monotonic()
            pipeline.submit(make_frame(index))
            waits.append(time.monotonic() - before)
        # the first 3 fit in free slots; later submits had to wait for a slot
        assert max(waits[:3]) < 0.05
        assert sum(waits[3:]) > 0.05
        with pytest.raises(BackpressureTimeout):
            # all slots are busy right after a burst; a tiny timeout must refuse, not drop
            for index in range(12, 20):
                pipeline.submit(make_frame(index), timeout=0.0)
        assert pipeline.flush(timeout=30)
        stats = pipeline.stats()
    assert [f.frame_id for f in collector.frames] == list(range(stats.counters.accepted))
    assert stats.counters.accepted >= 12 and stats.counters.ok == stats.counters.accepted
    assert collector.max_in_flight <= 3


def test_worker_exception_yields_error_frame_in_order(caplog):
    """A processing exception on one frame gives that frame an error status; others go on."""
    collector = Collector()
    with caplog.at_level(logging.ERROR):
        with FramePipeline(small_config(workers=2), RecordingFactory(fail_ids=(5, 9)),
                           collector, logger=LOGGER) as pipeline:
            run_frames(pipeline, 15)
            stats = pipeline.stats()
    assert [f.frame_id for f in collector.frames] == list(range(15))
    failed = [f for f in collector.frames if f.status is FrameStatus.FAILED]
    assert [f.frame_id for f in failed] == [5, 9]
    assert 'injected failure on frame 5' in failed[0].error
    assert failed[0].result is None
    assert stats.counters.failed == 2 and stats.counters.ok == 13
    assert 'frame 5 failed' in caplog.text


def test_sigkill_of_a_worker_mid_stream_is_recovered(caplog):
    """Kill a worker mid-stream: it is named, restarted, its frames re-run; output complete."""
    collector = Collector()
    killed = []

    def on_frame(frame):
        collector(frame)
        if frame.frame_id == 8 and not killed:
            victim = pipeline.stats().workers[1]
            killed.append(victim)
            os.kill(victim.pid, signal.SIGKILL)

    pipeline = FramePipeline(small_config(), RecordingFactory(max_latency_s=0.03, seed=3),
                             on_frame, logger=LOGGER)
    with caplog.at_level(logging.WARNING):
        with pipeline:
            run_frames(pipeline, 50)
            workers = pipeline.stats().workers
    assert [f.frame_id for f in collector.frames] == list(range(50))
    assert all(f.status == 'ok' for f in collector.frames)
    assert workers[1].restarts == 1 and workers[1].pid != killed[0].pid
    assert f'pid {killed[0].pid}' in caplog.text and 'SIGKILL' in caplog.text
    assert our_segments() == []


def test_workers_leave_stopping_to_the_main_process():
    """SIGTERM, SIGINT and SIGHUP sent to the workers (systemd, a terminal) stop none of them."""
    collector = Collector()
    sent = []

    def on_frame(frame):
        collector(frame)
        if frame.frame_id == 5 and not sent:
            for worker in pipeline.stats().workers:
                for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    os.kill(worker.pid, number)
                    sent.append(number)

    pipeline = FramePipeline(small_config(workers=2), RecordingFactory(max_latency_s=0.02),
                             on_frame, logger=LOGGER)
    with pipeline:
        run_frames(pipeline, 30)
        workers = pipeline.stats().workers
    assert len(sent) == 6
    assert [f.frame_id for f in collector.frames] == list(range(30))
    assert all(f.status is FrameStatus.OK for f in collector.frames)
    assert [w.restarts for w in workers] == [0, 0]


def test_rerun_after_a_crash_starts_from_the_clean_input(tmp_path):
    """A worker that scribbles on a frame and dies: the re-run sees the input as it came."""
    collector = Collector()
    factory = RecordingFactory(crash_once_dir=str(tmp_path))
    with FramePipeline(small_config(workers=2), factory, collector) as pipeline:
        run_frames(pipeline, 6)  # already at the output size: staged and copied by the worker
    assert (tmp_path / 'crashed').exists()
    assert [f.status for f in collector.frames] == ['ok'] * 6
    assert collector.frames[2].result.mean == pytest.approx(2 % 200 + 20)


def test_a_restart_that_hangs_is_killed_and_the_stream_goes_on(tmp_path, caplog):
    """A restarted worker that never becomes ready is killed after start_timeout; no stall."""
    collector = Collector()
    killed = []

    def on_frame(frame):
        collector(frame)
        if frame.frame_id == 3 and not killed:
            killed.append(pipeline.stats().workers[0].pid)
            os.kill(killed[0], signal.SIGKILL)

    # 5 s: long enough for the first start on a loaded 2-core machine, short for the test
    config = small_config(workers=2, start_timeout=5.0, max_restarts=2)
    factory = RecordingFactory(max_latency_s=0.02, hang_on_restart_dir=str(tmp_path))
    pipeline = FramePipeline(config, factory, on_frame, logger=LOGGER)
    with caplog.at_level(logging.ERROR):
        with pipeline:
            run_frames(pipeline, 40)
            time.sleep(11.0)  # both restarts time out meanwhile
            workers = pipeline.stats().workers
    assert [f.frame_id for f in collector.frames] == list(range(40))
    assert all(f.status == 'ok' for f in collector.frames)
    assert workers[0].status == 'dead' and workers[0].restarts == 2
    assert workers[1].frames_done > 0
    assert 'was not ready within 5 s' in caplog.text


def test_frame_that_kills_workers_is_failed_not_stalled():
    """A frame that crashes every worker running it is failed after max_attempts; no stall."""
    collector = Collector()
    config = small_config(workers=2, max_restarts=5, max_attempts=2)
    with FramePipeline(config, RecordingFactory(exit_ids=(4,)), collector) as pipeline:
        run_frames(pipeline, 10)
    assert [f.frame_id for f in collector.frames] == list(range(10))
    assert [f.frame_id for f in collector.frames if f.status != 'ok'] == [4]
    assert 'died 2 times' in collector.frames[4].error


def test_frames_that_failed_before_intake_keep_their_place_in_the_order():
    """submit_failed frames take no slot, reach no worker, and are released FAILED in place."""
    collector = Collector()
    unreadable = {2, 3, 7, 11}
    with FramePipeline(small_config(), RecordingFactory(max_latency_s=0.03, seed=5),
                       collector) as pipeline:
        for index in range(12):
            if index in unreadable:
                pipeline.submit_failed({'seq': index}, f'frame {index} could not be decoded')
            else:
                pipeline.submit(make_frame(index), meta={'seq': index})
        assert pipeline.flush(timeout=30)
        counters = pipeline.stats().counters
    assert [f.meta['seq'] for f in collector.frames] == list(range(12))
    assert [f.frame_id for f in collector.frames] == list(range(12))
    failed = [f for f in collector.frames if f.status is FrameStatus.FAILED]
    assert [f.meta['seq'] for f in failed] == sorted(unreadable)
    assert all(f.stage is FailureStage.DECODE and f.image is None and f.worker is None
               for f in failed)
    assert failed[0].error == 'frame 2 could not be decoded'
    assert (counters.accepted, counters.ok, counters.failed) == (12, 8, 4)
    assert counters.reasons['failed: frame 2 could not be decoded'] == 1


def test_close_with_frames_in_flight_cancels_and_accounts_for_all():
    """Closing without drain reports every unfinished frame as cancelled, in order, once."""
    collector = Collector()
    pipeline = FramePipeline(small_config(workers=1, slots=6),
                             RecordingFactory(max_latency_s=0.5, seed=4), collector)
    pipeline.start()
    for index in range(5):
        pipeline.submit(make_frame(index))
    stats = pipeline.close(drain=False)
    again = pipeline.close()
    assert [f.frame_id for f in collector.frames] == list(range(5))
    assert stats.counters.cancelled >= 3 and stats.counters.ok + stats.counters.cancelled == 5
    assert again.counters.released == 5
    assert our_segments() == []
    with pytest.raises(PipelineError):
        pipeline.submit(make_frame(0))


def test_bad_configuration_and_input_get_clear_errors():
    """workers=0, core mask 7, a failing processor and a wrong image are refused clearly."""
    with pytest.raises(ValueError, match=r'workers must be an integer in \[1, 64\], got 0'):
        FramePipeline(small_config(workers=0), RecordingFactory(), print)
    with pytest.raises(ValueError, match='mask 7 runs one model on all three NPU cores'):
        FramePipeline(small_config(core_masks=(7,)), RecordingFactory(), print).start()
    assert our_segments() == []
    with pytest.raises(WorkerStartError, match='nonexistent.rknn'):
        FramePipeline(small_config(workers=2), BrokenFactory(), print).start()
    assert our_segments() == []
    collector = Collector()
    with FramePipeline(small_config(workers=1), RecordingFactory(), collector) as pipeline:
        with pytest.raises(ValueError, match=r'shape \(H, W, 3\)'):
            pipeline.submit(make_frame(0)[:, :, 0])
        assert pipeline.stats().counters.accepted == 0


def test_submit_from_several_threads_gives_unique_ordered_ids():
    """Producers on two threads: ids are unique with no gaps and released in order."""
    collector = Collector()
    with FramePipeline(small_config(workers=2), RecordingFactory(max_latency_s=0.005),
                       collector) as pipeline:
        threads = [threading.Thread(target=lambda: [pipeline.submit(make_frame(i))
                                                    for i in range(20)]) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert pipeline.flush(timeout=30)
    assert [f.frame_id for f in collector.frames] == list(range(40))


@pytest.mark.parametrize('staging_pixels', [0, 1920 * 1080])
def test_staged_processor_overlaps_stages_and_keeps_order(staging_pixels):
    """
    A staged processor runs its stages on three threads; errors in any stage stay per frame.

    With staging the worker resizes the source; without it the main process does. Either way
    the frame reaches the processor at the output size with its content.
    """
    collector = Collector()
    failures = ((3, 'prepare'), (6, 'infer'), (9, 'finish'))
    config = small_config(workers=2, staging_pixels=staging_pixels)
    with FramePipeline(config, StagedFactory(latency_s=0.01, fail_stage=failures),
                       collector) as pipeline:
        for index in range(20):
            pipeline.submit(make_frame(index, width=640, height=360))
        assert pipeline.flush(timeout=30)
    assert [f.frame_id for f in collector.frames] == list(range(20))
    failed = {f.frame_id: f.error for f in collector.frames if f.status is FrameStatus.FAILED}
    assert sorted(failed) == [3, 6, 9]
    assert 'injected infer failure on frame 6' in failed[6]
    for frame in collector.frames:
        if frame.status != 'ok':
            continue
        frame_id, mean, prepare_thread, infer_thread, finish_thread, shape = frame.result
        assert frame_id == frame.frame_id and shape == (180, 320, 3)
        assert mean == pytest.approx(frame.frame_id % 200 + 20)
        assert (prepare_thread, infer_thread, finish_thread) == ('intake', 'infer', 'MainThread')
        assert collector.first_pixels[frame.frame_id] == 255 - (frame.frame_id % 200 + 20)


def test_workers_are_pinned_to_available_cpus_and_warn_otherwise(caplog):
    """Listed CPUs the machine has are used one per worker; missing ones only warn."""
    cpus = sorted(os.sched_getaffinity(0))
    collector = Collector()
    wanted = [cpus[0], 4096]
    with caplog.at_level(logging.WARNING):
        with FramePipeline(small_config(workers=2, cpu_affinity=wanted), RecordingFactory(),
                           collector, logger=LOGGER) as pipeline:
            run_frames(pipeline, 6)
    by_worker = {f.worker: f.result.cpus for f in collector.frames}
    assert by_worker[0] == (cpus[0],)
    assert by_worker[1] == tuple(cpus)
    assert 'worker 1: CPU 4096 is not available' in caplog.text


START_METHOD_RUN = """
import sys
sys.path[:0] = [{here!r}, {root!r}]
from pipeline_helpers import make_frame, RecordingFactory
from rk_yolo_ros.core.pipeline import FramePipeline, PipelineConfig
released = []
config = PipelineConfig(workers=2, output_height=180, max_output_width=320, cpu_affinity=None,
                        start_method={method!r})
with FramePipeline(config, RecordingFactory(max_latency_s=0.01),
                   lambda f: released.append((f.frame_id, f.status.value))) as pipeline:
    for index in range(10):
        pipeline.submit(make_frame(index))
    pipeline.flush()
print(released)
"""


@pytest.mark.parametrize('start_method', ['fork', 'forkserver'])
def test_other_start_methods_work(start_method):
    """
    The start method is explicit; fork and forkserver deliver the same in-order output.

    Run in a fresh interpreter: forking a process that already runs threads (as this test
    process does by now, and as a ROS node always does) can deadlock the child, which is why
    spawn is the default.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    script = START_METHOD_RUN.format(here=here, root=os.path.dirname(here), method=start_method)
    done = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str([(index, 'ok') for index in range(10)])
