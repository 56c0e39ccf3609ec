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
    ros2 launch rk_yolo_ros yolo.launch.py \
        image_topics:='[/front/image_raw, /left/image_raw/compressed, /right/image_raw]'

Every setting of the node (``rk_yolo_ros.core.settings``) is also a launch argument. Precedence
is what ROS users expect: the node's defaults, then ``params_file`` (default: the package's
config/yolo.yaml, which holds the defaults), then the arguments given on the command line. An
argument that is not given does not override the file. Values are read and checked by the
settings' own rules, so a bad one stops the launch with the same message rk-yolo gives, before
the node starts; so does rviz:=true where rviz2 is not installed.

yolo_node is a lifecycle node that takes itself to active (autostart:=true, the default);
autostart:=false leaves it unconfigured for a lifecycle manager.
"""

import os
import tempfile

from ament_index_python.packages import (get_package_prefix, get_package_share_directory,
                                         PackageNotFoundError)
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from rk_yolo_ros.core import settings
import yaml

NOT_GIVEN = ''  # a setting's argument left at this does not override params_file
RVIZ_FRAME = 'rk_yolo_view'  # the fixed frame of rviz/yolo.rviz
# name: (default, description) of the arguments that are not node settings
LAUNCH_ARGUMENTS = {
    'image_topic': ('/image_raw', 'Input image topic, remapped to the node topic "image" (and '
                    '<topic>/compressed to "image/compressed"); image_topics (several cameras) '
                    'replaces it.'),
    'params_file': (None, "YAML file of yolo_node parameters (default: the package's "
                    'config/yolo.yaml, every setting at its default; `rk-yolo params` prints '
                    'it). Arguments given on the command line win over it.'),
    'namespace': ('', 'Namespace of the node and its topics.'),
    'log_level': ('info', 'Logging level of yolo_node.'),
    'rviz': ('false', 'Start rviz2 with the package rviz/yolo.rviz.'),
}


def setting_overrides(context):
    """Return the settings given as launch arguments, read and checked (ValueError if bad)."""
    overrides = {}
    for item in settings.SETTINGS:
        text = LaunchConfiguration(item.name).perform(context)
        if text != NOT_GIVEN:
            overrides[item.name] = settings.parse_text(item.name, text)
    return overrides


def overrides_file(context) -> str:
    """
    Write the given settings into a parameters file (passed after params_file, so it wins).

    A file rather than a dict: launch_ros cannot pass an empty list (cpu_affinity:=[]) as a
    parameter, a parameters file can.
    """
    handle, path = tempfile.mkstemp(prefix='rk_yolo_launch_', suffix='.yaml')
    with os.fdopen(handle, 'w') as stream:
        yaml.safe_dump({'/**/yolo_node': {'ros__parameters': setting_overrides(context)}},
                       stream)
    return path


def rviz_available() -> bool:
    """Return True if rviz2 is installed in the sourced ROS environment."""
    try:
        get_package_prefix('rviz2')
    except PackageNotFoundError:
        return False
    return True


def _nodes(context, share):
    """Build yolo_node (and rviz2) from the launch arguments' values."""
    with_rviz = settings.parse_text('publish_annotated',  # the same true/false rule
                                    LaunchConfiguration('rviz').perform(context))
    if with_rviz and not rviz_available():
        raise RuntimeError('rviz:=true but rviz2 is not installed here (no package rviz2 in '
                           'the sourced ROS environment); install ros-$ROS_DISTRO-rviz2 or '
                           'launch without rviz:=true. Nothing was started.')
    params_file = LaunchConfiguration('params_file').perform(context)
    parameters = ([params_file] if params_file else []) + [overrides_file(context)]
    image_topic = LaunchConfiguration('image_topic').perform(context)
    namespace = LaunchConfiguration('namespace').perform(context)
    remappings = [('image', image_topic), ('image/compressed', image_topic + '/compressed')]
    # A LifecycleNode action, so that launch sees its state transitions (bag_replay.launch.py
    # starts playing when it is active); the node takes itself to active (autostart).
    nodes = [LifecycleNode(
        package='rk_yolo_ros', executable='yolo_node', name='yolo_node', namespace=namespace,
        output='screen', emulate_tty=True, parameters=parameters,
        remappings=remappings,
        arguments=['--ros-args', '--log-level',
                   LaunchConfiguration('log_level').perform(context)])]
    if with_rviz:
        # yolo.rviz names its topics relative (image_annotated, image), so they follow the
        # namespace and, remapped like the node's, image_topic
        nodes.append(Node(package='rviz2', executable='rviz2', name='rviz2', output='screen',
                          namespace=namespace, remappings=remappings,
                          arguments=['-d', os.path.join(share, 'rviz', 'yolo.rviz')]))
        # The image displays need no TF, but rviz2 wants its fixed frame to exist: this one
        # frame of its own does (an identity transform to a child no one else uses).
        nodes.append(Node(package='tf2_ros', executable='static_transform_publisher',
                          name='rk_yolo_view_frame', output='log', namespace=namespace,
                          arguments=['--frame-id', RVIZ_FRAME,
                                     '--child-frame-id', RVIZ_FRAME + '_image']))
    return nodes


def generate_launch_description():
    """Declare the arguments (every setting, and the launch's own) and start the node."""
    share = get_package_share_directory('rk_yolo_ros')
    defaults = {'params_file': os.path.join(share, 'config', 'yolo.yaml')}
    arguments = [DeclareLaunchArgument(name, default_value=defaults.get(name, default),
                                       description=description)
                 for name, (default, description) in LAUNCH_ARGUMENTS.items()]
    arguments += [DeclareLaunchArgument(
        item.name, default_value=NOT_GIVEN,
        description=f'{item.help_text()} Not given: the value in params_file.')
        for item in settings.SETTINGS]
    return LaunchDescription(arguments + [OpaqueFunction(function=_nodes, args=[share])])
