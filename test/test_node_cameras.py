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
yolo_node serving three cameras in this process (real rclpy, emulated backend, 2 workers).

``image_topics`` gives a raw camera, a compressed one and a relative one: each camera's frames
come back on its own outputs, in its order, with its headers; trackers, counters and
/diagnostics statuses are per camera.
"""

import importlib.util
import time

import cv2
import numpy as np
import pytest

from ros_checks import ros_domain_id

HAVE_ROS = importlib.util.find_spec('rclpy') is not None
pytestmark = pytest.mark.skipif(not HAVE_ROS, reason='ROS 2 is not sourced; source '
                                '/opt/ros/<distro>/setup.bash or run scripts/run_tests.sh')

TOPICS = ['/left/image_raw', '/right/image_raw/compressed', 'front/image']
# camera name -> (its outputs' prefix, as the node resolves them in namespace /cams)
CAMERAS = {'left': '/left', 'right': '/right', 'front': '/cams/front'}


class Cameras:
    """A YoloNode with three cameras and a test node sharing one context and executor."""

    def __init__(self, tracking=False):
        """Start the node and the recorders of every camera's outputs."""
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.lifecycle import TransitionCallbackReturn
        from rclpy.parameter import Parameter
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import CompressedImage, Image
        from vision_msgs.msg import Detection2DArray

        from rk_yolo_ros.ros.yolo_node import YoloNode

        self.rclpy, self.Image, self.CompressedImage = rclpy, Image, CompressedImage
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=ros_domain_id(71))
        overrides = [Parameter('backend', value='emulated'), Parameter('workers', value=2),
                     Parameter('cpu_affinity', value=[]), Parameter('output_height', value=240),
                     Parameter('emulated_latency_ms', value=5.0),
                     Parameter('image_topics', value=TOPICS),
                     Parameter('tracking', value=tracking)]
        self.yolo = YoloNode(context=self.context, namespace='cams',
                             parameter_overrides=overrides)
        assert self.yolo.trigger_configure() == TransitionCallbackReturn.SUCCESS, \
            self.yolo.configure_error
        assert self.yolo.trigger_activate() == TransitionCallbackReturn.SUCCESS
        self.node = rclpy.create_node('cameras_test', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.yolo)
        self.executor.add_node(self.node)
        self.detections = {name: [] for name in CAMERAS}
        self.annotated = {name: [] for name in CAMERAS}
        for name, prefix in CAMERAS.items():
            self.node.create_subscription(Detection2DArray, f'{prefix}/detections',
                                          self.detections[name].append, 100)
            self.node.create_subscription(Image, f'{prefix}/image_annotated',
                                          self.annotated[name].append, 100)
        self.diagnostics = []
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self.diagnostics.append,
                                      50)
        self.publishers = {
            'left': self.node.create_publisher(Image, '/left/image_raw', 50),
            'right': self.node.create_publisher(CompressedImage, '/right/image_raw/compressed',
                                                50),
            'front': self.node.create_publisher(Image, '/cams/front/image', 50)}

    def wait_for_node(self):
        """Wait until the node subscribes to every camera and sees every output's listener."""
        self.spin_until(lambda: all(p.get_subscription_count() > 0
                                    for p in self.publishers.values()) and
                        all(c.annotated_pub.get_subscription_count() > 0 and
                            c.detections_pub.get_subscription_count() > 0
                            for c in self.yolo._cameras), 30.0,
                        'the node and the test to see each other on every camera')

    def spin_until(self, predicate, timeout, what):
        """Spin both nodes until predicate() holds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f'timed out waiting for {what}'
            self.executor.spin_once(timeout_sec=0.02)

    def message(self, camera, sec, width=64, height=48):
        """Return camera's frame stamped sec (raw, or a PNG for the compressed camera)."""
        pixels = np.full((height, width, 3), 40 + sec % 200, np.uint8)
        if camera == 'right':
            message = self.CompressedImage(format='png')
            message.data = cv2.imencode('.png', pixels)[1].tobytes()
        else:
            message = self.Image(width=width, height=height, encoding='bgr8', step=width * 3)
            message.data = pixels.tobytes()
        message.header.stamp.sec = sec
        message.header.frame_id = f'{camera}_optical_frame'
        return message

    def statuses(self):
        """Return the newest /diagnostics status of each name as {name: (level, values)}."""
        found = {}
        for array in self.diagnostics:
            for status in array.status:
                found[status.name] = (status.level, {v.key: v.value for v in status.values})
        return found

    def close(self):
        """Close the node (and its pipeline) and the context."""
        self.yolo.destroy_node()
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)


