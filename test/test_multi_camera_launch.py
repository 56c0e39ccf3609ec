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
Launch test: one yolo_node from yolo.launch.py serves two cameras, raw and compressed.

``image_topics:=[/mc_left/image_raw, /mc_right/image_raw/compressed]`` is given as a launch
argument (the way the README shows it), with 2 emulated workers. The active test publishes
frames of both cameras interleaved and checks that each camera's ``<camera>/detections`` and
``<camera>/image_annotated`` carry exactly its frames, once each, in order, with its headers,
and that /diagnostics reports each camera. The post-shutdown tests check the exit code and
that no shared memory of the node is left.
"""

import os
import time
import unittest

import cv2
import numpy as np
import pytest

from rk_yolo_ros.core.frame_slots import SEGMENT_PREFIX, SHM_DIR
from ros_checks import installed_package_missing, ros_domain_id

try:
    from ament_index_python.packages import get_package_share_directory
    from diagnostic_msgs.msg import DiagnosticArray
    from launch import LaunchDescription
    from launch.actions import IncludeLaunchDescription, SetEnvironmentVariable
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    import launch_testing
    import launch_testing.actions
    import launch_testing.asserts
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import CompressedImage, Image
    from vision_msgs.msg import Detection2DArray
except ImportError as error:
    IMPORT_ERROR = error
else:
    IMPORT_ERROR = None

DOMAIN_ID = ros_domain_id(29)
START_TIMEOUT_S = 120.0
FRAME_TIMEOUT_S = 60.0
IMAGE_TOPICS = '[/mc_left/image_raw, /mc_right/image_raw/compressed]'
CAMERAS = ('mc_left', 'mc_right')
FRAMES = 10


SKIP_REASON = installed_package_missing(IMPORT_ERROR)
_TestBase = unittest.TestCase if SKIP_REASON is None else object


def _post_shutdown(cls):
    """Mark a class as launch_testing's post-shutdown tests (when launch_testing is here)."""
    return launch_testing.post_shutdown_test()(cls) if SKIP_REASON is None else cls


def _launch_description():
    """Start one yolo_node on two cameras through the package's launch file."""
    launch_file = os.path.join(get_package_share_directory('rk_yolo_ros'), 'launch',
                               'yolo.launch.py')
    arguments = {'backend': 'emulated', 'workers': '2', 'cpu_affinity': '[]',
                 'emulated_latency_ms': '10', 'image_topics': IMAGE_TOPICS}
    return LaunchDescription([
        SetEnvironmentVariable('ROS_DOMAIN_ID', str(DOMAIN_ID)),
        IncludeLaunchDescription(PythonLaunchDescriptionSource(launch_file),
                                 launch_arguments=arguments.items()),
        launch_testing.actions.ReadyToTest(),
    ]), {}


if SKIP_REASON is None:
    generate_test_description = pytest.mark.rostest(_launch_description)
else:
    def test_multi_camera_launch():
        """Stand in for the launch test where it cannot run, with the reason."""
        pytest.skip(SKIP_REASON)


