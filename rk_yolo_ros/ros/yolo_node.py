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
The ``yolo_node`` ROS 2 node: a thin lifecycle adapter between image topics and the pipeline.

Lifecycle (rclpy.lifecycle): configure checks the parameters, loads the model in the workers and
allocates the shared memory; activate subscribes to ``image`` (Image) or ``image/compressed``
(CompressedImage) and makes the outputs live; deactivate unsubscribes and lets the frames in
flight be published; cleanup and shutdown stop the workers and free the memory. With
``autostart`` (the default) the node takes itself to active when it starts.

Every accepted frame is published in frame order: ``detections`` (vision_msgs/Detection2DArray
with the input header, boxes in input pixels) and ``image_annotated`` (only while someone
listens). /diagnostics (rk_yolo_ros.core.health) says how many frames were accepted, failed,
rejected or lost upstream, and why.

Threading: the image callback runs in its own callback group and blocks in ``submit`` while
every frame slot is busy (that is the backpressure). Frames are published from the pipeline's
collector thread (rclpy publishers are thread-safe), which is also what frees the slots, so the
blocked callback never waits on the executor. Diagnostics, parameters and lifecycle services
sit in the default group and keep working under backpressure with the two-thread executor of
``main``.
"""

import dataclasses
import os
import signal
import time
import traceback
from typing import List

import cv2
from cv_bridge import CvBridge, CvBridgeError
import geometry_msgs.msg
from rcl_interfaces.msg import SetParametersResult
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rk_yolo_ros.core import settings
from rk_yolo_ros.core.frame_processing import DetectionSettings, FrameStatus
from rk_yolo_ros.core.health import HealthMonitor, Level, ReasonLog, Report
from rk_yolo_ros.core.pipeline import FramePipeline, PipelineConfig, PipelineError
from rk_yolo_ros.core.stamp_gaps import StampGapDetector
from rk_yolo_ros.messages.detection_messages import (build_detection_array,
                                                     message_types_from_modules)
from rk_yolo_ros.messages.image_conversion import (check_compressed_image,
                                                   ImageConversionError, raw_image_to_bgr)
from rk_yolo_ros.ros.diagnostics import DiagnosticsOutput
from rk_yolo_ros.ros.parameters import declare_settings, setting_values
from rk_yolo_ros.ros.pipeline_log import PipelineLog
from rk_yolo_ros.ros.qos import input_qos, output_qos
from rk_yolo_ros.yolo.detector import YoloDetectorFactory
from rk_yolo_ros.yolo.drawing import draw_overlay, draw_track_ids
from rk_yolo_ros.yolo.tracking import StreamTracker
from sensor_msgs.msg import CompressedImage, Image
import vision_msgs.msg

try:  # Iron and newer (Jazzy); Humble has the same class in rclpy.qos_event
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:
    from rclpy.qos_event import SubscriptionEventCallbacks

DRAIN_TIMEOUT_S = 3.0
LOST_HINT = ('lost before they reached yolo_node (its input queue overflowed behind a slower '
             'node); qos_history:=keep_all with a Reliable publisher loses none')
SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class YoloNode(LifecycleNode):
    """Detect objects in an image topic with the multi-process NPU pipeline, in frame order."""

    def __init__(self, **kwargs):
        """Declare the parameters and start /diagnostics; the lifecycle does the rest."""
        super().__init__('yolo_node', **kwargs)
        declare_settings(self)
        self.autostart = bool(self.get_parameter('autostart').value)
        self.configure_error = ''  # why the last configure failed
        self.fatal_error = ''  # set when the pipeline stopped on its own; main() exits 1
        self._bridge = CvBridge()
        self._types = message_types_from_modules(vision_msgs.msg, geometry_msgs.msg)
        self._pipeline = None
        self._tracker = None
        self._subscription = None
        self._active = False
        self._hardware_id = 'not configured'
        self._health = HealthMonitor()
        self._reasons = ReasonLog()
        self._gaps = StampGapDetector()
        self._diagnostics = DiagnosticsOutput(self, self.health_reports,
                                              lambda: self._hardware_id)
        self.add_on_set_parameters_callback(self.parameters_callback)

    # ----------------------------------------------------------------------- lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Check the parameters, start the workers (model, shared memory), make the outputs."""
        try:
            values = setting_values(self)
            factory = YoloDetectorFactory.from_settings(values)  # fails here, before workers
            self._detection_settings = DetectionSettings.from_settings(
                values, draw=values['publish_annotated'])
            self._tracker = StreamTracker(values['tracking'])  # without scipy: says so here
            warning = settings.worker_count_warning(values['workers'], factory.backend,
                                                    os.cpu_count() or 1)
            if warning:
                self.get_logger().warning(warning)
            started = time.monotonic()
            pipeline = FramePipeline(PipelineConfig.from_settings(values), factory,
                                     self.on_frame, logger=PipelineLog(self.get_logger()))
            pipeline.start()  # raises WorkerStartError naming the worker's failure
        except Exception as error:  # the reason goes to the log; the transition fails
            self.configure_error = str(error)
            self.get_logger().error(f'configure failed: {type(error).__name__}: {error}')
            return FAILURE
        self._pipeline, self._values = pipeline, values
        self._hardware_id = f'{factory.backend}: {factory.model_path or "no model"}'
        self._compressed = values['input_transport'] == 'compressed'
        self._input_topic = 'image/compressed' if self._compressed else 'image'
        self._detections_pub = self.create_lifecycle_publisher(
            vision_msgs.msg.Detection2DArray, 'detections', output_qos(values))
        self._annotated_pub = self.create_lifecycle_publisher(Image, 'image_annotated',
                                                              output_qos(values))
        self._diagnostics.set_report_names(
            ['pipeline'] + [f'worker {index}' for index in range(values['workers'])])
        self.get_logger().info(
            f'configured in {time.monotonic() - started:.1f} s: {values["workers"]} worker(s), '
            f'{factory.describe()}, {len(factory.class_names())} classes')
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the input and make the outputs live."""
        values = self._values
        self._gaps = StampGapDetector()
        self._subscription = self.create_subscription(
            CompressedImage if self._compressed else Image, self._input_topic,
            self.image_callback, input_qos(values),
            callback_group=MutuallyExclusiveCallbackGroup(),
            event_callbacks=SubscriptionEventCallbacks(message_lost=self.message_lost_callback))
        self._active = True
        self.get_logger().info(
            f'active: input {self.resolve_topic_name(self._input_topic)} '
            f'({values["qos_reliability"]}, {values["qos_history"]}, depth '
            f'{values["qos_depth"]})')
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe; publish the frames already accepted; then the outputs go quiet."""
        self._stop_input()
        if self._pipeline is not None and self._pipeline.running:
            if not self._pipeline.flush(timeout=DRAIN_TIMEOUT_S):
                self.get_logger().warning('frames still in flight after deactivation; they '
                                          'are published as they finish')
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop the workers, free the shared memory, drop the outputs."""
        self.close_pipeline()
        for publisher in (getattr(self, '_detections_pub', None),
                          getattr(self, '_annotated_pub', None)):
            if publisher is not None:
                self.destroy_lifecycle_publisher(publisher)
        self._detections_pub = self._annotated_pub = None
        self._diagnostics.set_report_names(['pipeline'])
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release everything, from any state."""
        self._stop_input()
        self.close_pipeline()
        return SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release everything after an error; the node can be configured again."""
        return self.on_shutdown(state)

    def _stop_input(self) -> None:
        """Stop taking frames (idempotent)."""
        self._active = False
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            self.destroy_subscription(subscription)

    # --------------------------------------------------------------------------- input
    def image_callback(self, msg) -> None:
        """Check one image message and submit it (blocks while every slot is busy)."""
        stamp = msg.header.stamp
        missing = self._gaps.observe(stamp.sec * 1_000_000_000 + stamp.nanosec)
        if missing:
            self._count_lost(missing, f'{missing} frame(s) missing in the input stamps, '
                                      f'{LOST_HINT}')
        try:
            if self._compressed:
                # Only the cheap checks here (format, signature, end marker): a worker decodes
                # the bytes, so this callback, the one serial stage, does not.
                check_compressed_image(msg)
                self._pipeline.submit_encoded(msg.data, meta=msg.header,
                                              settings=self._frame_settings(), timeout=None)
            else:
                image = raw_image_to_bgr(
                    msg, lambda m: self._bridge.imgmsg_to_cv2(m, 'passthrough'))
                self._pipeline.submit(image, meta=msg.header, settings=self._frame_settings(),
                                      timeout=None)
        except (ImageConversionError, CvBridgeError, cv2.error) as error:
            self._problem('rejected', f'bad image: {error}')
            self._pipeline.reject(f'bad image: {error}')
        except (PipelineError, ValueError) as error:
            if self._active:
                self._problem('rejected', f'not accepted by the pipeline: {error}')
                self._pipeline.reject(f'not accepted by the pipeline: {error}')

    def _frame_settings(self) -> DetectionSettings:
        """Return the settings for the next frame: the workers draw only for a listener."""
        settings = self._detection_settings
        if settings.draw and self._annotated_pub.get_subscription_count() == 0:
            return dataclasses.replace(settings, draw=False)
        return settings

    def message_lost_callback(self, info) -> None:
        """Count frames the middleware reports lost on the way to us."""
        self._count_lost(info.total_count_change,
                         f'the middleware reported frames {LOST_HINT}')

    def _count_lost(self, count: int, reason: str) -> None:
        self._pipeline.count_lost(count, reason)
        self._problem('lost', reason, count)

    def _problem(self, kind: str, reason: str, count: int = 1) -> None:
        """Log a problem the first time its reason occurs (then in summaries)."""
        line = self._reasons.note(kind, reason, count)
        if line:
            self.get_logger().warning(f'{self.resolve_topic_name(self._input_topic)}: {line}')

    # -------------------------------------------------------------------------- output
    def on_frame(self, frame) -> None:
        """
        Publish one released frame; the pipeline's handler (collector thread, frame order).

        Never raises: a raise would stop the pipeline. Failed and cancelled frames are counted
        by the pipeline and logged, never published as empty detections.
        """
        try:
            detections = self._tracker.observe(frame.status, frame.result)  # in frame order
            if frame.status is FrameStatus.FAILED:
                self._problem('failed', f'in worker {frame.worker}: {frame.error}')
            if frame.status is not FrameStatus.OK:
                return
            if not self.context.ok():
                self._pipeline.count_undelivered('ROS was shut down before it was published')
                return
            self._detections_pub.publish(build_detection_array(
                self._types, frame.meta, detections, self._values['class_id_format']))
            # Converting a 720p frame costs time on the release path: only for a listener.
            if frame.settings.draw:  # someone listened when it was accepted
                draw_track_ids(frame.image, detections, frame.source_size)
                draw_overlay(frame.image, [
                    f'{self._pipeline.frame_rate():.1f} fps  frame {frame.frame_id}  '
                    f'{len(detections)} detections',
                    f'worker {frame.worker} of {self._pipeline.config.workers}  '
                    f'{frame.latency_s * 1000.0:.0f} ms'])
                self._annotated_pub.publish(
                    self._bridge.cv2_to_imgmsg(frame.image, 'bgr8', frame.meta))
        except Exception as error:  # a raise here would stop the whole pipeline
            reason = f'publishing failed: {type(error).__name__}: {error}'
            self._pipeline.count_undelivered(reason)
            self._problem('undelivered', reason + '\n' + traceback.format_exc())

    def health_reports(self) -> List[Report]:
        """Return the /diagnostics reports now (1 Hz); exit when the workers are gone."""
        if self._pipeline is None:
            return [Report('pipeline', Level.OK, 'unconfigured: waiting to be configured')]
        running = self._pipeline.running
        stats = self._pipeline.stats()
        reports = self._health.reports(stats, running)
        if not self._active and running:
            reports[0].message = f'inactive (not subscribed); {reports[0].message}'
        summary = self._reasons.summary()
        if summary:
            self.get_logger().warning(summary)
        if not running and self._active and not self.fatal_error:
            # Out of workers (each died, restarts used up): exit non-zero so that a launch
            # file's respawn or a supervisor can start a fresh node.
            self.fatal_error = ('the pipeline stopped: workers ' + ', '.join(
                f'{w.index} {w.status.value} after {w.restarts} restarts'
                for w in stats.workers))
            self.get_logger().fatal(f'{self.fatal_error}; shutting down')
            self.context.try_shutdown()
        return reports

    # ---------------------------------------------------------------------- parameters
    def parameters_callback(self, parameters) -> SetParametersResult:
        """Apply threshold / class filter / annotation changes; refuse bad ones with why."""
        try:
            values = setting_values(self, parameters)
            if self._tracker is not None:
                self._tracker.enabled = values['tracking']  # on: new tracks from now
        except (ValueError, ImportError) as error:
            return SetParametersResult(successful=False, reason=str(error))
        detection = DetectionSettings.from_settings(values, draw=values['publish_annotated'])
        self._detection_settings = detection  # travels with every frame accepted from now on
        self.get_logger().info(f'detection settings now {detection}')
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------------ shutdown
    def close_pipeline(self) -> None:
        """Stop taking frames, drain briefly, cancel the rest, stop workers (idempotent)."""
        self._active = False
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is None:
            return
        counters = pipeline.close(drain=pipeline.running, timeout=DRAIN_TIMEOUT_S).counters
        summary = self._reasons.summary(force=True)
        # After ROS shut down, the node's logger would fail to reach /rosout; a child logger
        # only prints.
        logger = (self.get_logger() if self.context.ok()
                  else rclpy.logging.get_logger(self.get_logger().name + '.shutdown'))
        if summary:
            logger.warning(summary)
        logger.info(f'pipeline closed: {counters.accepted} accepted, {counters.ok} processed, '
                    f'{counters.failed} failed, {counters.cancelled} cancelled, '
                    f'{counters.rejected} rejected, {counters.lost} lost upstream, '
                    f'{counters.undelivered} undelivered')

    def destroy_node(self) -> None:
        """Close the pipeline, then destroy the node."""
        self._stop_input()
        self.close_pipeline()
        super().destroy_node()


def main(args=None):
    """Run yolo_node until shut down (Ctrl-C, SIGTERM, ros2 launch); Humble and Jazzy alike."""
    rclpy.init(args=args)
    node = None
    exit_code = 0
    # Two threads: the image callback may block in submit (backpressure) while diagnostics,
    # parameters and lifecycle services go on in the other callback group.
    executor = MultiThreadedExecutor(num_threads=2)
    try:
        node = YoloNode()
        executor.add_node(node)
        if node.autostart:
            if node.trigger_configure() != SUCCESS:
                raise RuntimeError(node.configure_error)
            if node.trigger_activate() != SUCCESS:
                raise RuntimeError('activation failed')
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as error:  # start-up failed: say why and exit non-zero
        rclpy.logging.get_logger('yolo_node').fatal(f'yolo_node failed: {error}')
        exit_code = 1
    finally:
        # A terminal's Ctrl-C reaches us twice (from the shell and from ros2 launch): the
        # bounded clean-up below (drain, stop workers, unlink shared memory) must not be cut.
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(number, signal.SIG_IGN)
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
