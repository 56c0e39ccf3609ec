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
The node, rk-yolo and the launch file take their settings from one table and agree.

Every node parameter is a setting and every setting that is not a ROS matter is an rk-yolo
flag; each bad value of ``settings_cases`` is refused by rk-yolo and by a real yolo_node (rclpy,
in this process) with the same message.
"""

import importlib.util

from offline_helpers import FAST_RUN
import pytest
from rk_yolo_ros import cli
from rk_yolo_ros.core import settings
from ros_checks import ros_domain_id
from settings_cases import BAD_VALUES

HAVE_ROS = importlib.util.find_spec('rclpy') is not None
needs_ros = pytest.mark.skipif(not HAVE_ROS, reason='ROS 2 is not sourced; source '
                               '/opt/ros/<distro>/setup.bash or run scripts/run_tests.sh')


def run_flags():
    """Return {option string: argparse action} of ``rk-yolo run``."""
    parser = cli.build_parser()
    run = parser._subparsers._group_actions[0].choices['run']
    return {option: action for action in run._actions for option in action.option_strings}


def cli_text(value):
    """Write a value the way a user types it on the command line."""
    if isinstance(value, list):
        return '[' + ', '.join(str(v) for v in value) + ']'
    return str(value)


def test_every_setting_but_the_ros_ones_is_an_rk_yolo_flag():
    """One flag per setting, named after it, with the table's default."""
    flags = run_flags()
    for item in settings.SETTINGS:
        if item.ros_only:
            assert item.flag not in flags, item.name
            continue
        assert item.flag in flags, item.name
        assert flags[item.flag].dest == item.name
        assert flags[item.flag].default == item.default, item.name


@pytest.mark.parametrize('name,value,message', BAD_VALUES)
def test_rk_yolo_refuses_each_bad_value_with_the_settings_message(name, value, message,
                                                                  capsys):
    """rk-yolo run exits 2 and prints exactly the settings' message for the flag."""
    item = settings.BY_NAME[name]
    if item.ros_only:
        pytest.skip(f'{name} is a ROS parameter only')
    with pytest.raises(SystemExit) as exited:
        cli.main(['run', 'in.mp4', item.flag, cli_text(value)] + FAST_RUN)
    assert exited.value.code == 2
    assert f': {message}\n' in capsys.readouterr().err


@pytest.fixture(scope='module')
def ros_context():
    """Give the tests an rclpy context in a domain of their own."""
    import rclpy
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain_id(61))
    yield context
    rclpy.try_shutdown(context=context)


@needs_ros
@pytest.mark.parametrize('name,value,message', BAD_VALUES)
def test_the_node_refuses_each_bad_value_with_the_same_message(name, value, message,
                                                               ros_context):
    """A real yolo_node given the bad value fails to configure with the settings' message."""
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter
    from rk_yolo_ros.ros.yolo_node import YoloNode
    overrides = [Parameter('backend', value='emulated'), Parameter(name, value=value)]
    node = YoloNode(context=ros_context, namespace='parity', parameter_overrides=overrides)
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert node.configure_error == message
    finally:
        node.destroy_node()


@needs_ros
def test_the_node_declares_exactly_the_settings(ros_context):
    """Each declared parameter (but rclpy's own) is a setting, read-only unless dynamic."""
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from rk_yolo_ros.ros.yolo_node import YoloNode
    # rclpy declares some on every node: use_sim_time, and from Jazzy on also
    # start_type_description_service; a bare node has just those.
    bare = Node('parity_bare', context=ros_context)
    rclpy_own = set(bare.get_parameters_by_prefix(''))
    bare.destroy_node()
    node = YoloNode(context=ros_context, namespace='parity_ok', parameter_overrides=[
        Parameter('backend', value='emulated'), Parameter('workers', value=1),
        Parameter('cpu_affinity', value=[])])
    try:
        declared = {name for name in node.get_parameters_by_prefix('')
                    if name not in rclpy_own and not name.startswith('diagnostic_updater.')}
        assert declared == set(settings.names())
        for item in settings.SETTINGS:
            descriptor = node.describe_parameter(item.name)
            assert descriptor.read_only is not item.dynamic, item.name
            assert descriptor.additional_constraints == item.expected(), item.name
    finally:
        node.destroy_node()
