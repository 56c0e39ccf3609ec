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
yolo_node in this process (real rclpy, emulated backend): what it publishes per released frame.

Failed and cancelled frames are handed to the node's frame handler directly (the emulated
backend does not fail), next to real frames going through the pipeline; the pipeline counts
them (test_pipeline), the node only must not publish them.
"""

import importlib.util
import time

import numpy as np
import pytest

from rk_yolo_ros.core.pipeline import CompletedFrame, FrameStatus
from ros_checks import ros_domain_id

HAVE_ROS = importlib.util.find_spec('rclpy') is not None
# A mark, not a module-level skip: that would skip the whole folder under launch_testing.
pytestmark = pytest.mark.skipif(not HAVE_ROS, reason='ROS 2 is not sourced; source '
                                '/opt/ros/<distro>/setup.bash or run scripts/run_tests.sh')


class Running:
    """A YoloNode and a test node sharing one rclpy context and executor."""

    def __init__(self):
        """Start the node (1 emulated worker) in its own domain, and the recorders."""
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.lifecycle import TransitionCallbackReturn
        from rclpy.parameter import Parameter
        from sensor_msgs.msg import Image
        from diagnostic_msgs.msg import DiagnosticArray
        from vision_msgs.msg import Detection2DArray

        from rk_yolo_ros.ros.yolo_node import YoloNode

        self.rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=ros_domain_id(53))
        overrides = [Parameter('backend', value='emulated'), Parameter('workers', value=1),
                     Parameter('cpu_affinity', value=[]), Parameter('output_height', value=240)]
        self.yolo = YoloNode(context=self.context, namespace='frames',
                             parameter_overrides=overrides)
        assert self.yolo.trigger_configure() == TransitionCallbackReturn.SUCCESS, \
            self.yolo.configure_error
        assert self.yolo.trigger_activate() == TransitionCallbackReturn.SUCCESS
        self.node = rclpy.create_node('frames_test', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.yolo)
        self.executor.add_node(self.node)
        self.detections, self.annotated, self.diagnostics = [], [], []
        self.node.create_subscription(Detection2DArray, '/frames/detections',
                                      self.detections.append, 50)
        self.node.create_subscription(Image, '/frames/image_annotated', self.annotated.append,
                                      50)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self.diagnostics.append,
                                      50)
        self.publisher = self.node.create_publisher(Image, '/frames/image', 10)
        self.Image = Image

    def spin_until(self, predicate, timeout, what):
        """Spin both nodes until predicate() holds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f'timed out waiting for {what}'
            self.executor.spin_once(timeout_sec=0.02)

    def image(self, sec):
        """Return a small bgr8 image stamped sec."""
        message = self.Image(width=64, height=48, encoding='bgr8', step=64 * 3)
        message.data = np.full((48, 64, 3), 90, np.uint8).tobytes()
        message.header.stamp.sec = sec
        message.header.frame_id = 'frames_camera'
        return message

    def header(self, sec):
        """Return a header as the node stores it with each frame."""
        return self.image(sec).header

    def pipeline_status(self):
        """Return the values of the newest pipeline diagnostics status."""
        for array in reversed(self.diagnostics):
            for status in array.status:
                if status.name == '/frames/yolo_node: pipeline':
                    return status.level, {v.key: v.value for v in status.values}
        return None, {}

    def close(self):
        """Close the node (and its pipeline) and the context."""
        self.yolo.destroy_node()
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)


@pytest.fixture(params=['diagnostic_updater', 'plain publisher'])
def running(request, monkeypatch):
    """Give the test a running in-process yolo_node, with each way of publishing diagnostics."""
    from rk_yolo_ros.ros import diagnostics
    if request.param == 'plain publisher':
        monkeypatch.setattr(diagnostics, 'diagnostic_updater', None)
    elif diagnostics.diagnostic_updater is None:
        pytest.skip('diagnostic_updater is not installed here (the Humble tree has it)')
    running = Running()
    yield running
    running.close()


def released(frame_id, status, header, error=''):
    """Return a CompletedFrame as the pipeline hands it over."""
    return CompletedFrame(frame_id=frame_id, status=status, result=None,
                          image=np.zeros((240, 320, 3), np.uint8), source_size=(64, 48),
                          meta=header, error=error, worker=0)


