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
``rk-yolo verify``: run an .rknn on each NPU core of the board and compare with its reference.

The reference (ONNX detections and the exact letterboxed inputs) was saved beside the .rknn by
``rk-yolo convert --verify-images``. On the board, RKNNLite runs the model once per NPU core
(core masks 1, 2, 4 on the RK3588) over those inputs; each core's detections are compared with
the reference (and with the simulator's, which separates quantization from driver effects),
so a broken core, driver or runtime version shows up before deployment.
"""

import json
import pathlib
import platform
import time
from typing import Callable, Optional, Sequence

from rk_yolo_ros.model_tools.agreement import (AgreementThresholds, compare_image, format_summary,
                                               summarize)
from rk_yolo_ros.model_tools.errors import ModelToolError
from rk_yolo_ros.model_tools.targets import TARGET_CORE_MASKS
from rk_yolo_ros.model_tools.verify_bundle import detect, load_bundle

OFF_BOARD_HELP = ('rk-yolo verify runs on the Rockchip board itself (RK3588: RKNNLite from '
                  'rknn-toolkit-lite2 and the NPU driver). On this host, check a model with '
                  '`rk-yolo convert MODEL.onnx --verify-images DIR`, which compares '
                  "rknn-toolkit2's simulator with the ONNX model right after the build")


def board_backend_factory(rknn_path, input_size):
    """Return ``factory(core_mask) -> Backend`` for the .rknn on RKNNLite; raise off-board."""
    from rk_yolo_ros.yolo.backends.base import BackendError
    from rk_yolo_ros.yolo.backends.rknn_backend import import_rknnlite, RknnBackend

    try:
        import_rknnlite()
    except BackendError as error:
        raise ModelToolError(f'{OFF_BOARD_HELP}. (RKNNLite is not importable on this '
                             f'{platform.machine()} machine: {error})') from error
    return lambda core_mask: RknnBackend(rknn_path, core_mask=core_mask, input_size=input_size)


def verify_cores(report: dict, inputs, backend_factory: Callable, core_masks: Sequence[int],
                 thresholds: AgreementThresholds, log=print) -> dict:
    """
    Run each core's backend over the saved inputs and compare with the saved detections.

    Return ``{'cores': {mask: {...}}, 'passed': bool}``; per core the agreement summary with
    the ONNX reference, the one with the simulator (when saved) and the mean inference time,
    or the error of a core whose backend could not load or run the model.
    """
    from rk_yolo_ros.yolo.backends.base import BackendError
    from rk_yolo_ros.core.frame_processing import DetectionSettings
    from rk_yolo_ros.yolo.decode import YoloDecoder

    conf = float(report['settings']['conf_threshold'])
    settings = DetectionSettings(conf_threshold=max(conf - thresholds.score_margin, 0.001),
                                 iou_threshold=float(report['settings']['iou_threshold']),
                                 max_detections=300)
    decoder = YoloDecoder(tuple(report['input_size']))
    results = {}
    for mask in core_masks:
        try:
            entry = _run_core(mask, report, inputs, backend_factory, decoder, settings, conf,
                              thresholds)
        except BackendError as error:
            # A core that cannot load or run the model is a finding; check the other cores.
            failed = {'passed': False, 'failures': [str(error)]}
            entry = {'error': str(error), 'vs_reference': failed}
            log(f'NPU core mask {mask}: FAIL\n  - {error}')
        else:
            log(format_summary(entry['vs_reference'], f'NPU core mask {mask} vs ONNX reference'))
            if 'vs_simulator' in entry:
                log(format_summary(entry['vs_simulator'], f'NPU core mask {mask} vs simulator'))
        results[mask] = entry
    passed = all(r['vs_reference']['passed'] for r in results.values())
    return {'cores': results, 'passed': passed}


def _run_core(mask, report, inputs, backend_factory, decoder, settings, conf, thresholds):
    """Run one core over the inputs; return its agreement with the reference and simulator."""
    backend = backend_factory(mask)
    try:
        backend.load()
        per_image, per_image_sim, timings, detections = [], [], [], []
        for index, record in enumerate(report['images']):
            mark = time.monotonic()
            outputs = backend.infer(inputs[index:index + 1])
            timings.append(time.monotonic() - mark)
            found = detect(decoder, outputs, record, settings)
            detections.append(found.to_json())
            per_image.append(compare_image(record['reference'], found, conf, thresholds))
            if record.get('simulator'):
                per_image_sim.append(compare_image(record['simulator'], found, conf,
                                                   thresholds))
    finally:
        backend.release()
    entry = {'vs_reference': summarize(per_image, thresholds), 'detections': detections,
             'mean_inference_ms': round(1000 * sum(timings) / len(timings), 2)}
    if per_image_sim:
        entry['vs_simulator'] = summarize(per_image_sim, thresholds)
    return entry


def verify_model(rknn_path, core_masks: Optional[Sequence[int]] = None,
                 thresholds: Optional[AgreementThresholds] = None, output=None,
                 log=print, backend_factory: Optional[Callable] = None) -> dict:
    """
    Verify an .rknn on the board against the reference saved beside it; return the result.

    ``core_masks`` defaults to every single core of the model's target (1, 2, 4 on RK3588);
    ``thresholds`` to the ones the conversion used. The result is also written to ``output``
    (default ``<model>.board_verify.json``). ``backend_factory(core_mask)`` replaces RKNNLite
    (for running the same check with another backend). Raise ModelToolError off the board or
    when the reference is missing.
    """
    rknn_path = pathlib.Path(rknn_path).expanduser()
    if not rknn_path.is_file():
        raise ModelToolError(f'RKNN model not found: {rknn_path}')
    report, inputs = load_bundle(rknn_path)
    if backend_factory is None:
        backend_factory = board_backend_factory(rknn_path, tuple(report['input_size']))
    if thresholds is None:
        thresholds = AgreementThresholds(**report['verification']['thresholds'])
    if core_masks is None:
        core_masks = TARGET_CORE_MASKS.get(report.get('target'), (1,))
    for mask in core_masks:
        if mask not in (1, 2, 4):
            raise ModelToolError(f'core mask {mask} is not a single NPU core (expected 1, 2 or 4)')
    log(f'verifying {rknn_path.name} ({report.get("quantization")}, {report.get("target")}) on '
        f'NPU core masks {list(core_masks)} over {len(report["images"])} saved images')
    result = verify_cores(report, inputs, backend_factory, core_masks, thresholds, log)
    result.update({'rknn': str(rknn_path), 'machine': platform.machine(),
                   'thresholds': report['verification']['thresholds']})
    output = pathlib.Path(output) if output else rknn_path.with_name(
        rknn_path.stem + '.board_verify.json')
    output.write_text(json.dumps(result, indent=1))
    log(f'{"PASS" if result["passed"] else "FAIL"}: wrote {output}')
    return result
