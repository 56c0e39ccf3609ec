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

"""Frame selection in the offline sources: only the picked frames are decoded."""

import pathlib

import cv2
from module_checks import requires
import numpy as np
from offline_helpers import frame_pixels, stamp_of, write_image_bag, write_video
import pytest

from rk_yolo_ros.offline.sources import BagSource, ImageFolderSource, SourceError, VideoSource

PICKED = {2, 5, 9}


def write_folder(folder: pathlib.Path, count: int, corrupt=()) -> pathlib.Path:
    """Write ``count`` PNG frames; indices in ``corrupt`` get bytes no decoder accepts."""
    folder.mkdir()
    for index in range(count):
        path = folder / f'frame_{index:03d}.png'
        if index in corrupt:
            path.write_bytes(b'\x89PNG\r\n\x1a\n not really a png')
        else:
            cv2.imwrite(str(path), frame_pixels(index))
    return folder


def test_folder_selection_opens_only_the_picked_files(tmp_path, monkeypatch):
    folder = write_folder(tmp_path / 'images', 12, corrupt={5, 7})
    opened = []
    read_bytes = pathlib.Path.read_bytes

    def counting_read_bytes(path):
        opened.append(path.name)
        return read_bytes(path)

    monkeypatch.setattr(pathlib.Path, 'read_bytes', counting_read_bytes)
    source = ImageFolderSource.from_folder(folder)
    items = list(source.frames(select=PICKED))
    assert opened == ['frame_002.png', 'frame_005.png', 'frame_009.png']
    # Positions stay the source's; the corrupt picked file is a failed item, the unpicked
    # corrupt one (7) is never opened.
    assert [item.meta.index for item in items] == [2, 5, 9]
    assert [item.image is None for item in items] == [False, True, False]
    assert 'frame_005.png' in items[1].error
    assert np.array_equal(items[0].image, frame_pixels(2))
    assert list(source.frames(select=set())) == [] and len(opened) == 3


REAL_VIDEO_CAPTURE = cv2.VideoCapture


class CountingCapture:
    """A cv2.VideoCapture that counts grab() and retrieve() calls."""

    calls = {'grab': 0, 'retrieve': 0}

    def __init__(self, *args):
        self._capture = REAL_VIDEO_CAPTURE(*args)

    def grab(self):
        CountingCapture.calls['grab'] += 1
        return self._capture.grab()

    def retrieve(self):
        CountingCapture.calls['retrieve'] += 1
        return self._capture.retrieve()

    def __getattr__(self, name):
        return getattr(self._capture, name)


def test_video_selection_decodes_only_the_picked_frames(tmp_path, monkeypatch):
    video = write_video(tmp_path / 'clip.mp4', 20)
    with VideoSource(str(video)) as source:
        every = {item.meta.index: item.image for item in source.frames()}
    assert sorted(every) == list(range(20))
    monkeypatch.setattr(cv2, 'VideoCapture', CountingCapture)
    CountingCapture.calls.update(grab=0, retrieve=0)
    with VideoSource(str(video)) as source:
        items = list(source.frames(select=PICKED))
    assert [item.meta.index for item in items] == [2, 5, 9]
    for item in items:
        assert np.array_equal(item.image, every[item.meta.index])  # the very same frames
    # Ten grabs reach frame 9, three retrieves decode the picked ones; the rest is not read.
    assert CountingCapture.calls == {'grab': 10, 'retrieve': 3}


def test_video_frames_are_counted_where_the_container_does_not_say(tmp_path):
    video = write_video(tmp_path / 'clip.mp4', 17)
    with VideoSource(str(video)) as source:
        source.total = None  # as for a container without a frame count
        assert source.count_frames() == 17 and source.total == 17
        assert len(list(source.frames())) == 17  # counting left the reading position alone


@requires('rosbags', extra='bag')
def test_bag_selection_deserializes_only_the_picked_messages(tmp_path, monkeypatch):
    bag = write_image_bag(tmp_path / 'bag', count=12, compressed_topic=None, broken=(5, 7))
    with BagSource(bag) as source:
        deserialized = []
        deserialize = source._reader.deserialize

        def counting_deserialize(raw, msgtype):
            deserialized.append(msgtype)
            return deserialize(raw, msgtype)

        monkeypatch.setattr(source._reader, 'deserialize', counting_deserialize)
        items = list(source.frames(select=PICKED))
        assert len(deserialized) == 3
        assert list(source.frames(select=set())) == [] and len(deserialized) == 3
    assert [item.meta.index for item in items] == [2, 5, 9]
    assert [item.meta.stamp_ns for item in items] == [stamp_of(i) for i in (2, 5, 9)]
    assert [item.image is None for item in items] == [False, True, False]
    assert 'truncated image data' in items[1].error
    assert np.array_equal(items[2].image, frame_pixels(9))


@requires('rosbags', extra='bag')
def test_a_bag_gives_several_image_topics_in_bag_order(tmp_path):
    """All image topics (or those named), in bag order, each frame naming its topic."""
    bag = write_image_bag(tmp_path / 'bag', count=4, raw_topic='/left/image_raw',
                          compressed_topic='/right/image_raw/compressed')
    with pytest.raises(SourceError, match='several image topics'):
        BagSource(bag)
    with BagSource(bag, all_image_topics=True) as source:
        assert source.topics == ['/left/image_raw', '/right/image_raw/compressed']
        assert source.total == 8 and set(source.topic_fps) == set(source.topics)
        assert source.topic_fps['/left/image_raw'] == pytest.approx(20.0, rel=0.01)
        items = list(source.encoded_frames())
    assert [item.meta.index for item in items] == list(range(8))
    assert [item.meta.stamp_ns for item in items] == [stamp_of(i // 2) for i in range(8)]
    assert {item.meta.topic for item in items[0::2]} | {item.meta.topic for item in items[1::2]} \
        == {'/left/image_raw', '/right/image_raw/compressed'}
    for item in items:
        compressed = item.meta.topic.endswith('/compressed')
        assert (item.encoded is not None) == compressed and (item.image is not None) != compressed
    with BagSource(bag, ['/right/image_raw/compressed']) as source:
        assert source.topics == ['/right/image_raw/compressed']
        assert {item.meta.topic for item in source.frames()} == {'/right/image_raw/compressed'}
