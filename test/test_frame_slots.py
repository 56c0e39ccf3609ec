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


"""Tests of the shared-memory frame slots and of /dev/shm hygiene when the creator dies."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from rk_yolo_ros.core.frame_slots import FrameSlots, remove_stale_segments, SEGMENT_PREFIX, SHM_DIR

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# A producer that runs a pipeline until it is killed; prints its segment name when running.
PRODUCER = textwrap.dedent("""
    import os, sys, time
    sys.path[:0] = [{here!r}, {root!r}]
    from pipeline_helpers import make_frame, RecordingFactory
    from rk_yolo_ros.core.pipeline import FramePipeline, PipelineConfig
    delivered = []
    config = PipelineConfig(workers=2, output_height=180, max_output_width=320,
                            cpu_affinity=None)
    pipeline = FramePipeline(config, RecordingFactory(max_latency_s=0.02),
                             lambda frame: delivered.append(frame.status.value))
    try:
        with pipeline:
            print(pipeline._slots.layout.segment_name, flush=True)
            for index in range(100000):
                pipeline.submit(make_frame(index))
    except KeyboardInterrupt:
        pass
    stats = pipeline.stats()
    print('accepted', stats.counters.accepted, 'delivered', len(delivered),
          'ok', delivered.count('ok'), 'cancelled', delivered.count('cancelled'), flush=True)
""").format(here=HERE, root=ROOT)


def test_slots_are_shared_between_creator_and_attacher():
    """A write through one mapping is seen through another; close and unlink are idempotent."""
    slots = FrameSlots.create(4, 72, 128)
    other = FrameSlots.attach(slots.layout)
    view = slots.view(2, 72, 100)
    view[:] = 9
    assert int(other.view(2, 72, 100).sum()) == 9 * 72 * 100 * 3
    assert int(other.view(1, 72, 100).sum()) == 0
    del view
    other.close()
    other.close()
    path = os.path.join(SHM_DIR, slots.layout.segment_name)
    assert os.path.exists(path)
    slots.close()
    slots.close()
    assert not os.path.exists(path)


def test_view_rejects_out_of_range_slots_and_sizes():
    """Asking for a slot that does not exist or a frame that does not fit is an error."""
    slots = FrameSlots.create(2, 72, 128)
    try:
        with pytest.raises(IndexError):
            slots.view(2, 72, 128)
        with pytest.raises(ValueError, match='does not fit'):
            slots.view(0, 73, 128)
    finally:
        slots.close()


def test_close_with_a_live_view_still_unlinks():
    """A caller that still holds a view cannot keep the segment in /dev/shm."""
    slots = FrameSlots.create(1, 8, 8)
    view = slots.view(0, 8, 8)
    slots.close()
    assert not os.path.exists(os.path.join(SHM_DIR, slots.layout.segment_name))
    assert view.shape == (8, 8, 3)


def test_stale_segments_of_dead_processes_are_removed():
    """A segment whose creator pid is gone is removed; a live one is kept."""
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True, check=True)
    stale = f'{SEGMENT_PREFIX}{int(dead.stdout)}_deadbeef'
    with open(os.path.join(SHM_DIR, stale), 'wb') as handle:
        handle.write(b'x')
    live = FrameSlots.create(1, 8, 8)
    try:
        removed = remove_stale_segments()
        assert stale in removed
        assert live.layout.segment_name not in removed
        assert os.path.exists(os.path.join(SHM_DIR, live.layout.segment_name))
    finally:
        live.close()


def _start_producer():
    """Start the producer script; return the process and its segment name."""
    process = subprocess.Popen([sys.executable, '-c', PRODUCER], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    name = process.stdout.readline().strip()
    assert name.startswith(SEGMENT_PREFIX), process.stderr.read()
    time.sleep(1.0)  # let frames flow
    return process, name


def _wait_gone(path, seconds=15.0):
    """Wait until a path disappears; return True if it did."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not os.path.exists(path):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_dev_shm_is_clean_after_the_parent_is_stopped(sig):
    """Ctrl-C, SIGTERM and SIGKILL of the main process leave nothing in /dev/shm."""
    process, name = _start_producer()
    process.send_signal(sig)
    out, err = process.communicate(timeout=30)
    assert _wait_gone(os.path.join(SHM_DIR, name)), f'{name} left in /dev/shm'
    if sig == signal.SIGINT:
        # Ctrl-C: a clean shutdown that accounts for every accepted frame
        words = out.split()
        counts = dict(zip(words[-8::2], map(int, words[-7::2])))
        assert process.returncode == 0, err
        assert counts['accepted'] == counts['delivered'] == counts['ok'] + counts['cancelled']
        assert counts['accepted'] > 0


def test_frame_content_survives_the_round_trip_through_numpy_views():
    """Views of different slots never overlap."""
    slots = FrameSlots.create(3, 16, 16)
    try:
        for slot in range(3):
            slots.view(slot, 16, 16)[:] = slot + 1
        assert [int(np.unique(slots.view(s, 16, 16))[0]) for s in range(3)] == [1, 2, 3]
    finally:
        slots.close()
