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
Launch yolo_node on an image topic, optionally with rviz2.

    ros2 launch rk_yolo_ros yolo.launch.py workers:=3 image_topic:=/camera/image_raw rviz:=true

Parameters come from ``params_file`` (default: the package's config/yolo.yaml); the launch
arguments below override the file's values.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

# name: (default, description, type of the node parameter it sets or None)
ARGUMENTS = {
    'workers': ('3', 'Worker processes, one per NPU core (RK3588: 3).', int),
    'model': ('', 'Model file (.onnx or .rknn); empty: the cached demo model.', str),
    'backend': ('auto', 'auto | onnx | rknn | emulated (emulated: no model, sleeps only).', str),
    'image_topic': ('/image_raw', 'Input image topic, remapped to the node topic "image" (and '
                    '<topic>/compressed to "image/compressed").', None),
    'input_transport': ('raw', 'raw (sensor_msgs/Image) | compressed '
                        '(sensor_msgs/CompressedImage on <image_topic>/compressed).', str),
    'qos_reliability': ('reliable', 'reliable | best_effort (to match a Best-Effort camera).',
                        str),
    'qos_history': ('keep_last', 'keep_last | keep_all (no frame lost; backpressure).', str),
    'qos_depth': ('10', 'Subscription queue depth for keep_last.', int),
    'conf_threshold': ('0.25', 'Minimum detection confidence.', float),
    'emulated_latency_ms': ('16.7', 'Inference time of the emulated backend.', float),
    'params_file': (None, 'YAML file with yolo_node parameters.', None),
    'namespace': ('', 'Namespace of the node and its topics.', None),
    'log_level': ('info', 'Logging level of yolo_node.', None),
    'rviz': ('false', 'Start rviz2 with the package rviz/yolo.rviz.', None),
}


def generate_launch_description():
    """Declare the arguments and start yolo_node (and rviz2 if asked)."""
    share = get_package_share_directory('rk_yolo_ros')
    defaults = {'params_file': os.path.join(share, 'config', 'yolo.yaml')}
    arguments = [DeclareLaunchArgument(name, default_value=defaults.get(name, default),
                                       description=description)
                 for name, (default, description, _) in ARGUMENTS.items()]
    overrides = {name: ParameterValue(LaunchConfiguration(name), value_type=value_type)
                 for name, (_, _, value_type) in ARGUMENTS.items() if value_type is not None}
    image_topic = LaunchConfiguration('image_topic')
    node = Node(
        package='rk_yolo_ros', executable='yolo_node', name='yolo_node',
        namespace=LaunchConfiguration('namespace'), output='screen', emulate_tty=True,
        parameters=[LaunchConfiguration('params_file'), overrides],
        remappings=[('image', image_topic), ('image/compressed', [image_topic, '/compressed'])],
        arguments=['--ros-args', '--log-level', LaunchConfiguration('log_level')])
    rviz = Node(
        package='rviz2', executable='rviz2', name='rviz2', output='screen',
        namespace=LaunchConfiguration('namespace'),
        arguments=['-d', PathJoinSubstitution([share, 'rviz', 'yolo.rviz'])],
        condition=IfCondition(LaunchConfiguration('rviz')))
    return LaunchDescription(arguments + [node, rviz])
