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
The vision_msgs 4.x message definitions this package publishes, for rosbags.

rosbags' built-in typestores do not include vision_msgs, so the offline bag writer and the tests
register these texts (the layout of vision_msgs 4.x, shipped with Humble and Jazzy) with
``register_vision_msgs(typestore)``. Comments of the upstream .msg files are left out; field
names, types and order are what matter for (de)serialization.
"""

from typing import Any, Dict

VISION_MSGS_DEFINITIONS: Dict[str, str] = {
    'vision_msgs/msg/Point2D': 'float64 x\nfloat64 y\n',
    'vision_msgs/msg/Pose2D': 'vision_msgs/Point2D position\nfloat64 theta\n',
    'vision_msgs/msg/BoundingBox2D': (
        'vision_msgs/Pose2D center\nfloat64 size_x\nfloat64 size_y\n'),
    'vision_msgs/msg/ObjectHypothesis': 'string class_id\nfloat64 score\n',
    'vision_msgs/msg/ObjectHypothesisWithPose': (
        'vision_msgs/ObjectHypothesis hypothesis\n'
        'geometry_msgs/PoseWithCovariance pose\n'),
    'vision_msgs/msg/Detection2D': (
        'std_msgs/Header header\n'
        'vision_msgs/ObjectHypothesisWithPose[] results\n'
        'vision_msgs/BoundingBox2D bbox\n'
        'string id\n'),
    'vision_msgs/msg/Detection2DArray': (
        'std_msgs/Header header\n'
        'vision_msgs/Detection2D[] detections\n'),
}


def register_vision_msgs(typestore: Any) -> Any:
    """Register the vision_msgs definitions with a rosbags typestore (idempotent); return it."""
    from rosbags.typesys import get_types_from_msg

    missing = {name: text for name, text in VISION_MSGS_DEFINITIONS.items()
               if name not in typestore.types}
    types = {}
    for name, text in missing.items():
        types.update(get_types_from_msg(text, name))
    if types:
        typestore.register(types)
    return typestore
