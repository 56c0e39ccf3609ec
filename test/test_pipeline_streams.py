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
Several streams (cameras) through one pipeline: order per stream, fair admission, counters.

The frames' pixels encode their stream and index, so what each stream gets back can be compared
frame by frame with an undisturbed run.
"""

import os
import signal
import threading
import time

import numpy as np
from pipeline_helpers import RecordingFactory
import pytest

from rk_yolo_ros.core.frame_slots import SEGMENT_PREFIX
from rk_yolo_ros.core.pipeline import DEFAULT_STREAM, FramePipeline, MAX_STREAMS, PipelineConfig

STREAMS = ('left', 'front', 'right')


def our_segments():
    """Return this process's shared-memory segments in /dev/shm."""
    return [n for n in os.listdir('/dev/shm') if n.startswith(f'{SEGMENT_PREFIX}{os.getpid()}_')]


def config(**overrides):
    """Return a config for small frames, unpinned (the test machine has no big cores)."""
    values = {'workers': 3, 'output_height': 90, 'max_output_width': 160,
              'cpu_affinity': None, 'start_timeout': 60.0}
    values.update(overrides)
    return PipelineConfig(**values)


def stream_frame(stream, index):
    """Return a frame whose pixel value encodes its stream and index."""
    value = 20 + (STREAMS.index(stream) * 61 + index * 7) % 200 if stream in STREAMS else 20
    return np.full((90, 160, 3), value, np.uint8)


class Released:
    """An on_frame handler that keeps what each stream got, in release order."""

    def __init__(self):
        """Start empty."""
        self.lock = threading.Lock()
        self.order = []  # (stream, seq) in release order over all streams
        self.by_stream = {}

    def __call__(self, frame):
        """Record one released frame (what would be published)."""
        mark = int(frame.image[0, 0, 0]) if frame.image is not None else None  # valid only now
        with self.lock:
            self.order.append((frame.stream, frame.seq))
            self.by_stream.setdefault(frame.stream, []).append((frame, mark))

    def outputs(self, stream):
        """Return what a stream got: index, status, the pixels the worker saw and marked."""
        return [(f.seq, f.meta, f.status.value, f.result.mean if f.result else None,
                 f.result.stream if f.result else None, mark)
                for f, mark in self.by_stream.get(stream, [])]


