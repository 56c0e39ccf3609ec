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

"""Tests of Detection2DArray building with rosbags' classes and rclpy's generated classes."""

import numpy as np
import pytest

from rk_yolo_ros.core.frame_processing import Detections
from rk_yolo_ros.messages.detection_messages import (build_detection_array, check_message_types,
                                                     message_types_from_modules)
from rk_yolo_ros.messages.vision_msgs_defs import register_vision_msgs

try:
    from rosbags import typesys
except ImportError:  # a module-level skip would skip the whole folder under launch_testing
    typesys = None

pytestmark = pytest.mark.skipif(typesys is None, reason='rosbags is not installed (pip extra '
                                '"bag"); its message classes are what these tests use')
ARRAY = 'vision_msgs/msg/Detection2DArray'


@pytest.fixture(scope='module')
def typestore():
    """Return a Humble typestore with vision_msgs registered from our .msg texts."""
    return register_vision_msgs(typesys.get_typestore(typesys.Stores.ROS2_HUMBLE))


def rosbags_header(typestore, sec=17, nanosec=250, frame_id='camera_optical'):
    """Return a rosbags std_msgs/Header."""
    types = typestore.types
    return types['std_msgs/msg/Header'](
        stamp=types['builtin_interfaces/msg/Time'](sec=sec, nanosec=nanosec), frame_id=frame_id)


def sample_detections():
    """Return two detections in 1920x1080 source pixels."""
    return Detections(boxes=np.array([[100.0, 200.0, 300.0, 600.0], [10.5, 20.0, 30.5, 60.0]],
                                     np.float32),
                      scores=np.array([0.9, 0.3125], np.float32),
                      class_ids=np.array([0, 7], np.int32), labels=['person', 'truck'])


def check_array(message, stamp, frame_id, class_ids):
    """Assert the sample detections' layout (works for either message implementation)."""
    assert (message.header.stamp.sec, message.header.stamp.nanosec) == stamp
    assert message.header.frame_id == frame_id
    assert len(message.detections) == 2
    first, second = message.detections
    assert first.header.frame_id == frame_id and first.header.stamp.sec == stamp[0]
    assert (first.bbox.center.position.x, first.bbox.center.position.y) == (200.0, 400.0)
    assert (first.bbox.size_x, first.bbox.size_y) == (200.0, 400.0)
    assert first.bbox.center.theta == 0.0
    assert (second.bbox.center.position.x, second.bbox.size_x) == (20.5, 20.0)
    assert [d.results[0].hypothesis.class_id for d in message.detections] == class_ids
    assert first.results[0].hypothesis.score == pytest.approx(0.9, abs=1e-6)
    assert second.results[0].hypothesis.score == 0.3125
    assert first.results[0].pose.pose.orientation.w == 1.0
    assert first.id == ''


def test_rosbags_message_has_the_vision_msgs_layout(typestore):
    """The builder fills every field; the message survives a CDR round trip."""
    header = rosbags_header(typestore)
    message = build_detection_array(typestore.types, header, sample_detections())
    check_array(message, (17, 250), 'camera_optical', ['person', 'truck'])
    raw = typestore.serialize_cdr(message, ARRAY)
    check_array(typestore.deserialize_cdr(raw, ARRAY), (17, 250), 'camera_optical',
                ['person', 'truck'])


def test_class_ids_as_indices_or_fallback(typestore):
    """'index' gives the class index; unnamed classes fall back to the index with 'name'."""
    header = rosbags_header(typestore)
    message = build_detection_array(typestore.types, header, sample_detections(),
                                    class_id_format='index')
    assert [d.results[0].hypothesis.class_id for d in message.detections] == ['0', '7']
    unnamed = sample_detections()
    unnamed.labels = []
    message = build_detection_array(typestore.types, header, unnamed)
    assert [d.results[0].hypothesis.class_id for d in message.detections] == ['0', '7']


def test_no_detections_gives_an_empty_array_with_the_header(typestore):
    """A frame without detections still publishes its header (so consumers see every frame)."""
    message = build_detection_array(typestore.types, rosbags_header(typestore, 3, 4),
                                    Detections())
    assert message.detections == [] and message.header.stamp.sec == 3


def test_bad_inputs_are_named(typestore):
    """Unknown class_id formats, inconsistent detections and missing types raise clearly."""
    header = rosbags_header(typestore)
    with pytest.raises(ValueError, match="class_id_format must be one of.*'label'"):
        build_detection_array(typestore.types, header, sample_detections(), 'label')
    broken = sample_detections()
    broken.scores = broken.scores[:1]
    with pytest.raises(ValueError, match='2 boxes, 1 scores'):
        build_detection_array(typestore.types, header, broken)
    bare = typesys.get_typestore(typesys.Stores.ROS2_HUMBLE)
    with pytest.raises(KeyError, match='vision_msgs/msg/Detection2DArray.*register_vision_msgs'):
        check_message_types(bare.types)


def ros_modules():
    """Import the generated vision_msgs and geometry_msgs modules, or skip with the reason."""
    try:
        import geometry_msgs.msg
        import rclpy.serialization
        import vision_msgs.msg
    except ImportError as error:
        pytest.skip(f'ROS 2 is not sourced ({error}); source /opt/ros/<distro>/setup.bash')
    return rclpy.serialization, vision_msgs.msg, geometry_msgs.msg


def test_rclpy_classes_build_the_same_message(typestore):
    """The same builder works with rclpy's classes, and rosbags reads what rclpy serialized."""
    serialization, vision_msgs, geometry_msgs = ros_modules()
    from std_msgs.msg import Header
    types = message_types_from_modules(vision_msgs, geometry_msgs)
    header = Header(frame_id='camera_optical')
    header.stamp.sec, header.stamp.nanosec = 17, 250
    message = build_detection_array(types, header, sample_detections())
    assert isinstance(message, vision_msgs.Detection2DArray)
    check_array(message, (17, 250), 'camera_optical', ['person', 'truck'])
    # Our .msg texts must match the real vision_msgs: rosbags decodes rclpy's CDR bytes.
    raw = serialization.serialize_message(message)
    check_array(typestore.deserialize_cdr(raw, ARRAY), (17, 250), 'camera_optical',
                ['person', 'truck'])
    rosbags_raw = typestore.serialize_cdr(
        build_detection_array(typestore.types, rosbags_header(typestore), sample_detections()),
        ARRAY)
    assert bytes(rosbags_raw) == bytes(raw)
