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
The ``rk-yolo`` command (ROS-free): ``run`` a video, camera, image folder or bag; ``bench``.

``rk-yolo run SOURCE`` mirrors the ROS node's parameters and writes any combination of an
annotated video, an output rosbag2 (Detection2DArray + annotated Image with the input stamps)
and JSON lines, then prints a summary that accounts for every frame. The model tools'
``export``/``convert``/``verify`` subcommands are added when ``rk_yolo_ros.model_tools`` is
installed. Exit codes: 0 done, 1 stopped by an error, 2 bad arguments or source,
3 done but some frames failed, 130 interrupted.
"""

import argparse
import contextlib
import json
import logging
import pathlib
import sys
from typing import Optional, Sequence, Tuple

from rk_yolo_ros import __version__
from rk_yolo_ros.core.cpu_affinity import available_cpus, RK3588_BIG_CORES
from rk_yolo_ros.core.frame_processing import DetectionSettings
from rk_yolo_ros.core.pipeline import PipelineConfig
from rk_yolo_ros.core.worker_pool import validate_core_masks
from rk_yolo_ros.offline.progress import ProgressBar, ProgressLogHandler
from rk_yolo_ros.offline.run import EXIT_ERROR, EXIT_USAGE, format_summary, OfflineRun
from rk_yolo_ros.offline.sinks import BAG_STORAGES, BagSink, JsonLinesSink, SinkError, VideoSink
from rk_yolo_ros.offline.sources import BagSource, open_source, SourceError

PROG = 'rk-yolo'
DEFAULT_BASE_TOPIC = '/image'  # the input topic name given to non-bag sources
OUTPUT_DIR_FILES = {'video': 'annotated.mp4', 'bag': 'detections_bag',
                    'jsonl': 'detections.jsonl', 'summary_json': 'summary.json'}


class UsageError(ValueError):
    """A command-line value that does not fit; reported with exit code 2."""


# ----------------------------------------------------------------------------- value parsers
def _int_list(text: str) -> Tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.replace(' ', '').split(',') if part)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected comma-separated integers, got {text!r}')


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text!r}')
    return value


def _size(text: str) -> Tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected WIDTHxHEIGHT like 640x640, got {text!r}')
    return width, height


def resolve_cpu_affinity(text: str) -> Optional[Tuple[int, ...]]:
    """
    Turn --cpu-affinity into the pipeline's CPU list.

    'auto' pins to the RK3588 big cores (4-7) where this machine has them, else leaves the
    workers unpinned; 'none' never pins; a list pins worker i to the i-th CPU.
    """
    if text == 'none':
        return None
    if text == 'auto':
        return RK3588_BIG_CORES if set(RK3588_BIG_CORES) <= available_cpus() else None
    try:
        return _int_list(text)
    except argparse.ArgumentTypeError as error:
        raise UsageError(f'--cpu-affinity: {error} (or auto, none)') from None


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
    model = run.add_argument_group("model (the node's parameters)")
    model.add_argument('--model', help='.onnx or .rknn model (default: the cached demo model '
                       'from `python -m rk_yolo_ros.yolo.demo_assets`)')
    model.add_argument('--backend', default='auto', choices=('auto', 'onnx', 'rknn', 'emulated'),
                       help='inference backend (default auto: from the model suffix)')
    model.add_argument('--workers', type=_positive_int, default=3,
                       help='worker processes, one per NPU core (default 3)')
    model.add_argument('--conf-threshold', '--conf', type=float, default=0.25,
                       dest='conf_threshold', help='minimum score (default 0.25)')
    model.add_argument('--iou-threshold', '--iou', type=float, default=0.45,
                       dest='iou_threshold', help='NMS IoU threshold (default 0.45)')
    model.add_argument('--max-detections', '--max-det', type=_positive_int, default=100,
                       dest='max_detections', help='most detections per frame (default 100)')
    model.add_argument('--classes', type=_int_list, default=None,
                       help='keep only these class ids, e.g. 0,2 (default all)')
    model.add_argument('--labels-file', '--labels', dest='labels_file',
                       help='class names (YAML or one per line; default: from the model)')
    model.add_argument('--output-height', type=_positive_int, default=720,
                       help='rows of the frames the workers see and annotate (default 720)')
    model.add_argument('--cpu-affinity', default='auto',
                       help='CPUs for the workers, e.g. 4,5,6,7; auto (RK3588 big cores if '
                       'present) or none (default auto)')
    model.add_argument('--core-masks', type=_int_list, default=(1, 2, 4),
                       help='RKNN NPU core mask per worker, round-robin (default 1,2,4)')
    model.add_argument('--onnx-threads', type=_positive_int, default=1,
                       help='ONNX Runtime threads per worker (default 1)')
    model.add_argument('--input-size', type=_size, default=None,
                       help='model input WIDTHxHEIGHT where the backend cannot read it (rknn, '
                       'emulated)')
    model.add_argument('--emulated-latency-ms', type=float, default=16.7,
                       help='inference latency of the emulated backend (default 16.7)')
    model.add_argument('--start-method', choices=('spawn', 'fork', 'forkserver'),
                       default='spawn', help='how worker processes start (default spawn)')
    model.add_argument('--class-id-format', choices=('name', 'index'), default='name',
                       help='Detection2D class_id: the class name or its index (default name)')
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


def add_bench_command(subparsers) -> None:
    """Register ``bench``: the pipeline throughput benchmark (prints JSON)."""
    bench = subparsers.add_parser(
        'bench', help='pipeline throughput benchmark (prints JSON)', add_help=False,
        description='Run the pipeline throughput benchmark; arguments go to it (try --help).')
    bench.add_argument('args', nargs=argparse.REMAINDER, help='benchmark arguments')
    bench.set_defaults(func=bench_command)


def add_model_tool_commands(subparsers) -> Optional[str]:
    """Add the model tools' export/convert/verify if installed; return why not, else None."""
    try:
        from rk_yolo_ros.model_tools.cli import add_model_commands
    except ModuleNotFoundError as error:
        if error.name in ('rk_yolo_ros.model_tools', 'rk_yolo_ros.model_tools.cli'):
            return 'the model tools are not installed'
        return f'the model tools cannot be loaded: {error}'
    except Exception as error:  # a broken optional part must not take `run` down with it
        return f'the model tools cannot be loaded: {type(error).__name__}: {error}'
    add_model_commands(subparsers)
    return None


