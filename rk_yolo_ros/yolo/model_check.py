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
Check that an ONNX file is a YOLO detector this package decodes, without running it.

One check for every entry point: ``rk-yolo run`` and the node (through
``YoloDetectorFactory.check``, in the main process before any worker starts) and the model
tools (``export``, ``convert``, which also need a fixed input size). It reads the model's input
and output shapes and asks the decoder for its reading plan, the same one the workers use, so a
model the workers could not decode is refused up front in one line naming the shapes.

The graph is read with the ``onnx`` package where it is installed, else from ONNX Runtime's
session metadata (the ``onnx`` extra installs only the runtime).
"""

from dataclasses import dataclass
import pathlib
from typing import Dict, List, Optional, Sequence, Tuple, Union

from rk_yolo_ros.yolo.decode import DecodeError, YoloDecoder
from rk_yolo_ros.yolo.labels import LabelsError, metadata_names

FAMILY_WORDS = {
    'ultralytics': 'Ultralytics single output (1, 4 + classes, anchors)',
    'rknn_split': 'RKNN model-zoo split heads (box 64 ch, class scores, score sum per stride)',
}
Dim = Union[int, str]  # a size, or the name of a dynamic dimension ('?' when it has none)


class ModelCheckError(ValueError):
    """The model is not a YOLO detector this package can run; the message says why."""


@dataclass
class OnnxModelInfo:
    """What the detector and the model tools need to know about a YOLO ONNX model."""

    path: pathlib.Path
    input_name: str
    input_shape: Tuple[Dim, ...]
    input_size: Optional[Tuple[int, int]]  # (width, height); None for a dynamic-size input
    output_names: List[str]
    output_shapes: List[Tuple[Dim, ...]]
    family: Optional[str]  # 'ultralytics' or 'rknn_split'; None when the shapes are dynamic
    num_classes: Optional[int]
    names: Optional[List[str]]  # class names from the metadata, if they fit the class count
    opset: Optional[int]  # None when read through ONNX Runtime (it does not say)

    @property
    def fixed(self) -> bool:
        """Return True when the input size and every output shape are known."""
        return self.family is not None

    def describe(self) -> str:
        """Return one line describing the model."""
        names = f', classes {self.names}' if self.names else ''
        kind = FAMILY_WORDS.get(self.family, 'dynamic shapes')
        size = (f'{self.input_size[0]}x{self.input_size[1]}' if self.input_size
                else 'of dynamic size')
        classes = f', {self.num_classes} classes' if self.num_classes is not None else ''
        opset = f', opset {self.opset}' if self.opset is not None else ''
        return f'{self.path.name}: {kind}, input {size}{classes}{names}{opset}'


@dataclass
class _Graph:
    """The parts of an ONNX graph the check reads."""

    inputs: List[Tuple[str, Tuple[Dim, ...]]]
    outputs: List[Tuple[str, Tuple[Dim, ...]]]
    metadata: Dict[str, str]
    opset: Optional[int]


class _Shape:
    """Stands in for an output array where only its shape is read."""

    def __init__(self, shape):
        self.shape = shape


def _onnx_dims(value_info) -> Tuple[Dim, ...]:
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField('dim_value') else (d.dim_param or '?') for d in dims)


def _read_with_onnx(onnx, path: pathlib.Path) -> _Graph:
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # noqa: B902 - onnx raises DecodeError, ValueError, ...
        raise ModelCheckError(f'{path} is not a readable ONNX model: {_one_line(error)}') \
            from error
    initializers = {i.name for i in model.graph.initializer}
    opset = max((e.version for e in model.opset_import if e.domain in ('', 'ai.onnx')),
                default=0)
    return _Graph([(i.name, _onnx_dims(i)) for i in model.graph.input
                   if i.name not in initializers],
                  [(o.name, _onnx_dims(o)) for o in model.graph.output],
                  {p.key: p.value for p in model.metadata_props}, opset)


def _read_with_onnxruntime(path: pathlib.Path) -> _Graph:
    try:
        import onnxruntime
    except ImportError as error:
        raise ModelCheckError(f'reading {path} needs onnxruntime or onnx '
                              '(pip install onnxruntime)') from error
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    try:
        session = onnxruntime.InferenceSession(str(path), sess_options=options,
                                               providers=['CPUExecutionProvider'])
    except Exception as error:  # noqa: B902 - ONNX Runtime raises its own exception types
        raise ModelCheckError(f'{path} is not a readable ONNX model: {_one_line(error)}') \
            from error

    def dims(shape) -> Tuple[Dim, ...]:
        return tuple(d if isinstance(d, int) else (d or '?') for d in shape)

    return _Graph([(i.name, dims(i.shape)) for i in session.get_inputs()],
                  [(o.name, dims(o.shape)) for o in session.get_outputs()],
                  dict(session.get_modelmeta().custom_metadata_map), None)


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _image_size(shape: Sequence[Dim]) -> Optional[Tuple[Optional[int], Optional[int]]]:
    """Return (width, height) of a (1, 3, H, W) or (1, H, W, 3) input, None if it is neither."""
    if len(shape) != 4:
        return None
    if shape[1] == 3:
        height, width = shape[2], shape[3]
    elif shape[3] == 3:
        height, width = shape[1], shape[2]
    else:
        return None
    return (width if isinstance(width, int) else None,
            height if isinstance(height, int) else None)


def read_onnx_model(path, layout: Optional[str] = None) -> OnnxModelInfo:
    """
    Read an ONNX model's input, outputs and class names; raise ModelCheckError if not YOLO.

    The input must be one image, (1, 3, H, W) or (1, H, W, 3). When its size and the output
    shapes are fixed, the outputs must be a layout the decoder reads (``layout`` forces 'nchw'
    or 'nhwc' split heads, as the decoder's option does). A dynamic-size model is accepted
    with ``family`` None: its outputs are only known once it runs.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise ModelCheckError(f'model file not found: {path}')
    try:
        import onnx
    except ImportError:
        graph = _read_with_onnxruntime(path)
    else:
        graph = _read_with_onnx(onnx, path)
    if len(graph.inputs) != 1:
        raise ModelCheckError(f'{path} has {len(graph.inputs)} inputs; a YOLO detector has one '
                              'image input (1, 3, H, W)')
    input_name, input_shape = graph.inputs[0]
    size = _image_size(input_shape)
    if size is None:
        raise ModelCheckError(f'{path} input {input_name!r} has shape {input_shape}; expected '
                              'an image (1, 3, H, W) or (1, H, W, 3)')
    input_size = size if None not in size else None
    # a dynamic batch is run with one image
    outputs = [tuple([1] + list(shape[1:])) if shape and not isinstance(shape[0], int)
               else shape for _, shape in graph.outputs]
    family = num_classes = None
    if input_size is not None and all(isinstance(d, int) for o in outputs for d in o):
        try:
            plan = YoloDecoder(input_size, layout=layout).plan([_Shape(o) for o in outputs])
        except DecodeError as error:
            raise ModelCheckError(
                f'{path} does not look like a YOLO detector (input {input_shape}, outputs '
                f'{", ".join(str(o) for o in outputs)}): {error}. Expected an Ultralytics '
                'YOLOv8/YOLO11 detection export or its split-head form') from error
        family, num_classes = plan.family, plan.num_classes
    try:
        names = metadata_names(graph.metadata, f'{path} metadata')
    except LabelsError:
        names = None
    if names is not None and num_classes is not None and len(names) != num_classes:
        names = None  # metadata of another model: do not mislabel
    return OnnxModelInfo(path, input_name, tuple(input_shape), input_size,
                         [name for name, _ in graph.outputs], outputs, family, num_classes,
                         names, graph.opset)


def require_fixed_size(info: OnnxModelInfo) -> OnnxModelInfo:
    """Return ``info`` if its input is a fixed-size NCHW image and its outputs are known."""
    shape = info.input_shape
    if info.input_size is None or shape[1] != 3:
        raise ModelCheckError(
            f'{info.path} input {info.input_name!r} has shape {shape}; expected a fixed-size '
            'image (1, 3, H, W) (re-export with a fixed imgsz, e.g. 640, and dynamic=False)')
    if not info.fixed:
        raise ModelCheckError(f'{info.path} has outputs of unknown size {info.output_shapes}; '
                              'expected a YOLO detector exported with fixed shapes')
    return info


__all__ = ['FAMILY_WORDS', 'ModelCheckError', 'OnnxModelInfo', 'read_onnx_model',
           'require_fixed_size']
