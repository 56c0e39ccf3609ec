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
A bag with several image topics (cameras) is read whole in one run: each topic is a stream of
the one pipeline, in its own order, with its own output topics and annotated video.

Everything that can be checked before work is checked first, and nothing is created on disk
until all of it passed: the options, the output paths and the video encoder, the model's input
and output shapes, the source. Exit codes: 0 done, 1 stopped by an error, 2 refused before any
work (bad arguments, source, model or output path), 3 done but some frames failed, 128 + N
stopped by signal N (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP).
"""

import argparse
import contextlib
from dataclasses import dataclass
import json
import logging
import os
import pathlib
import sys
from typing import Any, Dict, List, Optional

from rk_yolo_ros.core import settings
from rk_yolo_ros.core.frame_processing import DetectionSettings
from rk_yolo_ros.core.pipeline import PipelineConfig
from rk_yolo_ros.offline.progress import ProgressBar, ProgressLogHandler
from rk_yolo_ros.offline.run import (concise_error, EXIT_ERROR, EXIT_USAGE, format_summary,
                                     OfflineRun, RunSummary)
from rk_yolo_ros.offline.sinks import (BAG_STORAGES, BagSink, check_bag_path,
                                       check_output_dir, check_output_file,
                                       check_video_encoder, JsonLinesSink, OutputTopics,
                                       SinkError, VideoSink)
from rk_yolo_ros.offline.sources import (BagSource, check_fps, DEFAULT_FPS, FrameSource,
                                         open_source, SourceError)
from rk_yolo_ros.offline.stop_signals import exit_code_for, Interrupted, StopSignals
from rk_yolo_ros.yolo.tracking import StreamTrackers

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


def _frame_rate(text: str) -> float:
    """Read --fps: a frame rate > 0 (``sources.check_fps`` is the rule)."""
    try:
        return check_fps(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a frame rate > 0 (frames per second), got '
                                         f'{text!r}') from None


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
    run.add_argument('--topic', action='append',
                     help='bag image topic (Image or CompressedImage); repeat it for several '
                     'cameras; default: every image topic of the bag, each with its own outputs')
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
                         f'detections; {DEFAULT_BASE_TOPIC} for non-bag sources; a '
                         "CompressedImage topic's /compressed is dropped)")
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
    run_group.add_argument('--fps', type=_frame_rate,
                           help='frame rate (> 0) for stamps of images/videos and the output '
                           "video (default: the video's own, else 30)")
    run_group.add_argument('--frame-id', default='camera',
                           help='header frame_id for non-bag sources (default camera)')
    run_group.add_argument('--progress', choices=('auto', 'on', 'off'), default='auto',
                           help='progress bar on stderr (default auto: only on a terminal)')
    run_group.add_argument('--verbose', '-v', action='store_true',
                           help='log more, with tracebacks')
    run.set_defaults(func=run_command)


def _output_paths(args) -> dict:
    """Return the output files asked for: explicit options, else inside --output-dir."""
    paths = {name: getattr(args, name) for name in OUTPUT_DIR_FILES}
    if args.output_dir is not None:
        for name, file_name in OUTPUT_DIR_FILES.items():
            if paths[name] is None:
                paths[name] = args.output_dir / file_name
    return paths


def _check_outputs(args, paths) -> None:
    """Raise SinkError if an output could not be written; creates nothing."""
    created = args.output_dir  # the one folder the run creates
    if created is not None:
        check_output_dir(created)
    chosen = [path for path in paths.values() if path is not None]
    resolved = [os.path.abspath(path) for path in chosen]
    for path, absolute in zip(chosen, resolved):
        if resolved.count(absolute) > 1:
            raise SinkError(f'{path} is given for two outputs; each output needs its own path')
    for name, what in (('jsonl', 'JSON lines'), ('video', 'video'),
                       ('summary_json', 'summary')):
        if paths[name] is not None:
            check_output_file(paths[name], what, created)
    if paths['bag'] is not None:
        check_bag_path(paths['bag'], args.overwrite, created)
    if paths['video'] is not None:
        check_video_encoder(paths['video'], args.fourcc)


def _detector_factory(values: Dict[str, Any]):
    """Build and check the YOLO processor factory in this process (fail before any worker)."""
    from rk_yolo_ros.yolo.detector import YoloDetectorFactory

    try:
        return YoloDetectorFactory.from_settings(values)
    except (ValueError, FileNotFoundError) as error:  # ModelCheckError, LabelsError among them
        raise UsageError(str(error)) from None
    except Exception as error:  # BackendError: the message names the problem
        raise UsageError(f'{type(error).__name__}: {error}') from None


def _output_base(topic: str, msgtype: str) -> str:
    """Return where a bag topic's outputs go: the topic, less image_transport's /compressed."""
    base = topic.rstrip('/')
    if msgtype == 'sensor_msgs/msg/CompressedImage' and base.endswith('/compressed'):
        # the outputs (raw Images and detections) sit beside the raw topic,
        # /camera/image_raw/detections, not under /camera/image_raw/compressed/
        base = base[:-len('/compressed')]
    return base


def _topics(args, source) -> Dict[str, OutputTopics]:
    """
    Return the output topics of each input stream: its bag topic, or '' for other sources.

    Raise UsageError where --det-topic or --image-topic would name one topic for several
    cameras, or two input topics would share their outputs.
    """
    if isinstance(source, BagSource):
        inputs = {topic: _output_base(topic, source.msgtypes[topic]) for topic in source.topics}
    else:
        inputs = {'': DEFAULT_BASE_TOPIC}
    if len(inputs) > 1:
        for flag, value in (('--det-topic', args.det_topic), ('--image-topic', args.image_topic)):
            if value and value != 'none':
                raise UsageError(f'{flag} {value} names one topic, but the bag gives '
                                 f'{len(inputs)} image topics ({", ".join(inputs)}), each with '
                                 'outputs of its own; leave it out or pick one with --topic')
    seen: Dict[str, str] = {}
    for topic, base in inputs.items():
        if base in seen:
            raise UsageError(f'image topics {seen[base]} and {topic} would share their outputs '
                             f'({base}/detections): they are one camera twice; pick one with '
                             '--topic')
        seen[base] = topic
    outputs = {}
    for topic, base in inputs.items():
        image_topic = args.image_topic or f'{base}/annotated'
        outputs[topic] = OutputTopics(args.det_topic or f'{base}/detections',
                                      None if image_topic == 'none' else image_topic)
    return outputs


def _video_paths(args, path: pathlib.Path, source) -> Dict[str, pathlib.Path]:
    """Return the video of each stream: the one path, or with several cameras one per camera."""
    if len(source.topics) <= 1:
        return {source.topics[0] if source.topics else '': path}
    return {topic: path.with_name(f'{path.stem}_{settings.camera_name(topic).replace("/", "_")}'
                                  f'{path.suffix}')
            for topic in source.topics}


def _make_sinks(args, paths, source) -> list:
    """Build the requested outputs (they are created on disk by the run's writer thread)."""
    sinks = []
    # Written in this order; a frame whose write fails reaches none of the later ones.
    if paths['jsonl'] is not None:
        sinks.append(JsonLinesSink(paths['jsonl']))
    if paths['bag'] is not None:
        sinks.append(BagSink(paths['bag'], _topics(args, source), args.bag_storage,
                             args.overwrite, args.class_id_format))
    if paths['video'] is not None:
        several = len(source.topics) > 1
        for stream, path in _video_paths(args, paths['video'], source).items():
            fps = args.fps or getattr(source, 'topic_fps', {}).get(stream) or source.fps \
                or DEFAULT_FPS
            sinks.append(VideoSink(path, fps, args.fourcc, stream if several else None))
    return sinks


@dataclass
class _Checked:
    """What the checks before work produced: nothing is on disk yet."""

    values: Dict[str, Any]
    config: PipelineConfig
    paths: Dict[str, Optional[pathlib.Path]]
    factory: Any
    source: FrameSource


def _check_everything(args) -> _Checked:
    """Check the options, outputs, model and source; raise UsageError/SinkError/SourceError."""
    values = setting_values(args)
    config = PipelineConfig.from_settings(values)
    paths = _output_paths(args)
    _check_outputs(args, paths)
    factory = _detector_factory(values)
    try:
        StreamTrackers(values['tracking'])  # without scipy --track is refused here, before work
    except ImportError as error:
        raise UsageError(f'--track: {error}') from None
    warning = settings.worker_count_warning(config.workers, factory.backend, os.cpu_count() or 1)
    if warning:
        print(f'{PROG}: warning: {warning}', file=sys.stderr)
    source = open_source(args.source, topic=args.topic, fps=args.fps, frame_id=args.frame_id,
                         all_image_topics=True)
    try:
        _check_streams(args, paths, source)
    except BaseException:
        source.close()
        raise
    return _Checked(values, config, paths, factory, source)


def _check_streams(args, paths, source) -> None:
    """Check what depends on the source's cameras: output topics, a video per camera."""
    if paths['bag'] is not None or paths['video'] is not None:
        _topics(args, source)
    if paths['video'] is not None and len(source.topics) > 1:
        videos: List[pathlib.Path] = list(_video_paths(args, paths['video'], source).values())
        taken = {os.path.abspath(path) for name, path in paths.items()
                 if path is not None and name != 'video'}
        for path in videos:
            if os.path.abspath(path) in taken:
                raise SinkError(f'{path} (the video of one camera) is given for another output')
            check_output_file(path, 'video', args.output_dir)


def run_command(args) -> int:
    """Run ``rk-yolo run``; return the exit code."""
    with StopSignals() as signals:
        try:
            with signals.raising():  # nothing exists yet that a signal would have to close
                checked = _check_everything(args)
        except Interrupted as stopped:
            _say(f'{PROG}: interrupted ({stopped}) before the run started; nothing was written')
            return exit_code_for(stopped.signum)
        except (UsageError, ValueError, SinkError, SourceError) as error:
            return _fail(EXIT_USAGE, error)
        with checked.source:
            summary = _run_checked(args, checked, signals)
        if summary is None:
            return EXIT_USAGE
        return _report(summary, checked.paths['summary_json'])


def _run_checked(args, checked: _Checked, signals: StopSignals) -> Optional[RunSummary]:
    """Create the outputs' folder and the sinks, run, return the summary (None: refused)."""
    paths, source = checked.paths, checked.source
    try:
        if args.output_dir is not None:
            args.output_dir.mkdir(parents=True, exist_ok=True)
        sinks = _make_sinks(args, paths, source)
    except (OSError, SinkError) as error:
        _fail(EXIT_USAGE, error)
        return None
    # Drawing costs worker time: skip it when no output shows the annotated frames.
    wants_images = paths['video'] is not None or (paths['bag'] is not None and any(
        topics.annotated is not None for topics in _topics(args, source).values()))
    detection = DetectionSettings.from_settings(checked.values, draw=wants_images)
    total = source.total
    if args.max_frames is not None:
        total = min(total, args.max_frames) if total else args.max_frames
    progress = ProgressBar(total, sys.stderr,
                           {'auto': None, 'on': True, 'off': False}[args.progress])
    _say(f'{PROG}: {source.description} -> {len(sinks)} output(s); {checked.config.workers} '
         f'worker(s), {checked.factory.describe()}')
    run = OfflineRun(source, checked.factory, checked.config, detection, sinks,
                     progress=progress, max_frames=args.max_frames, signals=signals,
                     trackers=StreamTrackers(checked.values['tracking']))
    with _log_through(progress, args.verbose):
        return run.run()


def _report(summary: RunSummary, summary_json: Optional[pathlib.Path]) -> int:
    """Write summary.json, print the summary; return the exit code."""
    code = summary.exit_code
    if summary_json is not None:  # first: a closed terminal (SIGHUP) must not cost the file
        try:
            summary_json.write_text(json.dumps(summary.to_json(), indent=2) + '\n')
        except OSError as error:
            _say(f'{PROG}: error: cannot write {summary_json}: {error}')
            code = code or EXIT_ERROR
    _say(format_summary(summary), sys.stdout)
    if summary.error:
        _say(f'{PROG}: error: {summary.error}')
    return code


def _say(text: str, stream=None) -> None:
    """Print a line to stderr (or ``stream``); a terminal that is gone is not an error."""
    try:
        print(text, file=stream or sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


class _LogFormatter(logging.Formatter):
    """'rk-yolo: LEVEL: message'; a traceback shrinks to its exception unless --verbose."""

    def __init__(self, verbose: bool):
        super().__init__(f'{PROG}: %(levelname)s: %(message)s')
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:  # noqa: A003 - Formatter's method
        """Format the record; shrink a traceback to its exception line."""
        text = super().format(record)
        if self.verbose or 'Traceback (most recent call last):' not in text:
            return text
        return concise_error(text) + ' (--verbose shows the traceback)'


@contextlib.contextmanager
def _log_through(progress: ProgressBar, verbose: bool):
    """Send the package's log messages to stderr above the progress bar during a run."""
    handler = ProgressLogHandler(progress)
    handler.setFormatter(_LogFormatter(verbose))
    handler.setLevel(logging.INFO if verbose else logging.WARNING)
    # The run logs to rk_yolo_ros.offline (OfflineRun's logger, also the pipeline's); other
    # modules to loggers under rk_yolo_ros. Both get the handler and stop propagating, so each
    # message shows once, here, also where loggers do not propagate by default (launch's).
    loggers = [logging.getLogger('rk_yolo_ros'), logging.getLogger('rk_yolo_ros.offline')]
    saved = [(logger.level, logger.propagate) for logger in loggers]
    for logger in loggers:
        if verbose:
            logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        logger.propagate = False
    try:
        yield
    finally:  # leave logging as it was (runs inside a larger program or a test session)
        for logger, (level, propagate) in zip(loggers, saved):
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate


def _fail(code: int, error: BaseException) -> int:
    _say(f'{PROG}: error: {error}')
    return code


__all__ = ['add_run_command', 'PROG', 'run_command', 'UsageError']