@pytest.fixture
def cameras():
    """Give the test a running three-camera yolo_node."""
    running = Cameras()
    yield running
    running.close()


def test_each_camera_gets_its_frames_on_its_outputs_in_its_order(cameras):
    """Frames of three cameras, interleaved: each camera's outputs carry exactly its frames."""
    cameras.wait_for_node()
    assert cameras.yolo.executor_threads() == len(TOPICS) + 1
    sent = {name: [] for name in CAMERAS}
    for index in range(8):
        for offset, name in enumerate(CAMERAS):
            sec = 100 * (offset + 1) + index
            cameras.publishers[name].publish(cameras.message(name, sec, 64 + 16 * offset))
            sent[name].append(sec)
    cameras.spin_until(lambda: all(len(cameras.detections[n]) == 8 and
                                   len(cameras.annotated[n]) == 8 for n in CAMERAS), 60.0,
                       'every frame of every camera')
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        cameras.executor.spin_once(timeout_sec=0.02)
    for offset, name in enumerate(CAMERAS):
        assert [m.header.stamp.sec for m in cameras.detections[name]] == sent[name], name
        assert [m.header.stamp.sec for m in cameras.annotated[name]] == sent[name], name
        assert {m.header.frame_id for m in cameras.detections[name]} == \
            {f'{name}_optical_frame'}
        # each camera's annotated frames have its own input's aspect, at 240 rows
        assert {m.width for m in cameras.annotated[name]} == {round((64 + 16 * offset) * 5)}

    cameras.spin_until(lambda: cameras.statuses().get('/cams/yolo_node: camera right', (0, {}))
                       [1].get('frames_ok') == '8', 10.0, 'per-camera diagnostics')
    statuses = cameras.statuses()
    assert statuses['/cams/yolo_node: pipeline'][1]['frames_ok'] == '24'
    for name in CAMERAS:
        level, values = statuses[f'/cams/yolo_node: camera {name}']
        assert values['frames_accepted'] == values['frames_ok'] == '8', name
        assert values['frames_lost'] == values['frames_rejected'] == '0', name


def test_problems_are_counted_for_their_camera(cameras):
    """A bad image on one camera is rejected and counted there; the others stay clean."""
    cameras.wait_for_node()
    bad = cameras.message('front', 5)
    bad.encoding = 'yuv422'
    cameras.publishers['front'].publish(bad)
    cameras.publishers['left'].publish(cameras.message('left', 6))
    cameras.spin_until(lambda: cameras.detections['left'], 30.0, 'the left frame')

    def counted():
        front = cameras.statuses().get('/cams/yolo_node: camera front', (0, {}))[1]
        return front.get('frames_rejected') == '1'
    cameras.spin_until(counted, 10.0, 'the rejection on /diagnostics')
    statuses = cameras.statuses()
    front = statuses['/cams/yolo_node: camera front']
    left = statuses['/cams/yolo_node: camera left']
    from diagnostic_msgs.msg import DiagnosticStatus
    assert front[0] == DiagnosticStatus.WARN and left[0] == DiagnosticStatus.OK
    assert [key for key in front[1] if key.startswith('reason: rejected: bad image: '
                                                      "unsupported image encoding 'yuv422'")]
    assert left[1]['frames_rejected'] == '0' and left[1]['frames_ok'] == '1'
    assert statuses['/cams/yolo_node: pipeline'][1]['frames_rejected'] == '1'


def test_each_camera_has_its_own_tracker():
    """Tracking on: each camera's tracks are its own (both start at id 1 on the same boxes)."""
    running = Cameras(tracking=True)
    try:
        running.wait_for_node()
        for index in range(4):
            for name, scale in (('left', 1), ('front', 2)):
                count = len(running.detections[name])
                running.publishers[name].publish(running.message(name, 10 + index, 64 * scale,
                                                                 48 * scale))
                running.spin_until(lambda: len(running.detections[name]) > count, 30.0,
                                   f'{name} frame {index}')
        ids = {name: [[d.id for d in m.detections] for m in running.detections[name]]
               for name in ('left', 'front')}
        # the emulated backend gives every frame the same boxes in the model input, so in
        # pixels of the twice larger front camera they are twice as large: trackers of their
        # own give both the same ids, one shared tracker would start new ones for the front
        assert ids['left'] == ids['front']
        assert any(ids['left'][-1]) and min(int(i) for i in ids['left'][-1] if i) == 1
    finally:
        running.close()
