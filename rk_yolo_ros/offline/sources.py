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
Offline frame sources: a video file, a camera, a folder of images, or a rosbag2 recording.

Every source yields ``SourceFrame`` items in order: a BGR image with header-like metadata
(stamp, frame_id), or, for a frame that cannot be decoded, no image and the reason. A frame is
never dropped silently: whatever cannot be read is reported as a failed item in its place.
A source that cannot be opened at all raises ``SourceError`` naming the path and what was
expected. A bag may give several image topics (cameras) at once: their frames come in bag
order, each naming its topic (``FrameMeta.topic``), which is its stream in the pipeline.

``frames(select=indices)`` yields only the items at those positions (``meta.index`` stays the
position in the source) and does not decode the others: a folder opens only the picked files, a
video grabs past the others without decoding them, a bag deserializes only the picked messages.
Reading stops after the last picked position. Model-tool calibration reads this way.
"""

import abc
from dataclasses import dataclass
import math
import os
import pathlib
import time
from typing import AbstractSet, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from rk_yolo_ros.core.pipeline import MAX_STREAMS
from rk_yolo_ros.messages.image_conversion import (byte_array, check_compressed_image,
                                                   compressed_image_to_bgr, compressed_kind,
                                                   ImageConversionError, is_compressed,
                                                   message_to_bgr)

IMAGE_SUFFIXES = ('.bmp', '.jpeg', '.jpg', '.pgm', '.png', '.ppm', '.tif', '.tiff', '.webp')
BAG_SUFFIXES = ('.db3', '.mcap', '.bag')
IMAGE_MSG_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')
DEFAULT_FPS = 30.0
# A failed grab may be one broken packet: try this many more before calling the stream ended.
VIDEO_GRAB_RETRIES = 5
SOURCE_KINDS = 'a video file, a camera index, a folder of images or a rosbag2 directory/file'


class SourceError(RuntimeError):
    """A source cannot be opened or read any further."""


class _Selection:
    """Which positions ``frames(select=...)`` yields: all of them, or the given ones."""

    def __init__(self, select: Optional[AbstractSet[int]]):
        self._select = None if select is None else frozenset(select)
        self._last = None if select is None else max(self._select, default=-1)

    def __contains__(self, index: int) -> bool:
        return self._select is None or index in self._select

    def done(self, index: int) -> bool:
        """Return True when no picked position is at ``index`` or after it."""
        return self._last is not None and index > self._last


@dataclass(frozen=True)
class FrameMeta:
    """Header-like facts about one source frame."""

    index: int  # position in the source's sequence, from 0, counting failed frames too
    stamp_ns: int  # header stamp in nanoseconds
    frame_id: str
    bag_timestamp_ns: Optional[int] = None  # recording time of a bag message
    topic: str = ''  # the bag topic the frame came from
    file: str = ''  # the image file (folder sources), by name
    video_frame: Optional[int] = None  # the frame's number in its video file

    @property
    def sec_nanosec(self) -> Tuple[int, int]:
        """Return the stamp as ROS (sec, nanosec)."""
        return divmod(int(self.stamp_ns), 1_000_000_000)


@dataclass
class SourceFrame:
    """One item of a source: an image, or no image and the reason it could not be read."""

    meta: FrameMeta
    image: Optional[np.ndarray] = None
    error: str = ''
    # from ``encoded_frames``: checked compressed bytes a pipeline worker decodes (no image)
    encoded: Optional[np.ndarray] = None


class FrameSource(abc.ABC):
    """An ordered, finite (or live) sequence of frames; use as a context manager."""

    kind = 'source'

    def __init__(self, description: str):
        """Remember how to name the source in messages."""
        self.description = description
        self.total: Optional[int] = None  # frames expected, where the source knows
        self.fps: Optional[float] = None  # nominal frame rate, for an output video
        self.topics: List[str] = []  # the bag topics it reads (several: several cameras)

    @abc.abstractmethod
    def frames(self, select: Optional[AbstractSet[int]] = None) -> Iterator[SourceFrame]:
        """Yield the frames in order; with ``select``, only the items at those positions."""

    def encoded_frames(self) -> Iterator[SourceFrame]:
        """
        Yield every frame, compressed ones still compressed (``SourceFrame.encoded``).

        For ``FramePipeline.submit_encoded``: the pipeline's workers decode them, not the
        reading process. Sources that read no compressed images yield ``frames()``.
        """
        return self.frames()

    def close(self) -> None:
        """Release the source; safe to call twice."""

    def __enter__(self):
        """Return the open source."""
        return self

    def __exit__(self, *exc_info):
        """Close the source."""
        self.close()


def _stamp_at(index: int, fps: float, start_ns: int = 0) -> int:
    """Return the stamp of frame ``index`` of a constant-rate sequence."""
    return start_ns + int(round(index * 1e9 / fps))


def check_fps(fps: float) -> float:
    """Return ``fps`` if it is a usable frame rate (a finite number > 0); raise ValueError."""
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) \
            or fps <= 0:
        raise ValueError(f'a frame rate must be a number > 0 (frames per second), got {fps!r}')
    return float(fps)


class VideoSource(FrameSource):
    """Frames of a video file, stamped by their position in the video (from 0 s)."""

    kind = 'video'

    def __init__(self, path: str, frame_id: str = 'camera'):
        """Open the video with OpenCV; raise SourceError if it cannot be decoded."""
        super().__init__(f'video {path}')
        self.path = path
        self.frame_id = frame_id
        self._capture = cv2.VideoCapture(str(path))
        if not self._capture.isOpened():
            self._capture.release()
            raise SourceError(f'cannot open {path} as a video: OpenCV has no decoder for it '
                              f'(expected {SOURCE_KINDS})')
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.total = count if count > 0 else None
        fps = float(self._capture.get(cv2.CAP_PROP_FPS))
        self.fps = fps if 0 < fps < 1000 else DEFAULT_FPS

    def frames(self, select: Optional[AbstractSet[int]] = None) -> Iterator[SourceFrame]:
        """Yield decoded frames; frames the decoder cannot produce are failed items."""
        picked = _Selection(select)
        index = 0
        while not picked.done(index):
            grabbed = self._capture.grab()
            missed = 0
            while not grabbed and missed < VIDEO_GRAB_RETRIES and self._more_expected(index):
                missed += 1
                grabbed = self._capture.grab()
            if not grabbed:
                if self._more_expected(index):
                    # the container declares more frames than the decoder delivers
                    for lost in range(index, self.total):
                        if lost in picked:
                            yield self._failed(lost, f'video frame {lost} of {self.total} could '
                                                     'not be decoded (the stream ended early)')
                return
            for lost in range(index, index + missed):  # broken packets before a good one
                if lost in picked:
                    yield self._failed(lost, f'video frame {lost} could not be decoded')
            index += missed
            if index in picked:  # only picked frames are decoded (retrieve)
                ok, image = self._capture.retrieve()
                if not ok or image is None:
                    yield self._failed(index, f'video frame {index} could not be decoded')
                else:
                    yield SourceFrame(self._meta(index), _as_bgr(image))
            index += 1

    def _more_expected(self, index: int) -> bool:
        return self.total is not None and index < self.total

    def count_frames(self) -> int:
        """
        Return the number of frames, counting them when the container does not say.

        Counting grabs through the file once with a second capture (nothing is decoded) and
        sets ``total``; the frames() iteration is not disturbed.
        """
        if self.total is None:
            capture = cv2.VideoCapture(str(self.path))
            count = 0
            try:
                while capture.grab():
                    count += 1
            finally:
                capture.release()
            self.total = count
        return self.total

    def _meta(self, index: int) -> FrameMeta:
        return FrameMeta(index, _stamp_at(index, self.fps), self.frame_id, video_frame=index)

    def _failed(self, index: int, reason: str) -> SourceFrame:
        return SourceFrame(self._meta(index), None, reason)

    def close(self) -> None:
        """Release the capture."""
        self._capture.release()


class CameraSource(FrameSource):
    """Live frames of a camera (OpenCV device index), stamped with the wall clock."""

    kind = 'camera'

    def __init__(self, device: int, frame_id: str = 'camera'):
        """Open the camera; raise SourceError if it is not there."""
        super().__init__(f'camera {device}')
        self.frame_id = frame_id
        self._capture = cv2.VideoCapture(device)
        if not self._capture.isOpened():
            self._capture.release()
            raise SourceError(f'cannot open camera {device}: no such video device, or it is '
                              'busy')
        fps = float(self._capture.get(cv2.CAP_PROP_FPS))
        self.fps = fps if 0 < fps < 1000 else DEFAULT_FPS

    def frames(self, select: Optional[AbstractSet[int]] = None) -> Iterator[SourceFrame]:
        """Yield frames until the camera stops delivering (unplugged) or the caller stops."""
        picked = _Selection(select)
        index = 0
        while not picked.done(index):
            if index not in picked:
                ok, image = self._capture.grab(), True  # not decoded
            else:
                ok, image = self._capture.read()
            if not ok or image is None:
                if index == 0:
                    raise SourceError(f'{self.description} delivered no frame')
                raise SourceError(f'{self.description} stopped delivering frames after '
                                  f'{index} frames')
            if index in picked:
                yield SourceFrame(FrameMeta(index, time.time_ns(), self.frame_id),
                                  _as_bgr(image))
            index += 1

    def close(self) -> None:
        """Release the camera."""
        self._capture.release()


class ImageFolderSource(FrameSource):
    """Image files of a folder in name order, stamped at a nominal frame rate."""

    kind = 'images'

    def __init__(self, paths: List[pathlib.Path], description: str, fps: float = DEFAULT_FPS,
                 frame_id: str = 'camera'):
        """Take the image files to read, in order."""
        super().__init__(description)
        self.paths = paths
        self.total = len(paths)
        self.fps = check_fps(fps)
        self.frame_id = frame_id

    @classmethod
    def from_folder(cls, folder: pathlib.Path, fps: float = DEFAULT_FPS,
                    frame_id: str = 'camera') -> 'ImageFolderSource':
        """List the folder's image files (not its subfolders'); raise SourceError if none."""
        paths = sorted(p for p in folder.iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise SourceError(f'folder {folder} holds no image files ({", ".join(IMAGE_SUFFIXES)})'
                              f' and is not a rosbag2 recording (no metadata.yaml, .db3 or .mcap)')
        return cls(paths, f'{len(paths)} images in {folder}', fps, frame_id)

    @classmethod
    def from_path(cls, path: pathlib.Path, fps: float = DEFAULT_FPS,
                  frame_id: str = 'camera') -> 'ImageFolderSource':
        """Open a folder of images or one image file; raise SourceError if it is neither."""
        if path.is_dir():
            return cls.from_folder(path, fps, frame_id)
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            return cls([path], f'image {path}', fps, frame_id)
        raise SourceError(f'{path} is neither a folder of images nor an image file '
                          f'({", ".join(IMAGE_SUFFIXES)})')

    def frames(self, select: Optional[AbstractSet[int]] = None) -> Iterator[SourceFrame]:
        """Yield each image; a file that cannot be read whole is a failed item naming it."""
        return self._images(select, encoded=False)

    def encoded_frames(self) -> Iterator[SourceFrame]:
        """Yield each image; a JPEG or PNG file that passes the checks stays compressed."""
        return self._images(None, encoded=True)

    def _images(self, select: Optional[AbstractSet[int]],
                encoded: bool) -> Iterator[SourceFrame]:
        """Yield the picked files decoded, or (``encoded``) JPEG and PNG files as bytes."""
        picked = _Selection(select)
        for index, path in enumerate(self.paths):
            if picked.done(index):
                return
            if index not in picked:
                continue  # not opened
            meta = FrameMeta(index, _stamp_at(index, self.fps), self.frame_id, file=path.name)
            try:
                pixels = read_image_file(path, keep_compressed=encoded)
            except SourceError as error:
                item = SourceFrame(meta, None, str(error))
            else:  # 1-D: the file's checked bytes
                item = SourceFrame(meta, encoded=pixels) if pixels.ndim == 1 \
                    else SourceFrame(meta, pixels)
            yield item


class BagSource(FrameSource):
    """
    Image or CompressedImage messages of a rosbag2 (sqlite3, mcap) or ROS 1 bag.

    ``topic`` picks the image topic, or several (a list: several cameras); without one the
    bag's only image topic is read, or with ``all_image_topics`` every image topic. Messages
    of several topics come in bag order, each frame naming its topic.
    """

    kind = 'bag'

    def __init__(self, path: pathlib.Path, topic: Union[None, str, Sequence[str]] = None,
                 all_image_topics: bool = False):
        """Open the bag and pick the image topics; raise SourceError naming what is wrong."""
        super().__init__(f'bag {path}')
        try:
            from rosbags.highlevel import AnyReader
            from rosbags.typesys import get_typestore, Stores
        except ImportError as error:
            raise SourceError(f'reading {path} needs the rosbags package '
                              '(pip install rosbags, or the [bag] extra)') from error
        self.path = path
        try:
            self._reader = AnyReader([path],
                                     default_typestore=get_typestore(Stores.ROS2_HUMBLE))
            self._reader.open()
        except Exception as error:  # rosbags raises several types for unreadable bags
            raise SourceError(f'cannot read {path} as a rosbag: {type(error).__name__}: '
                              f'{error}') from error
        try:
            self._connections = self._pick_topics(topic, all_image_topics)
        except SourceError:
            self.close()
            raise
        self.msgtypes: Dict[str, str] = {}
        for connection in self._connections:
            self.msgtypes.setdefault(connection.topic, connection.msgtype)
        self.topics = list(self.msgtypes)
        self.topic, self.msgtype = self.topics[0], self.msgtypes[self.topics[0]]
        self.description = f'bag {path} topic{"s" if len(self.topics) > 1 else ""} ' + \
            ', '.join(f'{name} ({kind})' for name, kind in self.msgtypes.items())
        self.total = sum(c.msgcount for c in self._connections) or None
        self.topic_fps = {name: self._estimate_fps(name) for name in self.topics}
        self.fps = self.topic_fps[self.topic]

    def _pick_topics(self, topic: Union[None, str, Sequence[str]], all_image_topics: bool):
        """Return the connections of the chosen image topics, in the order given."""
        connections = self._reader.connections
        image_topics = sorted({c.topic for c in connections if c.msgtype in IMAGE_MSG_TYPES})
        listing = ', '.join(f'{c.topic} ({c.msgtype})' for c in connections) or 'none'
        topics = [topic] if isinstance(topic, str) else list(topic or [])
        if not topics:
            if not image_topics:
                raise SourceError(f'bag {self.path} has no sensor_msgs Image or CompressedImage '
                                  f'topic (its topics: {listing})')
            if len(image_topics) > 1 and not all_image_topics:
                raise SourceError(f'bag {self.path} has several image topics '
                                  f'({", ".join(image_topics)}); choose one with --topic')
            topics = image_topics
        if len(set(topics)) > MAX_STREAMS:
            raise SourceError(f'{len(set(topics))} image topics of bag {self.path} are more '
                              f'than one run takes ({MAX_STREAMS}); choose them with --topic')
        chosen = []
        for name in dict.fromkeys(topics):  # each once, in the order given
            found = [c for c in connections if c.topic == name]
            if not found:
                raise SourceError(f'bag {self.path} has no topic {name!r} (its topics: '
                                  f'{listing})')
            if found[0].msgtype not in IMAGE_MSG_TYPES:
                raise SourceError(f'topic {name} in bag {self.path} carries '
                                  f'{found[0].msgtype}, expected one of '
                                  f'{", ".join(IMAGE_MSG_TYPES)}')
            chosen += found
        return chosen

    def _estimate_fps(self, topic: str) -> float:
        """Return a topic's mean message rate over the bag, or the default rate."""
        duration_s = (self._reader.end_time - self._reader.start_time) / 1e9
        count = sum(c.msgcount for c in self._connections if c.topic == topic)
        if count > 1 and duration_s > 0:
            return (count - 1) / duration_s
        return DEFAULT_FPS

    def frames(self, select: Optional[AbstractSet[int]] = None) -> Iterator[SourceFrame]:
        """Yield each message as an image; one that cannot be decoded is a failed item."""
        return self._messages(select, encoded=False)

    def encoded_frames(self) -> Iterator[SourceFrame]:
        """Yield each message; a CompressedImage that passes the checks stays compressed."""
        return self._messages(None, encoded=True)

    def _messages(self, select: Optional[AbstractSet[int]],
                  encoded: bool) -> Iterator[SourceFrame]:
        """Yield the picked messages as images, or (``encoded``) compressed ones as bytes."""
        picked = _Selection(select)
        if picked.done(0):
            return
        try:
            messages = self._reader.messages(connections=self._connections)
            for index, (connection, timestamp, raw) in enumerate(messages):
                if index not in picked:
                    continue  # not deserialized
                try:
                    message = self._reader.deserialize(raw, connection.msgtype)
                except Exception as error:  # a corrupt record fails its frame, not the run
                    meta = FrameMeta(index, timestamp, '', timestamp, connection.topic)
                    yield SourceFrame(meta, None, f'message {index} on {connection.topic} at '
                                                  f't={timestamp} ns cannot be deserialized: '
                                                  f'{error}')
                    continue
                header = message.header
                stamp_ns = int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)
                meta = FrameMeta(index, stamp_ns, header.frame_id, timestamp, connection.topic)
                try:
                    if encoded and is_compressed(message):
                        check_compressed_image(message)  # the cheap checks; a worker decodes
                        item = SourceFrame(meta, encoded=byte_array(message.data))
                    else:
                        item = SourceFrame(meta, message_to_bgr(message))
                except (ImageConversionError, cv2.error) as error:
                    item = SourceFrame(meta, None, f'message {index} on {connection.topic}: '
                                                   f'{error}')
                yield item
                if picked.done(index + 1):
                    return
        except Exception as error:  # the storage itself failed mid-way (truncated file)
            raise SourceError(f'reading {self.path} failed: {type(error).__name__}: '
                              f'{error}') from error

    def close(self) -> None:
        """Close the bag."""
        reader, self._reader = getattr(self, '_reader', None), None
        if reader is not None and reader.stack is not None:
            reader.close()


