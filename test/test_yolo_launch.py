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
Launch test: yolo.launch.py brings up yolo_node for raw and for compressed input.

Runs under pytest (launch_testing's plugin) and under ``launch_test``. Two nodes come up through
the package's launch file: ``/raw`` (3 workers, sensor_msgs/Image) and ``/compressed`` (2
workers, CompressedImage), with the real demo ONNX model when it is cached, else the emulated
backend. The active tests publish frames and check that every frame's detections and annotated
image arrive exactly once, in order, with the input stamp and frame_id; change a threshold
through the parameter service; send bad images and read the counts on /diagnostics. The
post-shutdown tests check exit codes and that no shared memory of the nodes is left.
"""

import os
import time
import unittest

import cv2
import numpy as np
import pytest

from rk_yolo_ros.core.frame_slots import SEGMENT_PREFIX, SHM_DIR
from rk_yolo_ros.yolo import demo_assets
from ros_checks import installed_package_missing, ros_domain_id

try:
    from ament_index_python.packages import get_package_share_directory
    from cv_bridge import CvBridge
    from diagnostic_msgs.msg import DiagnosticArray
    from launch import LaunchDescription
    from launch.actions import GroupAction, IncludeLaunchDescription, SetEnvironmentVariable
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    import launch_testing
    import launch_testing.actions
    import launch_testing.asserts
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import CompressedImage, Image
    from vision_msgs.msg import Detection2DArray
except ImportError as error:
    IMPORT_ERROR = error
else:
    IMPORT_ERROR = None

DOMAIN_ID = ros_domain_id()  # its own ROS domain, so parallel runs do not mix
START_TIMEOUT_S = 120.0  # workers load the model on a busy 2-core CI machine
FRAME_TIMEOUT_S = 60.0
WINDOW = 4  # frames in flight from the test publisher; below the node's queue depth


SKIP_REASON = installed_package_missing(IMPORT_ERROR)
# Without ROS the test classes must not be unittest.TestCase (pytest would run them without
# launch_testing's fixtures); their names do not start with Test for the same reason.
_TestBase = unittest.TestCase if SKIP_REASON is None else object


def _post_shutdown(cls):
    """Mark a class as launch_testing's post-shutdown tests (when launch_testing is here)."""
    return launch_testing.post_shutdown_test()(cls) if SKIP_REASON is None else cls


def _launch_description():
    """Start /raw and /compressed yolo_node through the package's launch file."""
    launch_file = os.path.join(get_package_share_directory('rk_yolo_ros'), 'launch',
                               'yolo.launch.py')
    model = demo_assets.model_path()
    backend = {'backend': 'onnx', 'model': str(model)} if model else {'backend': 'emulated'}

    def include(namespace, **arguments):
        arguments.update(backend, namespace=namespace,
                         image_topic=f'/{namespace}/camera/image')
        return GroupAction([IncludeLaunchDescription(PythonLaunchDescriptionSource(launch_file),
                                                     launch_arguments=arguments.items())])

    return LaunchDescription([
        SetEnvironmentVariable('ROS_DOMAIN_ID', str(DOMAIN_ID)),
        include('raw', workers='3'),
        include('compressed', workers='2', input_transport='compressed'),
        launch_testing.actions.ReadyToTest(),
    ]), {}


if SKIP_REASON is None:
    # the mark makes launch_testing's pytest plugin run this module as one launch test
    generate_test_description = pytest.mark.rostest(_launch_description)
else:
    def test_yolo_launch():
        """Stand in for the launch test where it cannot run, with the reason."""
        pytest.skip(SKIP_REASON)


def demo_frames():
    """Return BGR test frames: the demo photos if cached (sizes differ), else synthetic ones."""
    paths = demo_assets.image_paths()
    if paths:
        return [cv2.imread(str(path)) for path in paths]
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (480, 640, 3), np.uint8),
            rng.integers(0, 255, (720, 1280, 3), np.uint8)]


