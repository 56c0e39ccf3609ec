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

import array
import os
import signal
import time
import traceback
from typing import Any, Dict

import cv2
from cv_bridge import CvBridge, CvBridgeError
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import geometry_msgs.msg
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rk_yolo_ros.core import settings
from rk_yolo_ros.core.frame_processing import DetectionSettings, FrameStatus
from rk_yolo_ros.core.pipeline import FramePipeline, PipelineConfig, PipelineError
from rk_yolo_ros.messages.detection_messages import (build_detection_array,
                                                     message_types_from_modules)
from rk_yolo_ros.messages.image_conversion import (compressed_image_to_bgr,
                                                   ImageConversionError, raw_image_to_bgr)
from rk_yolo_ros.yolo.detector import YoloDetectorFactory
from rk_yolo_ros.yolo.drawing import draw_overlay
from sensor_msgs.msg import CompressedImage, Image
import vision_msgs.msg

LOG_THROTTLE_S = 5.0
DRAIN_TIMEOUT_S = 3.0


def parameter_descriptor(item: settings.Setting) -> ParameterDescriptor:
    """
    Describe one setting as a ROS parameter: its help, read-only unless dynamic.

    The accepted values go into ``additional_constraints`` rather than a numeric range, so
    that ``settings.check`` is the one rule and the node, ``rk-yolo`` and the launch file refuse a
    bad value with the same message (rclpy would refuse an out-of-range value with its own
    words first). Typing is dynamic for the same reason, and because YAML writes 1 for 1.0 and
    an empty list without a type.
    """
    return ParameterDescriptor(description=item.help_text(), read_only=not item.dynamic,
                               additional_constraints=item.expected(), dynamic_typing=True)


