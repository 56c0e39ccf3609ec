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
Where offline results go: an annotated video, a rosbag2 recording, JSON lines.

Before anything is created, ``check_output_dir``, ``check_output_file``, ``check_bag_path``
and ``check_video_encoder`` find what would fail later (a folder that cannot be written, an
existing bag, a codec OpenCV lacks) without leaving anything on disk. A sink opens, writes and
closes in ONE thread (the run's writer thread: sqlite3 connections may not cross threads). It
takes ``FrameRecord`` items in source order and is closed exactly once, also after an error or a
stop signal, so what was written stays readable (the mp4 is finalized, the bag gets its
metadata). A write that fails raises ``SinkError`` naming the output and the cause (e.g. the
disk is full). ``written`` counts what the output holds.
"""

import abc
from dataclasses import dataclass
import errno
import json
import os
import pathlib
import shutil
import tempfile
import time
from typing import Any, Dict, Mapping, NamedTuple, Optional, Tuple

import cv2
import numpy as np

from rk_yolo_ros.core.frame_processing import Detections, FailureStage, FrameStatus
from rk_yolo_ros.messages.detection_messages import build_detection_array
from rk_yolo_ros.messages.vision_msgs_defs import register_vision_msgs
from rk_yolo_ros.offline.sources import FrameMeta

BAG_STORAGES = ('sqlite3', 'mcap')
# sqlite3 bags are one transaction until closed; committing this often keeps a crash's losses
# small (the .db3 stays readable on its own).
BAG_COMMIT_SECONDS = 2.0


class SinkError(RuntimeError):
    """An output cannot be created or written."""


class OutputTopics(NamedTuple):
    """The topics of one input stream's outputs in a bag."""

    detections: str
    annotated: Optional[str] = None  # None: no annotated images


@dataclass
class FrameRecord:
    """One source frame's outcome, handed to every sink in source order."""

    meta: FrameMeta
    status: FrameStatus
    detections: Optional[Detections] = None
    image: Optional[np.ndarray] = None  # the annotated frame; valid only during write()
    source_size: Optional[Tuple[int, int]] = None  # (width, height) of the input frame
    error: str = ''
    latency_s: float = 0.0
    worker: Optional[int] = None
    stage: FailureStage = FailureStage.PROCESS  # where a FAILED frame failed

    def __post_init__(self):
        """Take the status and stage by value too ('ok', 'decode')."""
        self.status = FrameStatus(self.status)
        self.stage = FailureStage(self.stage)


def describe_os_error(error: OSError) -> str:
    """Return an OSError's text, saying plainly when the disk is full."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return f'no space left on the device ({error})'
    return str(error)


# --------------------------------------------------------------------- checks before creating
def _existing_ancestor(path: pathlib.Path) -> pathlib.Path:
    """Return ``path`` or its nearest ancestor that exists."""
    path = pathlib.Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _folder_problem(folder: pathlib.Path) -> Optional[str]:
    """Say why files cannot be created in ``folder`` (None if they can), creating nothing."""
    if not folder.is_dir():
        return f'{folder} is not a folder'
    try:
        # O_TMPFILE where the file system has it: the probe never gets a name
        with tempfile.TemporaryFile(dir=str(folder)):
            pass
    except OSError as error:  # strerror: the probe's own (random) name means nothing here
        reason = describe_os_error(error) if error.errno == errno.ENOSPC else error.strerror
        return f'folder {folder} is not writable ({reason or error})'
    return None


def check_output_dir(path: pathlib.Path) -> None:
    """Raise SinkError unless ``path`` is a writable folder, or could be created as one."""
    path = pathlib.Path(path)
    if path.exists() and not path.is_dir():
        raise SinkError(f'--output-dir {path} is a file, not a folder')
    problem = _folder_problem(_existing_ancestor(path))
    if problem:
        raise SinkError(f'cannot write into --output-dir {path}: {problem}')


def _parent_problem(path: pathlib.Path, created: Optional[pathlib.Path]) -> Optional[str]:
    """Say why no file can be made at ``path`` (None if one can); ``created`` will exist."""
    parent = path.parent
    if not parent.exists():
        inside = created is not None and os.path.commonpath(
            [os.path.abspath(parent), os.path.abspath(created)]) == os.path.abspath(created)
        if not inside:
            return f'folder {parent} does not exist'
    return _folder_problem(_existing_ancestor(parent))


def check_output_file(path: pathlib.Path, what: str,
                      created: Optional[pathlib.Path] = None) -> None:
    """
    Raise SinkError unless ``what`` (e.g. 'video') can be written to the file ``path``.

    An existing file must be writable (it is replaced); a new one needs a writable folder, or
    one inside ``created`` (the --output-dir the run will create).
    """
    path = pathlib.Path(path)
    if path.is_dir():
        raise SinkError(f'cannot write {what} {path}: it is a folder')
    if path.exists():
        if not os.access(path, os.W_OK):
            raise SinkError(f'cannot write {what} {path}: the file is not writable')
        return
    problem = _parent_problem(path, created)
    if problem:
        raise SinkError(f'cannot write {what} {path}: {problem}')


def check_bag_path(path: pathlib.Path, overwrite: bool,
                   created: Optional[pathlib.Path] = None) -> None:
    """Raise SinkError unless an output bag can be created at ``path`` (or replace one)."""
    path = pathlib.Path(path)
    if path.exists():
        if not overwrite:
            raise SinkError(f'output bag {path} exists already; remove it or pass --overwrite')
        if not _looks_like_bag(path):
            raise SinkError(f'output bag {path} exists and is not a rosbag2 folder; not '
                            'removing it')
    problem = _parent_problem(path, created)
    if problem:
        raise SinkError(f'cannot write bag {path}: {problem}')


def check_video_encoder(path: pathlib.Path, fourcc: str) -> None:
    """
    Raise SinkError unless OpenCV can encode ``fourcc`` into a file like ``path``.

    A two-frame probe is written to the temporary folder (and removed), never next to the
    output: the check leaves nothing behind.
    """
    if len(fourcc) != 4:
        raise SinkError(f'video codec must be a 4-character fourcc like mp4v, got {fourcc!r}')
    suffix = pathlib.Path(path).suffix or '.mp4'
    try:
        scratch = tempfile.TemporaryDirectory(prefix='rk_yolo_codec_')
    except OSError:
        return  # no temporary folder: the first frame will tell
    with scratch as folder:
        probe = os.path.join(folder, 'probe' + suffix)
        writer = cv2.VideoWriter(probe, cv2.VideoWriter_fourcc(*fourcc), 10.0, (64, 48))
        opened = writer.isOpened()
        if opened:
            frame = np.zeros((48, 64, 3), np.uint8)
            writer.write(frame)
            writer.write(frame)
        writer.release()
        if not opened or not os.path.isfile(probe) or os.path.getsize(probe) == 0:
            raise SinkError(f'cannot write video {path}: this OpenCV has no {fourcc} encoder '
                            f'for {suffix} files (try --fourcc mp4v with .mp4, or MJPG with '
                            '.avi)')


def fit_into(image: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Return ``image`` scaled to fit (width, height) ``size``, aspect kept, on black."""
    width, height = size
    source_h, source_w = image.shape[:2]
    if (source_w, source_h) == (width, height):
        return image
    scale = min(width / source_w, height / source_h)
    fitted_w = max(1, min(width, int(round(source_w * scale))))
    fitted_h = max(1, min(height, int(round(source_h * scale))))
    canvas = np.zeros((height, width, 3), np.uint8)
    left, top = (width - fitted_w) // 2, (height - fitted_h) // 2
    canvas[top:top + fitted_h, left:left + fitted_w] = cv2.resize(
        image, (fitted_w, fitted_h), interpolation=cv2.INTER_AREA)
    return canvas


class ResultSink(abc.ABC):
    """One output; ``written`` counts the frames it holds, ``created`` says if it exists."""

    name = 'output'

    def __init__(self, path: pathlib.Path):
        """Remember the output path."""
        self.path = pathlib.Path(path)
        self.written = 0
        self.created = False

    def create(self) -> None:
        """Create the output (in the thread that writes it); raise SinkError if it cannot."""

    @abc.abstractmethod
    def write(self, record: FrameRecord) -> None:
        """Write one frame's result; raise SinkError if it cannot be written."""

    @abc.abstractmethod
    def close(self) -> None:
        """Finalize the output so it is readable; safe to call twice."""

    def describe(self) -> str:
        """Return a one-line description for the summary."""
        return f'{self.name} {self.path} ({self.written} frames)'

    def report(self) -> Dict[str, Any]:
        """Return what the output holds, for the run's summary (text: one line)."""
        text = (self.describe() if self.created else
                f'{self.name} {self.path}: not written (no frame reached it)')
        return {'kind': self.name, 'path': str(self.path), 'created': self.created,
                'frames': self.written, 'text': text}


class VideoSink(ResultSink):
    """
    Annotated frames of processed frames into a video file (mp4v in .mp4 by default).

    A video has one frame size: the first frame's. Frames of another size (an image folder
    of mixed sizes) are scaled to fit inside it with their aspect ratio kept, on black. With
    ``topic`` it shows the frames of that bag topic (one camera of several) alone.
    """

    name = 'video'

    def __init__(self, path: pathlib.Path, fps: float, fourcc: str = 'mp4v',
                 topic: Optional[str] = None):
        """Check the folder; the writer opens on the first frame, when its size is known."""
        super().__init__(path)
        self.topic = topic
        if len(fourcc) != 4:
            raise SinkError(f'video codec must be a 4-character fourcc like mp4v, got {fourcc!r}')
        if not self.path.parent.is_dir():
            raise SinkError(f'cannot write video {self.path}: folder {self.path.parent} does '
                            'not exist')
        if not fps > 0:
            raise SinkError(f'video frame rate must be > 0, got {fps}')
        self.fps = float(fps)
        self.fourcc = fourcc
        self.size: Optional[Tuple[int, int]] = None
        self._writer: Optional[cv2.VideoWriter] = None

    def write(self, record: FrameRecord) -> None:
        """Append the annotated frame of a processed frame; others have no image to show."""
        if record.status is not FrameStatus.OK or record.image is None or \
                (self.topic is not None and record.meta.topic != self.topic):
            return
        image = record.image
        if self._writer is None:
            self.size = (image.shape[1], image.shape[0])
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*self.fourcc),
                                           self.fps, self.size)
            if not self._writer.isOpened():
                self._writer = None
                raise SinkError(f'cannot write video {self.path}: OpenCV could not open it for '
                                f'{self.fourcc} (checked before the run: was the folder or the '
                                'disk changed since?)')
            self.created = True
        self._writer.write(np.ascontiguousarray(fit_into(image, self.size)))
        self.written += 1

    def close(self) -> None:
        """Finalize the video file (writes the mp4 index) and check that it reads back."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        writer.release()
        if not self.path.is_file() or self.path.stat().st_size == 0:
            raise SinkError(f'video {self.path} is empty after writing {self.written} '
                            'frames (was the disk full?)')
        reader = cv2.VideoCapture(str(self.path))
        readable = reader.isOpened()
        reader.release()
        if not readable:
            raise SinkError(f'video {self.path} cannot be read back after writing '
                            f'{self.written} frames (was the disk full?)')

    def describe(self) -> str:
        """Return a one-line description for the summary."""
        size = f', {self.size[0]}x{self.size[1]}' if self.size else ''
        of = f' of {self.topic}' if self.topic is not None else ''
        return f'video {self.path} ({self.written} frames{of}{size}, {self.fps:g} fps)'


class JsonLinesSink(ResultSink):
    """One JSON object per source frame (failed ones too), flushed as it is written."""

    name = 'jsonl'

    def __init__(self, path: pathlib.Path):
        """Check the output folder; ``create`` makes the file."""
        super().__init__(path)
        if not self.path.parent.is_dir():
            raise SinkError(f'cannot write {self.path}: folder {self.path.parent} does not '
                            'exist')
        self._file = None
        self._broken = False
        self.by_status: Dict[str, int] = {}

    def create(self) -> None:
        """Create (truncate) the file."""
        try:
            self._file = open(self.path, 'w', encoding='utf-8')
        except OSError as error:
            raise SinkError(f'cannot create {self.path}: {describe_os_error(error)}') from error
        self.created = True

    def write(self, record: FrameRecord) -> None:
        """Write and flush the frame's line (so a failure shows at the frame that hit it)."""
        line = json.dumps(record_to_json(record), separators=(',', ':'))
        try:
            self._file.write(line + '\n')
            self._file.flush()
        except OSError as error:
            self._broken = True
            raise SinkError(f'cannot write {self.path}: {describe_os_error(error)}') from error
        self.written += 1
        status = FrameStatus(record.status).value
        self.by_status[status] = self.by_status.get(status, 0) + 1

    def describe(self) -> str:
        """Return a one-line description for the summary: lines, by frame status."""
        counts = ', '.join(f'{count} {status}' for status, count in self.by_status.items())
        return f'jsonl {self.path} ({self.written} lines' + (f': {counts})' if counts else ')')

    def close(self) -> None:
        """Close the file."""
        handle, self._file = self._file, None
        if handle is not None:
            try:
                handle.close()
            except OSError as error:
                if self._broken:
                    return  # the write error was reported; the unwritten rest cannot go out
                raise SinkError(f'cannot close {self.path}: {describe_os_error(error)}') \
                    from error