class YoloNodeLive(_TestBase):
    """Active tests against the running nodes."""

    @classmethod
    def setUpClass(cls):
        """Create a test node in the launch's ROS domain with publishers and recorders."""
        cls.context = rclpy.Context()
        rclpy.init(context=cls.context, domain_id=DOMAIN_ID)
        cls.node = rclpy.create_node('yolo_launch_test', context=cls.context)
        cls.executor = SingleThreadedExecutor(context=cls.context)
        cls.executor.add_node(cls.node)
        cls.bridge = CvBridge()
        cls.frames = demo_frames()
        cls.received = {}
        for namespace in ('raw', 'compressed'):
            for topic, kind in (('detections', Detection2DArray), ('image_annotated', Image)):
                name = f'/{namespace}/{topic}'
                cls.received[name] = []
                cls.node.create_subscription(kind, name, cls.received[name].append, 50)
        cls.diagnostics = []
        cls.node.create_subscription(DiagnosticArray, '/diagnostics', cls.diagnostics.append,
                                     50)
        cls.raw_pub = cls.node.create_publisher(Image, '/raw/camera/image', 10)
        cls.compressed_pub = cls.node.create_publisher(
            CompressedImage, '/compressed/camera/image/compressed', 10)
        cls.stamp_sec = 1000

    @classmethod
    def tearDownClass(cls):
        """Destroy the test node and its context."""
        cls.node.destroy_node()
        rclpy.try_shutdown(context=cls.context)

    # ------------------------------------------------------------------------- helpers
    def spin_until(self, predicate, timeout, what):
        """Spin the test node until ``predicate()`` holds; fail naming ``what`` on timeout."""
        deadline = time.monotonic() + timeout
        while not predicate():
            self.assertLess(time.monotonic(), deadline, f'timed out waiting for {what}')
            self.executor.spin_once(timeout_sec=0.05)

    def wait_for_node(self, publisher, namespace):
        """Wait until the node subscribed (its workers are up)."""
        self.spin_until(lambda: publisher.get_subscription_count() > 0, START_TIMEOUT_S,
                        f'/{namespace}/yolo_node to subscribe')

    def next_header(self, message):
        """Give a message a fresh, unique stamp and the test frame_id; return (sec, nanosec)."""
        type(self).stamp_sec += 1
        message.header.stamp.sec = self.stamp_sec
        message.header.stamp.nanosec = 1000 * self.stamp_sec
        message.header.frame_id = 'test_camera'
        return self.stamp_sec, 1000 * self.stamp_sec

    def raw_message(self, image):
        """Return a bgr8 Image of a frame."""
        return self.bridge.cv2_to_imgmsg(image, 'bgr8')

    def compressed_message(self, image, extension):
        """Return a CompressedImage of a frame (jpeg or png)."""
        ok, data = cv2.imencode(extension, image)
        self.assertTrue(ok)
        message = CompressedImage(format='jpeg' if extension == '.jpg' else 'png')
        message.data = data.tobytes()
        return message

    def send(self, publisher, namespace, messages):
        """
        Publish messages with at most WINDOW in flight; return their stamps in order.

        Waits until every frame's detections and annotated image are back, then a little
        longer, so duplicates would show.
        """
        detections = self.received[f'/{namespace}/detections']
        annotated = self.received[f'/{namespace}/image_annotated']
        start_d, start_a = len(detections), len(annotated)
        stamps = []
        for message in messages:
            self.spin_until(lambda: len(stamps) - (len(detections) - start_d) < WINDOW,
                            FRAME_TIMEOUT_S, f'/{namespace} detections')
            stamps.append(self.next_header(message))
            publisher.publish(message)
        self.spin_until(lambda: len(detections) - start_d >= len(stamps)
                        and len(annotated) - start_a >= len(stamps), FRAME_TIMEOUT_S,
                        f'{len(stamps)} /{namespace} detections and annotated images')
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.05)
        return stamps, detections[start_d:], annotated[start_a:]

    def check_in_order(self, stamps, detections, annotated, sizes):
        """Every frame once, in order, with its stamp and frame_id; images are 720p bgr8."""
        self.assertEqual([(m.header.stamp.sec, m.header.stamp.nanosec) for m in detections],
                         stamps)
        self.assertEqual([(m.header.stamp.sec, m.header.stamp.nanosec) for m in annotated],
                         stamps)
        for message, annotation, (width, height) in zip(detections, annotated, sizes):
            self.assertEqual(message.header.frame_id, 'test_camera')
            self.assertEqual(annotation.header.frame_id, 'test_camera')
            self.assertEqual((annotation.encoding, annotation.height), ('bgr8', 720))
            self.assertEqual(annotation.width, round(width * 720 / height))
            for detection in message.detections:
                self.assertEqual(detection.header.stamp, message.header.stamp)
                box = detection.bbox
                self.assertTrue(0 <= box.center.position.x <= width)
                self.assertTrue(0 <= box.center.position.y <= height)
                self.assertGreater(box.size_x, 0)
                self.assertTrue(detection.results[0].hypothesis.class_id)
                self.assertTrue(0.0 < detection.results[0].hypothesis.score <= 1.0)

    def set_parameters(self, **values):
        """Set yolo_node parameters in /raw through its service; return the results."""
        client = self.node.create_client(SetParameters, '/raw/yolo_node/set_parameters')
        self.spin_until(client.service_is_ready, START_TIMEOUT_S, 'the parameter service')
        request = SetParameters.Request()
        for name, value in values.items():
            if isinstance(value, float):
                parameter_value = ParameterValue(type=ParameterType.PARAMETER_DOUBLE,
                                                 double_value=value)
            else:
                parameter_value = ParameterValue(type=ParameterType.PARAMETER_INTEGER_ARRAY,
                                                 integer_array_value=value)
            request.parameters.append(Parameter(name=name, value=parameter_value))
        future = client.call_async(request)
        self.spin_until(future.done, 10.0, 'the set_parameters response')
        self.node.destroy_client(client)
        return future.result().results

    def latest_pipeline_status(self, namespace):
        """Return the newest /diagnostics values of a node's pipeline status as a dict."""
        for array in reversed(self.diagnostics):
            for status in array.status:
                if status.name == f'/{namespace}/yolo_node: pipeline':
                    return {item.key: item.value for item in status.values}
        return {}

    # ------------------------------------------------------------------------- tests
    def test_1_raw_frames_arrive_once_in_order(self):
        """Raw frames of two sizes: detections and annotated images, once each, in order."""
        self.wait_for_node(self.raw_pub, 'raw')
        frames = [self.frames[i % 2] for i in range(12)]
        stamps, detections, annotated = self.send(
            self.raw_pub, 'raw', [self.raw_message(frame) for frame in frames])
        self.check_in_order(stamps, detections, annotated,
                            [(f.shape[1], f.shape[0]) for f in frames])
        if demo_assets.model_path() and demo_assets.image_paths():
            # the real person detector finds people in bus.jpg and zidane.jpg
            self.assertTrue(all(len(message.detections) > 0 for message in detections))
            classes = {d.results[0].hypothesis.class_id for m in detections
                       for d in m.detections}
            self.assertLessEqual(classes, {'Normal', 'Fall'})

    def test_2_compressed_frames_arrive_once_in_order(self):
        """JPEG and PNG frames through image/compressed, once each, in order."""
        self.wait_for_node(self.compressed_pub, 'compressed')
        frames = [self.frames[i % 2] for i in range(6)]
        messages = [self.compressed_message(frame, '.jpg' if i % 3 else '.png')
                    for i, frame in enumerate(frames)]
        stamps, detections, annotated = self.send(self.compressed_pub, 'compressed', messages)
        self.check_in_order(stamps, detections, annotated,
                            [(f.shape[1], f.shape[0]) for f in frames])

    def test_3_threshold_change_takes_effect(self):
        """conf_threshold 0.99 at run time removes the weaker detections; bad values fail."""
        self.wait_for_node(self.raw_pub, 'raw')
        frame = self.frames[0]
        _, before, _ = self.send(self.raw_pub, 'raw', [self.raw_message(frame)] * 2)
        count_before = sum(len(m.detections) for m in before)
        self.assertGreater(count_before, 0)
        results = self.set_parameters(conf_threshold=0.99)
        self.assertTrue(results[0].successful, results[0].reason)
        try:
            _, after, _ = self.send(self.raw_pub, 'raw', [self.raw_message(frame)] * 2)
            scores = [d.results[0].hypothesis.score for m in after for d in m.detections]
            self.assertTrue(all(score >= 0.99 for score in scores), scores)
            self.assertLess(len(scores), count_before)
            rejected = self.set_parameters(classes=[-1])[0]
            self.assertFalse(rejected.successful)
            self.assertEqual('classes must be a list of class ids >= 0 (empty: all classes), '
                             'got [-1] (-1 is negative)', rejected.reason)
            out_of_range = self.set_parameters(conf_threshold=1.5)[0]
            self.assertFalse(out_of_range.successful)
        finally:
            self.assertTrue(self.set_parameters(conf_threshold=0.25)[0].successful)

    def test_4_bad_images_are_counted_and_the_node_stays_up(self):
        """Unsupported encodings, bad steps and truncated data are rejected and counted."""
        self.wait_for_node(self.raw_pub, 'raw')
        good = self.raw_message(self.frames[1])
        depth = Image(encoding='16UC1', width=4, height=2, step=8)
        depth.data = bytes(16)
        short_step = self.raw_message(self.frames[1])
        short_step.step = 3
        truncated = self.raw_message(self.frames[1])
        truncated.data = bytes(truncated.data)[:1000]
        for message in (depth, short_step, truncated):
            self.next_header(message)
            self.raw_pub.publish(message)
        stamps, detections, _ = self.send(self.raw_pub, 'raw', [good])
        self.assertEqual(len(detections), 1)  # still up, and the bad frames got no output
        self.wait_for_node(self.compressed_pub, 'compressed')
        bad_jpeg = self.compressed_message(self.frames[0], '.jpg')
        bad_jpeg.data = bytes(bad_jpeg.data)[:500]
        video = self.compressed_message(self.frames[0], '.jpg')
        video.format = 'h264'
        for message in (bad_jpeg, video):
            self.next_header(message)
            self.compressed_pub.publish(message)
        self.send(self.compressed_pub, 'compressed',
                  [self.compressed_message(self.frames[0], '.jpg')])

        def counted():
            raw = self.latest_pipeline_status('raw')
            compressed = self.latest_pipeline_status('compressed')
            return (int(raw.get('frames_rejected', 0)) >= 3
                    and int(compressed.get('frames_rejected', 0)) >= 2)
        self.spin_until(counted, 10.0, 'diagnostics counting the rejected frames')
        raw_reasons = ' '.join(self.latest_pipeline_status('raw'))
        for expected in ("'16UC1'", 'step 3 is shorter', 'truncated image data'):
            self.assertIn(expected, raw_reasons)
        compressed_reasons = ' '.join(self.latest_pipeline_status('compressed'))
        for expected in ('truncated jpeg data', "'h264'"):
            self.assertIn(expected, compressed_reasons)
        status = self.latest_pipeline_status('raw')
        self.assertEqual(status['frames_failed'], '0')
        self.assertEqual(status['workers_active'], '3/3')


@_post_shutdown
class YoloNodeAfterShutdown(_TestBase):
    """Checks once the launch has shut down."""

    def test_exit_codes(self, proc_info):
        """Every process (both nodes) exited cleanly on SIGINT."""
        launch_testing.asserts.assertExitCodes(proc_info)

    def test_shared_memory_is_released(self, proc_info):
        """No frame-slot segment created by a node process is left in /dev/shm."""
        pids = [proc_info[process].pid for process in proc_info.processes()]
        self.assertEqual(len(pids), 2)
        left = [name for name in os.listdir(SHM_DIR)
                if any(name.startswith(f'{SEGMENT_PREFIX}{pid}_') for pid in pids)]
        self.assertEqual(left, [])
