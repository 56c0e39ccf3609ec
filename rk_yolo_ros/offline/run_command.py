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
``rk-yolo run`` (ROS-free): detect in a video, camera, image folder or bag, write the outputs.

``rk-yolo run SOURCE`` takes the node's settings as flags (from the settings table) and writes
any combination of an annotated video, an output rosbag2 (Detection2DArray + annotated Image
with the input stamps) and JSON lines, then prints a summary that accounts for every frame.
Exit codes: 0 done, 1 stopped by an error, 2 bad arguments or source, 3 done but some frames
failed, 130 interrupted.
"""

import argparse
import contextlib
import json
import logging
import os
import pathlib
import sys
from typing import Any, Dict, Optional, Tuple

from rk_yolo_ros.core import settings
from rk_yolo_ros.core.frame_processing import DetectionSettings
from rk_yolo_ros.core.pipeline import PipelineConfig
from rk_yolo_ros.offline.progress import ProgressBar, ProgressLogHandler
from rk_yolo_ros.offline.run import EXIT_ERROR, EXIT_USAGE, format_summary, OfflineRun
from rk_yolo_ros.offline.sinks import (BAG_STORAGES, BagSink, JsonLinesSink, SinkError,
                                       VideoSink)
from rk_yolo_ros.offline.sources import BagSource, open_source, SourceError

PROG = 'rk-yolo'
DEFAULT_BASE_TOPIC = '/image'  # the input topic name given to non-bag sources
OUTPUT_DIR_FILES = {'video': 'annotated.mp4', 'bag': 'detections_bag',
                    'jsonl': 'detections.jsonl', 'summary_json': 'summary.json'}
# Short forms kept for the flags users type most; every other flag is the setting's name.
FLAG_ALIASES = {'conf_threshold': ('--conf',), 'iou_threshold': ('--iou',),
                'max_detections': ('--max-det',), 'labels_file': ('--labels',),
                'tracking': ('--track',)}


class UsageError(ValueError):
    """A command-line value that does not fit; reported with exit code 2."""


# ----------------------------------------------------------------------------- value parsers
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text!r}')
    return value


def setting_type(name: str):
    """Return an argparse ``type`` that reads a setting with the settings' one rule."""
    def parse(text: str) -> Any:
        try:
            return settings.parse_text(name, text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    parse.__name__ = name
    return parse


def add_setting_flags(group) -> None:
    """Add one flag per setting that is not ROS-only (name, default, help from the table)."""
    for item in settings.SETTINGS:
        if item.ros_only:
            continue
        if item.kind is settings.Kind.BOOL:  # --track / --no-track
            group.add_argument(item.flag, *FLAG_ALIASES.get(item.name, ()), dest=item.name,
                               action=argparse.BooleanOptionalAction,
                               default=settings.default(item.name), help=item.help_text())
            continue
        group.add_argument(item.flag, *FLAG_ALIASES.get(item.name, ()), dest=item.name,
                           type=setting_type(item.name), default=settings.default(item.name),
                           metavar=item.name.split('_')[-1].upper(), help=item.help_text())


def setting_values(args) -> Dict[str, Any]:
    """Return the settings given on the command line (or their defaults) by name."""
    return {name: getattr(args, name) for name in settings.names(ros=False)}


# ------------------------------------------------------------------------------- the parser
def add_run_command(subparsers) -> None:
    """Register ``run`` and its options (named after the ROS node's parameters)."""
    run = subparsers.add_parser(
        'run', help='detect objects in a video, camera, image folder or rosbag2',
        description='Run the no-skip YOLO pipeline over an offline source and write an '
        'annotated video, an output rosbag2 and/or JSON lines. Every frame read is processed '
        'or reported as failed, in order.')
    run.add_argument('source', help='video file, camera index, folder of images, or rosbag2 '
                     '(folder, .db3 or .mcap)')
    run.add_argument('--topic', help='bag image topic (Image or CompressedImage); default: '
                     "the bag's only image topic")
    add_setting_flags(run.add_argument_group("detector (the node's parameters)"))
    outputs = run.add_argument_group('outputs (any combination)')
    outputs.add_argument('--output-dir', '-o', type=pathlib.Path,
                         help='write annotated.mp4, detections_bag/, detections.jsonl and '
                         'summary.json here (the options below override single files)')
    outputs.add_argument('--video', type=pathlib.Path, help='annotated video (.mp4)')
    outputs.add_argument('--fourcc', default='mp4v', help='video codec fourcc (default mp4v)')
    outputs.add_argument('--bag', type=pathlib.Path,
                         help='output rosbag2 folder with detections and annotated images')
    outputs.add_argument('--bag-storage', choices=BAG_STORAGES, default='sqlite3',
                         help='output bag storage (default sqlite3)')
    outputs.add_argument('--det-topic', help='detections topic (default <input topic>/'
                         f'detections; {DEFAULT_BASE_TOPIC} for non-bag sources)')
    outputs.add_argument('--image-topic', help='annotated image topic (default <input topic>/'
                         'annotated; "none" leaves the images out)')
    outputs.add_argument('--jsonl', type=pathlib.Path, help='detections as JSON lines')
    outputs.add_argument('--summary-json', type=pathlib.Path,
                         help='the closing summary as JSON')
    outputs.add_argument('--overwrite', action='store_true',
                         help='replace an existing output bag')
    run_group = run.add_argument_group('run')
    run_group.add_argument('--max-frames', type=_positive_int,
                           help='stop after reading this many frames')
    run_group.add_argument('--fps', type=float,
                           help='frame rate for stamps of images/videos and the output video')
    run_group.add_argument('--frame-id', default='camera',
                           help='header frame_id for non-bag sources (default camera)')
    run_group.add_argument('--progress', choices=('auto', 'on', 'off'), default='auto',
                           help='progress bar on stderr (default auto: only on a terminal)')
    run_group.add_argument('--verbose', '-v', action='store_true', help='log more')
    run.set_defaults(func=run_command)


def _output_paths(args) -> dict:
    """Return the output files asked for: explicit options, else inside --output-dir."""
    paths = {name: getattr(args, name) for name in OUTPUT_DIR_FILES}
    if args.output_dir is not None:
        try:
            args.output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UsageError(f'cannot create --output-dir {args.output_dir}: {error}') from None
        for name, file_name in OUTPUT_DIR_FILES.items():
            if paths[name] is None:
                paths[name] = args.output_dir / file_name
    return paths


def _detector_factory(values: Dict[str, Any]):
    """Build and check the YOLO processor factory in this process (fail before any worker)."""
    from rk_yolo_ros.yolo.detector import YoloDetectorFactory

    try:
        return YoloDetectorFactory.from_settings(values)
    except (ValueError, FileNotFoundError) as error:
        raise UsageError(str(error)) from None
    except Exception as error:  # BackendError, labels errors: the message names the problem
        raise UsageError(f'{type(error).__name__}: {error}') from None


def _topics(args, source) -> Tuple[str, Optional[str]]:
    base = source.topic if isinstance(source, BagSource) else DEFAULT_BASE_TOPIC
    base = base.rstrip('/')
    det_topic = args.det_topic or f'{base}/detections'
    image_topic = args.image_topic or f'{base}/annotated'
    return det_topic, (None if image_topic == 'none' else image_topic)


def _make_sinks(args, paths, source) -> list:
    """Create the requested outputs; close the ones made if a later one fails."""
    sinks = []
    try:
        # Written in this order; a frame whose write fails reaches none of the later ones.
        if paths['jsonl'] is not None:
            sinks.append(JsonLinesSink(paths['jsonl']))
        if paths['bag'] is not None:
            det_topic, image_topic = _topics(args, source)
            sinks.append(BagSink(paths['bag'], det_topic, image_topic, args.bag_storage,
                                 args.overwrite, args.class_id_format))
        if paths['video'] is not None:
            sinks.append(VideoSink(paths['video'], args.fps or source.fps or 30.0, args.fourcc))
    except BaseException:
        for sink in sinks:
            try:
                sink.close()
            except SinkError:
                pass  # closing what did open; the error being raised is the one to report
        raise
    return sinks


def run_command(args) -> int:
    """Run ``rk-yolo run``; return the exit code."""
    values = setting_values(args)
    try:
        config = PipelineConfig.from_settings(values)
        paths = _output_paths(args)
        factory = _detector_factory(values)
    except (UsageError, ValueError) as error:
        return _fail(EXIT_USAGE, error)
    warning = settings.worker_count_warning(config.workers, factory.backend, os.cpu_count() or 1)
    if warning:
        print(f'{PROG}: warning: {warning}', file=sys.stderr)
    try:
        source = open_source(args.source, topic=args.topic, fps=args.fps,
                             frame_id=args.frame_id)
    except SourceError as error:
        return _fail(EXIT_USAGE, error)
    with source:
        try:
            sinks = _make_sinks(args, paths, source)
        except SinkError as error:
            return _fail(EXIT_USAGE, error)
        # Drawing costs worker time: skip it when no output shows the annotated frames.
        wants_images = paths['video'] is not None or (paths['bag'] is not None and
                                                      _topics(args, source)[1] is not None)
        detection = DetectionSettings.from_settings(values, draw=wants_images)
        total = source.total
        if args.max_frames is not None:
            total = min(total, args.max_frames) if total else args.max_frames
        progress = ProgressBar(total, sys.stderr,
                               {'auto': None, 'on': True, 'off': False}[args.progress])
        print(f'{PROG}: {source.description} -> {len(sinks)} output(s); {config.workers} '
              f'worker(s), {factory.describe()}', file=sys.stderr)
        run = OfflineRun(source, factory, config, detection, sinks, progress=progress,
                         max_frames=args.max_frames)
        with _log_through(progress, args.verbose):
            summary = run.run()
    print(format_summary(summary))
    if paths['summary_json'] is not None:
        try:
            paths['summary_json'].write_text(json.dumps(summary.to_json(), indent=2) + '\n')
        except OSError as error:
            print(f'{PROG}: error: cannot write {paths["summary_json"]}: {error}',
                  file=sys.stderr)
            return summary.exit_code or EXIT_ERROR
    if summary.error:
        print(f'{PROG}: error: {summary.error}', file=sys.stderr)
    return summary.exit_code


@contextlib.contextmanager
def _log_through(progress: ProgressBar, verbose: bool):
    """Send the package's log messages to stderr above the progress bar during a run."""
    handler = ProgressLogHandler(progress)
    handler.setFormatter(logging.Formatter(f'{PROG}: %(levelname)s: %(message)s'))
    handler.setLevel(logging.INFO if verbose else logging.WARNING)
    logger = logging.getLogger('rk_yolo_ros')
    level = logger.level
    if verbose:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:  # leave logging as it was (runs inside a larger program or a test session)
        logger.removeHandler(handler)
        logger.setLevel(level)


def _fail(code: int, error: BaseException) -> int:
    print(f'{PROG}: error: {error}', file=sys.stderr)
    return code


__all__ = ['add_run_command', 'PROG', 'run_command', 'UsageError']
