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
yolo.launch.py refuses to start what cannot run: nothing is started, nothing is left behind.

``ros2 launch`` with a bad setting value, and with rviz:=true where rviz2 is not installed,
must stop before yolo_node starts, say why, and leave no node process and no shared memory.
"""

import os
import subprocess

import pytest
from ros_checks import installed_package_missing, ros_domain_id

DOMAIN_ID = ros_domain_id(19)


SKIP_REASON = installed_package_missing()
pytestmark = pytest.mark.skipif(SKIP_REASON is not None, reason=str(SKIP_REASON))


def ros2_launch(arguments, env=None, timeout=60):
    """Run `ros2 launch rk_yolo_ros yolo.launch.py <arguments>`; return (code, output)."""
    command = ['ros2', 'launch', 'rk_yolo_ros', 'yolo.launch.py'] + arguments
    environment = dict(env or os.environ, ROS_DOMAIN_ID=str(DOMAIN_ID))
    done = subprocess.run(command, env=environment, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=timeout)
    return done.returncode, done.stdout


def our_processes_and_segments():
    """Return the yolo_node processes and the rk_yolo segments left by dead processes, now."""
    import psutil
    nodes = [p.pid for p in psutil.process_iter(['cmdline'])
             if any(part.endswith('yolo_node') for part in (p.info['cmdline'] or []))]
    # segments of live processes belong to other runs on this machine; one of ours would
    # outlive its (dead) node process
    stale = sorted(name for name in os.listdir('/dev/shm') if name.startswith('rk_yolo_')
                   and not psutil.pid_exists(int(name.split('_')[2])))
    return nodes, stale


def test_a_bad_launch_argument_stops_the_launch_with_the_settings_message():
    """conf_threshold:=1.5 stops ros2 launch before the node starts, with the one message."""
    before = our_processes_and_segments()
    code, output = ros2_launch(['backend:=emulated', 'conf_threshold:=1.5'])
    assert code != 0, output
    assert 'conf_threshold must be a number in [0, 1], got 1.5' in output, output
    assert '[yolo_node' not in output, output
    assert our_processes_and_segments() == before


def test_rviz_without_rviz2_starts_nothing_and_leaves_nothing():
    """rviz:=true where rviz2 is not installed: a clear error, no node, no shared memory."""
    env = dict(os.environ)
    from ament_index_python.packages import get_package_prefix, PackageNotFoundError
    try:
        rviz_prefix = get_package_prefix('rviz2')
    except PackageNotFoundError:
        rviz_prefix = None  # e.g. the Jazzy tree: rviz2 is absent already
    if rviz_prefix:
        env['AMENT_PREFIX_PATH'] = os.pathsep.join(
            p for p in env['AMENT_PREFIX_PATH'].split(os.pathsep) if p != rviz_prefix)
    before = our_processes_and_segments()
    code, output = ros2_launch(['backend:=emulated', 'workers:=1', 'rviz:=true'], env=env)
    assert code != 0, output
    assert 'rviz:=true but rviz2 is not installed' in output, output
    assert '[yolo_node' not in output, output
    assert our_processes_and_segments() == before
