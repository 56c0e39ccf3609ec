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
Launch test: `ros2 bag play` -> bag_replay.launch.py -> yolo_node -> `ros2 bag record`, for real.

A bag of real frames (vtest.avi) with an Image or a CompressedImage topic, in sqlite3 or mcap, is
replayed at 3x its rate into a node made slower than that (emulated 150 ms per frame, 2 workers:
about 13 fps against 30 offered), so a backlog builds up. ``ros2 bag record`` records the node's
outputs. Checked: one Detection2DArray and one annotated image per input frame, each with its
input frame's stamp, in order; nothing lost, nothing twice; the node exits cleanly.
"""

import os
import pathlib
import tempfile
import time
import unittest

from bag_replay_helpers import recorded, stamps_of, video_frames, write_frames_bag
import pytest
from rk_yolo_ros.yolo import demo_assets
from ros_checks import ros_domain_id

try:
    from ament_index_python.packages import get_package_share_directory, PackageNotFoundError
    from launch import LaunchDescription
    from launch.actions import (ExecuteProcess, GroupAction, IncludeLaunchDescription,
                                SetEnvironmentVariable)
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    import launch_testing
    import launch_testing.actions
    import launch_testing.asserts
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from vision_msgs.msg import Detection2DArray
except ImportError as error:
    IMPORT_ERROR = error
else:
    IMPORT_ERROR = None

DOMAIN_ID = ros_domain_id(29)
FRAMES = 24
RATE = '3.0'
TOPIC = '/camera/image_raw'
NAMESPACE = 'replay'
TIMEOUT_S = 150.0
COMBINATIONS = [('sqlite3', 'raw'), ('sqlite3', 'compressed'), ('mcap', 'raw'),
                ('mcap', 'compressed')]


def _missing_prerequisites():
    """Return why this launch test cannot run here, or None."""
    if IMPORT_ERROR is not None:
        return (f'ROS 2 is not sourced ({IMPORT_ERROR}); source /opt/ros/<distro>/setup.bash '
                'or run scripts/run_tests.sh')
    try:
        get_package_share_directory('rk_yolo_ros')
        get_package_share_directory('rosbag2')
    except PackageNotFoundError as error:
        return (f'{error}: needs rk_yolo_ros installed (scripts/run_tests.sh) and rosbag2 '
                '(ros2 bag), which the Humble tree has and the minimal Jazzy tree lacks')
    if demo_assets.video_path() is None:
        return 'the demo video vtest.avi is not cached (rk-yolo fetch-demo)'
    return None


SKIP_REASON = _missing_prerequisites()
_TestBase = unittest.TestCase if SKIP_REASON is None else object


def _post_shutdown(cls):
    """Mark a class as launch_testing's post-shutdown tests (when launch_testing is here)."""
    return launch_testing.post_shutdown_test()(cls) if SKIP_REASON is None else cls


def _launch_description(storage, transport):
    """Write the input bag, start the recorder and bag_replay.launch.py."""
    folder = pathlib.Path(tempfile.mkdtemp(prefix=f'rk_yolo_replay_{storage}_{transport}_'))
    topic = TOPIC + ('/compressed' if transport == 'compressed' else '')
    stamps = write_frames_bag(folder / 'input', video_frames(demo_assets.video_path(), FRAMES),
                              topic, transport, storage)
    output = folder / 'recorded'
    record = ExecuteProcess(
        cmd=['ros2', 'bag', 'record', '-s', storage, '-o', str(output),
             f'/{NAMESPACE}/detections', f'/{NAMESPACE}/image_annotated'],
        name='bag_record', output='screen')
    replay = GroupAction([IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(
            get_package_share_directory('rk_yolo_ros'), 'launch', 'bag_replay.launch.py')),
        launch_arguments={'bag': str(folder / 'input'), 'rate': RATE, 'namespace': NAMESPACE,
                          'image_topic': TOPIC, 'input_transport': transport,
                          'backend': 'emulated', 'emulated_latency_ms': '150',
                          'workers': '2', 'cpu_affinity': '[]'}.items())])
    return LaunchDescription([
        SetEnvironmentVariable('ROS_DOMAIN_ID', str(DOMAIN_ID)),
        record, replay, launch_testing.actions.ReadyToTest(),
    ]), {'stamps': stamps, 'output': output}


if SKIP_REASON is None:
    generate_test_description = pytest.mark.rostest(
        launch_testing.parametrize('storage,transport', COMBINATIONS)(_launch_description))
else:
    def test_bag_replay():
        """Stand in for the launch test where it cannot run, with the reason."""
        pytest.skip(SKIP_REASON)


class ReplayLive(_TestBase):
    """Wait for the node to publish every frame of the bag."""

    def test_every_frame_of_the_bag_is_published(self, stamps):
        """The node publishes one Detection2DArray per input frame, in order, at 3x speed."""
        context = rclpy.Context()
        rclpy.init(context=context, domain_id=DOMAIN_ID)
        node = rclpy.create_node('replay_watcher', context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        received = []
        node.create_subscription(
            Detection2DArray, f'/{NAMESPACE}/detections',
            lambda m: received.append(m.header.stamp.sec * 1_000_000_000 +
                                      m.header.stamp.nanosec),
            QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST,
                       reliability=ReliabilityPolicy.RELIABLE))
        try:
            deadline = time.monotonic() + TIMEOUT_S
            while len(received) < len(stamps):
                self.assertLess(time.monotonic(), deadline,
                                f'{len(received)} of {len(stamps)} frames published')
                executor.spin_once(timeout_sec=0.1)
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                executor.spin_once(timeout_sec=0.05)
            self.assertEqual(received, stamps)
            time.sleep(1.0)  # the recorder writes the last messages
        finally:
            node.destroy_node()
            rclpy.try_shutdown(context=context)


@_post_shutdown
class ReplayRecorded(_TestBase):
    """Read what ros2 bag record wrote."""

    def test_exit_codes(self, proc_info):
        """The node, the player and the recorder all exited cleanly."""
        launch_testing.asserts.assertExitCodes(proc_info)

    def test_the_recording_holds_every_frame_once_in_order(self, stamps, output):
        """One detections array and one annotated image per input frame, input stamps, order."""
        topics = recorded(output)
        detections = topics[f'/{NAMESPACE}/detections']
        annotated = topics[f'/{NAMESPACE}/image_annotated']
        self.assertEqual(stamps_of(detections), stamps)
        self.assertEqual(stamps_of(annotated), stamps)
        self.assertEqual({kind for kind, _ in detections}, {'vision_msgs/msg/Detection2DArray'})
        self.assertEqual({kind for kind, _ in annotated}, {'sensor_msgs/msg/Image'})
