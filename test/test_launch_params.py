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
Launch test: in yolo.launch.py a params file wins over the defaults, the command line over both.

Two nodes come up through the package's launch file with the same params file of non-default
values (backend, workers, conf_threshold, classes, ...): ``/from_file`` with nothing else, and
``/explicit`` with ``workers:=1 conf_threshold:=0.7`` given as launch arguments. The active test
reads both nodes' parameters through their parameter services while they run.
(test_launch_refusals.py checks the launches that must not start anything.)
"""

import os
import sys
import time
import unittest

import pytest
from rk_yolo_ros.core import settings
from ros_checks import installed_package_missing, ros_domain_id
import yaml

try:
    from ament_index_python.packages import get_package_share_directory
    from launch import LaunchDescription
    from launch.actions import GroupAction, IncludeLaunchDescription, SetEnvironmentVariable
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    import launch_testing
    import launch_testing.actions
    import launch_testing.asserts
    from rcl_interfaces.srv import GetParameters
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import parameter_value_to_python
except ImportError as error:
    IMPORT_ERROR = error
else:
    IMPORT_ERROR = None

DOMAIN_ID = ros_domain_id(17)
START_TIMEOUT_S = 90.0
FROM_FILE = {'backend': 'emulated', 'workers': 2, 'conf_threshold': 0.6, 'classes': [0, 2],
             'cpu_affinity': [], 'emulated_latency_ms': 5.0, 'output_height': 360,
             'qos_history': 'keep_all'}
EXPLICIT = {'workers': '1', 'conf_threshold': '0.7'}


SKIP_REASON = installed_package_missing(IMPORT_ERROR)
_TestBase = unittest.TestCase if SKIP_REASON is None else object


def _post_shutdown(cls):
    """Mark a class as launch_testing's post-shutdown tests (when launch_testing is here)."""
    return launch_testing.post_shutdown_test()(cls) if SKIP_REASON is None else cls


def write_params_file(folder):
    """Write the params file of non-default values both nodes get; return its path."""
    path = os.path.join(folder, f'rk_yolo_params_{os.getpid()}.yaml')
    with open(path, 'w') as handle:
        yaml.safe_dump({'/**/yolo_node': {'ros__parameters': FROM_FILE}}, handle)
    return path


def launch_file():
    """Return the installed yolo.launch.py."""
    return os.path.join(get_package_share_directory('rk_yolo_ros'), 'launch', 'yolo.launch.py')


def _launch_description():
    """Start /from_file and /explicit through the package's launch file."""
    params_file = write_params_file('/tmp')

    def include(namespace, **arguments):
        arguments.update(namespace=namespace, params_file=params_file,
                         image_topic=f'/{namespace}/camera/image')
        return GroupAction([IncludeLaunchDescription(PythonLaunchDescriptionSource(launch_file()),
                                                     launch_arguments=arguments.items())])

    return LaunchDescription([
        SetEnvironmentVariable('ROS_DOMAIN_ID', str(DOMAIN_ID)),
        include('from_file'),
        include('explicit', **EXPLICIT),
        launch_testing.actions.ReadyToTest(),
    ]), {}


if SKIP_REASON is None:
    generate_test_description = pytest.mark.rostest(_launch_description)
else:
    def test_launch_params():
        """Stand in for the launch test where it cannot run, with the reason."""
        pytest.skip(SKIP_REASON)


class ParameterPrecedence(_TestBase):
    """Read the running nodes' parameters."""

    @classmethod
    def setUpClass(cls):
        """Create a client node in the launch's ROS domain."""
        cls.context = rclpy.Context()
        rclpy.init(context=cls.context, domain_id=DOMAIN_ID)
        cls.node = rclpy.create_node('launch_params_test', context=cls.context)
        cls.executor = SingleThreadedExecutor(context=cls.context)
        cls.executor.add_node(cls.node)

    @classmethod
    def tearDownClass(cls):
        """Destroy the client node and its context."""
        cls.node.destroy_node()
        rclpy.try_shutdown(context=cls.context)

    def parameters(self, namespace, names):
        """Return {name: value} of /<namespace>/yolo_node, waiting for it to be up."""
        client = self.node.create_client(GetParameters, f'/{namespace}/yolo_node/get_parameters')
        deadline = time.monotonic() + START_TIMEOUT_S
        while not client.wait_for_service(timeout_sec=0.1):
            self.assertLess(time.monotonic(), deadline, f'/{namespace}/yolo_node never came up')
        future = client.call_async(GetParameters.Request(names=list(names)))
        self.executor.spin_until_future_complete(future, timeout_sec=30.0)
        self.assertTrue(future.done(), f'/{namespace}/yolo_node did not answer')
        values = [parameter_value_to_python(v) for v in future.result().values]
        # ROS keeps an empty list from YAML as an unset (typeless) parameter: the node reads
        # it as [] (plain_value); so does this test
        return {name: (list(value or []) if settings.BY_NAME[name].kind is settings.Kind.INT_LIST
                       else value) for name, value in zip(names, values)}

    def test_params_file_wins_over_the_defaults(self):
        """Every value of the file is in force; what the file does not set keeps its default."""
        values = self.parameters('from_file', list(FROM_FILE) + ['iou_threshold', 'slots'])
        for name, value in FROM_FILE.items():
            self.assertEqual(values[name], value, name)
        self.assertEqual(values['iou_threshold'], settings.default('iou_threshold'))
        self.assertEqual(values['slots'], settings.default('slots'))

    def test_command_line_wins_over_the_params_file(self):
        """workers:=1 and conf_threshold:=0.7 override the file; the rest still comes from it."""
        values = self.parameters('explicit', list(FROM_FILE))
        expected = dict(FROM_FILE, workers=1, conf_threshold=0.7)
        for name, value in expected.items():
            self.assertEqual(values[name], value, name)


@_post_shutdown
class AfterShutdown(_TestBase):
    """Checks once the launch has shut down."""

    def test_exit_codes(self, proc_info):
        """Both nodes exited cleanly."""
        launch_testing.asserts.assertExitCodes(proc_info)


if __name__ == '__main__':
    sys.exit(pytest.main([__file__]))