class TwoCameras(_TestBase):
    """Active test against the running node."""

    @classmethod
    def setUpClass(cls):
        """Create a test node with a publisher per camera and recorders of the outputs."""
        cls.context = rclpy.Context()
        rclpy.init(context=cls.context, domain_id=DOMAIN_ID)
        cls.node = rclpy.create_node('multi_camera_launch_test', context=cls.context)
        cls.executor = SingleThreadedExecutor(context=cls.context)
        cls.executor.add_node(cls.node)
        cls.received = {}
        for camera in CAMERAS:
            for topic, kind in (('detections', Detection2DArray), ('image_annotated', Image)):
                name = f'/{camera}/{topic}'
                cls.received[name] = []
                cls.node.create_subscription(kind, name, cls.received[name].append, 50)
        cls.diagnostics = []
        cls.node.create_subscription(DiagnosticArray, '/diagnostics', cls.diagnostics.append,
                                     50)
        cls.publishers = {
            'mc_left': cls.node.create_publisher(Image, '/mc_left/image_raw', 50),
            'mc_right': cls.node.create_publisher(CompressedImage,
                                                  '/mc_right/image_raw/compressed', 50)}

    @classmethod
    def tearDownClass(cls):
        """Destroy the test node and its context."""
        cls.node.destroy_node()
        rclpy.try_shutdown(context=cls.context)

    def spin_until(self, predicate, timeout, what):
        """Spin the test node until ``predicate()`` holds; fail naming ``what`` on timeout."""
        deadline = time.monotonic() + timeout
        while not predicate():
            self.assertLess(time.monotonic(), deadline, f'timed out waiting for {what}')
            self.executor.spin_once(timeout_sec=0.05)

    def message(self, camera, sec):
        """Return a camera's frame stamped sec: bgr8 for the left, JPEG for the right."""
        width, height = (320, 240) if camera == 'mc_left' else (640, 360)
        pixels = np.full((height, width, 3), 30 + sec % 200, np.uint8)
        if camera == 'mc_right':
            message = CompressedImage(format='jpeg')
            message.data = cv2.imencode('.jpg', pixels)[1].tobytes()
        else:
            message = Image(width=width, height=height, encoding='bgr8', step=width * 3)
            message.data = pixels.tobytes()
        message.header.stamp.sec = sec
        message.header.frame_id = f'{camera}_frame'
        return message

    def camera_status(self, camera):
        """Return the newest /diagnostics values of a camera's status."""
        for array in reversed(self.diagnostics):
            for status in array.status:
                if status.name == f'yolo_node: camera {camera}':
                    return {item.key: item.value for item in status.values}
        return {}

    def wait_for_annotated_images(self):
        """
        Send a frame per camera until an annotated image comes back on each, then forget them.

        The workers draw a frame only if someone listened to its camera's image_annotated when
        it was accepted; this waits until the node has seen our subscriptions.
        """
        self.spin_until(lambda: all(p.get_subscription_count() > 0
                                    for p in self.publishers.values()), START_TIMEOUT_S,
                        'yolo_node to subscribe to both cameras')
        deadline = time.monotonic() + START_TIMEOUT_S
        while not all(self.received[f'/{c}/image_annotated'] for c in CAMERAS):
            self.assertLess(time.monotonic(), deadline, 'no annotated image came back')
            for camera in CAMERAS:
                self.publishers[camera].publish(self.message(camera, 1))
            end = time.monotonic() + 0.5
            while time.monotonic() < end:
                self.executor.spin_once(timeout_sec=0.05)
        end = time.monotonic() + 1.0  # the last warm-up frames
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.05)
        for messages in self.received.values():
            messages.clear()

    def test_each_camera_gets_its_frames_once_in_order(self):
        """Both cameras' frames, interleaved: each camera's outputs hold its frames, in order."""
        self.wait_for_annotated_images()
        sent = {camera: [] for camera in CAMERAS}
        for index in range(FRAMES):
            for offset, camera in enumerate(CAMERAS):
                sec = 1000 * (offset + 1) + index
                self.publishers[camera].publish(self.message(camera, sec))
                sent[camera].append(sec)
            self.executor.spin_once(timeout_sec=0.01)
        self.spin_until(lambda: all(len(self.received[f'/{c}/{t}']) >= FRAMES
                                    for c in CAMERAS for t in ('detections', 'image_annotated')),
                        FRAME_TIMEOUT_S, 'every frame of both cameras')
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.05)
        for camera in CAMERAS:
            for topic in ('detections', 'image_annotated'):
                messages = self.received[f'/{camera}/{topic}']
                self.assertEqual([m.header.stamp.sec for m in messages], sent[camera],
                                 f'/{camera}/{topic}')
                self.assertEqual({m.header.frame_id for m in messages}, {f'{camera}_frame'})
        self.assertEqual({m.width for m in self.received['/mc_left/image_annotated']}, {960})
        self.assertEqual({m.width for m in self.received['/mc_right/image_annotated']}, {1280})
        self.spin_until(lambda: all(int(self.camera_status(c).get('frames_ok', 0)) >= FRAMES
                                    for c in CAMERAS), 10.0, 'both cameras on /diagnostics')


@_post_shutdown
class AfterShutdown(_TestBase):
    """Checks once the launch has shut down."""

    def test_exit_codes(self, proc_info):
        """The node exited cleanly on SIGINT."""
        launch_testing.asserts.assertExitCodes(proc_info)

    def test_shared_memory_is_released(self, proc_info):
        """No frame-slot segment created by the node is left in /dev/shm."""
        pids = [proc_info[process].pid for process in proc_info.processes()]
        self.assertEqual(len(pids), 1)
        left = [name for name in os.listdir(SHM_DIR)
                if any(name.startswith(f'{SEGMENT_PREFIX}{pid}_') for pid in pids)]
        self.assertEqual(left, [])
