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

Several cameras (``image_topics``): one subscription per topic (CompressedImage where it ends in
/compressed), each camera a stream of the one pipeline, so the workers and model copies serve
them all, each camera's frames are published in its own order on ``<camera>/detections`` and
``<camera>/image_annotated``, and a camera's tracker, loss detection, counters and overlay are
its own (/diagnostics adds a 'camera <name>' status each). Fair admission (the pipeline's NOTE
[fair admission]) keeps a faster camera from taking every slot.

Threading: each image callback runs in its own callback group and blocks in ``submit`` while its
camera may not take a frame slot (that is the backpressure, per camera). Frames are published
from the pipeline's collector thread (rclpy publishers are thread-safe), which is also what frees
the slots, so a blocked callback never waits on the executor. Diagnostics, parameters and
lifecycle services sit in the default group; ``main``'s executor has a thread per camera plus
one (``executor_threads``), so neither they nor another camera's callback wait for a camera
blocked in backpressure.
"""

from dataclasses import replace
import functools
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
from rk_yolo_ros.core.frame_processing import DEFAULT_STREAM, DetectionSettings, FrameStatus
from rk_yolo_ros.core.health import HealthMonitor, Level, Report
from rk_yolo_ros.core.pipeline import FramePipeline, PipelineConfig, PipelineError
from rk_yolo_ros.core.stamp_gaps import StampGapDetector
from rk_yolo_ros.messages.detection_messages import (build_detection_array,
                                                     message_types_from_modules)
from rk_yolo_ros.messages.image_conversion import (check_compressed_image,
                                                   ImageConversionError, raw_image_to_bgr)
from rk_yolo_ros.ros.cameras import Camera, cameras_from_settings
from rk_yolo_ros.ros.diagnostics import DiagnosticsOutput
from rk_yolo_ros.ros.parameters import declare_settings, plain_value, setting_values
from rk_yolo_ros.ros.pipeline_log import PipelineLog
from rk_yolo_ros.ros.qos import input_qos, output_qos
from rk_yolo_ros.yolo.detector import YoloDetectorFactory
from rk_yolo_ros.yolo.drawing import draw_overlay, draw_track_ids
from rk_yolo_ros.yolo.tracking import StreamTrackers
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
        self._trackers = None
        self._cameras: List[Camera] = []
        self._active = False
        self._hardware_id = 'not configured'
        self._health = HealthMonitor()
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
            cameras = cameras_from_settings(values)
            self._trackers = StreamTrackers(values['tracking'])  # without scipy: says so here
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
        self._pipeline, self._values, self._cameras = pipeline, values, cameras
        self._hardware_id = f'{factory.backend}: {factory.model_path or "no model"}'
        for camera in cameras:
            camera.detections_pub = self.create_lifecycle_publisher(
                vision_msgs.msg.Detection2DArray, camera.detections_topic, output_qos(values))
            camera.annotated_pub = self.create_lifecycle_publisher(
                Image, camera.annotated_topic, output_qos(values))
        self._diagnostics.set_report_names(
            ['pipeline'] + [f'camera {name}' for name in self._camera_reports()]
            + [f'worker {index}' for index in range(values['workers'])])
        self.get_logger().info(
            f'configured in {time.monotonic() - started:.1f} s: {values["workers"]} worker(s), '
            f'{factory.describe()}, {len(factory.class_names())} classes'
            + (f', {len(cameras)} cameras' if len(cameras) > 1 else ''))
        return SUCCESS

    def _camera_reports(self) -> List[str]:
        """Return the cameras with a /diagnostics status of their own (none for one topic)."""
        return [camera.name for camera in self._cameras if camera.name != DEFAULT_STREAM]

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to each camera's input and make the outputs live."""
        values = self._values
        for camera in self._cameras:
            camera.gaps = StampGapDetector()
            camera.subscription = self.create_subscription(
                CompressedImage if camera.compressed else Image, camera.topic,
                functools.partial(self.image_callback, camera=camera), input_qos(values),
                callback_group=MutuallyExclusiveCallbackGroup(),  # its own: see Threading
                event_callbacks=SubscriptionEventCallbacks(
                    message_lost=functools.partial(self.message_lost_callback, camera=camera)))
        self._active = True
        inputs = ', '.join(self.resolve_topic_name(camera.topic) for camera in self._cameras)
        self.get_logger().info(
            f'active: input {inputs} ({values["qos_reliability"]}, {values["qos_history"]}, '
            f'depth {values["qos_depth"]})')
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
        for camera in self._cameras:
            for publisher in (camera.detections_pub, camera.annotated_pub):
                if publisher is not None:
                    self.destroy_lifecycle_publisher(publisher)
            camera.detections_pub = camera.annotated_pub = None
        self._cameras = []
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
        for camera in self._cameras:
            subscription, camera.subscription = camera.subscription, None
            if subscription is not None:
                self.destroy_subscription(subscription)

    # --------------------------------------------------------------------------- input
    def image_callback(self, msg, camera: Camera) -> None:
        """Check one image message and submit it (blocks while its camera may take no slot)."""
        stamp = msg.header.stamp
        missing = camera.gaps.observe(stamp.sec * 1_000_000_000 + stamp.nanosec)
        if missing:
            self._count_lost(camera, missing, f'{missing} frame(s) missing in the input stamps, '
                                              f'{LOST_HINT}')
        try:
            if camera.compressed:
                # Only the cheap checks here (format, signature, end marker): a worker decodes
                # the bytes, so this callback, the one serial stage, does not.
                check_compressed_image(msg)
                self._pipeline.submit_encoded(msg.data, meta=msg.header,
                                              settings=self._frame_settings(camera),
                                              timeout=None, stream=camera.name)
            else:
                image = raw_image_to_bgr(
                    msg, lambda m: self._bridge.imgmsg_to_cv2(m, 'passthrough'))
                self._pipeline.submit(image, meta=msg.header,
                                      settings=self._frame_settings(camera), timeout=None,
                                      stream=camera.name)
        except (ImageConversionError, CvBridgeError, cv2.error) as error:
            self._problem(camera, 'rejected', f'bad image: {error}')
            self._pipeline.reject(f'bad image: {error}', camera.name)
        except (PipelineError, ValueError) as error:
            if self._active:
                self._problem(camera, 'rejected', f'not accepted by the pipeline: {error}')
                self._pipeline.reject(f'not accepted by the pipeline: {error}', camera.name)

    def _frame_settings(self, camera: Camera) -> DetectionSettings:
        """Return the settings for a camera's next frame: the workers draw only for a listener."""
        settings = self._detection_settings
        if settings.draw and camera.annotated_pub.get_subscription_count() == 0:
            return replace(settings, draw=False)
        return settings

    def message_lost_callback(self, info, camera: Camera) -> None:
        """Count frames the middleware reports lost on the way to us."""
        self._count_lost(camera, info.total_count_change,
                         f'the middleware reported frames {LOST_HINT}')

    def _count_lost(self, camera: Camera, count: int, reason: str) -> None:
        self._pipeline.count_lost(count, reason, camera.name)
        self._problem(camera, 'lost', reason, count)

    def _problem(self, camera: Camera, kind: str, reason: str, count: int = 1) -> None:
        """Log a camera's problem the first time its reason occurs (then in summaries)."""
        line = camera.reasons.note(kind, reason, count)
        if line:
            self.get_logger().warning(f'{self.resolve_topic_name(camera.topic)}: {line}')

    def _log_summaries(self, logger, force: bool = False) -> None:
        """Log each camera's summary of repeated problems, if one is due."""
        for camera in self._cameras:
            summary = camera.reasons.summary(force=force)
            if summary:
                logger.warning(f'{self.resolve_topic_name(camera.topic)}: {summary}')

    # -------------------------------------------------------------------------- output
    def on_frame(self, frame) -> None:
        """
        Publish one released frame; the pipeline's handler (collector thread, frame order).

        Never raises: a raise would stop the pipeline. Failed and cancelled frames are counted
        by the pipeline and logged, never published as empty detections.
        """
        camera = self._camera(frame.stream)  # every stream is one of the node's cameras
        try:
            # in its camera's frame order
            detections = self._trackers.observe(frame.stream, frame.status, frame.result)
            if frame.status is FrameStatus.FAILED:
                self._problem(camera, 'failed', f'in worker {frame.worker}: {frame.error}')
            if frame.status is not FrameStatus.OK:
                return
            if not self.context.ok():
                self._pipeline.count_undelivered('ROS was shut down before it was published',
                                                 frame.stream)
                return
            camera.detections_pub.publish(build_detection_array(
                self._types, frame.meta, detections, self._values['class_id_format']))
            # Converting a 720p frame costs time on the release path: only for a listener.
            if frame.settings.draw:  # someone listened when it was accepted
                draw_track_ids(frame.image, detections, frame.source_size)
                draw_overlay(frame.image, [
                    (f'{camera.name}  ' if camera.name else '')
                    + f'{self._pipeline.frame_rate(frame.stream):.1f} fps  frame {frame.seq}  '
                    f'{len(detections)} detections',
                    f'worker {frame.worker} of {self._pipeline.config.workers}  '
                    f'{frame.latency_s * 1000.0:.0f} ms'])
                camera.annotated_pub.publish(
                    self._bridge.cv2_to_imgmsg(frame.image, 'bgr8', frame.meta))
        except Exception as error:  # a raise here would stop the whole pipeline
            reason = f'publishing failed: {type(error).__name__}: {error}'
            self._pipeline.count_undelivered(reason, frame.stream)
            self._problem(camera, 'undelivered', reason + '\n' + traceback.format_exc())

    def _camera(self, name: str) -> Camera:
        """Return the camera of a stream (a short list: looked through)."""
        return next(camera for camera in self._cameras if camera.name == name)

    def health_reports(self) -> List[Report]:
        """Return the /diagnostics reports now (1 Hz); exit when the workers are gone."""
        if self._pipeline is None:
            return [Report('pipeline', Level.OK, 'unconfigured: waiting to be configured')]
        running = self._pipeline.running
        stats = self._pipeline.stats()
        reports = self._health.reports(stats, running, self._camera_reports())
        if not self._active and running:
            reports[0].message = f'inactive (not subscribed); {reports[0].message}'
        self._log_summaries(self.get_logger())
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
            if self._trackers is not None:
                self._trackers.enabled = values['tracking']  # on: new tracks from now
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
        stats = pipeline.close(drain=pipeline.running, timeout=DRAIN_TIMEOUT_S)
        # After ROS shut down, the node's logger would fail to reach /rosout; a child logger
        # only prints.
        logger = (self.get_logger() if self.context.ok()
                  else rclpy.logging.get_logger(self.get_logger().name + '.shutdown'))
        self._log_summaries(logger, force=True)
        per_camera = [(f'{name}: ', stats.streams[name].counters)
                      for name in self._camera_reports() if name in stats.streams]
        for prefix, counters in [('', stats.counters)] + per_camera:
            logger.info(f'pipeline closed: {prefix}{counters.accepted} accepted, '
                        f'{counters.ok} processed, {counters.failed} failed, '
                        f'{counters.cancelled} cancelled, {counters.rejected} rejected, '
                        f'{counters.lost} lost upstream, {counters.undelivered} undelivered')

    def executor_threads(self) -> int:
        """
        Return the executor threads the node needs: one per camera, one for the rest.

        A camera's callback may block in backpressure; with a thread for each, no camera waits
        for another, and diagnostics, parameters and lifecycle services keep one of their own.
        """
        try:
            topics = settings.check('image_topics', plain_value(
                settings.BY_NAME['image_topics'], self.get_parameter('image_topics').value))
        except ValueError:
            topics = []  # configure refuses it with the reason
        return max(1, len(topics)) + 1

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
    executor = None
    try:
        node = YoloNode()
        # A thread per camera, whose image callback may block in submit (backpressure), and
        # one for diagnostics, parameters and lifecycle services (the default group).
        executor = MultiThreadedExecutor(num_threads=node.executor_threads())
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
            node.close_pipeline()  # first: wakes the image callbacks blocked in submit
        if executor is not None:
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
