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
Bags written by `rk-yolo run` are real rosbag2: `ros2 bag info` reads them, `ros2 bag play` plays.

For sqlite3 and mcap: rk-yolo run turns a bag of real frames into an output bag; ros2 bag info
lists its topics and counts, and ros2 bag play delivers every Detection2DArray to a subscriber,
with the input stamps, in order.
"""

import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys
import time

from bag_replay_helpers import video_frames, write_frames_bag
import pytest
from rk_yolo_ros.yolo import demo_assets
from ros_checks import ros_domain_id

HAVE_ROS = importlib.util.find_spec('rclpy') is not None
pytestmark = [
    pytest.mark.skipif(not HAVE_ROS or shutil.which('ros2') is None,
                       reason='ROS 2 is not sourced; source /opt/ros/<distro>/setup.bash or '
                       'run scripts/run_tests.sh'),
    pytest.mark.skipif(importlib.util.find_spec('rosbag2_py') is None,
                       reason='rosbag2 (ros2 bag) is not installed: the Humble tree has it, '
                       'the minimal Jazzy tree does not'),
]
DOMAIN_ID = ros_domain_id(31)
FRAMES = 8


@pytest.fixture(scope='module')
def frames():
    """Return real frames of vtest.avi, or skip."""
    video = demo_assets.video_path()
    if video is None:
        pytest.skip('the demo video vtest.avi is not cached (rk-yolo fetch-demo)')
    return video_frames(video, FRAMES)


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_an_rk_yolo_bag_passes_ros2_bag_info_and_plays(tmp_path, frames, storage):
    """ros2 bag info and ros2 bag play take the output bag of rk-yolo run."""
    stamps = write_frames_bag(tmp_path / 'input', frames, '/camera/image_raw', 'raw', storage)
    output = tmp_path / 'output'
    done = subprocess.run(
        [sys.executable, '-m', 'rk_yolo_ros', 'run', str(tmp_path / 'input'), '--bag',
         str(output), '--bag-storage', storage, '--backend', 'emulated', '--workers', '2',
         '--cpu-affinity', 'none', '--progress', 'off'],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr

    env = dict(os.environ, ROS_DOMAIN_ID=str(DOMAIN_ID))
    info = subprocess.run(['ros2', 'bag', 'info', str(output)], env=env, capture_output=True,
                          text=True, timeout=60)
    assert info.returncode == 0, info.stderr
    assert f'Storage id:        {storage}' in info.stdout, info.stdout
    assert f'Messages:          {2 * FRAMES}' in info.stdout, info.stdout
    assert '/camera/image_raw/detections | Type: vision_msgs/msg/Detection2DArray | ' \
           f'Count: {FRAMES}' in info.stdout, info.stdout

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from vision_msgs.msg import Detection2DArray
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=DOMAIN_ID)
    node = rclpy.create_node('rk_yolo_bag_player_check', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    received = []
    node.create_subscription(Detection2DArray, '/camera/image_raw/detections',
                             lambda m: received.append(m.header.stamp.sec * 1_000_000_000 +
                                                       m.header.stamp.nanosec), 50)
    player = subprocess.Popen(['ros2', 'bag', 'play', str(output), '--delay', '1.0'], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60.0
        while len(received) < FRAMES and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        assert player.wait(timeout=60) == 0, player.stdout.read()
    finally:
        if player.poll() is None:
            player.kill()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    assert received == stamps
    assert pathlib.Path(output).is_dir()
