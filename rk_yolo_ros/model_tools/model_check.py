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

"""Check that an ONNX file is a YOLO detector this tooling handles, and describe it."""

from dataclasses import dataclass
import pathlib
from typing import List, Optional, Tuple

from rk_yolo_ros.model_tools.errors import ModelToolError

FAMILY_WORDS = {
    'ultralytics': 'Ultralytics single output (1, 4 + classes, anchors)',
    'rknn_split': 'RKNN model-zoo split heads (box 64 ch, class scores, score sum per stride)',
}


@dataclass
class OnnxModelInfo:
    """What the tooling needs to know about a YOLO ONNX model."""

    path: pathlib.Path
    input_name: str
    input_size: Tuple[int, int]  # (width, height)
    output_names: List[str]
    output_shapes: List[Tuple[int, ...]]
    family: str  # 'ultralytics' or 'rknn_split'
    num_classes: int
    names: Optional[List[str]]  # class names from the metadata, if any
    opset: int

    def describe(self) -> str:
        """Return one line describing the model."""
        names = f', classes {self.names}' if self.names else ''
        return (f'{self.path.name}: {FAMILY_WORDS[self.family]}, input '
                f'{self.input_size[0]}x{self.input_size[1]}, {self.num_classes} classes{names}, '
                f'opset {self.opset}')


class _Shape:
    """Stands in for an output array where only its shape is read."""

    def __init__(self, shape):
        self.shape = shape


def _dims(value_info) -> Tuple:
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField('dim_value') else (d.dim_param or '?') for d in dims)


def inspect_onnx(path) -> OnnxModelInfo:
    """Read an ONNX model's input, outputs and class names; raise if it is not a YOLO detector."""
    try:
        import onnx
    except ImportError as error:
        raise ModelToolError('reading ONNX models needs the onnx package: pip install onnx') \
            from error
    from rk_yolo_ros.yolo.labels import LabelsError, onnx_metadata_names
    from rk_yolo_ros.yolo.decode import DecodeError, YoloDecoder

    path = pathlib.Path(path)
    if not path.is_file():
        raise ModelToolError(f'model file not found: {path}')
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # noqa: B902 - onnx raises DecodeError, ValueError, ...
        raise ModelToolError(f'{path} is not a readable ONNX model: {error}') from error
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ModelToolError(f'{path} has {len(inputs)} inputs; a YOLO detector has one image '
                             'input (1, 3, H, W)')
    shape = _dims(inputs[0])
    if len(shape) != 4 or shape[1] != 3 or not all(isinstance(d, int) and d > 0
                                                   for d in shape[2:]):
        raise ModelToolError(
            f'{path} input {inputs[0].name!r} has shape {shape}; expected a fixed-size image '
            '(1, 3, H, W) (re-export with a fixed imgsz, e.g. 640, and dynamic=False)')
    input_size = (int(shape[3]), int(shape[2]))
    outputs = [_dims(o) for o in model.graph.output]
    if any(not all(isinstance(d, int) for d in o) for o in outputs):
        raise ModelToolError(f'{path} has outputs of unknown size {outputs}; expected a YOLO '
                             'detector exported with fixed shapes')
    decoder = YoloDecoder(input_size, layout='nchw')
    try:
        plan = decoder.plan([_Shape(o) for o in outputs])
    except DecodeError as error:
        raise ModelToolError(
            f'{path} does not look like a YOLO detector (outputs {outputs}): {error}. Expected '
            'an Ultralytics YOLOv8/YOLO11 detection export or its split-head form') from error
    try:
        names = onnx_metadata_names(path)
    except LabelsError:
        names = None
    if names is not None and len(names) != plan.num_classes:
        names = None  # metadata of another model: do not mislabel
    opset = max((e.version for e in model.opset_import if e.domain in ('', 'ai.onnx')),
                default=0)
    return OnnxModelInfo(path, inputs[0].name, input_size,
                         [o.name for o in model.graph.output], outputs, plan.family,
                         plan.num_classes, names, opset)
