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
The ``yolo_node`` ROS 2 node: a thin adapter between image topics and the frame pipeline.

Subscribes to ``image`` (sensor_msgs/Image) or ``image/compressed`` (CompressedImage), hands
each frame to the no-skip pipeline, and publishes, in frame order, ``detections``
(vision_msgs/Detection2DArray), ``image_annotated`` (720p bgr8) and ``/diagnostics`` at 1 Hz.

Threading: the image callback runs in its own callback group and blocks in ``submit`` while
every frame slot is busy (that is the backpressure). Frames are published from the pipeline's
collector thread (rclpy publishers are thread-safe), which is also what frees the slots, so the
blocked callback never waits on the executor. Diagnostics and parameter changes sit in the
default group and keep working under backpressure with the two-thread executor of ``main``.
"""

from collections import deque
import signal
import threading
import time
import traceback
from typing import Any, Dict

import cv2
from cv_bridge import CvBridge, CvBridgeError
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import geometry_msgs.msg
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rk_yolo_ros.core import node_settings
from rk_yolo_ros.core.pipeline import FramePipeline, PipelineError
from rk_yolo_ros.messages.detection_messages import (build_detection_array, CLASS_ID_FORMATS,
                                                     message_types_from_modules)
from rk_yolo_ros.messages.image_conversion import (compressed_image_to_bgr, ImageConversionError,
                                                   raw_image_to_bgr)
from rk_yolo_ros.yolo import demo_assets
from rk_yolo_ros.yolo.detector import YoloDetectorFactory
from rk_yolo_ros.yolo.drawing import draw_overlay
from sensor_msgs.msg import CompressedImage, Image
import vision_msgs.msg

LOG_THROTTLE_S = 5.0
DRAIN_TIMEOUT_S = 3.0
FPS_WINDOW = 60
MAX_REASONS = 20
ACTIVE_WORKER_STATES = ('ready', 'starting')


def _describe(text, read_only=False, floating=None, integer=None, choices=None):
    """Return a ParameterDescriptor with a description, a range and read-only as given."""
    if choices:
        text = f'{text} One of: {", ".join(choices)}.'
    descriptor = ParameterDescriptor(description=text, read_only=read_only)
    if floating:
        descriptor.floating_point_range = [FloatingPointRange(
            from_value=floating[0], to_value=floating[1], step=0.0)]
    if integer:
        descriptor.integer_range = [IntegerRange(from_value=integer[0], to_value=integer[1],
                                                 step=1)]
    return descriptor


# name: (default, descriptor). The dynamic ones are node_settings.DYNAMIC_PARAMETERS.
PARAMETERS = {
    'model': ('', _describe(
        'Model file (.onnx or .rknn). Empty: the cached demo model (python3 -m '
        'rk_yolo_ros.yolo.demo_assets); not needed by the emulated backend.', read_only=True)),
    'backend': ('auto', _describe(
        "Inference backend; 'auto' picks from the model's suffix, 'emulated' only sleeps "
        '(throughput tests, no real detections).', read_only=True,
        choices=('auto', 'onnx', 'rknn', 'emulated'))),
    'workers': (3, _describe('Worker processes, one per NPU core (RK3588: 3).', read_only=True,
                             integer=(1, 16))),
    'core_masks': ([1, 2, 4], _describe('RKNN NPU core mask of each worker (1, 2, 4 = cores '
                                        '0, 1, 2).', read_only=True)),
    'cpu_affinity': ([4, 5, 6, 7], _describe(
        'CPU each worker is pinned to (RK3588 big cores 4-7); CPUs this machine lacks are '
        'skipped with a warning; empty: no pinning.', read_only=True)),
    'slots': (0, _describe('Shared-memory frame slots; 0: the pipeline default (a few per '
                           'worker).', read_only=True, integer=(0, 256))),
    'conf_threshold': (0.25, _describe('Minimum detection confidence (changeable at run '
                                       'time).', floating=(0.0, 1.0))),
    'iou_threshold': (0.45, _describe('IoU threshold of non-maximum suppression (changeable '
                                      'at run time).', floating=(0.0, 1.0))),
    'max_detections': (100, _describe('Most detections kept per frame (changeable at run '
                                      'time).', integer=(1, 10000))),
    'classes': ([], _describe('Class ids to keep, e.g. [0, 2]; empty: all classes '
                              '(changeable at run time).')),
    'labels_file': ('', _describe('Class names: YAML with names: or one name per line; empty: '
                                  'the ONNX metadata or COCO-80.', read_only=True)),
    'class_id_format': ('name', _describe(
        'What hypothesis.class_id holds: the class name, or the class index as text.',
        read_only=True, choices=CLASS_ID_FORMATS)),
    'output_height': (720, _describe('Rows of the frames the workers see and of '
                                     'image_annotated.', read_only=True, integer=(16, 4320))),
    'input_transport': ('raw', _describe(
        "'raw' subscribes to image (sensor_msgs/Image), 'compressed' to image/compressed "
        '(sensor_msgs/CompressedImage, jpeg or png).', read_only=True,
        choices=node_settings.INPUT_TRANSPORTS)),
    'qos_reliability': ('reliable', _describe(
        "Reliability of the image subscription; 'best_effort' matches Best-Effort cameras.",
        read_only=True, choices=node_settings.QOS_RELIABILITY)),
    'qos_history': ('keep_last', _describe(
        "History of the image subscription and the outputs; 'keep_all' with a Reliable "
        'publisher loses no frame (the middleware queues or blocks the publisher).',
        read_only=True, choices=node_settings.QOS_HISTORY)),
    'qos_depth': (10, _describe('Queue depth for keep_last.', read_only=True,
                                integer=(1, 1000))),
    'publish_annotated': (True, _describe('Publish image_annotated (the workers draw only '
                                          'when it is on; changeable at run time).')),
    'start_method': ('spawn', _describe('multiprocessing start method of the workers.',
                                        read_only=True, choices=node_settings.START_METHODS)),
    'onnx_threads': (1, _describe('ONNX Runtime threads per worker.', read_only=True,
                                  integer=(1, 64))),
    'emulated_latency_ms': (16.7, _describe('Inference time the emulated backend sleeps.',
                                            read_only=True, floating=(0.0, 60000.0))),
}


class _PipelineLog:
    """Give the pipeline the logging.Logger calls it uses, on top of the node's logger."""

    def __init__(self, logger):
        """Wrap an rclpy logger."""
        self._logger = logger

    @staticmethod
    def _text(message, args):
        return message % args if args else str(message)

    def debug(self, message, *args, **_):
        """Log at debug level."""
        self._logger.debug(self._text(message, args))

    def info(self, message, *args, **_):
        """Log at info level."""
        self._logger.info(self._text(message, args))

    def warning(self, message, *args, **_):
        """Log at warning level."""
        self._logger.warning(self._text(message, args))

    def error(self, message, *args, **_):
        """Log at error level."""
        self._logger.error(self._text(message, args))

    def exception(self, message, *args, **_):
        """Log at error level with the current traceback."""
        self._logger.error(self._text(message, args) + '\n' + traceback.format_exc())


