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
The verification bundle saved beside an .rknn: reference detections and the exact inputs.

``<model>.verify.json`` holds, per verification image, the ONNX model's detections (the
reference), the letterbox geometry and, from conversion, the simulator's detections and their
agreement; ``<model>.verify.npz`` holds the letterboxed RGB inputs themselves, so the board
check (``rk-yolo verify``) feeds every NPU core bit-identical pixels without needing the
original image files or OpenCV's resize to match across versions.
"""

import hashlib
import json
import pathlib
from typing import List, Sequence, Tuple

import numpy as np

from rk_yolo_ros.model_tools.agreement import DetectionSet
from rk_yolo_ros.model_tools.errors import ModelToolError

BUNDLE_FORMAT = 'rk_yolo_ros.verify/1'


def bundle_paths(rknn_path) -> Tuple[pathlib.Path, pathlib.Path]:
    """Return the (json, npz) paths of the bundle that belongs to an .rknn."""
    rknn_path = pathlib.Path(rknn_path)
    return (rknn_path.with_name(rknn_path.stem + '.verify.json'),
            rknn_path.with_name(rknn_path.stem + '.verify.npz'))


def letterbox_images(images: Sequence[Tuple[pathlib.Path, np.ndarray]],
                     input_size: Tuple[int, int]) -> Tuple[np.ndarray, List[dict]]:
    """Letterbox BGR images to the model input; return (N, H, W, 3) RGB inputs and records."""
    from rk_yolo_ros.yolo.letterbox import Letterbox

    letterbox = Letterbox(input_size)
    inputs, records = [], []
    for path, image in images:
        rgb, geometry = letterbox(image)
        inputs.append(rgb[0].copy())  # the letterbox reuses its buffer
        records.append({
            'name': pathlib.Path(path).name,
            'sha256': hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest(),
            'frame_size': list(geometry.frame_size),
            'resized_size': list(geometry.resized_size),
            'pad': list(geometry.pad),
        })
    return np.stack(inputs), records


def geometry_of(record: dict):
    """Return the LetterboxGeometry stored in an image record."""
    from rk_yolo_ros.yolo.letterbox import LetterboxGeometry

    return LetterboxGeometry(tuple(record['frame_size']), tuple(record['resized_size']),
                             tuple(record['pad']))


def detect(decoder, outputs, record: dict, settings) -> DetectionSet:
    """Decode raw outputs and map the boxes to the original image's pixels."""
    boxes, scores, class_ids = decoder.decode(outputs, settings)
    return DetectionSet(geometry_of(record).to_frame(boxes), scores, class_ids)


def save_bundle(rknn_path, report: dict, inputs: np.ndarray) -> Tuple[pathlib.Path, pathlib.Path]:
    """Write the report JSON and the inputs npz beside the .rknn; return their paths."""
    json_path, npz_path = bundle_paths(rknn_path)
    report = dict(report, format=BUNDLE_FORMAT, inputs_file=npz_path.name)
    json_path.write_text(json.dumps(report, indent=1))
    np.savez_compressed(npz_path, inputs=inputs)
    return json_path, npz_path


def load_bundle(rknn_path) -> Tuple[dict, np.ndarray]:
    """Read the bundle of an .rknn; raise ModelToolError saying how to make it if absent."""
    json_path, npz_path = bundle_paths(rknn_path)
    if not json_path.is_file() or not npz_path.is_file():
        raise ModelToolError(
            f'no saved reference beside {rknn_path} (expected {json_path.name} and '
            f'{npz_path.name}): convert with `rk-yolo convert MODEL.onnx --verify-images DIR` '
            'and copy those two files with the .rknn to the board')
    report = json.loads(json_path.read_text())
    if report.get('format') != BUNDLE_FORMAT:
        raise ModelToolError(f'{json_path} has format {report.get("format")!r}; expected '
                             f'{BUNDLE_FORMAT}')
    with np.load(npz_path) as data:
        inputs = data['inputs']
    if inputs.shape[0] != len(report['images']):
        raise ModelToolError(f'{npz_path} holds {inputs.shape[0]} images but {json_path.name} '
                             f'describes {len(report["images"])}')
    return report, inputs