def feed(pipeline, counts, **submit_args):
    """Submit each stream's frames from a thread of its own (as the node's callbacks do)."""
    def camera(stream, count):
        for index in range(count):
            pipeline.submit(stream_frame(stream, index), meta=(stream, index), stream=stream,
                            **submit_args)
    threads = [threading.Thread(target=camera, args=item) for item in counts.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert pipeline.flush(timeout=60)


def test_each_stream_is_released_in_its_own_order_under_random_latency():
    """Three streams from three threads: each stream's frames come once, in its order."""
    released = Released()
    counts = {'left': 25, 'front': 20, 'right': 15}
    with FramePipeline(config(), RecordingFactory(max_latency_s=0.02, seed=11),
                       released) as pipeline:
        feed(pipeline, counts)
        stats = pipeline.stats()
    for stream, count in counts.items():
        outputs = released.outputs(stream)
        assert [o[0] for o in outputs] == list(range(count)), stream
        assert [o[1] for o in outputs] == [(stream, i) for i in range(count)]
        assert all(o[2] == 'ok' for o in outputs)
        # the worker saw this stream's pixels and was told the stream; its mark came back
        assert [o[3] for o in outputs] == [float(stream_frame(stream, i)[0, 0, 0])
                                           for i in range(count)]
        assert {o[4] for o in outputs} == {stream}
        assert [o[5] for o in outputs] == [255 - stream_frame(stream, i)[0, 0, 0]
                                           for i in range(count)]
        assert stats.streams[stream].counters.ok == count
        assert stats.streams[stream].counters.accepted == count
        assert stats.streams[stream].slots_in_use == 0
    assert set(stats.streams) == set(counts)
    assert stats.counters.ok == sum(counts.values())
    # frame ids are the pipeline's, unique over all streams
    ids = [f.frame_id for frames in released.by_stream.values() for f, _ in frames]
    assert sorted(ids) == list(range(sum(counts.values())))
    assert our_segments() == []


def test_a_slow_frame_holds_back_only_its_own_stream(tmp_path):
    """
    Frame 0 of 'left' waits at a gate in worker 0; 'front' frames are released meanwhile.

    Each 'front' frame is submitted once the one before it is out, so it goes to the idle
    worker 1 (the least loaded); with one order over all streams none of them could be
    released before 'left' frame 0.
    """
    released = Released()
    out = threading.Condition()

    def on_frame(frame):
        with out:
            released(frame)
            out.notify_all()

    def front_released(count):
        with out:
            return out.wait_for(lambda: len(released.by_stream.get('front', [])) >= count,
                                timeout=30.0)

    factory = RecordingFactory(gate_dir=str(tmp_path), held_ids=(0,))
    with FramePipeline(config(workers=2), factory, on_frame) as pipeline:
        pipeline.submit(stream_frame('left', 0), meta=('left', 0), stream='left')  # id 0
        before_gate = 0
        for index in range(6):
            pipeline.submit(stream_frame('front', index), meta=('front', index),
                            stream='front')
            if not front_released(index + 1):
                break
            before_gate += 1
        pipeline.submit(stream_frame('left', 1), meta=('left', 1), stream='left')
        (tmp_path / 'open').touch()
        assert pipeline.flush(timeout=30)
    assert before_gate == 6
    assert released.order == [('front', i) for i in range(6)] + [('left', 0), ('left', 1)]


def kill_run(kill_at):
    """Run three streams (one feeding thread); SIGKILL worker 1 when ``kill_at`` is released."""
    released = Released()
    killed = []

    def on_frame(frame):
        released(frame)
        if (frame.stream, frame.seq) == kill_at and not killed:
            victim = pipeline.stats().workers[1]
            killed.append(victim)
            os.kill(victim.pid, signal.SIGKILL)

    pipeline = FramePipeline(config(), RecordingFactory(max_latency_s=0.03, seed=5), on_frame)
    with pipeline:
        for index in range(16):
            for stream in STREAMS:
                pipeline.submit(stream_frame(stream, index), meta=(stream, index),
                                stream=stream)
        assert pipeline.flush(timeout=60)
        workers = pipeline.stats().workers
    return released, killed, workers


def test_a_worker_killed_amid_three_streams_changes_no_stream_output():
    """Each stream's output with a SIGKILLed worker is the undisturbed run's, frame for frame."""
    undisturbed, _, _ = kill_run(kill_at=None)
    disturbed, killed, workers = kill_run(kill_at=('front', 5))
    assert killed and workers[1].restarts == 1 and workers[1].pid != killed[0].pid
    for stream in STREAMS:
        assert disturbed.outputs(stream) == undisturbed.outputs(stream), stream
        assert [o[0] for o in disturbed.outputs(stream)] == list(range(16))
    assert our_segments() == []


def test_a_bursty_stream_cannot_take_the_slots_of_the_others(tmp_path):
    """
    'left' floods the pipeline; 'front' and 'right' still get slots at once (fair admission).

    The worker holds every frame until the gate opens, so 'left' first takes every slot (a
    lone stream may: work-conserving) and waits for more; then the others ask. From then on a
    free slot goes to the waiting stream holding the fewest, so the two get their frames in
    long before 'left' has sent its flood.
    """
    accepted = []  # (stream, frame id) in acceptance (frame id) order
    lock = threading.Lock()
    released = Released()
    slots = 6
    pipeline = FramePipeline(config(workers=1, slots=slots),
                             RecordingFactory(max_latency_s=0.002, gate_dir=str(tmp_path)),
                             released)

    def camera(stream, count):
        for index in range(count):
            frame_id = pipeline.submit(stream_frame(stream, index), meta=(stream, index),
                                       stream=stream)
            with lock:
                accepted.append((frame_id, stream))

    def waiting(stream):
        state = pipeline.stats().streams.get(stream)
        return state.waiting if state else 0

    def wait_until(predicate, what):
        deadline = time.monotonic() + 30.0
        while not predicate():
            assert time.monotonic() < deadline, f'timed out waiting for {what}'
            time.sleep(0.01)

    with pipeline:
        flood = threading.Thread(target=camera, args=('left', 60))
        flood.start()
        wait_until(lambda: waiting('left') == 1, 'left to wait')
        alone = pipeline.stats()
        others = [threading.Thread(target=camera, args=(stream, 8))
                  for stream in ('front', 'right')]
        for thread in others:
            thread.start()
        wait_until(lambda: waiting('front') == waiting('right') == 1,
                   'front and right to wait')
        (tmp_path / 'open').touch()
        for thread in [flood] + others:
            thread.join()
        assert pipeline.flush(timeout=60)
        stats = pipeline.stats()
    # alone, 'left' held every slot
    assert alone.slots_in_use == slots and alone.streams['left'].slots_in_use == slots
    order = [stream for _, stream in sorted(accepted)]
    assert order[:slots] == ['left'] * slots
    last_of_others = max(i for i, s in enumerate(order) if s != 'left')
    left_before = order[:last_of_others].count('left')
    # fair shares: after its first slots 'left' gets about a third of the frames taken in
    # while the three streams ask (8 while the others take 16); an arbitrary pick among the
    # waiting calls lets it take far more
    assert left_before <= slots + 8 + 4, order
    assert order.index('front') <= slots + 2 and order.index('right') <= slots + 2, order
    for stream, count in (('left', 60), ('front', 8), ('right', 8)):
        assert [o[0] for o in released.outputs(stream)] == list(range(count))
        assert stats.streams[stream].counters.ok == count


def test_counters_are_kept_per_stream_beside_the_total():
    """Rejections, losses, undelivered and failures count for their stream and the total."""
    released = Released()
    with FramePipeline(config(workers=1), RecordingFactory(fail_ids=(1,)),
                       released) as pipeline:
        pipeline.submit(stream_frame('left', 0), stream='left')  # id 0
        pipeline.submit(stream_frame('left', 1), stream='left')  # id 1: fails in the worker
        pipeline.submit(stream_frame('front', 0), stream='front')
        pipeline.submit_failed('unreadable', 'frame could not be decoded', stream='front')
        pipeline.submit(stream_frame('front', 2))  # no stream: the default one
        pipeline.reject('bad image: yuv422', stream='right')
        pipeline.count_lost(3, 'gap in the stamps', stream='right')
        pipeline.count_undelivered('publishing failed', stream='left')
        assert pipeline.flush(timeout=30)
        stats = pipeline.stats()
        assert pipeline.frame_rate('left') > 0 and pipeline.frame_rate('right') == 0.0
        assert pipeline.frame_rate() >= pipeline.frame_rate('left')
    left, front, right = (stats.streams[s].counters for s in ('left', 'front', 'right'))
    assert (left.accepted, left.ok, left.failed, left.undelivered) == (2, 1, 1, 1)
    assert (front.accepted, front.ok, front.failed) == (2, 1, 1)
    assert (right.accepted, right.rejected, right.lost) == (0, 1, 3)
    assert stats.streams[DEFAULT_STREAM].counters.ok == 1
    total = stats.counters
    assert (total.accepted, total.ok, total.failed, total.rejected, total.lost,
            total.undelivered) == (5, 3, 2, 1, 3, 1)
    assert [o[0] for o in released.outputs('front')] == [0, 1]
    assert released.outputs('front')[1][2] == 'failed'


def test_stream_names_are_strings_and_their_number_is_bounded():
    """A stream is named by a string; more than MAX_STREAMS streams are refused clearly."""
    with FramePipeline(config(workers=1), RecordingFactory(), Released()) as pipeline:
        with pytest.raises(ValueError, match='a stream is named by a string, got 3'):
            pipeline.submit(stream_frame('left', 0), stream=3)
        for index in range(MAX_STREAMS - 1):  # the first (failed) call made no stream
            pipeline.count_lost(1, 'test', stream=f'camera{index}')
        pipeline.count_lost(1, 'test', stream='one more')
        with pytest.raises(ValueError, match=f'would be stream {MAX_STREAMS + 1}'):
            pipeline.submit(stream_frame('left', 0), stream='too many')
        assert pipeline.stats().counters.accepted == 0