class YoloNode(Node):
    """Detect objects in an image topic with the multi-process NPU pipeline, in frame order."""

    def __init__(self, **kwargs):
        """Declare parameters, start the workers, then the publishers and the subscription."""
        super().__init__('yolo_node', **kwargs)
        for name, (default, descriptor) in PARAMETERS.items():
            if isinstance(default, list):
                # An empty list from the command line or YAML has no type (NOT_SET); dynamic
                # typing accepts it, and node_settings checks every value's type instead.
                descriptor.dynamic_typing = True
            self.declare_parameter(name, default, descriptor)
        values = self._parameter_values()
        self._bridge = CvBridge()
        self._lock = threading.Lock()
        self._counts = {'received': 0, 'rejected': 0, 'published': 0, 'failed': 0,
                        'cancelled': 0, 'unpublished': 0}
        self._reasons: Dict[str, int] = {}
        self._release_times = deque(maxlen=FPS_WINDOW)
        self._active_workers = values['workers']
        self._closing = False
        self.fatal_error = ''  # set when the pipeline stopped on its own; main() exits 1
        self._publish_annotated = bool(values['publish_annotated'])
        self._class_id_format = node_settings.check_choice(
            'class_id_format', values['class_id_format'], CLASS_ID_FORMATS)
        self._compressed = node_settings.check_choice(
            'input_transport', values['input_transport'],
            node_settings.INPUT_TRANSPORTS) == 'compressed'
        self._types = message_types_from_modules(vision_msgs.msg, geometry_msgs.msg)
        self._input_qos = self._qos_profile(values)
        # Outputs are always Reliable: a Reliable publisher serves Reliable and Best-Effort
        # subscribers (rviz2 defaults to Reliable).
        output_qos = QoSProfile(depth=self._input_qos.depth, history=self._input_qos.history,
                                reliability=ReliabilityPolicy.RELIABLE)

        factory, settings = self._factory_and_settings(values)
        self._pipeline = FramePipeline(node_settings.pipeline_config(values), factory,
                                       self.on_frame, logger=_PipelineLog(self.get_logger()))
        self._pipeline.settings = settings
        started = time.monotonic()
        self._pipeline.start()  # raises WorkerStartError naming the worker's failure
        try:
            self._detections_pub = self.create_publisher(
                vision_msgs.msg.Detection2DArray, 'detections', output_qos)
            self._annotated_pub = self.create_publisher(Image, 'image_annotated', output_qos)
            self._diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
            self._input_topic = 'image/compressed' if self._compressed else 'image'
            self._subscription = self.create_subscription(
                CompressedImage if self._compressed else Image, self._input_topic,
                self.image_callback, self._input_qos,
                callback_group=MutuallyExclusiveCallbackGroup())
            self._diagnostics_timer = self.create_timer(1.0, self.diagnostics_callback)
            self.add_on_set_parameters_callback(self.parameters_callback)
        except BaseException:
            self._pipeline.close(drain=False)
            raise
        self.get_logger().info(
            f'ready in {time.monotonic() - started:.1f} s: {values["workers"]} '
            f'{factory.backend} worker(s), model {factory.model_path or "(none)"}, '
            f'{len(self._names)} classes, input {self.resolve_topic_name(self._input_topic)} '
            f'({values["qos_reliability"]}, {values["qos_history"]}, depth '
            f'{values["qos_depth"]})')

    # ------------------------------------------------------------------------- set-up
    def _parameter_values(self) -> Dict[str, Any]:
        """Return every declared parameter's current value by name."""
        return {name: self.get_parameter(name).value for name in PARAMETERS}

    def _qos_profile(self, values) -> QoSProfile:
        """Build the image subscription's QoS from the qos_* parameters."""
        reliability = node_settings.check_choice('qos_reliability', values['qos_reliability'],
                                                 node_settings.QOS_RELIABILITY)
        history = node_settings.check_choice('qos_history', values['qos_history'],
                                             node_settings.QOS_HISTORY)
        return QoSProfile(
            depth=int(values['qos_depth']),
            history=HistoryPolicy.KEEP_ALL if history == 'keep_all' else HistoryPolicy.KEEP_LAST,
            reliability=(ReliabilityPolicy.BEST_EFFORT if reliability == 'best_effort'
                         else ReliabilityPolicy.RELIABLE))

    def _factory_and_settings(self, values):
        """Build and check the detector recipe and the initial detection settings."""
        backend = node_settings.check_choice('backend', values['backend'],
                                             ('auto', 'onnx', 'rknn', 'emulated'))
        demo_model = demo_assets.model_path()
        model = node_settings.resolve_model(values['model'], backend,
                                            str(demo_model) if demo_model else None)
        factory = YoloDetectorFactory(
            model_path=model, backend=backend, labels_file=values['labels_file'] or None,
            onnx_threads=int(values['onnx_threads']),
            emulated_latency_s=float(values['emulated_latency_ms']) / 1000.0)
        factory.backend = factory.check()  # fails here, naming the file, before any worker
        self._names = factory.class_names()
        self._hardware_id = f'{factory.backend}: {model or "no model"}'
        return factory, node_settings.detection_settings(values)

    # ------------------------------------------------------------------------- input
    def image_callback(self, msg) -> None:
        """Convert one image message and submit it (blocks while every slot is busy)."""
        self._count('received')
        try:
            if self._compressed:
                image = compressed_image_to_bgr(msg, self._bridge.compressed_imgmsg_to_cv2)
            else:
                image = raw_image_to_bgr(
                    msg, lambda m: self._bridge.imgmsg_to_cv2(m, 'passthrough'))
        except (ImageConversionError, CvBridgeError, cv2.error) as error:
            self._reject(f'bad image: {error}')
            return
        try:
            self._pipeline.submit(image, meta=msg.header, timeout=None)
        except (PipelineError, ValueError) as error:
            if not self._closing:
                self._reject(f'not accepted by the pipeline: {error}')

    def _reject(self, reason: str) -> None:
        """Count a frame that never entered the pipeline; log the reason, throttled."""
        self._count('rejected', reason)
        self.get_logger().warning(f'{self.resolve_topic_name(self._input_topic)}: frame '
                                  f'dropped, {reason}', throttle_duration_sec=LOG_THROTTLE_S)

    def _count(self, key: str, reason: str = '') -> None:
        """Add one to a counter (and to a reason's count)."""
        with self._lock:
            self._counts[key] += 1
            if reason:
                reason = f'{key}: {reason[:160]}'
                if reason not in self._reasons and len(self._reasons) >= MAX_REASONS:
                    reason = f'{key}: other reasons'  # bounded: texts may carry sizes
                self._reasons[reason] = self._reasons.get(reason, 0) + 1

    # ------------------------------------------------------------------------- output
    def on_frame(self, frame) -> None:
        """
        Publish one released frame; the pipeline's handler (collector thread, frame order).

        Never raises: a raise would stop the pipeline. Failed and cancelled frames are counted
        and logged, never published as empty detections.
        """
        try:
            if frame.status != 'ok':
                reason = (frame.error.strip().splitlines() or ['unknown'])[0]
                self._count('failed' if frame.status == 'error' else 'cancelled', reason)
                if frame.status == 'error':
                    self.get_logger().error(
                        f'frame {frame.frame_id} (stamp {frame.meta.stamp.sec}.'
                        f'{frame.meta.stamp.nanosec:09d}) failed in worker {frame.worker}, '
                        f'nothing published for it: {reason}',
                        throttle_duration_sec=LOG_THROTTLE_S)
                return
            if not self.context.ok():
                self._count('unpublished', 'ROS was shut down before the frame was published')
                return
            now = time.monotonic()
            self._detections_pub.publish(build_detection_array(
                self._types, frame.meta, frame.result, self._class_id_format))
            with self._lock:
                self._release_times.append(now)
                times = list(self._release_times)
            # Converting a 720p frame costs time on the release path: only for a listener.
            if self._publish_annotated and self._annotated_pub.get_subscription_count() > 0:
                fps = (len(times) - 1) / (times[-1] - times[0]) if times[-1] > times[0] else 0.0
                draw_overlay(frame.image, [
                    f'{fps:.1f} fps  frame {frame.frame_id}  {len(frame.result)} detections',
                    f'workers {self._active_workers}/{self._pipeline.config.workers}  '
                    f'worker {frame.worker}  {frame.latency_s * 1000.0:.0f} ms'])
                self._annotated_pub.publish(
                    self._bridge.cv2_to_imgmsg(frame.image, 'bgr8', frame.meta))
            self._count('published')
        except Exception as error:  # a raise here would stop the whole pipeline
            self._count('failed', f'publishing failed: {type(error).__name__}: {error}')
            self.get_logger().error(f'publishing frame {frame.frame_id} failed: '
                                    f'{traceback.format_exc()}',
                                    throttle_duration_sec=LOG_THROTTLE_S)

    def diagnostics_callback(self) -> None:
        """Publish the pipeline's health on /diagnostics (1 Hz)."""
        stats = self._pipeline.stats()
        with self._lock:
            counts, reasons = dict(self._counts), dict(self._reasons)
        for reason, number in stats.error_reasons.items():
            reasons.setdefault(f'failed: {reason}', number)
        self._active_workers = sum(w['state'] in ACTIVE_WORKER_STATES for w in stats.workers)
        name = self.get_fully_qualified_name().lstrip('/')
        values = {
            'fps': f'{stats.fps:.2f}', 'latency_p50_ms': f'{stats.latency_p50_ms:.1f}',
            'latency_p99_ms': f'{stats.latency_p99_ms:.1f}',
            'slots_in_use': stats.slots_in_use, 'slots_total': stats.slots_total,
            'in_flight': stats.in_flight, 'frames_received': counts['received'],
            'frames_rejected': counts['rejected'], 'frames_accepted': stats.accepted,
            'frames_published': counts['published'], 'frames_failed': counts['failed'],
            'frames_cancelled': counts['cancelled'],
            'frames_unpublished': counts['unpublished'],
            'workers_active': f'{self._active_workers}/{len(stats.workers)}'}
        values.update({f'reason: {reason}': number for reason, number in sorted(reasons.items())})
        if not self._pipeline.running:
            level, message = DiagnosticStatus.ERROR, 'pipeline stopped'
        elif self._active_workers < len(stats.workers):
            level, message = DiagnosticStatus.WARN, 'some workers are down'
        elif counts['failed'] or counts['rejected']:
            level, message = DiagnosticStatus.WARN, 'running; some frames failed or were rejected'
        else:
            level, message = DiagnosticStatus.OK, 'running'
        statuses = [self._status(f'{name}: pipeline', level, message, values)]
        for worker in stats.workers:
            ok = worker['state'] in ACTIVE_WORKER_STATES
            statuses.append(self._status(
                f'{name}: worker {worker["index"]}',
                DiagnosticStatus.OK if ok else DiagnosticStatus.ERROR, worker['state'],
                {key: worker[key] for key in ('pid', 'state', 'core_mask', 'cpu', 'in_flight',
                                              'frames_done', 'frames_failed', 'restarts')}))
        array = DiagnosticArray(status=statuses)
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics_pub.publish(array)
        if not self._pipeline.running and not self._closing and not self.fatal_error:
            # Out of workers (each died, restarts used up): exit non-zero so that a launch
            # file's respawn or a supervisor can start a fresh node.
            self.fatal_error = ('the pipeline stopped: workers ' + ', '.join(
                f'{w["index"]} {w["state"]} after {w["restarts"]} restarts'
                for w in stats.workers))
            self.get_logger().fatal(f'{self.fatal_error}; shutting down')
            self.context.try_shutdown()

    def _status(self, name, level, message, values) -> DiagnosticStatus:
        """Build one DiagnosticStatus with string key/values."""
        return DiagnosticStatus(level=level, name=name, message=message,
                                hardware_id=self._hardware_id,
                                values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])

    # ------------------------------------------------------------------------- parameters
    def parameters_callback(self, parameters) -> SetParametersResult:
        """Apply threshold / class filter / annotation changes; reject invalid ones with why."""
        values = self._parameter_values()
        for parameter in parameters:
            if parameter.name in node_settings.DYNAMIC_PARAMETERS:
                values[parameter.name] = parameter.value
        try:
            settings = node_settings.detection_settings(values)
        except ValueError as error:
            return SetParametersResult(successful=False, reason=str(error))
        self._publish_annotated = settings.draw
        self._pipeline.settings = settings  # travels with every frame accepted from now on
        self.get_logger().info(f'detection settings now {settings}')
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------------- shutdown
    def close_pipeline(self) -> None:
        """Stop taking frames, drain briefly, cancel the rest, stop workers (idempotent)."""
        self._closing = True
        pipeline = getattr(self, '_pipeline', None)
        if pipeline is not None and pipeline.running:
            stats = pipeline.close(drain=True, timeout=DRAIN_TIMEOUT_S)
            with self._lock:
                counts = dict(self._counts)
            # After ROS shut down, the node's logger would fail to reach /rosout; a child
            # logger only prints.
            logger = (self.get_logger() if self.context.ok()
                      else rclpy.logging.get_logger(self.get_logger().name + '.shutdown'))
            logger.info(
                f'pipeline closed: {stats.accepted} accepted, {counts["published"]} published, '
                f'{counts["failed"]} failed, {counts["cancelled"]} cancelled, '
                f'{counts["rejected"]} rejected, {counts["unpublished"]} unpublished')
        elif pipeline is not None:
            pipeline.close(drain=False)

    def destroy_node(self) -> None:
        """Close the pipeline, then destroy the node."""
        self.close_pipeline()
        super().destroy_node()


def main(args=None):
    """Run yolo_node until shut down (Ctrl-C or ros2 launch); works on Humble and Jazzy."""
    rclpy.init(args=args)
    node = None
    exit_code = 0
    # Two threads: the image callback may block in submit (backpressure) while diagnostics
    # and parameter changes go on in the other callback group.
    executor = MultiThreadedExecutor(num_threads=2)
    try:
        node = YoloNode()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as error:  # start-up failed: say why and exit non-zero
        rclpy.logging.get_logger('yolo_node').fatal(
            f'yolo_node failed: {type(error).__name__}: {error}')
        exit_code = 1
    finally:
        # A terminal's Ctrl-C reaches us twice (from the shell and from ros2 launch): the
        # bounded clean-up below (drain, stop workers, unlink shared memory) must not be cut.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if node is not None:
            node.close_pipeline()  # first: wakes an image callback blocked in submit
        executor.shutdown()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    if node is not None and node.fatal_error:
        exit_code = 1
    if exit_code:
        raise SystemExit(exit_code)


if __name__ == '__main__':
    main()