class _EncodedImage:
    """An image file's bytes, shaped like a CompressedImage for the message checks."""

    def __init__(self, data: np.ndarray, format_text: str):
        self.data = data
        self.format = format_text


def read_image_file(path: pathlib.Path, keep_compressed: bool = False) -> np.ndarray:
    """
    Read and decode an image file to BGR; raise SourceError if it is unreadable or broken.

    JPEG and PNG files (told by their signature, not their name) get the CompressedImage rules
    of ``image_conversion``, so a truncated file fails (with its end marker missing) instead of
    decoding to a grey-filled frame as libjpeg does. Other formats go to OpenCV's decoders.
    With ``keep_compressed`` a JPEG or PNG file that passes those checks is returned as its
    bytes (1-D uint8), for a pipeline worker to decode.
    """
    try:
        data = np.frombuffer(path.read_bytes(), np.uint8)
    except OSError as error:
        raise SourceError(f'cannot read image file {path}: {error.strerror or error}') \
            from error
    try:
        kind = compressed_kind('', data)
    except ImageConversionError:
        kind = None  # not JPEG or PNG
    try:
        if kind is not None and keep_compressed:
            check_compressed_image(_EncodedImage(data, kind))
            return data
        if kind is not None:
            return compressed_image_to_bgr(_EncodedImage(data, kind))
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    except (ImageConversionError, cv2.error) as error:
        raise SourceError(f'cannot decode image file {path}: {error}') from error
    if image is None:
        raise SourceError(f'cannot decode image file {path} ({data.size} bytes)')
    return image


