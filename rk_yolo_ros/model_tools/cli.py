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
The ``export``, ``convert`` and ``verify`` subcommands of ``rk-yolo``.

``add_model_commands(subparsers)`` registers them on the ``rk-yolo`` parser; each sets
``func(args) -> exit code`` (0 done / verified, 1 verification failed, 2 error).
``python -m rk_yolo_ros.model_tools`` runs them on their own.
"""

import argparse
import sys

from rk_yolo_ros.model_tools.errors import ModelToolError

EXIT_OK = 0
EXIT_DISAGREES = 1
EXIT_ERROR = 2


def _report_errors(command: str, action) -> int:
    """Run an action; print a ModelToolError (and bad-input errors) as one line, not a trace."""
    try:
        return action()
    except (ModelToolError, FileNotFoundError, ValueError) as error:
        print(f'rk-yolo {command}: error: {error}', file=sys.stderr)
        return EXIT_ERROR


def run_export(args) -> int:
    """Run ``rk-yolo export``."""
    from rk_yolo_ros.model_tools.export import export_model

    def action():
        export_model(args.model, output=args.output, imgsz=args.imgsz)
        return EXIT_OK
    return _report_errors('export', action)


def _thresholds(args):
    from rk_yolo_ros.model_tools.agreement import AgreementThresholds

    return AgreementThresholds(
        match_iou=args.match_iou, score_margin=args.score_margin, min_recall=args.min_recall,
        min_precision=args.min_precision, min_mean_iou=args.min_mean_iou,
        max_mean_score_drift=args.max_score_drift,
        max_class_flip_rate=args.max_class_flip_rate)


def run_convert(args) -> int:
    """Run ``rk-yolo convert``."""
    from rk_yolo_ros.model_tools.convert import convert_model, ConvertOptions

    def action():
        report = convert_model(ConvertOptions(
            onnx=args.model, target=args.target, output=args.output, quantize=not args.fp16,
            calibration=args.calibration, calibration_count=args.calibration_count,
            topic=args.topic, quantized_algorithm=args.quantized_algorithm,
            verify_images=args.verify_images, conf_threshold=args.conf,
            iou_threshold=args.iou, thresholds=_thresholds(args), work_dir=args.work_dir))
        if report.get('passed') is False:
            return EXIT_DISAGREES
        return EXIT_OK
    return _report_errors('convert', action)


def run_verify(args) -> int:
    """Run ``rk-yolo verify`` (on the board)."""
    from rk_yolo_ros.model_tools.verify import verify_model

    def action():
        cores = None
        if args.cores:
            try:
                cores = [int(c) for c in args.cores.split(',') if c.strip()]
            except ValueError:
                raise ModelToolError(f'--cores {args.cores!r}: expected core masks like 1,2,4')
        result = verify_model(args.model, core_masks=cores, output=args.output)
        return EXIT_OK if result['passed'] else EXIT_DISAGREES
    return _report_errors('verify', action)


def _unit_interval(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f'{text} is not in [0, 1]')
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'{text} is not a positive integer')
    return value


def add_model_commands(subparsers) -> None:
    """Register ``export``, ``convert`` and ``verify`` on an argparse subparsers object."""
    from rk_yolo_ros.model_tools.agreement import AgreementThresholds
    from rk_yolo_ros.model_tools.calibration import DEFAULT_CALIBRATION_COUNT
    from rk_yolo_ros.model_tools.targets import SUPPORTED_TARGETS

    defaults = AgreementThresholds()
    export = subparsers.add_parser(
        'export', help='make the RKNN-friendly split-head ONNX of a YOLO model (+ labels file)',
        description='Write the RKNN model-zoo split-head ONNX (per stride: 64-channel DFL box, '
        'sigmoid class scores, 1-channel score sum) of an Ultralytics YOLOv8/YOLO11 detection '
        'model, and <output>.labels.yaml with its class names.')
    export.add_argument('model', help='Ultralytics detection model: .onnx, or .pt (needs '
                        'ultralytics, see docs/model_tools.md)')
    export.add_argument('-o', '--output', help='output .onnx (default: <model>.split.onnx)')
    export.add_argument('--imgsz', type=_positive_int, default=640,
                        help='input size for a .pt export (default 640)')
    export.set_defaults(func=run_export)

    convert = subparsers.add_parser(
        'convert', help='build an INT8/FP16 .rknn with rknn-toolkit2 and check it',
        description='Build an .rknn with rknn-toolkit2 (in its own environment, set up by '
        'scripts/setup_rknn_toolkit.sh). With --verify-images, run the toolkit simulator and '
        'the ONNX model on those images and report their agreement; exit 1 if it fails.')
    convert.add_argument('model', help='YOLO detection .onnx (best: the output of rk-yolo export)')
    convert.add_argument('--target', default='rk3588',
                         help=f'target SoC: {", ".join(SUPPORTED_TARGETS)} (default rk3588)')
    convert.add_argument('-o', '--output',
                         help='output .rknn (default: <model>.<target>.<int8|fp16>.rknn)')
    convert.add_argument('--fp16', action='store_true', help='build FP16 instead of INT8')
    convert.add_argument('--calibration', metavar='SOURCE',
                         help='INT8 calibration images: a folder, a video or a rosbag')
    convert.add_argument('--calibration-count', type=_positive_int,
                         default=DEFAULT_CALIBRATION_COUNT,
                         help='frames taken evenly spread over the source (default '
                         f'{DEFAULT_CALIBRATION_COUNT})')
    convert.add_argument('--topic', help='image topic of a rosbag source (default: the busiest)')
    convert.add_argument('--quantized-algorithm', default='normal',
                         choices=('normal', 'mmse', 'kl_divergence'),
                         help='toolkit INT8 algorithm (default normal; mmse is slower, often '
                         'more accurate)')
    convert.add_argument('--verify-images', metavar='DIR',
                         help='images to compare the simulator with the ONNX model on; the '
                         'reference is saved beside the .rknn for `rk-yolo verify`')
    convert.add_argument('--conf', type=_unit_interval, default=0.25,
                         help='confidence threshold of the comparison (default 0.25)')
    convert.add_argument('--iou', type=_unit_interval, default=0.45,
                         help='NMS IoU threshold (default 0.45)')
    for flag, name, help_text in (
            ('--match-iou', 'match_iou', 'IoU at which boxes are the same object'),
            ('--score-margin', 'score_margin', 'tolerance around --conf'),
            ('--min-recall', 'min_recall', 'pass: share of reference boxes found'),
            ('--min-precision', 'min_precision', 'pass: share of boxes the reference has'),
            ('--min-mean-iou', 'min_mean_iou', 'pass: mean IoU of matched boxes'),
            ('--max-score-drift', 'max_mean_score_drift', 'pass: mean |score change|'),
            ('--max-class-flip-rate', 'max_class_flip_rate', 'pass: share of changed classes')):
        convert.add_argument(flag, dest=name if name != 'max_mean_score_drift'
                             else 'max_score_drift', type=_unit_interval,
                             default=getattr(defaults, name),
                             help=f'{help_text} (default {getattr(defaults, name)})')
    convert.add_argument('--work-dir', help='keep calibration images and toolkit files here')
    convert.set_defaults(func=run_convert)

    verify = subparsers.add_parser(
        'verify', help='on the board: run an .rknn on each NPU core against its reference',
        description='Run the .rknn with RKNNLite on each NPU core over the images saved by '
        '`rk-yolo convert --verify-images` and compare with the saved ONNX reference '
        '(runs on the RK3588 board).')
    verify.add_argument('model', help='the .rknn, with its .verify.json/.verify.npz beside it')
    verify.add_argument('--cores', help='core masks to check, e.g. 1,2,4 (default: every core)')
    verify.add_argument('-o', '--output',
                        help='result JSON (default: <model>.board_verify.json)')
    verify.set_defaults(func=run_verify)


def main(argv=None) -> int:
    """Run one model command from the command line; return its exit code."""
    parser = argparse.ArgumentParser(prog='python -m rk_yolo_ros.model_tools',
                                     description='YOLO model tooling for Rockchip NPUs.')
    subparsers = parser.add_subparsers(dest='command', metavar='{export,convert,verify}')
    subparsers.required = True
    add_model_commands(subparsers)
    args = parser.parse_args(argv)
    return args.func(args)
