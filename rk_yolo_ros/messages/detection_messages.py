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
Build vision_msgs/Detection2DArray messages from a frame's ``Detections``.

Duck-typed on the message classes: ``types`` maps full ROS type names
('vision_msgs/msg/Detection2D', ...) to classes, so rclpy's generated classes and rosbags'
classes (``typestore.types``, after ``register_vision_msgs``) both work. Every field is passed to
the constructors, because rosbags' classes have no defaults.

The convention (vision_msgs 4.x): one Detection2D per box with the input image's header; the box
is centre + size in the input image's pixels (``bbox.center.position.x/y``, ``size_x/y``,
``theta`` 0); one hypothesis whose ``class_id`` is the class NAME (e.g. 'person') when the model
has names, else the class index as text (``class_id_format='index'`` always uses the index) and
whose ``score`` is the confidence; ``pose`` is unused (identity, zero covariance); ``id`` is the
track id as text when tracking is on and the box belongs to a confirmed track, else empty.
"""

from typing import Any, Mapping, Optional, Sequence

import numpy as np

from rk_yolo_ros.core import settings
from rk_yolo_ros.core.frame_processing import Detections

CLASS_ID_FORMATS = settings.CLASS_ID_FORMATS
_NEEDED = ('vision_msgs/msg/Detection2DArray', 'vision_msgs/msg/Detection2D',
           'vision_msgs/msg/ObjectHypothesisWithPose', 'vision_msgs/msg/ObjectHypothesis',
           'vision_msgs/msg/BoundingBox2D', 'vision_msgs/msg/Pose2D', 'vision_msgs/msg/Point2D',
           'geometry_msgs/msg/PoseWithCovariance', 'geometry_msgs/msg/Pose',
           'geometry_msgs/msg/Point', 'geometry_msgs/msg/Quaternion')


def check_message_types(types: Mapping[str, Any]) -> None:
    """Raise KeyError naming the message types the builder needs and ``types`` lacks."""
    missing = [name for name in _NEEDED if name not in types]
    if missing:
        raise KeyError(f'message classes missing for {", ".join(missing)} (for rosbags, call '
                       'rk_yolo_ros.messages.vision_msgs_defs.register_vision_msgs(typestore) '
                       'first)')


def message_types_from_modules(*modules: Any) -> Mapping[str, Any]:
    """
    Map the needed ROS type names to classes of generated message modules.

    For rclpy: ``message_types_from_modules(vision_msgs.msg, geometry_msgs.msg)``.
    """
    types = {}
    for module in modules:
        package = module.__name__.split('.')[0]
        for name in _NEEDED:
            if name.startswith(package + '/msg/') and hasattr(module, name.rsplit('/', 1)[1]):
                types[name] = getattr(module, name.rsplit('/', 1)[1])
    check_message_types(types)
    return types


def class_id_text(class_id: int, label: Optional[str], class_id_format: str = 'name') -> str:
    """Return the hypothesis class_id: the label name (if known and asked for) or the index."""
    if class_id_format == 'name' and label:
        return str(label)
    return str(int(class_id))


def build_detection_array(types: Mapping[str, Any], header: Any, detections: Detections,
                          class_id_format: str = 'name') -> Any:
    """Return a Detection2DArray for one frame's detections, stamped with the input header."""
    settings.check('class_id_format', class_id_format)
    check_message_types(types)
    boxes = np.asarray(detections.boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(detections.scores, np.float64).reshape(-1)
    class_ids = np.asarray(detections.class_ids).reshape(-1)
    labels: Sequence[str] = list(detections.labels) or [''] * len(class_ids)
    if not len(boxes) == len(scores) == len(class_ids) == len(labels):
        raise ValueError(f'detections disagree in length: {len(boxes)} boxes, {len(scores)} '
                         f'scores, {len(class_ids)} class ids, {len(labels)} labels')
    ids = [track_id_text(t) for t in detections.track_ids.tolist()] if detections.tracked \
        else [''] * len(class_ids)
    pose = _unused_pose(types)  # one for all: the same value, serialized per detection
    items = [
        _detection(types, header, box, score, class_id_text(class_id, label, class_id_format),
                   track_id, pose)
        for box, score, class_id, label, track_id in zip(boxes.tolist(), scores.tolist(),
                                                         class_ids.tolist(), labels, ids)]
    return types['vision_msgs/msg/Detection2DArray'](header=header, detections=items)


def track_id_text(track_id: int) -> str:
    """Return Detection2D.id for a track id: its number as text, '' for no confirmed track."""
    return str(int(track_id)) if track_id >= 1 else ''


def _detection(types, header, box, score, class_id, track_id, pose):
    """Build one Detection2D (box x1, y1, x2, y2 in pixels) with a single hypothesis."""
    x1, y1, x2, y2 = box
    center = types['vision_msgs/msg/Pose2D'](
        position=types['vision_msgs/msg/Point2D'](x=(x1 + x2) / 2.0, y=(y1 + y2) / 2.0),
        theta=0.0)
    bbox = types['vision_msgs/msg/BoundingBox2D'](center=center, size_x=x2 - x1, size_y=y2 - y1)
    hypothesis = types['vision_msgs/msg/ObjectHypothesisWithPose'](
        hypothesis=types['vision_msgs/msg/ObjectHypothesis'](class_id=class_id,
                                                             score=float(score)),
        pose=pose)
    return types['vision_msgs/msg/Detection2D'](header=header, results=[hypothesis], bbox=bbox,
                                                id=track_id)


def _unused_pose(types):
    """Return an identity PoseWithCovariance with zero covariance (2D detections have no pose)."""
    pose = types['geometry_msgs/msg/Pose'](
        position=types['geometry_msgs/msg/Point'](x=0.0, y=0.0, z=0.0),
        orientation=types['geometry_msgs/msg/Quaternion'](x=0.0, y=0.0, z=0.0, w=1.0))
    return types['geometry_msgs/msg/PoseWithCovariance'](pose=pose,
                                                         covariance=np.zeros(36, np.float64))