def _as_bgr(image: np.ndarray) -> np.ndarray:
    """Return a 3-channel BGR frame (OpenCV may deliver gray or BGRA)."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def _is_bag_folder(folder: pathlib.Path) -> bool:
    return (folder / 'metadata.yaml').is_file() or any(
        p.suffix in ('.db3', '.mcap') for p in folder.iterdir())


def open_source(spec: str, topic: Union[None, str, Sequence[str]] = None,
                fps: Optional[float] = None, frame_id: str = 'camera',
                all_image_topics: bool = False) -> FrameSource:
    """
    Open ``spec`` as the source it names; raise SourceError if it is none of them.

    A number that is not an existing path is a camera index; a folder with metadata.yaml,
    .db3 or .mcap files, or a .db3/.mcap/.bag file, is a bag; another folder is a folder of
    images; an image file is a one-image folder; any other file is a video. ``topic`` and
    ``all_image_topics`` pick a bag's image topics (``BagSource``).
    """
    if fps is not None:
        fps = check_fps(fps)
    path = pathlib.Path(spec).expanduser()
    if not path.exists():
        if spec.isdigit():
            return CameraSource(int(spec), frame_id)
        raise SourceError(f'source not found: {spec} (expected {SOURCE_KINDS})')
    if topic and not (path.is_dir() and _is_bag_folder(path)) \
            and path.suffix not in BAG_SUFFIXES:
        shown = topic if isinstance(topic, str) else ' '.join(topic)
        raise SourceError(f'--topic {shown} applies to bags only; {spec} is not a rosbag')
    if path.is_dir():
        if _is_bag_folder(path):
            return BagSource(path, topic, all_image_topics)
        return ImageFolderSource.from_path(path, DEFAULT_FPS if fps is None else fps,
                                           frame_id)
    if not os.access(path, os.R_OK):
        raise SourceError(f'source {spec} is not readable (permission denied)')
    if path.suffix in BAG_SUFFIXES:
        return BagSource(path, topic, all_image_topics)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageFolderSource.from_path(path, DEFAULT_FPS if fps is None else fps,
                                           frame_id)
    source = VideoSource(str(path), frame_id)
    if fps is not None:
        source.fps = fps
    return source