def test_failed_and_cancelled_frames_are_not_published_bad_images_are_counted(running):
    """Only the real frame is published; a bad image is rejected and counted with its reason."""
    running.spin_until(lambda: running.publisher.get_subscription_count() > 0, 30.0,
                       'the node to subscribe')
    running.yolo.on_frame(released(100, FrameStatus.FAILED, running.header(1),
                                   'RuntimeError: injected NPU failure\nTraceback ...'))
    running.yolo.on_frame(released(101, FrameStatus.CANCELLED, running.header(2),
                                   'cancelled at shutdown'))
    bad = running.image(4)
    bad.encoding = 'yuv422'
    running.publisher.publish(bad)
    running.publisher.publish(running.image(3))
    running.spin_until(lambda: running.detections and running.annotated, 30.0,
                       'the real frame')
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        running.executor.spin_once(timeout_sec=0.02)
    assert [m.header.stamp.sec for m in running.detections] == [3]
    assert [m.header.stamp.sec for m in running.annotated] == [3]
    assert running.annotated[0].height == 240

    running.spin_until(lambda: running.pipeline_status()[1].get('frames_ok') == '1',
                       5.0, 'diagnostics')
    level, values = running.pipeline_status()
    assert (values['frames_accepted'], values['frames_rejected']) == ('1', '1')
    assert [key for key in values if key.startswith('reason: rejected: bad image: '
                                                    "unsupported image encoding 'yuv422'")]
    from diagnostic_msgs.msg import DiagnosticStatus
    assert level == DiagnosticStatus.WARN


def test_publish_annotated_can_be_switched_off_at_run_time(running):
    """With publish_annotated false, detections still come but no annotated image."""
    from rclpy.parameter import Parameter
    running.spin_until(lambda: running.publisher.get_subscription_count() > 0, 30.0,
                       'the node to subscribe')
    result = running.yolo.set_parameters([Parameter('publish_annotated', value=False)])[0]
    assert result.successful, result.reason
    running.publisher.publish(running.image(7))
    running.spin_until(lambda: running.detections, 30.0, 'detections')
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        running.executor.spin_once(timeout_sec=0.02)
    assert [m.header.stamp.sec for m in running.detections] == [7]
    assert running.annotated == []


def test_frames_lost_upstream_are_counted_from_the_stamp_gaps(running):
    """A steady 20 Hz stream with 3 frames missing: /diagnostics says 3 lost, and WARNs."""
    running.spin_until(lambda: running.publisher.get_subscription_count() > 0, 30.0,
                       'the node to subscribe')
    sent = [i for i in range(24) if i not in (14, 15, 16)]
    for count, index in enumerate(sent, start=1):
        message = running.image(100 + index // 20)
        message.header.stamp.nanosec = (index % 20) * 50_000_000
        running.publisher.publish(message)
        running.spin_until(lambda: len(running.detections) == count, 30.0, f'frame {index}')
    running.spin_until(lambda: running.pipeline_status()[1].get('frames_ok') == str(len(sent)),
                       5.0, 'diagnostics')
    level, values = running.pipeline_status()
    assert values['frames_lost'] == '3'
    assert [key for key in values if key.startswith('reason: lost: 3 frame(s) missing')]
    from diagnostic_msgs.msg import DiagnosticStatus
    assert level == DiagnosticStatus.WARN


def test_tracking_switched_at_run_time_gives_ids_and_starts_new_tracks(running):
    """Tracking on: Detection2D.id holds stable track ids; off: empty; on again: new ids."""
    from rclpy.parameter import Parameter
    running.spin_until(lambda: running.publisher.get_subscription_count() > 0, 30.0,
                       'the node to subscribe')

    def ids_of(sec):
        count = len(running.detections)
        running.publisher.publish(running.image(sec))
        running.spin_until(lambda: len(running.detections) > count, 30.0, f'frame {sec}')
        return [d.id for d in running.detections[-1].detections]

    assert set(ids_of(1)) == {''}  # off by default
    result = running.yolo.set_parameters([Parameter('tracking', value=True)])[0]
    assert result.successful, result.reason
    tracked = [ids_of(sec) for sec in range(2, 7)]  # the emulated backend repeats its boxes
    assert any(tracked[-1]) and tracked[-1] == tracked[-2] == tracked[-3]
    assert running.yolo.set_parameters([Parameter('tracking', value=False)])[0].successful
    assert set(ids_of(7)) == {''}
    assert running.yolo.set_parameters([Parameter('tracking', value=True)])[0].successful
    again = [ids_of(sec) for sec in range(8, 12)]
    assert any(again[-1]) and again[-1] == again[-2]
    assert min(int(i) for i in again[-1] if i) > max(int(i) for i in tracked[-1] if i)
