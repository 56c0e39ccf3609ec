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
Collect INT8 calibration images from a folder, a video or a rosbag, letterboxed for the model.

rknn-toolkit2 calibrates INT8 activation ranges on a list of images. They should look like what
the camera will see and be prepared the way frames are at run time: letterboxed (not
stretched) to the model input with the same padding. Frames are taken evenly spread over the
source (a video's first seconds are rarely representative), read one at a time so a long
video or bag never sits in memory, and written as PNG (lossless; the toolkit reads image
files as RGB) with a ``dataset.txt`` listing them.
"""

from dataclasses import dataclass
import pathlib
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

from rk_yolo_ros.model_tools.errors import ModelToolError

DEFAULT_CALIBRATION_COUNT = 50
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
VIDEO_SUFFIXES = ('.avi', '.mp4', '.mkv', '.mov', '.m4v', '.webm', '.mpg', '.mpeg', '.h264')
BAG_SUFFIXES = ('.db3', '.mcap', '.bag')
IMAGE_MSGTYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')


@dataclass
class CalibrationSet:
    """Calibration images written for the toolkit."""

    dataset_file: pathlib.Path  # text file, one image path a line (what RKNN.build takes)
    images: List[pathlib.Path]
    source: str  # what they came from, for the report
    source_kind: str  # 'images', 'video' or 'rosbag'
    available: int  # frames the source had


def _cv2():
    try:
        import cv2
    except ImportError as error:
        raise ModelToolError('reading calibration images needs OpenCV: apt install '
                             'python3-opencv or pip install rk_yolo_ros[opencv]') from error
    return cv2


def spread_indices(available: int, count: int) -> List[int]:
    """Return up to ``count`` distinct indices evenly spread over ``range(available)``."""
    if available <= 0 or count <= 0:
        return []
    if count >= available:
        return list(range(available))
    return sorted({int(round(v)) for v in np.linspace(0, available - 1, count)})


def source_kind(source: pathlib.Path) -> str:
    """Return 'images', 'video' or 'rosbag' for a calibration source; raise if unknown."""
    if not source.exists():
        raise ModelToolError(f'calibration source {source} does not exist; give a folder of '
                             'images, a video file or a rosbag')
    if source.is_dir():
        if (source / 'metadata.yaml').is_file() or any(
                p.suffix in BAG_SUFFIXES for p in source.iterdir()):
            return 'rosbag'
        return 'images'
    suffix = source.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return 'video'
    if suffix in BAG_SUFFIXES:
        return 'rosbag'
    if suffix in IMAGE_SUFFIXES:
        return 'images'
    raise ModelToolError(
        f'calibration source {source} is neither a folder, a video ({", ".join(VIDEO_SUFFIXES)}) '
        f'nor a rosbag ({", ".join(BAG_SUFFIXES)} or a rosbag2 folder)')


def list_images(source: pathlib.Path) -> List[pathlib.Path]:
    """Return the image files of a folder (recursively, sorted) or the file itself."""
    if source.is_file():
        return [source]
    return sorted(p for p in source.rglob('*')
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _image_frames(source: pathlib.Path, count: int) -> Tuple[int, Iterator[np.ndarray]]:
    cv2 = _cv2()
    files = list_images(source)
    if not files:
        raise ModelToolError(f'calibration folder {source} holds no images '
                             f'({", ".join(IMAGE_SUFFIXES)})')

    def frames():
        for index in spread_indices(len(files), count):
            frame = cv2.imread(str(files[index]), cv2.IMREAD_COLOR)
            if frame is None:
                raise ModelToolError(f'calibration image {files[index]} cannot be read')
            yield frame
    return len(files), frames()


def _video_frames(source: pathlib.Path, count: int) -> Tuple[int, Iterator[np.ndarray]]:
    cv2 = _cv2()
    capture = cv2.VideoCapture(str(source))
    if not capture.isOpened():
        raise ModelToolError(f'calibration video {source} cannot be opened by OpenCV')
    available = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    if available <= 0:  # some containers do not say: count by grabbing
        while capture.grab():
            available += 1
        capture.release()
        capture = cv2.VideoCapture(str(source))
    if available <= 0:
        capture.release()
        raise ModelToolError(f'calibration video {source} has no frames')
    wanted = set(spread_indices(available, count))

    def frames():
        # Sequential grab() instead of seeking: seeking is inexact with many codecs.
        try:
            for index in range(available):
                if not capture.grab():
                    break
                if index in wanted:
                    ok, frame = capture.retrieve()
                    if ok:
                        yield frame
        finally:
            capture.release()
    return available, frames()


def image_message_to_bgr(msg, msgtype: str) -> np.ndarray:
    """Convert a sensor_msgs Image or CompressedImage (any message class) to a BGR array."""
    cv2 = _cv2()
    if msgtype.endswith('CompressedImage'):
        frame = cv2.imdecode(np.frombuffer(bytes(msg.data), np.uint8), cv2.IMREAD_COLOR)
        if frame is None:
            raise ModelToolError(f'a CompressedImage ({msg.format}) could not be decoded')
        return frame
    channels = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1}
    encoding = msg.encoding.lower()
    if encoding not in channels:
        raise ModelToolError(f'image encoding {msg.encoding!r} is not supported for calibration '
                             f'(expected one of {", ".join(channels)})')
    data = np.frombuffer(bytes(msg.data), np.uint8)
    row = data.reshape(msg.height, msg.step)[:, :msg.width * channels[encoding]]
    image = row.reshape(msg.height, msg.width, channels[encoding])
    convert = {'rgb8': cv2.COLOR_RGB2BGR, 'rgba8': cv2.COLOR_RGBA2BGR,
               'bgra8': cv2.COLOR_BGRA2BGR, 'mono8': cv2.COLOR_GRAY2BGR}.get(encoding)
    return cv2.cvtColor(image, convert) if convert is not None else image.copy()


def _bag_frames(source: pathlib.Path, count: int,
                topic: Optional[str]) -> Tuple[int, Iterator[np.ndarray]]:
    try:
        from rosbags.highlevel import AnyReader
        from rosbags.typesys import get_typestore, Stores
    except ImportError as error:
        raise ModelToolError('reading a rosbag needs rosbags: pip install rosbags '
                             '(rk_yolo_ros[bag])') from error
    bag = source.parent if source.suffix == '.db3' else source
    reader = AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_HUMBLE))
    reader.open()
    try:
        image_topics = {}
        for connection in reader.connections:
            if connection.msgtype in IMAGE_MSGTYPES:
                image_topics.setdefault(connection.topic, []).append(connection)
        if topic is None:
            if not image_topics:
                raise ModelToolError(
                    f'rosbag {source} has no sensor_msgs Image/CompressedImage topic (topics: '
                    f'{", ".join(sorted({c.topic for c in reader.connections})) or "none"})')
            topic = max(image_topics, key=lambda t: sum(c.msgcount for c in image_topics[t]))
        elif topic not in image_topics:
            raise ModelToolError(f'rosbag {source} has no image topic {topic!r} (image topics: '
                                 f'{", ".join(sorted(image_topics)) or "none"})')
    except BaseException:
        reader.close()
        raise
    connections = image_topics[topic]
    available = sum(c.msgcount for c in connections)
    wanted = set(spread_indices(available, count))

    def frames():
        try:
            for index, (connection, _, raw) in enumerate(reader.messages(connections=connections)):
                if index in wanted:
                    msg = reader.deserialize(raw, connection.msgtype)
                    yield image_message_to_bgr(msg, connection.msgtype)
        finally:
            reader.close()
    return available, frames()


def collect_calibration_set(source, input_size: Tuple[int, int], out_dir,
                            count: int = DEFAULT_CALIBRATION_COUNT,
                            topic: Optional[str] = None) -> CalibrationSet:
    """
    Write ``count`` letterboxed calibration images from ``source`` into ``out_dir``.

    ``source`` is a folder of images, a video file or a rosbag (rosbag2 folder, .db3, .mcap,
    ROS 1 .bag; ``topic`` picks the image topic, else the busiest one). ``input_size`` is the
    model's (width, height). Raise ModelToolError naming the source if nothing usable is there.
    """
    from rk_yolo_ros.yolo.letterbox import Letterbox

    if count < 1:
        raise ModelToolError(f'calibration image count must be at least 1, got {count}')
    source = pathlib.Path(source).expanduser()
    kind = source_kind(source)
    if kind == 'images':
        available, frames = _image_frames(source, count)
    elif kind == 'video':
        available, frames = _video_frames(source, count)
    else:
        available, frames = _bag_frames(source, count, topic)
    cv2 = _cv2()
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    letterbox = Letterbox(input_size)
    written = []
    for frame in frames:
        rgb, _ = letterbox(frame)
        path = out_dir / f'calib_{len(written):04d}.png'
        if not cv2.imwrite(str(path), cv2.cvtColor(rgb[0], cv2.COLOR_RGB2BGR)):
            raise ModelToolError(f'cannot write calibration image {path}')
        written.append(path.resolve())
    if not written:
        raise ModelToolError(f'calibration source {source} gave no usable frames')
    dataset = out_dir / 'dataset.txt'
    dataset.write_text(''.join(f'{p}\n' for p in written))
    return CalibrationSet(dataset, written, str(source), kind, available)


def describe(calibration: CalibrationSet) -> str:
    """Return one line saying what the calibration set is."""
    return (f'{len(calibration.images)} calibration images from the {calibration.source_kind} '
            f'{calibration.source} ({calibration.available} available, evenly spread)')


def read_images(paths: Sequence[pathlib.Path]) -> List[Tuple[pathlib.Path, np.ndarray]]:
    """Read image files as BGR arrays; raise ModelToolError naming an unreadable one."""
    cv2 = _cv2()
    images = []
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ModelToolError(f'image {path} cannot be read')
        images.append((pathlib.Path(path), image))
    return images
