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


"""The node's cameras: one per image topic, each with its outputs and per-camera state."""

from dataclasses import dataclass, field
from typing import Any, List

from rk_yolo_ros.core import settings
from rk_yolo_ros.core.frame_processing import DEFAULT_STREAM
from rk_yolo_ros.core.health import ReasonLog
from rk_yolo_ros.core.stamp_gaps import StampGapDetector


@dataclass
class Camera:
    """One input of the node: its topic, its outputs, and what is kept per camera."""

    name: str  # its stream in the pipeline; DEFAULT_STREAM for the one topic image
    topic: str  # the input topic, as given (relative ones resolve in the node's namespace)
    compressed: bool  # a CompressedImage topic
    detections_topic: str
    annotated_topic: str
    gaps: StampGapDetector = field(default_factory=StampGapDetector)
    reasons: ReasonLog = field(default_factory=ReasonLog)
    subscription: Any = None
    detections_pub: Any = None
    annotated_pub: Any = None


def cameras_from_settings(values) -> List[Camera]:
    """
    Return the node's cameras: one per ``image_topics`` entry, else the one topic ``image``.

    A camera of ``image_topics`` is named after its topic (``settings.camera_name``) and
    publishes <camera>/detections and <camera>/image_annotated beside it: /left/image_raw
    gives /left/detections, a relative left/image_raw gives left/detections (in the node's
    namespace).
    """
    topics = values['image_topics']
    if not topics:
        compressed = values['input_transport'] == 'compressed'
        return [Camera(DEFAULT_STREAM, 'image/compressed' if compressed else 'image',
                       compressed, 'detections', 'image_annotated')]
    cameras = []
    for topic, name in zip(topics, settings.camera_names(topics)):
        base = ('/' if topic.startswith('/') else '') + name
        cameras.append(Camera(name, topic, settings.is_compressed_topic(topic),
                              f'{base}/detections', f'{base}/image_annotated'))
    return cameras
