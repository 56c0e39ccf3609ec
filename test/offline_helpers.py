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

"""Real rosbag2 files and videos for the offline tests: write them, read results back."""

import json
import pathlib
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

T0_NS = 1_700_000_000_123_000_000  # header stamps start here
BAG_DELAY_NS = 3_000_000  # bag timestamps trail the header stamps (as a recorder's do)
PERIOD_NS = 50_000_000
FAST_RUN = ['--backend', 'emulated', '--workers', '2', '--output-height', '96',
            '--cpu-affinity', 'none', '--progress', 'off']


def frame_pixels(index: int, width: int = 160, height: int = 120) -> np.ndarray:
    """Return a BGR frame whose content depends on its index (a moving bright square)."""
    image = np.full((height, width, 3), 40 + index % 150, np.uint8)
    x = (index * 9) % (width - 30)
    image[30:60, x:x + 30] = (30, 200, 250)
    return image


def stamp_of(index: int) -> int:
    """Return the header stamp (ns) of input frame ``index``."""
    return T0_NS + index * PERIOD_NS


def _typestore():
    from rosbags.typesys import get_typestore, Stores
    return get_typestore(Stores.ROS2_HUMBLE)


def write_image_bag(path: pathlib.Path, count: int = 12, storage: str = 'sqlite3',
                    raw_topic: Optional[str] = '/cam/image_raw',
                    compressed_topic: Optional[str] = '/cam/image_raw/compressed',
                    broken: Sequence[int] = (), extra_topics: bool = True,
                    compressed_format: str = 'jpeg') -> pathlib.Path:
    """
    Write a real rosbag2 with ``count`` frames on an Image and/or a CompressedImage topic.

    Frame i has header stamp ``stamp_of(i)``, frame_id 'cam_optical', and is recorded at
    stamp + BAG_DELAY_NS. Frames whose index is in ``broken`` carry truncated data (half of
    the raw pixels; the first half of the jpeg or png bytes). ``extra_topics`` adds a
    non-image topic, as real recordings have.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer
    store = _typestore()
    types = store.types
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    with Writer(path, version=8, storage_plugin=plugin) as writer:
        raw = (writer.add_connection(raw_topic, 'sensor_msgs/msg/Image', typestore=store)
               if raw_topic else None)
        compressed = (writer.add_connection(compressed_topic, 'sensor_msgs/msg/CompressedImage',
                                            typestore=store) if compressed_topic else None)
        other = (writer.add_connection('/status', 'std_msgs/msg/String', typestore=store)
                 if extra_topics else None)
        for index in range(count):
            stamp = stamp_of(index)
            sec, nanosec = divmod(stamp, 1_000_000_000)
            header = types['std_msgs/msg/Header'](
                stamp=types['builtin_interfaces/msg/Time'](sec=sec, nanosec=nanosec),
                frame_id='cam_optical')
            pixels = frame_pixels(index)
            height, width = pixels.shape[:2]
            if raw is not None:
                data = pixels.reshape(-1)
                if index in broken:
                    data = data[:len(data) // 2]
                message = types['sensor_msgs/msg/Image'](
                    header=header, height=height, width=width, encoding='bgr8', is_bigendian=0,
                    step=width * 3, data=data)
                writer.write(raw, stamp + BAG_DELAY_NS,
                             store.serialize_cdr(message, raw.msgtype))
            if compressed is not None:
                ok, encoded = cv2.imencode('.jpg' if compressed_format == 'jpeg' else '.png',
                                           pixels)
                assert ok
                data = encoded.reshape(-1)
                if index in broken:
                    data = data[:len(data) // 2]
                message = types['sensor_msgs/msg/CompressedImage'](
                    header=header, format=compressed_format, data=data)
                writer.write(compressed, stamp + BAG_DELAY_NS,
                             store.serialize_cdr(message, compressed.msgtype))
            if other is not None:
                message = types['std_msgs/msg/String'](data=f'frame {index}')
                writer.write(other, stamp + BAG_DELAY_NS + 1,
                             store.serialize_cdr(message, other.msgtype))
    return path


def read_bag(path: pathlib.Path) -> Dict[str, List[Tuple[int, object]]]:
    """Read every message of a bag with rosbags: topic -> [(bag timestamp, message)] in order."""
    from rosbags.highlevel import AnyReader
    from rk_yolo_ros.messages.vision_msgs_defs import register_vision_msgs
    messages: Dict[str, List[Tuple[int, object]]] = {}
    with AnyReader([pathlib.Path(path)],
                   default_typestore=register_vision_msgs(_typestore())) as reader:
        for connection, timestamp, raw in reader.messages():
            message = reader.deserialize(raw, connection.msgtype)
            messages.setdefault(connection.topic, []).append((timestamp, message))
        types = {c.topic: c.msgtype for c in reader.connections}
    messages['__types__'] = types  # type: ignore[assignment]
    return messages


def header_ns(message) -> int:
    """Return a message's header stamp in nanoseconds."""
    return message.header.stamp.sec * 1_000_000_000 + message.header.stamp.nanosec


def write_video(path: pathlib.Path, count: int, fps: float = 10.0, width: int = 160,
                height: int = 120) -> pathlib.Path:
    """Write a real mp4 (mp4v) of ``count`` frames with OpenCV."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), fps, (width, height))
    assert writer.isOpened(), f'OpenCV cannot write mp4v to {path}'
    for index in range(count):
        writer.write(frame_pixels(index, width, height))
    writer.release()
    return path


def count_video_frames(path: pathlib.Path) -> Tuple[int, Tuple[int, int]]:
    """Decode a video to the end; return (frames, (width, height))."""
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), f'cannot open {path}'
    frames, size = 0, (0, 0)
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames += 1
        size = (image.shape[1], image.shape[0])
    capture.release()
    return frames, size


def read_jsonl(path: pathlib.Path) -> List[dict]:
    """Return the records of a JSON lines file."""
    return [json.loads(line) for line in pathlib.Path(path).read_text().splitlines()]


def unwritable_folder(tmp_path: pathlib.Path) -> pathlib.Path:
    """
    Return a folder this process cannot create files in.

    A folder with mode 0o555 where that holds; root ignores modes, so for root /sys (sysfs
    creates no regular files for anyone).
    """
    import os
    folder = tmp_path / 'read_only'
    folder.mkdir()
    folder.chmod(0o555)
    try:
        probe = os.open(str(folder / 'probe'), os.O_CREAT | os.O_WRONLY, 0o644)
    except OSError:
        return folder
    os.close(probe)
    os.unlink(str(folder / 'probe'))
    return pathlib.Path('/sys')


def run_subprocess(arguments: List[str], **kwargs):
    """Start ``python -m rk_yolo_ros`` with this checkout first on the path; return the Popen."""
    import os
    import subprocess
    import sys
    repo = pathlib.Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(repo) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.Popen([sys.executable, '-m', 'rk_yolo_ros'] + arguments,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, env=env, **kwargs)
