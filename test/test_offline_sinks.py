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

"""The bag sink keeps what it wrote readable before it is closed (a crash mid-run)."""

from module_checks import requires
import numpy as np
from offline_helpers import frame_pixels, stamp_of

from rk_yolo_ros.core.frame_processing import Detections
from rk_yolo_ros.offline import sinks
from rk_yolo_ros.offline.sources import FrameMeta

pytestmark = requires('rosbags', extra='bag')

FRAMES = 5


def record(index):
    """Return a processed frame with one detection."""
    detections = Detections(np.array([[10, 20, 50, 80]], np.float32), np.array([0.9], np.float32),
                            np.array([0], np.int32), ('person',))
    return sinks.FrameRecord(FrameMeta(index, stamp_of(index), 'cam'), 'ok', detections,
                             frame_pixels(index), (160, 120))


def counts_before_close(tmp_path, monkeypatch, commit_seconds):
    """Write FRAMES frames into a sqlite3 bag, then read its .db3 with rosbags before close()."""
    from rosbags.rosbag2 import Reader

    monkeypatch.setattr(sinks, 'BAG_COMMIT_SECONDS', commit_seconds)
    path = tmp_path / 'out'
    sink = sinks.BagSink(path, {'': sinks.OutputTopics('/detections', '/annotated')})
    sink.create()
    try:
        for index in range(FRAMES):
            sink.write(record(index))
        assert not (path / 'metadata.yaml').exists()  # still open: only the .db3 is there
        with Reader(path / 'out.db3') as reader:  # as after a crash at this point
            counts = {c.topic: 0 for c in reader.connections}
            for connection, _, _ in reader.messages():
                counts[connection.topic] += 1
    finally:
        sink.close()
    return counts


def test_sqlite3_bag_is_readable_before_close(tmp_path, monkeypatch):
    counts = counts_before_close(tmp_path, monkeypatch, commit_seconds=0.0)
    assert counts == {'/detections': FRAMES, '/annotated': FRAMES}


def test_without_the_periodic_commit_nothing_would_survive(tmp_path, monkeypatch):
    # The control: rosbags alone commits only at close, so a crash would lose every frame.
    assert counts_before_close(tmp_path, monkeypatch, commit_seconds=3600.0) == {}
