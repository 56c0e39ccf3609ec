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

"""Rosbag2 files of real frames (vtest.avi) for the ROS bag tests, and what a recording holds."""

import pathlib
from typing import List, Sequence, Tuple

import cv2
import numpy as np

T0_NS = 1_750_000_000_000_000_000
PERIOD_NS = 100_000_000  # vtest.avi is 10 fps


def video_frames(video: pathlib.Path, count: int) -> List[np.ndarray]:
    """Return the first ``count`` frames of a video."""
    capture = cv2.VideoCapture(str(video))
    frames = []
    while len(frames) < count:
        ok, image = capture.read()
        assert ok, f'{video} has fewer than {count} frames'
        frames.append(image)
    capture.release()
    return frames


def write_frames_bag(path: pathlib.Path, frames: Sequence[np.ndarray], topic: str,
                     transport: str = 'raw', storage: str = 'sqlite3') -> List[int]:
    """Write frames as Image (raw) or CompressedImage (jpeg) messages; return their stamps."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import get_typestore, Stores
    store = get_typestore(Stores.ROS2_HUMBLE)
    types = store.types
    msgtype = 'sensor_msgs/msg/CompressedImage' if transport == 'compressed' \
        else 'sensor_msgs/msg/Image'
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    stamps = []
    with Writer(path, version=8, storage_plugin=plugin) as writer:
        connection = writer.add_connection(topic, msgtype, typestore=store)
        for index, image in enumerate(frames):
            stamp = T0_NS + index * PERIOD_NS
            sec, nanosec = divmod(stamp, 1_000_000_000)
            header = types['std_msgs/msg/Header'](
                stamp=types['builtin_interfaces/msg/Time'](sec=sec, nanosec=nanosec),
                frame_id='vtest_camera')
            if transport == 'compressed':
                ok, encoded = cv2.imencode('.jpg', image)
                assert ok
                message = types[msgtype](header=header, format='jpeg', data=encoded.reshape(-1))
            else:
                height, width = image.shape[:2]
                message = types[msgtype](header=header, height=height, width=width,
                                         encoding='bgr8', is_bigendian=0, step=width * 3,
                                         data=np.ascontiguousarray(image).reshape(-1))
            writer.write(connection, stamp, store.serialize_cdr(message, msgtype))
            stamps.append(stamp)
    return stamps


def recorded(path: pathlib.Path) -> dict:
    """Return {topic: [(message type, header stamp ns)]} of a recorded bag, in bag order."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import get_typestore, Stores
    from rk_yolo_ros.messages.vision_msgs_defs import register_vision_msgs
    topics: dict = {}
    store = register_vision_msgs(get_typestore(Stores.ROS2_HUMBLE))
    with AnyReader([pathlib.Path(path)], default_typestore=store) as reader:
        for connection, _, raw in reader.messages():
            message = reader.deserialize(raw, connection.msgtype)
            stamp = message.header.stamp.sec * 1_000_000_000 + message.header.stamp.nanosec
            topics.setdefault(connection.topic, []).append((connection.msgtype, stamp))
    return topics


def stamps_of(entries: Sequence[Tuple[str, int]]) -> List[int]:
    """Return the stamps of recorded entries."""
    return [stamp for _, stamp in entries]
