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
yolo_node with input_transport:=compressed (real rclpy, emulated backend, in this process).

The callback only checks the bytes; the workers decode them. A truncated JPEG is rejected in
the callback (counted, with the reason); a JPEG that passes the checks but does not decode is
accepted and fails in its worker (counted failed, not published), and the worker goes on.
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


def encoded(extension, value=90, size=(64, 48)):
    """Return a small picture compressed by OpenCV."""
    width, height = size
    ok, data = cv2.imencode(extension, np.full((height, width, 3), value, np.uint8))
    assert ok
    return data.tobytes()


@pytest.fixture
def node():
    """Start yolo_node on compressed input, one emulated worker, beside a test node."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import CompressedImage, Image
    from vision_msgs.msg import Detection2DArray

    from rk_yolo_ros.ros.yolo_node import YoloNode

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain_id(54))
    overrides = [Parameter('backend', value='emulated'), Parameter('workers', value=1),
                 Parameter('cpu_affinity', value=[]), Parameter('output_height', value=240),
                 Parameter('input_transport', value='compressed')]
    yolo = YoloNode(context=context, namespace='packed', parameter_overrides=overrides)
    assert yolo.trigger_configure() == TransitionCallbackReturn.SUCCESS, yolo.configure_error
    assert yolo.trigger_activate() == TransitionCallbackReturn.SUCCESS
    test = rclpy.create_node('packed_test', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(yolo)
    executor.add_node(test)
    received = {'detections': [], 'annotated': []}
    test.create_subscription(Detection2DArray, '/packed/detections',
                             received['detections'].append, 50)
    test.create_subscription(Image, '/packed/image_annotated', received['annotated'].append, 50)
    publisher = test.create_publisher(CompressedImage, '/packed/image/compressed', 10)

    def spin_until(predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f'timed out waiting for {what}'
            executor.spin_once(timeout_sec=0.02)

    def publish(sec, data, format_text):
        message = CompressedImage(format=format_text)
        message.data = data
        message.header.stamp.sec = sec
        publisher.publish(message)

    spin_until(lambda: publisher.get_subscription_count() > 0, 30.0, 'the node to subscribe')
    try:
        yield yolo, publish, spin_until, received
    finally:
        yolo.destroy_node()
        test.destroy_node()
        rclpy.try_shutdown(context=context)


def test_compressed_frames_are_decoded_in_the_workers(node):
    yolo, publish, spin_until, received = node
    good_jpeg = encoded('.jpg')
    publish(1, good_jpeg, 'jpeg')
    publish(2, good_jpeg[:len(good_jpeg) // 2], 'jpeg')  # truncated: the callback refuses it
    publish(3, b'\xff\xd8\xff\xe0' + bytes(300) + b'\xff\xd9', 'jpeg')  # framed, undecodable
    publish(4, encoded('.png', value=30, size=(96, 48)), 'bgr8; png compressed bgr8')
    spin_until(lambda: len(received['detections']) >= 2 and len(received['annotated']) >= 2,
               30.0, 'the two good frames')
    spin_until(lambda: yolo._pipeline.stats().counters.failed == 1, 10.0, 'the failed frame')
    assert [m.header.stamp.sec for m in received['detections']] == [1, 4]
    assert [(m.header.stamp.sec, m.height, m.width) for m in received['annotated']] == \
        [(1, 240, 320), (4, 240, 480)]  # output size from the size the worker decoded
    for array, (width, height) in zip(received['detections'], [(64, 48), (96, 48)]):
        for detection in array.detections:  # boxes in the input's pixels
            assert -1 <= detection.bbox.center.position.x <= width + 1
            assert -1 <= detection.bbox.center.position.y <= height + 1
    stats = yolo._pipeline.stats()
    assert (stats.counters.accepted, stats.counters.ok, stats.counters.failed,
            stats.counters.rejected) == (3, 2, 1, 1)
    reasons = ' '.join(stats.counters.reasons)
    assert 'truncated jpeg data' in reasons
    assert 'compressed frame of 306 bytes could not be decoded' in reasons
    assert [w.restarts for w in stats.workers] == [0]