def input_fields(meta: FrameMeta) -> Dict[str, Any]:
    """
    Return which input a frame is: its index, then its file, bag topic or video frame number.

    ``index`` is the position in the source (failed frames count); a folder's frames add
    ``file``, a bag's ``topic`` and ``bag_timestamp_ns``, a video's ``video_frame``.
    """
    fields: Dict[str, Any] = {'index': meta.index}
    if meta.file:
        fields['file'] = meta.file
    if meta.topic:
        fields['topic'] = meta.topic
    if meta.bag_timestamp_ns is not None:
        fields['bag_timestamp_ns'] = meta.bag_timestamp_ns
    if meta.video_frame is not None:
        fields['video_frame'] = meta.video_frame
    return fields


def record_to_json(record: FrameRecord) -> Dict[str, Any]:
    """Return the JSON-able dict of one frame record (boxes x1, y1, x2, y2 in input pixels)."""
    sec, nanosec = record.meta.sec_nanosec
    item: Dict[str, Any] = input_fields(record.meta)
    item.update({
        'stamp': {'sec': sec, 'nanosec': nanosec},
        'frame_id': record.meta.frame_id,
        'status': FrameStatus(record.status).value,
    })
    if record.source_size is not None:
        item['width'], item['height'] = record.source_size
    if record.status is FrameStatus.OK:
        item['latency_ms'] = round(record.latency_s * 1000.0, 2)
        item['worker'] = record.worker
        detections = record.detections if record.detections is not None else Detections()
        labels = list(detections.labels) or [''] * len(detections)
        item['detections'] = [
            {'class_id': int(c), 'label': label, 'score': round(float(s), 4),
             'box': [round(float(v), 1) for v in box]}
            for box, s, c, label in zip(detections.boxes.tolist(), detections.scores.tolist(),
                                        detections.class_ids.tolist(), labels)]
        if detections.tracked:  # with --track: each box's track id (null: no confirmed track)
            for entry, track_id in zip(item['detections'], detections.track_ids.tolist()):
                entry['track_id'] = int(track_id) if track_id >= 1 else None
    else:
        item['error'] = record.error
        if record.status is FrameStatus.FAILED:
            item['stage'] = FailureStage(record.stage).value
    return item


