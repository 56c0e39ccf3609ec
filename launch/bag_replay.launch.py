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

The bag starts playing once yolo_node is active (its lifecycle state, whatever the log level),
after a short delay for the player's publishers to meet the node's subscription. Every other
argument of yolo.launch.py can be passed too.

No frame is lost, even at rate:=4 into a node slower than the recording: the player's
publishers of the image topic are made Reliable keep_all (a QoS override file written here),
the node subscribes keep_all (qos_history defaults to keep_all here), and the player waits at
the end until the node has every message. Nothing can be overwritten in either queue, so a
backlog waits in the middleware instead of being dropped; the player's own pacing could not
know how fast the node is. (Memory: the backlog is at most the part of the bag not yet
processed. For a Best-Effort recording pass qos_reliability:=best_effort.)
"""

import os
import tempfile

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import (DeclareLaunchArgument, ExecuteProcess, IncludeLaunchDescription,
                            OpaqueFunction, RegisterEventHandler)
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.event_handlers import OnStateTransition
import yaml

DISCOVERY_DELAY_S = 1.0  # lets the player's publishers match the node before the first frame
LOSSLESS_QOS = {'reliability': 'reliable', 'history': 'keep_all', 'durability': 'volatile'}


def qos_overrides(image_topic):
    """Return ros2 bag play's QoS overrides: the image topics Reliable keep_all."""
    return {topic: dict(LOSSLESS_QOS) for topic in (image_topic, image_topic + '/compressed')}


def play_command(bag, rate='1.0', loop='false', topics='', qos_file=None):
    """Return the `ros2 bag play` command line for the launch arguments' values."""
    if not bag:
        raise ValueError('bag:=<path of a rosbag2 folder or file> is required')
    command = ['ros2', 'bag', 'play', os.path.expanduser(bag), '--rate', str(float(rate)),
               '--delay', str(DISCOVERY_DELAY_S)]
    if qos_file:
        # wait at the end (0: as long as it takes) until the node has every message
        command += ['--qos-profile-overrides-path', qos_file, '--wait-for-all-acked', '0']
    if loop.lower() in ('true', '1', 'yes'):
        command.append('--loop')
    if topics.strip():
        command += ['--topics'] + topics.split()
    return command


def _player(values):
    """Return the `ros2 bag play` action, its QoS override file written now."""
    handle, qos_file = tempfile.mkstemp(prefix='rk_yolo_replay_qos_', suffix='.yaml')
    with os.fdopen(handle, 'w') as qos:
        yaml.safe_dump(qos_overrides(values.pop('image_topic')), qos)
    return ExecuteProcess(cmd=play_command(qos_file=qos_file, **values), name='bag_play',
                          output='screen')


def _play_when_active(context):
    """Read the arguments now (in this launch's scope), start the player once when active."""
    values = {name: LaunchConfiguration(name).perform(context)
              for name in ('bag', 'rate', 'loop', 'topics', 'image_topic')}
    started = []

    def start_once(_context):
        if started:
            return []
        started.append(True)
        return [_player(dict(values))]

    return [RegisterEventHandler(OnStateTransition(
        goal_state='active', entities=[OpaqueFunction(function=start_once)]))]


def generate_launch_description():
    """Declare the arguments, include yolo.launch.py, and play the bag once the node is up."""
    share = get_package_share_directory('rk_yolo_ros')
    arguments = [
        DeclareLaunchArgument('bag', description='rosbag2 folder (or .db3 / .mcap file) to '
                              'replay; the storage is detected by ros2 bag play.'),
        DeclareLaunchArgument('rate', default_value='1.0', description='Playback rate; '
                              'faster than the node loses nothing (see the file header).'),
        DeclareLaunchArgument('loop', default_value='false', description='Replay in a loop.'),
        DeclareLaunchArgument('topics', default_value='', description='Space-separated topics '
                              'to play (empty: all of them).'),
        DeclareLaunchArgument('qos_history', default_value='keep_all', description='History '
                              'of the node subscription: keep_all (no frame lost) or keep_last.'),
    ]
    # yolo.launch.py sees every argument given on the command line (workers:=2, rviz:=true,
    # ...) and the qos_history declared above.
    detector = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, 'launch', 'yolo.launch.py')))
    # after the include, which declares image_topic
    return LaunchDescription(arguments + [detector, OpaqueFunction(function=_play_when_active)])
