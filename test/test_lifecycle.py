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
yolo_node's lifecycle, driven through its lifecycle services as a lifecycle manager would.

The node runs as its own process with autostart:=false. Each transition is checked by what it
must do: configure starts the workers and creates the shared memory but does not subscribe;
activate subscribes and publishes; deactivate unsubscribes; cleanup and shutdown stop the
workers and leave nothing in /dev/shm; the node can be configured again after a cleanup.
"""

import importlib.util
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from ros_checks import ros_domain_id

HAVE_ROS = importlib.util.find_spec('rclpy') is not None
pytestmark = pytest.mark.skipif(not HAVE_ROS, reason='ROS 2 is not sourced; source '
                                '/opt/ros/<distro>/setup.bash or run scripts/run_tests.sh')
DOMAIN_ID = ros_domain_id(23)
TIMEOUT_S = 90.0


class Lifecycle:
    """A yolo_node process (autostart off) and a client node for its services and topics."""

    def __init__(self, *parameters):
        """Start the node process and the client in a ROS domain of their own."""
        import rclpy
        from lifecycle_msgs.srv import ChangeState, GetState
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import Image
        from vision_msgs.msg import Detection2DArray

        env = dict(os.environ, ROS_DOMAIN_ID=str(DOMAIN_ID))
        self.process = subprocess.Popen(
            [sys.executable, '-m', 'rk_yolo_ros.ros.yolo_node', '--ros-args', '-r',
             '__ns:=/life', '-p', 'autostart:=false', '-p', 'backend:=emulated', '-p',
             'workers:=2', '-p', 'cpu_affinity:=[]', '-p', 'output_height:=240',
             '-p', 'emulated_latency_ms:=5.0'] + [arg for p in parameters for arg in ('-p', p)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=DOMAIN_ID)
        self.node = rclpy.create_node('lifecycle_test', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.change = self.node.create_client(ChangeState, '/life/yolo_node/change_state')
        self.get = self.node.create_client(GetState, '/life/yolo_node/get_state')
        self.ChangeState, self.GetState = ChangeState, GetState
        self.detections = []
        self.node.create_subscription(Detection2DArray, '/life/detections',
                                      self.detections.append, 50)
        self.publisher = self.node.create_publisher(Image, '/life/image', 10)
        self.Image = Image

    def call(self, client, request):
        """Call a service and return its response."""
        deadline = time.monotonic() + TIMEOUT_S
        while not client.wait_for_service(timeout_sec=0.1):
            assert time.monotonic() < deadline, f'{client.srv_name} never came up'
        future = client.call_async(request)
        self.executor.spin_until_future_complete(future, timeout_sec=TIMEOUT_S)
        assert future.done(), f'{client.srv_name} did not answer'
        return future.result()

    def state(self):
        """Return the node's lifecycle state label."""
        return self.call(self.get, self.GetState.Request()).current_state.label

    def transition(self, label):
        """Trigger a transition by its label ('configure', 'activate', ...); return success."""
        from lifecycle_msgs.msg import Transition
        ids = {'configure': Transition.TRANSITION_CONFIGURE,
               'activate': Transition.TRANSITION_ACTIVATE,
               'deactivate': Transition.TRANSITION_DEACTIVATE,
               'cleanup': Transition.TRANSITION_CLEANUP,
               'shutdown': Transition.TRANSITION_INACTIVE_SHUTDOWN}
        request = self.ChangeState.Request()
        request.transition.id = ids[label]
        return self.call(self.change, request).success

    def workers(self):
        """Return the node process's worker processes (not multiprocessing's tracker)."""
        import psutil
        return [child for child in psutil.Process(self.process.pid).children()
                if 'spawn_main' in ' '.join(child.cmdline())]

    def segments(self):
        """Return the shared-memory segments the node process created."""
        return [name for name in os.listdir('/dev/shm')
                if name.startswith(f'rk_yolo_{self.process.pid}_')]

    def subscribers(self):
        """Return how many subscribe to the node's input topic (the node, when active)."""
        return self.publisher.get_subscription_count()

    def image(self, sec):
        """Return a small bgr8 image stamped sec."""
        message = self.Image(width=64, height=48, encoding='bgr8', step=64 * 3)
        message.data = np.full((48, 64, 3), 90, np.uint8).tobytes()
        message.header.stamp.sec = sec
        return message

    def spin_until(self, predicate, what):
        """Spin the client until predicate() holds."""
        deadline = time.monotonic() + TIMEOUT_S
        while not predicate():
            assert time.monotonic() < deadline, f'timed out waiting for {what}'
            self.executor.spin_once(timeout_sec=0.05)

    def close(self):
        """Stop the node process and the client."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        output = self.process.communicate(timeout=30)[0]
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)
        return output


@pytest.fixture
def lifecycle(request):
    """Give the test a yolo_node process waiting to be configured (extra -p from a mark)."""
    mark = request.node.get_closest_marker('node_parameters')
    running = Lifecycle(*(mark.args if mark else ()))
    yield running
    running.close()


def test_each_transition_does_its_part(lifecycle):
    """Unconfigured holds nothing; configure/activate/deactivate/cleanup/shutdown as documented."""
    assert lifecycle.state() == 'unconfigured'
    assert lifecycle.workers() == [] and lifecycle.segments() == []

    assert lifecycle.transition('configure')
    assert lifecycle.state() == 'inactive'
    assert len(lifecycle.workers()) == 2 and len(lifecycle.segments()) == 1
    time.sleep(0.5)
    assert lifecycle.subscribers() == 0  # configured, not subscribed

    assert lifecycle.transition('activate')
    assert lifecycle.state() == 'active'
    lifecycle.spin_until(lambda: lifecycle.subscribers() == 1, 'the node to subscribe')
    for sec in (1, 2, 3):
        lifecycle.publisher.publish(lifecycle.image(sec))
    lifecycle.spin_until(lambda: len(lifecycle.detections) == 3, 'three detections')
    assert [m.header.stamp.sec for m in lifecycle.detections] == [1, 2, 3]

    assert lifecycle.transition('deactivate')
    assert lifecycle.state() == 'inactive'
    lifecycle.spin_until(lambda: lifecycle.subscribers() == 0, 'the node to unsubscribe')
    assert len(lifecycle.workers()) == 2  # still configured: workers and memory stay

    assert lifecycle.transition('cleanup')
    assert lifecycle.state() == 'unconfigured'
    assert lifecycle.segments() == []
    lifecycle.spin_until(lambda: lifecycle.workers() == [], 'the workers to stop')

    # configured again after a cleanup: a new pipeline that works
    assert lifecycle.transition('configure') and lifecycle.transition('activate')
    lifecycle.spin_until(lambda: lifecycle.subscribers() == 1, 'the node to subscribe again')
    lifecycle.publisher.publish(lifecycle.image(4))
    lifecycle.spin_until(lambda: len(lifecycle.detections) == 4, 'the fourth detections')

    assert lifecycle.transition('deactivate') and lifecycle.transition('shutdown')
    assert lifecycle.segments() == []
    lifecycle.spin_until(lambda: lifecycle.workers() == [], 'the workers to stop')


@pytest.mark.node_parameters('conf_threshold:=1.5')
def test_a_failed_configure_starts_nothing_and_can_be_retried(lifecycle):
    """A bad value fails configure (nothing started); once fixed, configure succeeds."""
    import rclpy.parameter
    from rcl_interfaces.srv import SetParameters
    assert not lifecycle.transition('configure')
    assert lifecycle.state() == 'unconfigured'
    assert lifecycle.workers() == [] and lifecycle.segments() == []
    client = lifecycle.node.create_client(SetParameters, '/life/yolo_node/set_parameters')
    request = SetParameters.Request()
    request.parameters = [rclpy.parameter.Parameter('conf_threshold',
                                                    value=0.5).to_parameter_msg()]
    assert lifecycle.call(client, request).results[0].successful
    assert lifecycle.transition('configure')
    assert len(lifecycle.workers()) == 2
    output = lifecycle.close()
    assert 'configure failed: ValueError: conf_threshold must be a number in [0, 1], got 1.5' \
        in output, output
    assert lifecycle.segments() == []
