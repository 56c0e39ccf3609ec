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

from module_checks import optional, requires
import numpy as np
import pytest

from rk_yolo_ros.model_tools.calibration import (collect_calibration_set, describe,
                                                 spread_indices)
from rk_yolo_ros.model_tools.errors import ModelToolError

# Not a module-level importorskip: under launch_testing's plugin that skips the whole folder.
cv2 = optional('cv2')
needs_cv2 = requires('cv2', extra='opencv')
needs_bag = requires('cv2', 'rosbags', extra='bag')

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


def write_frames(folder, levels, corrupt=()):
    """Write one PNG per level into ``folder``; indices in ``corrupt`` get undecodable bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, level in enumerate(levels):
        path = folder / f'f{index:02d}.png'
        if index in corrupt:
            path.write_bytes(b'\x89PNG\r\n\x1a\n but the rest is not an image')
        else:
            cv2.imwrite(str(path), frame_with_level(level))
    return folder


def test_spread_indices_cover_the_source_evenly():
    assert spread_indices(10, 4) == [0, 3, 6, 9]
    assert spread_indices(3, 50) == [0, 1, 2]
    assert spread_indices(100, 1) == [0]
    assert spread_indices(0, 5) == []


@needs_cv2
def test_image_folder_gives_letterboxed_evenly_spread_images(tmp_path):
    folder = write_frames(tmp_path / 'frames', [index * 20 for index in range(10)])
    (folder / 'notes.txt').write_text('not an image')
    # Subfolders are not read, as in `rk-yolo run`: one rule for what a folder source holds.
    write_frames(folder / 'nested', [250])
    calibration = collect_calibration_set(folder, INPUT_SIZE, tmp_path / 'out', count=4)
    assert calibration.source_kind == 'images' and calibration.available == 10
    assert calibration.skipped == []
    assert centre_levels(calibration) == [0, 60, 120, 180]  # files 0, 3, 6, 9
    listed = calibration.dataset_file.read_text().split()
    assert listed == [str(p) for p in calibration.images]
    assert all(pathlib.Path(p).is_absolute() and pathlib.Path(p).is_file() for p in listed)
    # 80x40 into 64x48 letterboxes to 64x32 with 8 rows of grey padding top and bottom.
    image = cv2.imread(listed[0])
    assert (image[:8] == 114).all() and (image[-8:] == 114).all()


@needs_cv2
def test_only_the_picked_images_are_decoded(tmp_path, monkeypatch):
    folder = write_frames(tmp_path / 'frames', [index * 10 for index in range(20)])
    opened = []
    read_bytes = pathlib.Path.read_bytes

    def counting_read_bytes(path):
        opened.append(path.name)
        return read_bytes(path)

    monkeypatch.setattr(pathlib.Path, 'read_bytes', counting_read_bytes)
    calibration = collect_calibration_set(folder, INPUT_SIZE, tmp_path / 'out', count=4)
    monkeypatch.undo()
    assert opened == ['f00.png', 'f06.png', 'f13.png', 'f19.png']  # spread_indices(20, 4)
    assert centre_levels(calibration) == [0, 60, 130, 190]


@needs_cv2
def test_a_corrupt_image_is_skipped_and_reported(tmp_path):
    folder = write_frames(tmp_path / 'frames', [index * 30 for index in range(7)], corrupt={3})
    lines = []
    calibration = collect_calibration_set(folder, INPUT_SIZE, tmp_path / 'out', log=lines.append)
    assert centre_levels(calibration) == [0, 30, 60, 120, 150, 180]
    assert calibration.available == 7 and len(calibration.skipped) == 1
    assert len(lines) == 1
    assert lines[0].startswith(f'warning: calibration frame 3 skipped: cannot decode image '
                               f'file {folder / "f03.png"}')
    assert '6 calibration images' in describe(calibration)
    assert '1 skipped (undecodable)' in describe(calibration)


@needs_cv2
def test_a_source_without_any_usable_frame_is_refused(tmp_path):
    folder = write_frames(tmp_path / 'frames', [0, 0], corrupt={0, 1})
    with pytest.raises(ModelToolError, match=r'no usable frames \(2 available, 2 picked could '
                                             r'not be decoded; the first: cannot decode image'):
        collect_calibration_set(folder, INPUT_SIZE, tmp_path / 'out', log=lambda line: None)


@needs_cv2
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


def bayer_rggb(frame):
    """Return the RGGB Bayer mosaic a sensor would record for a BGR frame."""
    mosaic = np.empty(frame.shape[:2], np.uint8)
    mosaic[0::2, 0::2] = frame[0::2, 0::2, 2]  # R
    mosaic[0::2, 1::2] = frame[0::2, 1::2, 1]  # G
    mosaic[1::2, 0::2] = frame[1::2, 0::2, 1]  # G
    mosaic[1::2, 1::2] = frame[1::2, 1::2, 0]  # B
    return mosaic


def write_image_bag(path, frames, topic='/camera/image_raw', encoding='rgb8',
                    other_image_topic=None):
    """Write a rosbag2 with one sensor_msgs/Image per frame (and an unrelated topic)."""
    from rosbags import rosbag2
    from rosbags.typesys import get_typestore, Stores

    store = get_typestore(Stores.ROS2_HUMBLE)
    image_type = store.types['sensor_msgs/msg/Image']
    header_type = store.types['std_msgs/msg/Header']
    time_type = store.types['builtin_interfaces/msg/Time']
    string_type = store.types['std_msgs/msg/String']
    with rosbag2.Writer(path, version=8) as writer:
        topics = [topic] + ([other_image_topic] if other_image_topic else [])
        images = [writer.add_connection(name, image_type.__msgtype__, typestore=store)
                  for name in topics]
        chatter = writer.add_connection('/chatter', string_type.__msgtype__, typestore=store)
        for index, frame in enumerate(frames):
            stamp = index * 100_000_000
            if encoding == 'rgb8':
                pixels, step = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), frame.shape[1] * 3
            else:
                assert encoding == 'bayer_rggb8'
                pixels, step = bayer_rggb(frame), frame.shape[1]
            msg = image_type(header_type(time_type(0, stamp), 'camera'), frame.shape[0],
                             frame.shape[1], encoding, 0, step,
                             np.ascontiguousarray(pixels).reshape(-1))
            for connection in images:
                writer.write(connection, stamp, store.serialize_cdr(msg, image_type.__msgtype__))
            writer.write(chatter, stamp + 1, store.serialize_cdr(string_type('hi'),
                                                                 string_type.__msgtype__))


@needs_bag
def test_rosbag_image_topic_is_found_and_spread(tmp_path):
    bag = tmp_path / 'bag'
    write_image_bag(bag, [frame_with_level(i * 10) for i in range(12)])
    calibration = collect_calibration_set(bag, INPUT_SIZE, tmp_path / 'out', count=3)
    assert calibration.source_kind == 'bag' and calibration.available == 12
    # rgb8 messages come back as BGR: the blue channel still carries the level.
    assert centre_levels(calibration) == [0, 60, 110]
    named = collect_calibration_set(bag, INPUT_SIZE, tmp_path / 'out2', count=2,
                                    topic='/camera/image_raw')
    assert centre_levels(named) == [0, 110]


@needs_bag
def test_rosbag_with_a_bayer_topic_calibrates(tmp_path):
    bag = tmp_path / 'bag'
    frames = [frame_with_level(i * 20) for i in range(10)]
    write_image_bag(bag, frames, encoding='bayer_rggb8')
    calibration = collect_calibration_set(bag, INPUT_SIZE, tmp_path / 'out', count=4,
                                          log=pytest.fail)  # no frame may be skipped
    assert calibration.source_kind == 'bag' and calibration.available == 10
    # Demosaiced back to the frame's colour: blue carries the level, red its complement.
    assert np.allclose(centre_levels(calibration), [0, 60, 120, 180], atol=2)
    centre = cv2.imread(str(calibration.images[1]))[INPUT_SIZE[1] // 2, INPUT_SIZE[0] // 2]
    assert np.allclose(centre, (60, 30, 195), atol=2)


@needs_bag
def test_rosbag_topic_errors_follow_the_run_rule(tmp_path):
    bag = tmp_path / 'bag'
    write_image_bag(bag, [frame_with_level(0)])
    with pytest.raises(ModelToolError, match=r"no topic '/nope'.*/camera/image_raw"):
        collect_calibration_set(bag, INPUT_SIZE, tmp_path / 'out', topic='/nope')
    with pytest.raises(ModelToolError, match=r'topic /chatter in bag .* carries std_msgs/msg/'):
        collect_calibration_set(bag, INPUT_SIZE, tmp_path / 'out', topic='/chatter')
    two = tmp_path / 'two'
    write_image_bag(two, [frame_with_level(0)], other_image_topic='/camera2/image_raw')
    with pytest.raises(ModelToolError, match=r'several image topics .*choose one with --topic'):
        collect_calibration_set(two, INPUT_SIZE, tmp_path / 'out')
    chosen = collect_calibration_set(two, INPUT_SIZE, tmp_path / 'out',
                                     topic='/camera2/image_raw')
    assert len(chosen.images) == 1


@needs_cv2
def test_missing_empty_or_unknown_sources_get_clear_errors(tmp_path):
    with pytest.raises(ModelToolError, match='does not exist'):
        collect_calibration_set(tmp_path / 'absent', INPUT_SIZE, tmp_path / 'out')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ModelToolError, match='holds no image files'):
        collect_calibration_set(tmp_path / 'empty', INPUT_SIZE, tmp_path / 'out')
    odd = tmp_path / 'data.csv'
    odd.write_text('1,2,3')
    with pytest.raises(ModelToolError, match='cannot open .*data.csv as a video'):
        collect_calibration_set(odd, INPUT_SIZE, tmp_path / 'out')
    broken = tmp_path / 'broken.mp4'
    broken.write_bytes(b'not a video')
    with pytest.raises(ModelToolError, match='broken.mp4'):
        collect_calibration_set(broken, INPUT_SIZE, tmp_path / 'out')
    image = write_frames(tmp_path / 'one', [40]) / 'f00.png'
    with pytest.raises(ModelToolError, match='--topic /cam applies to bags only'):
        collect_calibration_set(image, INPUT_SIZE, tmp_path / 'out', topic='/cam')
