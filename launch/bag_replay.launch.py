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
Replay a rosbag2 recording (sqlite3 or mcap) into yolo_node, optionally with rviz2.

    ros2 launch rk_yolo_ros bag_replay.launch.py bag:=/path/to/bag image_topic:=/camera/image_raw

The bag starts playing once yolo_node reports that its workers are ready, so no frame is
published before the node subscribes. The node subscribes with keep_all by default here, so a
Reliable recording replays without losing a frame (for a Best-Effort recording pass
qos_reliability:=best_effort). Every other argument of yolo.launch.py can be passed too.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import (DeclareLaunchArgument, ExecuteProcess, IncludeLaunchDescription,
                            OpaqueFunction, RegisterEventHandler)
from launch.event_handlers import OnProcessIO
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

READY_TEXT = b'yolo_node]: ready in'  # logged by yolo_node once its workers are up


def play_command(bag, rate='1.0', loop='false', topics=''):
    """Return the `ros2 bag play` command line for the launch arguments' values."""
    if not bag:
        raise ValueError('bag:=<path of a rosbag2 folder or file> is required')
    command = ['ros2', 'bag', 'play', os.path.expanduser(bag), '--rate', str(float(rate))]
    if loop.lower() in ('true', '1', 'yes'):
        command.append('--loop')
    if topics.strip():
        command += ['--topics'] + topics.split()
    return command


def _start_player(context, started):
    """Start `ros2 bag play` once (the first time yolo_node says it is ready)."""
    if started:
        return []
    started.append(True)
    values = {name: LaunchConfiguration(name).perform(context)
              for name in ('bag', 'rate', 'loop', 'topics')}
    return [ExecuteProcess(cmd=play_command(**values), name='bag_play', output='screen')]


def generate_launch_description():
    """Declare the arguments, include yolo.launch.py, and play the bag once the node is up."""
    share = get_package_share_directory('rk_yolo_ros')
    arguments = [
        DeclareLaunchArgument('bag', description='rosbag2 folder (or .db3 / .mcap file) to '
                              'replay; the storage is detected by ros2 bag play.'),
        DeclareLaunchArgument('rate', default_value='1.0', description='Playback rate.'),
        DeclareLaunchArgument('loop', default_value='false', description='Replay in a loop.'),
        DeclareLaunchArgument('topics', default_value='', description='Space-separated topics '
                              'to play (empty: all of them).'),
        DeclareLaunchArgument('qos_history', default_value='keep_all', description='keep_all '
                              '(no frame lost) | keep_last.'),
    ]
    started = []

    def on_output(event):
        if READY_TEXT in event.text:
            return OpaqueFunction(function=_start_player, args=[started])
        return None

    # yolo.launch.py sees every argument given on the command line (workers:=2, rviz:=true,
    # ...) and the qos_history declared above.
    detector = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, 'launch', 'yolo.launch.py')))
    ready = RegisterEventHandler(OnProcessIO(on_stdout=on_output, on_stderr=on_output))
    return LaunchDescription(arguments + [ready, detector])