def build_parser() -> argparse.ArgumentParser:
    """Return the ``rk-yolo`` argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog=PROG, description='No-skip YOLO detection (RK3588 NPU, ONNX on any CPU) for '
        'videos, cameras, image folders and rosbags.')
    parser.add_argument('--version', action='version', version=f'%(prog)s {__version__}')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND')
    subparsers.required = True
    add_run_command(subparsers)
    add_bench_command(subparsers)
    parser.model_tools_note = add_model_tool_commands(subparsers)
    return parser


# ------------------------------------------------------------------------------------- run
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


def _detector_factory(args):
    """Build and check the YOLO processor factory in this process (fail before any worker)."""
    from rk_yolo_ros.yolo.detector import YoloDetectorFactory

    model = args.model
    if model is None and args.backend != 'emulated':
        from rk_yolo_ros.yolo import demo_assets
        cached = demo_assets.model_path()
        if cached is None:
            raise UsageError('no --model given and the demo model is not cached; give a .onnx '
                             'or .rknn model, or fetch the demo model with '
                             '`python -m rk_yolo_ros.yolo.demo_assets`')
        model = str(cached)
    factory = YoloDetectorFactory(model_path=model, backend=args.backend,
                                  labels_file=args.labels_file, onnx_threads=args.onnx_threads,
                                  input_size=args.input_size,
                                  emulated_latency_s=args.emulated_latency_ms / 1000.0)
    try:
        backend = factory.check()
    except (ValueError, FileNotFoundError) as error:
        raise UsageError(str(error)) from None
    except Exception as error:  # BackendError, labels errors: the message names the problem
        raise UsageError(f'{type(error).__name__}: {error}') from None
    return factory, backend, model


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
    try:
        settings = DetectionSettings(conf_threshold=args.conf_threshold,
                                     iou_threshold=args.iou_threshold,
                                     max_detections=args.max_detections,
                                     classes=tuple(args.classes) if args.classes else None,
                                     draw=True)
        config = PipelineConfig(workers=args.workers, output_height=args.output_height,
                                max_output_width=max(1280, args.output_height * 16 // 9),
                                core_masks=validate_core_masks(args.core_masks),
                                cpu_affinity=resolve_cpu_affinity(args.cpu_affinity),
                                start_method=args.start_method)
        paths = _output_paths(args)
        factory, backend, model = _detector_factory(args)
    except (UsageError, ValueError) as error:
        return _fail(EXIT_USAGE, error)
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
        settings = DetectionSettings(**{**settings.__dict__, 'draw': wants_images})
        total = source.total
        if args.max_frames is not None:
            total = min(total, args.max_frames) if total else args.max_frames
        progress = ProgressBar(total, sys.stderr,
                               {'auto': None, 'on': True, 'off': False}[args.progress])
        print(f'{PROG}: {source.description} -> {len(sinks)} output(s); {args.workers} '
              f'{backend} worker(s) on {pathlib.Path(model).name if model else "no model"}',
              file=sys.stderr)
        run = OfflineRun(source, factory, config, settings, sinks, progress=progress,
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


# ----------------------------------------------------------------------------------- bench
def bench_command(args) -> int:
    """Run the pipeline throughput benchmark; return its exit code."""
    from rk_yolo_ros.offline.throughput_benchmark import main as benchmark_main
    return int(benchmark_main(list(args.args), prog=f'{PROG} bench') or 0)


# ------------------------------------------------------------------------------------ main
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``rk-yolo``; return the exit code (console script and ``python -m rk_yolo_ros``)."""
    parser = build_parser()
    # bench hands its options to the benchmark (argparse's REMAINDER misses leading '--x')
    args, extra = parser.parse_known_args(argv)
    if args.command == 'bench':
        args.args = extra + list(args.args)
    elif extra:
        parser.error(f'unrecognized arguments: {" ".join(extra)}')
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f'{PROG}: interrupted', file=sys.stderr)
        return 130


__all__ = ['build_parser', 'main', 'UsageError']