def _looks_like_bag(path: pathlib.Path) -> bool:
    return path.is_dir() and ((path / 'metadata.yaml').exists() or any(
        p.suffix in ('.db3', '.mcap') for p in path.iterdir()))


def _remove_existing_bag(path: pathlib.Path) -> None:
    """Remove an earlier output bag at ``path``, refusing anything that is not a bag."""
    if not path.exists():
        return
    if not _looks_like_bag(path):
        raise SinkError(f'output bag {path} exists and is not a rosbag2 folder; not removing it')
    shutil.rmtree(path)


class BagSink(ResultSink):
    """
    Detection2DArray and annotated Image messages into a rosbag2 (sqlite3 or mcap).

    Both are stamped with the INPUT frame's header stamp and frame_id and written at the input
    message's bag timestamp (for non-bag sources: the frame's stamp), so bag in, bag out, every
    processed frame in order. Failed frames have no messages here (see the JSON lines).
    ``outputs`` gives the output topics of each input topic (``FrameMeta.topic``; '' for
    non-bag sources): with one entry, every frame goes there; with several (several cameras),
    each frame to its own topic's, in that topic's order.
    """

    name = 'bag'

    def __init__(self, path: pathlib.Path, outputs: Mapping[str, OutputTopics],
                 storage: str = 'sqlite3', overwrite: bool = False,
                 class_id_format: str = 'name'):
        """Create the bag and its topics; raise SinkError if it cannot be created."""
        super().__init__(path)
        try:
            from rosbags.rosbag2 import StoragePlugin, Writer
            from rosbags.typesys import get_typestore, Stores
        except ImportError as error:
            raise SinkError(f'writing the bag {path} needs the rosbags package '
                            '(pip install rosbags, or the [bag] extra)') from error
        if storage not in BAG_STORAGES:
            raise SinkError(f'bag storage must be one of {", ".join(BAG_STORAGES)}, got '
                            f'{storage!r}')
        check_bag_path(self.path, overwrite)
        if not self.path.parent.is_dir():
            raise SinkError(f'cannot write bag {self.path}: folder {self.path.parent} does not '
                            'exist')
        self.overwrite = overwrite
        self.storage = storage
        self.class_id_format = class_id_format
        self.typestore = register_vision_msgs(get_typestore(Stores.ROS2_HUMBLE))
        self.types = self.typestore.types
        if not outputs:
            raise SinkError(f'bag {self.path}: no output topics given')
        self.outputs = {stream: OutputTopics(*topics) for stream, topics in outputs.items()}
        self.topics = [topic for topics in self.outputs.values() for topic in topics if topic]
        self._plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
        self._writer_class = Writer
        self._writer = None
        self._connections: Dict[str, Tuple[Any, Any]] = {}  # by input stream
        self._last_commit = time.monotonic()

    def create(self) -> None:
        """Create the bag and its two topics (an earlier bag goes only now, with --overwrite)."""
        if self.overwrite:
            _remove_existing_bag(self.path)
        try:
            # Format version 8: v9 writes the QoS as a YAML list Humble's rosbag2 cannot parse.
            self._writer = self._writer_class(self.path, version=8, storage_plugin=self._plugin)
            self._writer.open()
            for stream, topics in self.outputs.items():
                detections = self._writer.add_connection(
                    topics.detections, 'vision_msgs/msg/Detection2DArray',
                    typestore=self.typestore)
                image = None
                if topics.annotated:
                    image = self._writer.add_connection(
                        topics.annotated, 'sensor_msgs/msg/Image', typestore=self.typestore)
                self._connections[stream] = (detections, image)
        except Exception as error:
            self._abort()
            raise SinkError(f'cannot create bag {self.path}: {type(error).__name__}: '
                            f'{error}') from error
        self.created = True
        self._last_commit = time.monotonic()

    def _header(self, meta: FrameMeta) -> Any:
        sec, nanosec = meta.sec_nanosec
        time_type = self.types['builtin_interfaces/msg/Time']
        return self.types['std_msgs/msg/Header'](stamp=time_type(sec=sec, nanosec=nanosec),
                                                 frame_id=meta.frame_id)

    def _image_message(self, header: Any, image: np.ndarray) -> Any:
        height, width = image.shape[:2]
        return self.types['sensor_msgs/msg/Image'](
            header=header, height=height, width=width, encoding='bgr8', is_bigendian=0,
            step=width * 3, data=np.ascontiguousarray(image).reshape(-1))

    def write(self, record: FrameRecord) -> None:
        """Write the frame's Detection2DArray and annotated image (processed frames only)."""
        if record.status is not FrameStatus.OK:
            return
        meta = record.meta
        timestamp = meta.bag_timestamp_ns if meta.bag_timestamp_ns is not None else meta.stamp_ns
        header = self._header(meta)
        detections = record.detections if record.detections is not None else Detections()
        array = build_detection_array(self.types, header, detections, self.class_id_format)
        if len(self._connections) == 1:
            detections_connection, image_connection = next(iter(self._connections.values()))
        elif meta.topic in self._connections:
            detections_connection, image_connection = self._connections[meta.topic]
        else:
            raise SinkError(f'bag {self.path}: a frame of {meta.topic!r} has no output topics '
                            f'(outputs for: {", ".join(self._connections)})')
        try:
            self._writer.write(detections_connection, timestamp, self.typestore.serialize_cdr(
                array, detections_connection.msgtype))
            if image_connection is not None and record.image is not None:
                message = self._image_message(header, record.image)
                self._writer.write(image_connection, timestamp, self.typestore.serialize_cdr(
                    message, image_connection.msgtype))
            self._commit_if_due()
        except OSError as error:
            raise SinkError(f'cannot write bag {self.path}: {describe_os_error(error)}') \
                from error
        except Exception as error:  # sqlite3.OperationalError etc. for a full disk
            raise SinkError(f'cannot write bag {self.path}: {type(error).__name__}: '
                            f'{error}') from error
        self.written += 1

    def _commit_if_due(self) -> None:
        """
        Commit the sqlite3 transaction now and then (rosbags commits only at close).

        rosbags has no public way to commit before close() (0.11.9: Writer and its storage
        protocol offer open, add_connection, write, close and abort), so this uses the
        Sqlite3Writer's ``conn``. setup.py pins rosbags to the range where that holds, and
        test_offline_sinks proves the .db3 reads with rosbags mid-run.
        """
        now = time.monotonic()
        if now - self._last_commit < BAG_COMMIT_SECONDS:
            return
        self._last_commit = now
        connection = getattr(self._writer.storage, 'conn', None)  # sqlite3 storage only
        if connection is not None:
            connection.commit()

    def close(self) -> None:
        """Write the bag's metadata and close its storage (readable by ros2 bag and rosbags)."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            writer.close()
        except Exception as error:
            raise SinkError(f'cannot finalize bag {self.path}: {type(error).__name__}: {error}'
                            f' ({self.written} frames were written before)') from error

    def _abort(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None and getattr(writer, 'storage', None) is not None:
            writer.storage.abort()

    def describe(self) -> str:
        """Return a one-line description for the summary."""
        return (f'bag {self.path} ({self.storage}; {self.written} frames on '
                f'{", ".join(self.topics)})')
