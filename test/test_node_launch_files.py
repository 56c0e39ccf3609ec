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

"""The launch files build, document every argument, and the config matches the node."""

import importlib.util
import pathlib

import pytest
from ros_checks import installed_package_missing, ROS_NOT_SOURCED
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
LAUNCH = ROOT / 'launch'


def load_launch_module(name):
    """Import a launch file as a module (needs launch and the installed package)."""
    # not 'launch' (the repository's launch/ folder imports as a namespace package): launch_ros
    pytest.importorskip('launch_ros', reason=ROS_NOT_SOURCED)
    reason = installed_package_missing()
    if reason:
        pytest.skip(reason)
    spec = importlib.util.spec_from_file_location(name.replace('.', '_'), LAUNCH / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def documented(argument):
    """Return True if a launch argument has a real description (not launch's placeholder)."""
    text = argument.description.strip()
    return bool(text) and text != 'no description given'


def declared_arguments(description):
    """Return {name: DeclareLaunchArgument} of a launch description, included files too."""
    return {argument.name: argument for argument in description.get_launch_arguments()}


def test_yolo_launch_arguments_are_the_settings_and_are_documented():
    """yolo.launch.py builds; every setting is an argument; each has a description."""
    from rk_yolo_ros.core import settings
    description = load_launch_module('yolo.launch.py').generate_launch_description()
    arguments = declared_arguments(description)
    assert set(settings.names()) | {'image_topic', 'params_file', 'namespace', 'log_level',
                                    'rviz'} == set(arguments)
    assert all(documented(argument) for argument in arguments.values()), arguments
    defaults = {name: ''.join(part.perform(None) for part in argument.default_value)
                for name, argument in arguments.items()}
    # a setting not given on the command line must not override params_file
    assert all(defaults[name] == '' for name in settings.names())
    assert defaults['rviz'] == 'false'
    assert pathlib.Path(defaults['params_file']).is_file()
    assert yaml.safe_load(pathlib.Path(defaults['params_file']).read_text())


def test_bag_replay_builds_and_requires_a_bag():
    """bag_replay.launch.py builds, includes the node's arguments and needs bag:=."""
    module = load_launch_module('bag_replay.launch.py')
    arguments = declared_arguments(module.generate_launch_description())
    assert arguments['bag'].default_value is None  # required
    assert {'rate', 'loop', 'topics', 'workers', 'rviz', 'qos_reliability'} <= set(arguments)
    assert all(documented(argument) for argument in arguments.values()), arguments


def test_bag_play_command():
    """The player command carries the bag, rate, loop, topics and the lossless QoS file."""
    module = load_launch_module('bag_replay.launch.py')
    assert module.play_command('/bags/run1') == [
        'ros2', 'bag', 'play', '/bags/run1', '--rate', '1.0', '--delay', '1.0']
    assert module.play_command('run.mcap', rate='2', loop='true', topics='/a /b',
                               qos_file='/tmp/q.yaml') == [
        'ros2', 'bag', 'play', 'run.mcap', '--rate', '2.0', '--delay', '1.0',
        '--qos-profile-overrides-path', '/tmp/q.yaml', '--wait-for-all-acked', '0', '--loop',
        '--topics', '/a', '/b']
    assert module.qos_overrides('/cam') == {
        topic: {'reliability': 'reliable', 'history': 'keep_all', 'durability': 'volatile'}
        for topic in ('/cam', '/cam/compressed')}
    with pytest.raises(ValueError, match='bag:=<path'):
        module.play_command('')


def test_rviz_config_follows_the_namespace_and_needs_no_tf():
    """yolo.rviz shows image_annotated (Reliable) and image by relative names; its own frame."""
    config = yaml.safe_load((ROOT / 'rviz' / 'yolo.rviz').read_text())
    displays = {d['Name']: d for d in config['Visualization Manager']['Displays']}
    annotated = displays['Annotated image']
    assert annotated['Enabled'] and annotated['Class'] == 'rviz_default_plugins/Image'
    assert annotated['Topic']['Value'] == 'image_annotated'
    assert annotated['Topic']['Reliability Policy'] == 'Reliable'
    assert displays['Input image']['Topic']['Value'] == 'image'
    module = load_launch_module('yolo.launch.py')
    assert config['Visualization Manager']['Global Options']['Fixed Frame'] == module.RVIZ_FRAME
