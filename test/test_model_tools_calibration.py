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

"""Tests of calibration-set preparation from image folders, videos and rosbags."""

import pathlib

import numpy as np
import pytest

from rk_yolo_ros.model_tools.calibration import (collect_calibration_set, source_kind,
                                                 spread_indices)
from rk_yolo_ros.model_tools.errors import ModelToolError

cv2 = pytest.importorskip('cv2')

INPUT_SIZE = (64, 48)  # (width, height): small, so the tests stay fast


def frame_with_level(level, size=(80, 40)):
    """Return a BGR frame whose centre is uniformly ``level`` (to recognise it afterwards)."""
    frame = np.zeros((size[1], size[0], 3), np.uint8)
    frame[...] = (level, level // 2, 255 - level)
    return frame


def centre_levels(calibration):
    """Return the blue-channel level at the centre of each written calibration image."""
    levels = []
    for path in calibration.images:
        image = cv2.imread(str(path))
        assert image.shape == (INPUT_SIZE[1], INPUT_SIZE[0], 3)
        levels.append(int(image[INPUT_SIZE[1] // 2, INPUT_SIZE[0] // 2, 0]))
    return levels


def test_spread_indices_cover_the_source_evenly():
    assert spread_indices(10, 4) == [0, 3, 6, 9]
    assert spread_indices(3, 50) == [0, 1, 2]
    assert spread_indices(100, 1) == [0]
    assert spread_indices(0, 5) == []


def test_image_folder_gives_letterboxed_evenly_spread_images(tmp_path):
    folder = tmp_path / 'frames'
    (folder / 'nested').mkdir(parents=True)
    for index in range(10):
        target = folder / 'nested' if index >= 5 else folder
        cv2.imwrite(str(target / f'f{index:02d}.png'), frame_with_level(index * 20))
    (folder / 'notes.txt').write_text('not an image')
    calibration = collect_calibration_set(folder, INPUT_SIZE, tmp_path / 'out', count=4)
    assert calibration.source_kind == 'images' and calibration.available == 10
    # Sorted paths: f00..f04 then nested/f05..f09; picks 0, 3, 6, 9.
    assert centre_levels(calibration) == [0, 60, 120, 180]
    listed = calibration.dataset_file.read_text().split()
    assert listed == [str(p) for p in calibration.images]
    assert all(pathlib.Path(p).is_absolute() and pathlib.Path(p).is_file() for p in listed)
    # 80x40 into 64x48 letterboxes to 64x32 with 8 rows of grey padding top and bottom.
    image = cv2.imread(listed[0])
    assert (image[:8] == 114).all() and (image[-8:] == 114).all()


def test_video_frames_are_taken_evenly_spread(tmp_path):
    path = tmp_path / 'clip.avi'
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 10, (80, 40))
    if not writer.isOpened():
        pytest.skip('this OpenCV build cannot write MJPG AVI files')
    for index in range(30):
        writer.write(frame_with_level(index * 8))
    writer.release()
    calibration = collect_calibration_set(path, INPUT_SIZE, tmp_path / 'out', count=4)
    assert calibration.source_kind == 'video' and calibration.available == 30
    expected = [i * 8 for i in spread_indices(30, 4)]  # frames 0, 10, 19, 29
    assert np.allclose(centre_levels(calibration), expected, atol=6)  # JPEG is lossy


def write_image_bag(path, frames, topic='/camera/image_raw', encoding='rgb8'):
    """Write a rosbag2 with one sensor_msgs/Image per frame (and an unrelated topic)."""
    rosbag2 = pytest.importorskip('rosbags.rosbag2')
    from rosbags.typesys import get_typestore, Stores

    store = get_typestore(Stores.ROS2_HUMBLE)
    image_type = store.types['sensor_msgs/msg/Image']
    header_type = store.types['std_msgs/msg/Header']
    time_type = store.types['builtin_interfaces/msg/Time']
    string_type = store.types['std_msgs/msg/String']
    try:
        writer = rosbag2.Writer(path, version=8)
    except TypeError:  # rosbags before 0.10 has no version argument
        writer = rosbag2.Writer(path)
    with writer:
        images = writer.add_connection(topic, image_type.__msgtype__, typestore=store)
        chatter = writer.add_connection('/chatter', string_type.__msgtype__, typestore=store)
        for index, frame in enumerate(frames):
            stamp = index * 100_000_000
            pixels = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if encoding == 'rgb8' else frame
            msg = image_type(header_type(time_type(0, stamp), 'camera'), frame.shape[0],
                             frame.shape[1], encoding, 0, frame.shape[1] * 3,
                             np.ascontiguousarray(pixels).reshape(-1))
            writer.write(images, stamp, store.serialize_cdr(msg, image_type.__msgtype__))
            writer.write(chatter, stamp + 1, store.serialize_cdr(string_type('hi'),
                                                                 string_type.__msgtype__))


def test_rosbag_image_topic_is_found_and_spread(tmp_path):
    bag = tmp_path / 'bag'
    write_image_bag(bag, [frame_with_level(i * 10) for i in range(12)])
    assert source_kind(bag) == 'rosbag'
    calibration = collect_calibration_set(bag, INPUT_SIZE, tmp_path / 'out', count=3)
    assert calibration.source_kind == 'rosbag' and calibration.available == 12
    # rgb8 messages come back as BGR: the blue channel still carries the level.
    assert centre_levels(calibration) == [0, 60, 110]
    named = collect_calibration_set(bag, INPUT_SIZE, tmp_path / 'out2', count=2,
                                    topic='/camera/image_raw')
    assert centre_levels(named) == [0, 110]


def test_rosbag_errors_name_the_topics(tmp_path):
    bag = tmp_path / 'bag'
    write_image_bag(bag, [frame_with_level(0)])
    with pytest.raises(ModelToolError, match=r"no image topic '/nope'.*/camera/image_raw"):
        collect_calibration_set(bag, INPUT_SIZE, tmp_path / 'out', topic='/nope')


def test_missing_empty_or_unknown_sources_get_clear_errors(tmp_path):
    with pytest.raises(ModelToolError, match='does not exist'):
        collect_calibration_set(tmp_path / 'absent', INPUT_SIZE, tmp_path / 'out')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ModelToolError, match='holds no images'):
        collect_calibration_set(tmp_path / 'empty', INPUT_SIZE, tmp_path / 'out')
    odd = tmp_path / 'data.csv'
    odd.write_text('1,2,3')
    with pytest.raises(ModelToolError, match='neither a folder, a video'):
        collect_calibration_set(odd, INPUT_SIZE, tmp_path / 'out')
    broken = tmp_path / 'broken.mp4'
    broken.write_bytes(b'not a video')
    with pytest.raises(ModelToolError, match='broken.mp4'):
        collect_calibration_set(broken, INPUT_SIZE, tmp_path / 'out')
