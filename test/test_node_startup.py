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

"""yolo_node refuses bad start-up parameters with a clear message and a non-zero exit."""

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from ros_checks import ros_domain_id

# A mark, not a module-level skip: that would skip the whole folder under launch_testing.
pytestmark = pytest.mark.skipif(importlib.util.find_spec('rclpy') is None,
                                reason='ROS 2 is not sourced; source /opt/ros/<distro>/'
                                'setup.bash or run scripts/run_tests.sh')


def run_node(*parameters):
    """Run yolo_node with parameters until it exits; return (exit code, output)."""
    command = [sys.executable, '-m', 'rk_yolo_ros.ros.yolo_node', '--ros-args']
    for parameter in parameters:
        command += ['-p', parameter]
    env = dict(os.environ, ROS_DOMAIN_ID=str(ros_domain_id(71)))
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize('parameters,message', [
    (('backend:=onnx', 'model:=/nonexistent/model.onnx'),
     'model file not found: /nonexistent/model.onnx'),
    (('backend:=tpu',), "backend must be one of 'auto', 'onnx', 'rknn', 'emulated', got 'tpu'"),
    (('backend:=emulated', 'qos_reliability:=sometimes'),
     "qos_reliability must be one of 'reliable', 'best_effort', got 'sometimes'"),
    (('backend:=emulated', 'core_masks:=[1, 7]'),
     'core_masks must be a list of single NPU core masks 1, 2 or 4 (not the joint mask 7), got '
     '[1, 7] (mask 7 runs one model on all three NPU cores'),
    (('backend:=emulated', 'conf_threshold:=1.5'),
     'conf_threshold must be a number in [0, 1], got 1.5'),
    (('backend:=emulated', 'input_transport:=h264'),
     "input_transport must be one of 'raw', 'compressed', got 'h264'"),
])
def test_bad_start_parameters_exit_with_the_reason(parameters, message):
    """The node exits 1 and its fatal log line says which value is wrong and why."""
    code, output = run_node(*parameters)
    assert code == 1, output
    assert 'yolo_node failed' in output and message in output, output


def test_node_exits_1_when_its_workers_cannot_be_restarted():
    """Once every worker died and the restarts are used up, the node exits 1 (for respawn)."""
    psutil = pytest.importorskip('psutil')
    command = [sys.executable, '-m', 'rk_yolo_ros.ros.yolo_node', '--ros-args', '-p',
               'backend:=emulated', '-p', 'workers:=1', '-p', 'cpu_affinity:=[]']
    env = dict(os.environ, ROS_DOMAIN_ID=str(ros_domain_id(72)))
    node = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(node.stdout), daemon=True)
    reader.start()
    killed = set()
    deadline = time.monotonic() + 90.0
    try:
        while node.poll() is None and time.monotonic() < deadline:
            if any('active: input' in line for line in lines):  # kill only once it runs
                for child in psutil.Process(node.pid).children():
                    try:
                        if 'spawn_main' in ' '.join(child.cmdline()) and \
                                child.pid not in killed:
                            child.kill()  # a worker of the node this test started
                            killed.add(child.pid)
                    except psutil.NoSuchProcess:
                        pass
            time.sleep(0.2)
    finally:
        if node.poll() is None:
            node.send_signal(signal.SIGINT)
        node.wait(timeout=30)
        reader.join(timeout=10)
    output = ''.join(lines)
    assert node.returncode == 1, output
    assert 'the pipeline stopped: workers 0 dead after 5 restarts' in output, output
    assert len(killed) == 6
