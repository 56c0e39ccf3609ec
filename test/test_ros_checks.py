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

"""The rules that pick the ROS tests, skip missing ROS features and share out ROS domains."""

import importlib.util
import pathlib

import pytest
import ros_checks

HAVE_ROS = importlib.util.find_spec('rclpy') is not None
ROS_SOURCED = pytest.mark.skipif(not HAVE_ROS, reason=ros_checks.ROS_NOT_SOURCED)
ROOT = pathlib.Path(__file__).resolve().parents[1]


def write_module(tmp_path, source):
    """Write a test module; return its path."""
    path = tmp_path / 'test_sample.py'
    path.write_text(source)
    return path


@pytest.mark.parametrize('source,needs', [
    ('from rk_yolo_ros.ros.yolo_node import YoloNode\n', True),
    ('def test_x():\n    from rk_yolo_ros.ros import yolo_node\n', True),
    ('from rk_yolo_ros import ros\n', True),
    ('from rk_yolo_ros.core.reorder import ReorderBuffer\nimport numpy\n', False),
    ('import module_checks\n', False),  # a test/ helper without ROS
    ('from rk_yolo_ros import rosbag_like_name\n', False),
])
def test_the_ros_layer_marks_a_module_anywhere(tmp_path, source, needs):
    """Importing rk_yolo_ros.ros (only that layer) makes a module a ROS test, ROS or not."""
    assert ros_checks.needs_ros(str(write_module(tmp_path, source))) is needs


@ROS_SOURCED
@pytest.mark.parametrize('source,needs', [
    ('def test_x():\n    import rclpy\n', True),  # a lazy import
    ('try:\n    from sensor_msgs.msg import Image\nexcept ImportError:\n    pass\n', True),
    ("import pytest\n\ndef test_x():\n    pytest.importorskip('ament_flake8.main')\n", True),
    ("import importlib.util\nHAVE = importlib.util.find_spec('launch_ros')\n", True),
    ('import ros_checks\n', True),  # a test/ helper that imports ROS
    ('import yaml\nimport cv2\nimport pytest\n', False),  # apt's, not the ROS tree's
    ("import pytest\n\ndef test_x():\n    pytest.importorskip('onnx')\n", False),
])
def test_ros_packages_mark_a_module(tmp_path, source, needs):
    """A module that imports a package of the sourced ROS 2 tree, however, is a ROS test."""
    assert ros_checks.needs_ros(str(write_module(tmp_path, source))) is needs


@ROS_SOURCED
def test_the_suites_ros_modules_are_found():
    """The launch test, the node tests and the linters are ROS tests; the core tests are not."""
    for name in ('test_yolo_launch', 'test_node_startup', 'test_qos', 'test_flake8'):
        assert ros_checks.needs_ros(str(ROOT / 'test' / f'{name}.py')), name
    for name in ('test_reorder', 'test_letterbox', 'test_offline_bag'):
        assert not ros_checks.needs_ros(str(ROOT / 'test' / f'{name}.py')), name


def test_feature_names_are_checked():
    """requires_ros_feature names a known feature; a typo fails at import, not silently."""
    mark = ros_checks.requires_ros_feature('rosbag2', 'rviz2')
    assert mark.name == 'ros_feature' and mark.args == ('rosbag2', 'rviz2')
    with pytest.raises(ValueError, match="got \\['rosbag'\\]"):
        ros_checks.requires_ros_feature('rosbag')
    with pytest.raises(ValueError, match='requires_ros_feature takes names from'):
        ros_checks.requires_ros_feature()


def test_a_missing_feature_is_named_with_the_tree(monkeypatch):
    """The skip reason names the missing feature and the tree (or that ROS is not sourced)."""
    monkeypatch.setitem(ros_checks.ROS_FEATURES, 'rviz2', ('no_such_ros_package',))
    monkeypatch.setenv('ROS_DISTRO', 'jazzy')
    reason = ros_checks.missing_ros_features.__wrapped__(('rviz2',))
    if HAVE_ROS:
        assert reason.startswith('needs rviz2, which this ROS 2 tree (jazzy) does not have')
    else:
        assert reason == ros_checks.ROS_NOT_SOURCED


def test_each_tree_has_its_own_domain_block(monkeypatch):
    """Humble's and Jazzy's domain ids never meet, whatever the process id and salt."""
    ids = {}
    for distro in ('humble', 'jazzy'):
        monkeypatch.setenv('ROS_DISTRO', distro)
        ids[distro] = {ros_checks.ros_domain_id(salt) for salt in range(200)}
    assert not ids['humble'] & ids['jazzy']
    assert all(0 <= i <= 232 for i in ids['humble'] | ids['jazzy'])  # Cyclone DDS' valid ids
