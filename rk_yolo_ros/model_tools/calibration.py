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
stretched) to the model input with the same padding. The source is read by ``rk-yolo run``'s
own sources (``offline/sources.py``: the same file kinds, bag topic rule and image conversion,
Bayer included). Frames are taken evenly spread over the source (a video's first seconds are
rarely representative), read one at a time so a long video or bag never sits in memory, and
only the picked frames are decoded. A picked frame that cannot be decoded is skipped with a
warning and counted; only a source with no usable frame fails. The images are written as PNG
(lossless; the toolkit reads image files as RGB) with a ``dataset.txt`` listing them.
"""

from dataclasses import dataclass, field
import pathlib
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from rk_yolo_ros.model_tools.errors import ModelToolError

DEFAULT_CALIBRATION_COUNT = 50


@dataclass
class CalibrationSet:
    """Calibration images written for the toolkit."""

    dataset_file: pathlib.Path  # text file, one image path a line (what RKNN.build takes)
    images: List[pathlib.Path]
    source: str  # what they came from, for the report
    source_kind: str  # the source's kind: 'images', 'video' or 'bag'
    available: int  # frames the source had
    skipped: List[str] = field(default_factory=list)  # why each skipped picked frame failed


def _cv2():
    try:
        import cv2
    except ImportError as error:
        raise ModelToolError('reading calibration images needs OpenCV: apt install '
                             'python3-opencv or pip install rk_yolo_ros[opencv]') from error
    return cv2


def _sources():
    """Return the offline sources module (it needs OpenCV, so it is imported when used)."""
    _cv2()
    from rk_yolo_ros.offline import sources
    return sources


def spread_indices(available: int, count: int) -> List[int]:
    """Return up to ``count`` distinct indices evenly spread over ``range(available)``."""
    if available <= 0 or count <= 0:
        return []
    if count >= available:
        return list(range(available))
    return sorted({int(round(v)) for v in np.linspace(0, available - 1, count)})


def open_calibration_source(source: pathlib.Path, topic: Optional[str] = None):
    """
    Open a calibration source as ``rk-yolo run`` opens its input; return the FrameSource.

    Raise ModelToolError naming the source if it does not exist, cannot be read or is a live
    camera (calibration needs a recording to spread its picks over).
    """
    sources = _sources()
    if not source.exists():
        raise ModelToolError(f'calibration source {source} does not exist; give a folder of '
                             'images, a video file or a rosbag')
    try:
        opened = sources.open_source(str(source), topic)
    except sources.SourceError as error:
        raise ModelToolError(f'calibration source: {error}') from error
    if isinstance(opened, sources.CameraSource):
        opened.close()
        raise ModelToolError(f'calibration source {source} is a camera; record a video or a '
                             'bag first')
    return opened


def _available(frames_source) -> int:
    """Return how many frames the source has (a video that does not say is counted)."""
    count = getattr(frames_source, 'count_frames', None)
    return count() if count is not None else (frames_source.total or 0)


def collect_calibration_set(source, input_size: Tuple[int, int], out_dir,
                            count: int = DEFAULT_CALIBRATION_COUNT,
                            topic: Optional[str] = None,
                            log: Callable[[str], None] = print) -> CalibrationSet:
    """
    Write ``count`` letterboxed calibration images from ``source`` into ``out_dir``.

    ``source`` is a folder of images, a video file or a rosbag (rosbag2 folder, .db3, .mcap,
    ROS 1 .bag; ``topic`` picks the image topic, needed where the bag has several).
    ``input_size`` is the model's (width, height). A picked frame that cannot be decoded is
    skipped with a warning line through ``log``. Raise ModelToolError naming the source if
    nothing usable is there.
    """
    from rk_yolo_ros.yolo.letterbox import Letterbox

    if count < 1:
        raise ModelToolError(f'calibration image count must be at least 1, got {count}')
    source = pathlib.Path(source).expanduser()
    sources = _sources()
    cv2 = _cv2()
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    letterbox = Letterbox(input_size)
    written, skipped = [], []
    with open_calibration_source(source, topic) as frames_source:
        kind = frames_source.kind
        available = _available(frames_source)
        picked = spread_indices(available, count)
        try:
            for item in frames_source.frames(select=set(picked)):
                if item.image is None:
                    skipped.append(item.error)
                    log(f'warning: calibration frame {item.meta.index} skipped: {item.error}')
                    continue
                rgb, _ = letterbox(item.image)
                path = out_dir / f'calib_{len(written):04d}.png'
                if not cv2.imwrite(str(path), cv2.cvtColor(rgb[0], cv2.COLOR_RGB2BGR)):
                    raise ModelToolError(f'cannot write calibration image {path}')
                written.append(path.resolve())
        except sources.SourceError as error:
            raise ModelToolError(f'calibration source: {error}') from error
    if not written:
        reason = f'; the first: {skipped[0]}' if skipped else ''
        raise ModelToolError(f'calibration source {source} gave no usable frames ({available} '
                             f'available, {len(skipped)} picked could not be decoded{reason})')
    dataset = out_dir / 'dataset.txt'
    dataset.write_text(''.join(f'{p}\n' for p in written))
    return CalibrationSet(dataset, written, str(source), kind, available, skipped)


def describe(calibration: CalibrationSet) -> str:
    """Return one line saying what the calibration set is."""
    skipped = (f', {len(calibration.skipped)} skipped (undecodable)'
               if calibration.skipped else '')
    return (f'{len(calibration.images)} calibration images from the {calibration.source_kind} '
            f'{calibration.source} ({calibration.available} available, evenly spread{skipped})')


def image_paths(path) -> List[pathlib.Path]:
    """Return a folder's image files, or the image file itself, as ``rk-yolo run`` lists them."""
    sources = _sources()
    try:
        return list(sources.ImageFolderSource.from_path(pathlib.Path(path).expanduser()).paths)
    except sources.SourceError as error:
        raise ModelToolError(str(error)) from error


def read_images(paths: Sequence[pathlib.Path]) -> List[Tuple[pathlib.Path, np.ndarray]]:
    """Read image files as BGR arrays; raise ModelToolError naming an unreadable one."""
    sources = _sources()
    paths = [pathlib.Path(p) for p in paths]
    images = []
    for item in sources.ImageFolderSource(paths, f'{len(paths)} images').frames():
        if item.image is None:
            raise ModelToolError(item.error)
        images.append((paths[item.meta.index], item.image))
    return images
