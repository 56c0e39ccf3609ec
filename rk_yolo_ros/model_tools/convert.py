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
``rk-yolo convert``: build an .rknn from a YOLO ONNX and check it against the ONNX model.

The main-environment side of the conversion. It checks the model and the target, prepares
the calibration images (INT8) and the verification inputs, runs ``rknn_build_job.py`` in the
separate rknn-toolkit2 environment (build, export, then the simulator on the verification
inputs: the simulator only runs a model built in the same session), explains the toolkit's log
in plain words, runs the ONNX model on the same inputs through the same decode, and reports
how well the two agree. The reference detections and inputs are saved beside the .rknn for
``rk-yolo verify`` on the board.
"""

from dataclasses import asdict, dataclass, field
import pathlib
import shutil
import tempfile
import time
from typing import Optional

import numpy as np

from rk_yolo_ros.model_tools import toolkit_env
from rk_yolo_ros.model_tools.agreement import (AgreementThresholds, compare_image, format_summary,
                                               summarize)
from rk_yolo_ros.model_tools.calibration import (collect_calibration_set,
                                                 DEFAULT_CALIBRATION_COUNT, describe, image_paths,
                                                 read_images)
from rk_yolo_ros.model_tools.errors import ModelToolError
from rk_yolo_ros.model_tools.export import labels_path_for, write_labels
from rk_yolo_ros.model_tools.model_check import inspect_onnx
from rk_yolo_ros.model_tools.targets import check_target
from rk_yolo_ros.model_tools.toolkit_log import parse_toolkit_log
from rk_yolo_ros.model_tools.verify_bundle import detect, letterbox_images, save_bundle

JOB_FILE = pathlib.Path(__file__).with_name('rknn_build_job.py')
QUANTIZED_ALGORITHMS = ('normal', 'mmse', 'kl_divergence')


@dataclass
class ConvertOptions:
    """What ``rk-yolo convert`` was asked to do."""

    onnx: str
    target: str = 'rk3588'
    output: Optional[str] = None  # default: <onnx stem>.<target>.<int8|fp16>.rknn beside it
    quantize: bool = True  # INT8; False builds FP16
    calibration: Optional[str] = None  # folder, video or rosbag
    calibration_count: int = DEFAULT_CALIBRATION_COUNT
    topic: Optional[str] = None  # image topic of a rosbag calibration source
    quantized_algorithm: str = 'normal'
    verify_images: Optional[str] = None  # folder or image file
    conf_threshold: float = 0.25
    iou_threshold: float = 0.45
    thresholds: AgreementThresholds = field(default_factory=AgreementThresholds)
    work_dir: Optional[str] = None  # keep the job's files here (default: a temporary folder)
    timeout_s: Optional[float] = None


def default_output(onnx_path: pathlib.Path, target: str, quantize: bool) -> pathlib.Path:
    """Return the default .rknn path: ``<stem>.<target>.<int8|fp16>.rknn`` beside the ONNX."""
    stem = onnx_path.stem[:-6] if onnx_path.stem.endswith('.split') else onnx_path.stem
    return onnx_path.with_name(f'{stem}.{target}.{"int8" if quantize else "fp16"}.rknn')


def _check_options(options: ConvertOptions) -> str:
    target = check_target(options.target)
    if options.quantized_algorithm not in QUANTIZED_ALGORITHMS:
        raise ModelToolError(f'quantized algorithm {options.quantized_algorithm!r} is not one '
                             f'of {", ".join(QUANTIZED_ALGORITHMS)}')
    if options.quantize and not options.calibration:
        raise ModelToolError(
            'INT8 conversion needs calibration images: give --calibration with a folder of '
            'images, a video or a rosbag from the deployment camera (or build FP16 with --fp16)')
    if options.calibration and not pathlib.Path(options.calibration).expanduser().exists():
        raise ModelToolError(f'calibration source {options.calibration} does not exist; give a '
                             'folder of images, a video file or a rosbag')
    if options.quantize and options.calibration_count < 1:
        raise ModelToolError(f'calibration count must be at least 1, got '
                             f'{options.calibration_count}')
    if options.verify_images:
        _verification_paths(options.verify_images)
    return target


def _verification_paths(spec: str):
    """Return the verification image files; raise ModelToolError if there are none."""
    try:
        return image_paths(spec)
    except ModelToolError as error:
        raise ModelToolError(f'verification images {spec}: {error}') from error


def _names_beside(onnx_path: pathlib.Path):
    """Return the class names of the labels file beside an ONNX model, or None."""
    from rk_yolo_ros.yolo.labels import LabelsError, read_labels_file

    path = labels_path_for(onnx_path)
    if not path.is_file():
        return None
    try:
        return read_labels_file(path)
    except LabelsError as error:
        raise ModelToolError(f'labels file {path}: {error}') from error


def _reference_outputs(onnx_path: pathlib.Path, inputs: np.ndarray):
    from rk_yolo_ros.yolo.backends.onnx_backend import OnnxBackend

    backend = OnnxBackend(onnx_path, threads=2)
    backend.load()
    try:
        return [backend.infer(inputs[i:i + 1]) for i in range(inputs.shape[0])]
    finally:
        backend.release()


def _simulator_outputs(npz_path: pathlib.Path, count: int):
    with np.load(npz_path) as data:
        outputs = []
        for index in range(count):
            names = sorted((k for k in data.files if k.startswith(f'image{index}_output')),
                           key=lambda k: int(k.rsplit('output', 1)[1]))
            outputs.append([data[name] for name in names])
    return outputs


def compare_runs(decoder, records, reference_outputs, candidate_outputs, conf_threshold,
                 iou_threshold, thresholds: AgreementThresholds):
    """Decode both runs per image, compare them; return (per-image entries, summary)."""
    from rk_yolo_ros.core.frame_processing import DetectionSettings

    # Decode below the threshold so near-threshold boxes do not count as misses (see agreement).
    settings = DetectionSettings(conf_threshold=max(conf_threshold - thresholds.score_margin,
                                                    0.001),
                                 iou_threshold=iou_threshold, max_detections=300)
    entries, comparisons = [], []
    for record, reference_raw, candidate_raw in zip(records, reference_outputs,
                                                    candidate_outputs):
        reference = detect(decoder, reference_raw, record, settings)
        candidate = detect(decoder, candidate_raw, record, settings)
        comparison = compare_image(reference, candidate, conf_threshold, thresholds)
        comparisons.append(comparison)
        entries.append({'reference': reference.to_json(), 'candidate': candidate.to_json(),
                        'agreement': comparison})
    return entries, summarize(comparisons, thresholds)


def convert_model(options: ConvertOptions, log=print) -> dict:
    """
    Build the .rknn the options describe and, with verification images, check it.

    Return a report dict (``rknn``, ``labels``, ``toolkit_findings``, ``seconds`` and, when
    verified, ``verification`` with the agreement summary and ``passed``). Raise
    ModelToolError on bad input, a missing toolkit environment or a failed build.
    """
    from rk_yolo_ros.yolo.decode import YoloDecoder

    started = time.monotonic()
    target = _check_options(options)
    onnx_path = pathlib.Path(options.onnx).expanduser()
    info = inspect_onnx(onnx_path)
    log(f'model: {info.describe()}')
    if info.family != 'rknn_split':
        log('warning: this is the single-output Ultralytics head; INT8 quantizes it poorly and '
            'the NPU compiler overflows on its 8400-long tensor. Run `rk-yolo export` on it first '
            'and convert the .split.onnx.')
    toolkit_env.toolkit_python()  # fail before the slow steps if the environment is missing
    rknn_path = (pathlib.Path(options.output).expanduser() if options.output
                 else default_output(onnx_path, target, options.quantize))
    rknn_path.parent.mkdir(parents=True, exist_ok=True)
    scratch = None
    if options.work_dir:
        work = pathlib.Path(options.work_dir).expanduser()
        work.mkdir(parents=True, exist_ok=True)
    else:
        scratch = tempfile.TemporaryDirectory(prefix='rk_yolo_convert_')
        work = pathlib.Path(scratch.name)
    try:
        report = _convert_in(work, options, target, info, rknn_path, YoloDecoder, log)
    finally:
        if scratch is not None:
            scratch.cleanup()
    report['seconds']['total'] = round(time.monotonic() - started, 2)
    return report


def _convert_in(work, options, target, info, rknn_path, decoder_class, log) -> dict:
    spec = {'onnx': str(info.path.resolve()), 'rknn': str(rknn_path.resolve()),
            'target': target, 'quantize': options.quantize,
            'quantized_algorithm': options.quantized_algorithm}
    seconds = {}
    calibration = None
    if options.quantize:
        mark = time.monotonic()
        calibration = collect_calibration_set(options.calibration, info.input_size,
                                              work / 'calibration', options.calibration_count,
                                              options.topic, log)
        seconds['calibration'] = round(time.monotonic() - mark, 2)
        log(describe(calibration))
        spec['dataset'] = str(calibration.dataset_file)
    records, inputs = [], None
    if options.verify_images:
        images = read_images(_verification_paths(options.verify_images))
        inputs, records = letterbox_images(images, info.input_size)
        np.save(work / 'verify_inputs.npy', inputs)
        spec['verify_inputs'] = str(work / 'verify_inputs.npy')
        spec['verify_outputs'] = str(work / 'simulator_outputs.npz')
    log(f'building {rknn_path.name} for {target} ({"INT8" if options.quantize else "FP16"}) '
        f'with rknn-toolkit2 in {toolkit_env.env_dir()} ...')
    result, text = toolkit_env.run_job(JOB_FILE, spec, work / 'job', options.timeout_s)
    log_copy = rknn_path.with_name(rknn_path.stem + '.convert.log')
    shutil.copyfile(work / 'job' / 'toolkit.log', log_copy)
    findings = parse_toolkit_log(text)
    for finding in findings:
        log(f'  {finding}')
    if not result.get('ok'):
        raise ModelToolError(
            f'rknn-toolkit2 failed at {result.get("stage")}: {result.get("error")} '
            f'(full log: {log_copy})')
    seconds.update(result.get('seconds', {}))
    log(f'wrote {rknn_path} ({rknn_path.stat().st_size / 1e6:.1f} MB, toolkit '
        f'{result.get("toolkit_version")})')
    labels = None
    names = info.names or _names_beside(info.path)
    if names:
        labels = write_labels(names, labels_path_for(rknn_path))
        log(f'wrote labels {labels}')
    else:
        log(f'warning: no class names in {info.path.name} or beside it; give the detector a '
            'labels file (names: {0: ..., 1: ...}) or it falls back to COCO names')
    report = {
        'rknn': str(rknn_path), 'onnx': str(info.path), 'target': target,
        'quantization': 'int8' if options.quantize else 'fp16',
        'quantized_algorithm': options.quantized_algorithm if options.quantize else None,
        'toolkit_version': result.get('toolkit_version'),
        'input_size': list(info.input_size), 'names': names,
        'labels': str(labels) if labels else None,
        'calibration': ({'source': calibration.source, 'kind': calibration.source_kind,
                         'images': len(calibration.images),
                         'available': calibration.available,
                         'skipped': len(calibration.skipped)} if calibration else None),
        'toolkit_findings': [asdict(f) for f in findings],
        'toolkit_log': str(log_copy),
        'seconds': seconds,
    }
    if inputs is None:
        log('not verified: add --verify-images DIR to compare the simulator with the ONNX model')
        return report
    mark = time.monotonic()
    reference_outputs = _reference_outputs(info.path, inputs)
    seconds['onnx_reference'] = round(time.monotonic() - mark, 2)
    simulator_outputs = _simulator_outputs(pathlib.Path(spec['verify_outputs']),
                                           inputs.shape[0])
    decoder = decoder_class(info.input_size)
    entries, summary = compare_runs(decoder, records, reference_outputs, simulator_outputs,
                                    options.conf_threshold, options.iou_threshold,
                                    options.thresholds)
    for record, entry in zip(records, entries):
        record['reference'] = entry['reference']
        record['simulator'] = entry['candidate']
        record['simulator_agreement'] = entry['agreement']
    report.update({
        'settings': {'conf_threshold': options.conf_threshold,
                     'iou_threshold': options.iou_threshold},
        'images': records,
        'verification': summary,
        'passed': summary['passed'],
    })
    json_path, npz_path = save_bundle(rknn_path, report, inputs)
    report['bundle'] = [str(json_path), str(npz_path)]
    log(format_summary(summary, 'rknn-toolkit2 simulator vs ONNX model'))
    log(f'saved the reference detections and inputs: {json_path.name}, {npz_path.name} (copy '
        'them with the .rknn to the board and run `rk-yolo verify`)')
    return report
