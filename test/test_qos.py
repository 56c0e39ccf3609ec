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
QoS of yolo_node: the Best-Effort override, and keep_all losing nothing under backpressure.

Each test starts its own yolo_node process (emulated backend, so no model is needed) in its
own ROS domain and talks to it from an rclpy node in this process.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from rk_yolo_ros.core.frame_slots import SEGMENT_PREFIX, SHM_DIR
from ros_checks import ros_domain_id

try:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from vision_msgs.msg import Detection2DArray
except ImportError:
    rclpy = None

# A mark, not a module-level skip: that would skip the whole folder under launch_testing.
pytestmark = pytest.mark.skipif(rclpy is None, reason='ROS 2 is not sourced; source '
                                '/opt/ros/<distro>/setup.bash or run scripts/run_tests.sh')
START_TIMEOUT_S = 60.0


class NodeProcess:
    """A yolo_node process in a namespace, stopped with SIGINT like ros2 launch does."""

    def __init__(self, domain_id, namespace, **parameters):
        """Start the node with the emulated backend and the given parameters."""
        parameters = {'backend': 'emulated', 'workers': 1, 'cpu_affinity': '[]', **parameters}
        command = [sys.executable, '-m', 'rk_yolo_ros.ros.yolo_node', '--ros-args',
                   '-r', f'__ns:=/{namespace}', '-r', f'image:=/{namespace}/camera']
        for name, value in parameters.items():
            command += ['-p', f'{name}:={value}']
        env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id))
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)

    def stop(self):
        """Stop the node; return (exit code, its output)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            output, _ = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            output, _ = self.process.communicate()
        return self.process.returncode, output


class Harness:
    """An rclpy node in the test's domain, plus the yolo_node processes it started."""

    def __init__(self, domain_id):
        """Create the rclpy context and node."""
        self.domain_id = domain_id
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node('qos_test', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.processes = []

    def start(self, namespace, **parameters):
        """Start a yolo_node; return the process."""
        process = NodeProcess(self.domain_id, namespace, **parameters)
        self.processes.append(process)
        return process

    def spin_until(self, predicate, timeout, what):
        """Spin until predicate() holds; fail naming what on timeout."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                outputs = [p.stop()[1] for p in self.processes]
                pytest.fail(f'timed out waiting for {what}; node output:\n' + '\n'.join(outputs))
            self.executor.spin_once(timeout_sec=0.02)

    def close(self):
        """Stop the nodes (asserting a clean exit) and destroy the test node."""
        try:
            for process in self.processes:
                pid = process.process.pid
                code, output = process.stop()
                assert code == 0, f'yolo_node exited with {code}:\n{output}'
                left = [n for n in os.listdir(SHM_DIR) if n.startswith(f'{SEGMENT_PREFIX}{pid}_')]
                assert left == [], f'shared memory left behind: {left}'
        finally:
            self.node.destroy_node()
            rclpy.try_shutdown(context=self.context)


@pytest.fixture
def harness():
    """Give the test its own ROS domain, test node and node processes."""
    domain_id = ros_domain_id(37)
    harness = Harness(domain_id)
    yield harness
    harness.close()


def image_message(index, width=320, height=240):
    """Return a bgr8 Image whose stamp encodes its index."""
    message = Image(width=width, height=height, encoding='bgr8', step=width * 3)
    message.data = np.full((height, width, 3), index % 250, np.uint8).tobytes()
    message.header.stamp.sec = 500 + index
    message.header.frame_id = 'qos_camera'
    return message


def test_best_effort_camera_needs_the_documented_override(harness):
    """A Best-Effort publisher matches only a node with qos_reliability:=best_effort."""
    best_effort = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
    harness.start('overridden', qos_reliability='best_effort')
    harness.start('default')
    received = []
    harness.node.create_subscription(Detection2DArray, '/overridden/detections',
                                     received.append, 50)
    publisher = harness.node.create_publisher(Image, '/overridden/camera', best_effort)
    unmatched = harness.node.create_publisher(Image, '/default/camera', best_effort)
    harness.spin_until(lambda: publisher.get_subscription_count() > 0, START_TIMEOUT_S,
                       'the best_effort node to subscribe')
    sent = []
    for index in range(15):
        harness.spin_until(lambda: len(sent) - len(received) < 3, 20.0, 'detections')
        publisher.publish(image_message(index))
        sent.append(500 + index)
    harness.spin_until(lambda: len(received) >= len(sent), 20.0, 'all detections')
    assert [m.header.stamp.sec for m in received] == sent
    # The default (Reliable) node is up (its outputs exist) but cannot match Best-Effort input.
    harness.spin_until(lambda: harness.node.count_publishers('/default/detections') > 0,
                       START_TIMEOUT_S, 'the default node to start')
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        harness.executor.spin_once(timeout_sec=0.05)
    assert harness.node.count_subscribers('/default/camera') == 1
    assert unmatched.get_subscription_count() == 0


def test_keep_all_loses_nothing_behind_a_slow_backend(harness):
    """A fast Reliable keep_all publisher and a 150 ms backend: every frame, in order."""
    keep_all = QoSProfile(depth=1, history=HistoryPolicy.KEEP_ALL,
                          reliability=ReliabilityPolicy.RELIABLE)
    harness.start('slow', qos_history='keep_all', emulated_latency_ms=150.0, slots=2)
    received = []
    harness.node.create_subscription(Detection2DArray, '/slow/detections', received.append,
                                     keep_all)
    publisher = harness.node.create_publisher(Image, '/slow/camera', keep_all)
    harness.spin_until(lambda: publisher.get_subscription_count() > 0, START_TIMEOUT_S,
                       'the keep_all node to subscribe')
    frames = 25
    started = time.monotonic()
    for index in range(frames):  # as fast as rclpy publishes: far faster than 150 ms
        publisher.publish(image_message(index))
    publish_s = time.monotonic() - started
    harness.spin_until(lambda: len(received) >= frames, 60.0, f'{frames} detections')
    total_s = time.monotonic() - started
    assert [m.header.stamp.sec for m in received] == [500 + i for i in range(frames)]
    # Where the queueing happened (DDS reader queue or a blocked publisher) is middleware
    # behaviour; reported, not asserted.
    print(json.dumps({'keep_all_frames': frames, 'publish_s': round(publish_s, 3),
                      'all_detections_s': round(total_s, 3), 'backend': 'emulated 150 ms',
                      'rmw': os.environ.get('RMW_IMPLEMENTATION', 'default')}))