def plain_value(item: settings.Setting, value: Any) -> Any:
    """Return a parameter value as settings.check takes it (rclpy arrays become lists)."""
    if value is None and item.kind is settings.Kind.INT_LIST:
        return []  # YAML's [] and an empty command-line list come without a type
    if isinstance(value, (array.array, list, tuple)):
        return list(value)
    return value


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
        for item in settings.SETTINGS:
            self.declare_parameter(item.name, item.default, parameter_descriptor(item))
        values = settings.check_all(self._parameter_values())  # ValueError names a bad value
        self._bridge = CvBridge()
        self._closing = False
        self.fatal_error = ''  # set when the pipeline stopped on its own; main() exits 1
        self._class_id_format = values['class_id_format']
        self._compressed = values['input_transport'] == 'compressed'
        self._types = message_types_from_modules(vision_msgs.msg, geometry_msgs.msg)
        self._input_qos = self._qos_profile(values)
        # Outputs are always Reliable: a Reliable publisher serves Reliable and Best-Effort
        # subscribers (rviz2 defaults to Reliable).
        output_qos = QoSProfile(depth=self._input_qos.depth, history=self._input_qos.history,
                                reliability=ReliabilityPolicy.RELIABLE)

        factory = YoloDetectorFactory.from_settings(values)  # fails here, before any worker
        self._names = factory.class_names()
        self._hardware_id = f'{factory.backend}: {factory.model_path or "no model"}'
        self._detection_settings = DetectionSettings.from_settings(
            values, draw=values['publish_annotated'])
        warning = settings.worker_count_warning(values['workers'], factory.backend,
                                                os.cpu_count() or 1)
        if warning:
            self.get_logger().warning(warning)
        self._pipeline = FramePipeline(PipelineConfig.from_settings(values), factory,
                                       self.on_frame, logger=_PipelineLog(self.get_logger()))
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
            f'ready in {time.monotonic() - started:.1f} s: {values["workers"]} worker(s), '
            f'{factory.describe()}, {len(self._names)} classes, input '
            f'{self.resolve_topic_name(self._input_topic)} ({values["qos_reliability"]}, '
            f'{values["qos_history"]}, depth {values["qos_depth"]})')

    # ------------------------------------------------------------------------- set-up
    def _parameter_values(self) -> Dict[str, Any]:
        """Return every setting's parameter value by name."""
        return {item.name: plain_value(item, self.get_parameter(item.name).value)
                for item in settings.SETTINGS}

    @staticmethod
    def _qos_profile(values) -> QoSProfile:
        """Build the image subscription's QoS from the qos_* parameters."""
        return QoSProfile(
            depth=values['qos_depth'],
            history=(HistoryPolicy.KEEP_ALL if values['qos_history'] == 'keep_all'
                     else HistoryPolicy.KEEP_LAST),
            reliability=(ReliabilityPolicy.BEST_EFFORT if values['qos_reliability'] ==
                         'best_effort' else ReliabilityPolicy.RELIABLE))

    # ------------------------------------------------------------------------- input
    def image_callback(self, msg) -> None:
        """Convert one image message and submit it (blocks while every slot is busy)."""
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
            self._pipeline.submit(image, meta=msg.header, settings=self._detection_settings,
                                  timeout=None)
        except (PipelineError, ValueError) as error:
            if not self._closing:
                self._reject(f'not accepted by the pipeline: {error}')

    def _reject(self, reason: str) -> None:
        """Count a frame that never entered the pipeline; log the reason, throttled."""
        self._pipeline.reject(reason)
        self.get_logger().warning(f'{self.resolve_topic_name(self._input_topic)}: frame '
                                  f'dropped, {reason}', throttle_duration_sec=LOG_THROTTLE_S)

    # ------------------------------------------------------------------------- output
    def on_frame(self, frame) -> None:
        """
        Publish one released frame; the pipeline's handler (collector thread, frame order).

        Never raises: a raise would stop the pipeline. Failed and cancelled frames are counted
        by the pipeline and logged, never published as empty detections.
        """
        try:
            if frame.status is not FrameStatus.OK:
                if frame.status is FrameStatus.FAILED:
                    reason = (frame.error.strip().splitlines() or ['unknown'])[0]
                    self.get_logger().error(
                        f'frame {frame.frame_id} (stamp {frame.meta.stamp.sec}.'
                        f'{frame.meta.stamp.nanosec:09d}) failed in worker {frame.worker}, '
                        f'nothing published for it: {reason}',
                        throttle_duration_sec=LOG_THROTTLE_S)
                return
            if not self.context.ok():
                self._pipeline.count_undelivered('ROS was shut down before it was published')
                return
            self._detections_pub.publish(build_detection_array(
                self._types, frame.meta, frame.result, self._class_id_format))
            # Converting a 720p frame costs time on the release path: only for a listener.
            if self._detection_settings.draw and \
                    self._annotated_pub.get_subscription_count() > 0:
                draw_overlay(frame.image, [
                    f'{self._pipeline.frame_rate():.1f} fps  frame {frame.frame_id}  '
                    f'{len(frame.result)} detections',
                    f'workers {self._active_workers()}/{self._pipeline.config.workers}  '
                    f'worker {frame.worker}  {frame.latency_s * 1000.0:.0f} ms'])
                self._annotated_pub.publish(
                    self._bridge.cv2_to_imgmsg(frame.image, 'bgr8', frame.meta))
        except Exception as error:  # a raise here would stop the whole pipeline
            self._pipeline.count_undelivered(f'publishing failed: {type(error).__name__}: '
                                             f'{error}')
            self.get_logger().error(f'publishing frame {frame.frame_id} failed: '
                                    f'{traceback.format_exc()}',
                                    throttle_duration_sec=LOG_THROTTLE_S)

    def _active_workers(self) -> int:
        """Return how many workers take frames (cached once a second by diagnostics)."""
        return getattr(self, '_active_worker_count', self._pipeline.config.workers)

    def diagnostics_callback(self) -> None:
        """Publish the pipeline's health on /diagnostics (1 Hz)."""
        stats = self._pipeline.stats()
        counters = stats.counters
        self._active_worker_count = stats.active_workers
        name = self.get_fully_qualified_name().lstrip('/')
        values = {
            'fps': f'{counters.fps:.2f}', 'latency_p50_ms': f'{counters.latency_p50_ms:.1f}',
            'latency_p99_ms': f'{counters.latency_p99_ms:.1f}',
            'slots_in_use': stats.slots_in_use, 'slots_total': stats.slots_total,
            'in_flight': counters.in_flight, 'frames_accepted': counters.accepted,
            'frames_ok': counters.ok, 'frames_failed': counters.failed,
            'frames_cancelled': counters.cancelled, 'frames_rejected': counters.rejected,
            'frames_lost': counters.lost, 'frames_undelivered': counters.undelivered,
            'workers_active': f'{stats.active_workers}/{len(stats.workers)}'}
        values.update({f'reason: {reason}': number
                       for reason, number in sorted(counters.reasons.items())})
        if not self._pipeline.running:
            level, message = DiagnosticStatus.ERROR, 'pipeline stopped'
        elif stats.active_workers < len(stats.workers):
            level, message = DiagnosticStatus.WARN, 'some workers are down'
        elif counters.failed or counters.rejected:
            level, message = DiagnosticStatus.WARN, 'running; some frames failed or were rejected'
        else:
            level, message = DiagnosticStatus.OK, 'running'
        statuses = [self._status(f'{name}: pipeline', level, message, values)]
        for worker in stats.workers:
            statuses.append(self._status(
                f'{name}: worker {worker.index}',
                DiagnosticStatus.OK if worker.status.active else DiagnosticStatus.ERROR,
                worker.status.value,
                {'pid': worker.pid, 'state': worker.status.value, 'core_mask': worker.core_mask,
                 'cpu': worker.cpu if worker.cpu is not None else 'unpinned',
                 'in_flight': worker.in_flight, 'frames_done': worker.frames_done,
                 'frames_failed': worker.frames_failed, 'restarts': worker.restarts}))
        array = DiagnosticArray(status=statuses)
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics_pub.publish(array)
        if not self._pipeline.running and not self._closing and not self.fatal_error:
            # Out of workers (each died, restarts used up): exit non-zero so that a launch
            # file's respawn or a supervisor can start a fresh node.
            self.fatal_error = ('the pipeline stopped: workers ' + ', '.join(
                f'{w.index} {w.status.value} after {w.restarts} restarts'
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
        """Apply threshold / class filter / annotation changes; refuse bad ones with why."""
        values = self._parameter_values()
        try:
            for parameter in parameters:
                if parameter.name in settings.BY_NAME:
                    item = settings.BY_NAME[parameter.name]
                    values[item.name] = settings.check(item.name,
                                                       plain_value(item, parameter.value))
            detection = DetectionSettings.from_settings(values, draw=values['publish_annotated'])
        except ValueError as error:
            return SetParametersResult(successful=False, reason=str(error))
        self._detection_settings = detection  # travels with every frame accepted from now on
        self.get_logger().info(f'detection settings now {detection}')
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------------- shutdown
    def close_pipeline(self) -> None:
        """Stop taking frames, drain briefly, cancel the rest, stop workers (idempotent)."""
        self._closing = True
        pipeline = getattr(self, '_pipeline', None)
        if pipeline is not None and pipeline.running:
            counters = pipeline.close(drain=True, timeout=DRAIN_TIMEOUT_S).counters
            # After ROS shut down, the node's logger would fail to reach /rosout; a child
            # logger only prints.
            logger = (self.get_logger() if self.context.ok()
                      else rclpy.logging.get_logger(self.get_logger().name + '.shutdown'))
            logger.info(
                f'pipeline closed: {counters.accepted} accepted, {counters.ok} processed, '
                f'{counters.failed} failed, {counters.cancelled} cancelled, '
                f'{counters.rejected} rejected, {counters.undelivered} undelivered')
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
