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
Turn an Ultralytics detection ONNX into the RKNN model-zoo split-head layout.

The model zoo's YOLOv8/YOLO11 exports stop before the DFL decode: per stride (8, 16, 32) they
output the 64-channel box distribution (``cv2`` branch), the class scores after a Sigmoid
(``cv3`` branch) and a 1-channel sum of the class scores clipped to 1. Post-processing on the
CPU then only pays for anchors that pass the threshold. This module does that graph surgery
with the ``onnx`` package, for both head layouts Ultralytics has exported:

- up to 8.3: per stride ``Concat(cv2(x), cv3(x))`` on channels, reshaped, concatenated over the
  strides, then split into the box part (to the DFL) and the class part (to a Sigmoid);
- from 8.4: no per-stride concatenation; the three ``cv2`` outputs are reshaped and
  concatenated on their own into the DFL, the three ``cv3`` outputs into the Sigmoid.

Node names are never used. Steps:

1. Walk the graph backwards from the model's single output and stop at every ``Conv``: those
   are the head Convs, except the DFL's own 1x1 Conv (one output channel, a Softmax above it),
   which is walked through and gives reg_max. ``Shape`` inputs are not followed (they read no
   data), so a dynamic export's anchor arithmetic does not lead into the backbone.
2. Group the head Convs by their output grid (ONNX shape inference): one box and one class Conv
   per stride. The box Conv has 4 * reg_max channels (64), the class Conv nc. When nc equals
   4 * reg_max the box Conv is the one whose data reaches the DFL Softmax, or, when both do
   (the old per-stride Concat), the first input of their Concat, as Ultralytics orders them.
3. Add ``Sigmoid`` on the class branch and ``Clip(ReduceSum(classes, axis 1), 0, 1)``, make
   those the outputs (box, classes, score sum for stride 8, then 16, then 32, the model zoo's
   order) and drop every node that no longer feeds an output.
"""

import pathlib
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

PathLike = Union[str, pathlib.Path]

# Ultralytics' DFL bins; assumed when the graph has no DFL Conv to read it from.
DEFAULT_REG_MAX = 16
# Operators that read only the shape of their input, never its values.
_SHAPE_ONLY_OPS = ('Shape', 'Size')


class SplitHeadExportError(ValueError):
    """The ONNX file is not an Ultralytics detection model this export understands."""


def _onnx():
    try:
        import onnx
    except ImportError as error:
        raise ImportError('split-head export needs the onnx package: pip install onnx') from error
    return onnx


def _producers(graph) -> Dict[str, object]:
    return {output: node for node in graph.node for output in node.output}


def _consumers(graph) -> Dict[str, List[object]]:
    result = {}
    for node in graph.node:
        for tensor in node.input:
            result.setdefault(tensor, []).append(node)
    return result


def _constant_dims(graph) -> Dict[str, List[int]]:
    """Return name -> dims of every initializer and Constant node output (Conv weights)."""
    dims = {init.name: list(init.dims) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == 'Constant':
            for attribute in node.attribute:
                if attribute.name == 'value':
                    dims[node.output[0]] = list(attribute.t.dims)
    return dims


def _conv_weight_dims(constants, conv) -> List[int]:
    dims = constants.get(conv.input[1]) if len(conv.input) > 1 else None
    if dims is None or len(dims) != 4:
        raise SplitHeadExportError(f'head Conv {conv.name!r} has no constant 4-D weight')
    return dims


def _has_softmax_above(producers, tensor: str) -> bool:
    """Return whether a Softmax computes ``tensor`` without a Conv in between."""
    frontier, seen = [tensor], set()
    while frontier:
        node = producers.get(frontier.pop())
        if node is None or id(node) in seen or node.op_type == 'Conv':
            continue
        seen.add(id(node))
        if node.op_type == 'Softmax':
            return True
        if node.op_type not in _SHAPE_ONLY_OPS:
            frontier.extend(node.input)
    return False


def _find_head_convs(graph, constants) -> Tuple[List[object], Optional[int]]:
    """
    Return the head Convs the single output is computed from, and reg_max (None: no DFL).

    The DFL Conv (weight (1, reg_max, 1, 1) applied to a Softmax) is walked through; every
    other Conv met walking back from the output ends the walk there.
    """
    producers = _producers(graph)
    heads, seen, reg_max = [], set(), None
    frontier = [o.name for o in graph.output]
    while frontier:
        node = producers.get(frontier.pop(0))
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if node.op_type in _SHAPE_ONLY_OPS:
            continue  # a dynamic export's grid sizes come from here; no data flows through
        if node.op_type == 'Conv':
            dims = constants.get(node.input[1]) if len(node.input) > 1 else None
            if (dims is not None and len(dims) == 4 and dims[0] == 1 and dims[2:] == [1, 1]
                    and _has_softmax_above(producers, node.input[0])):
                reg_max = dims[1]
                frontier.append(node.input[0])
            else:
                heads.append(node)
            continue
        frontier.extend(node.input)
    return heads, reg_max


def _reaches_softmax(consumers, tensor: str) -> bool:
    """Return whether the values of ``tensor`` flow into a Softmax before any Conv."""
    frontier, seen = [tensor], set()
    while frontier:
        for node in consumers.get(frontier.pop(), []):
            if id(node) in seen or node.op_type == 'Conv' or node.op_type in _SHAPE_ONLY_OPS:
                continue
            seen.add(id(node))
            if node.op_type == 'Softmax':
                return True
            frontier.extend(node.output)
    return False


def _box_and_class(src, pair, channels, box_channels, consumers):
    """Return (box Conv, class Conv) of one stride's two head Convs."""
    if box_channels not in channels:
        raise SplitHeadExportError(
            f'{src}: head Convs {pair[0].name!r}, {pair[1].name!r} have {channels[0]} and '
            f'{channels[1]} channels; expected one box branch of {box_channels} (4 * reg_max)')
    if channels[0] != channels[1]:
        box_index = channels.index(box_channels)
        return pair[box_index], pair[1 - box_index]
    # nc == 4 * reg_max: only the graph tells the branches apart.
    reaches = [_reaches_softmax(consumers, conv.output[0]) for conv in pair]
    if reaches[0] != reaches[1]:
        box_index = reaches.index(True)
        return pair[box_index], pair[1 - box_index]
    tensors = [conv.output[0] for conv in pair]
    for node in consumers.get(tensors[0], []):
        if node.op_type == 'Concat' and tensors[1] in node.input:
            inputs = list(node.input)
            if inputs.index(tensors[0]) < inputs.index(tensors[1]):
                return pair[0], pair[1]
            return pair[1], pair[0]
    raise SplitHeadExportError(
        f'{src}: cannot tell the box from the class branch of head Convs {pair[0].name!r} and '
        f'{pair[1].name!r} (both {box_channels} channels)')


def _spatial_and_type(src, model, tensor_names: List[str]) -> Dict[str, Tuple[int, int, int]]:
    """Return name -> (height, width, elem_type) from ONNX shape inference."""
    onnx = _onnx()
    inferred = onnx.shape_inference.infer_shapes(model)
    result = {}
    for info in list(inferred.graph.value_info) + list(inferred.graph.output):
        if info.name in tensor_names:
            dims = info.type.tensor_type.shape.dim
            if len(dims) == 4 and dims[2].HasField('dim_value') and dims[3].HasField('dim_value'):
                result[info.name] = (dims[2].dim_value, dims[3].dim_value,
                                     info.type.tensor_type.elem_type)
    missing = [n for n in tensor_names if n not in result]
    if missing:
        raise SplitHeadExportError(f'{src}: cannot infer static NCHW shapes of head outputs '
                                   f'{missing}; export the model with a fixed input size')
    return result


def _numpy_type(elem_type: int):
    """Return the numpy dtype of an ONNX element type (older onnx lacks the helper)."""
    onnx = _onnx()
    if hasattr(onnx.helper, 'tensor_dtype_to_np_dtype'):
        return onnx.helper.tensor_dtype_to_np_dtype(elem_type)
    return onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[elem_type]


def _opset(model) -> int:
    for entry in model.opset_import:
        if entry.domain in ('', 'ai.onnx'):
            return int(entry.version)
    return 1


def export_split_heads(src_onnx: PathLike, dst_onnx: PathLike) -> pathlib.Path:
    """
    Write an RKNN model-zoo style split-head copy of an Ultralytics detection ONNX.

    Outputs, for strides 8, 16, 32 in that order: ``box_s{stride}`` (1, 64, H, W),
    ``cls_s{stride}`` (1, nc, H, W) after Sigmoid, ``score_sum_s{stride}`` (1, 1, H, W).
    Raise FileNotFoundError for a missing file and SplitHeadExportError (a ValueError) naming
    the file when it is not an Ultralytics-style detection model.
    """
    onnx = _onnx()
    from onnx import helper, numpy_helper

    src = pathlib.Path(src_onnx)
    dst = pathlib.Path(dst_onnx)
    if not src.is_file():
        raise FileNotFoundError(f'ONNX model not found: {src}')
    try:
        model = onnx.load(str(src))
    except Exception as error:
        raise SplitHeadExportError(f'{src} is not a readable ONNX model: {error}') from error
    graph = model.graph
    if len(graph.output) != 1:
        raise SplitHeadExportError(
            f'{src} has {len(graph.output)} outputs; expected one Ultralytics output '
            '(1, 4 + classes, anchors)')
    constants = _constant_dims(graph)
    convs, reg_max = _find_head_convs(graph, constants)
    box_channels = 4 * (reg_max or DEFAULT_REG_MAX)
    if len(convs) < 4 or len(convs) % 2:
        raise SplitHeadExportError(
            f'{src} does not look like an Ultralytics YOLO detection model: expected per-stride '
            f'box ({box_channels} channels) and class head Convs feeding the Concat, DFL and '
            f'Sigmoid of a Detect head, found {len(convs)} head Convs')
    channels = {id(conv): _conv_weight_dims(constants, conv)[0] for conv in convs}

    shapes = _spatial_and_type(src, model, [conv.output[0] for conv in convs])
    by_grid = {}
    for conv in convs:
        by_grid.setdefault(shapes[conv.output[0]][:2], []).append(conv)
    consumers = _consumers(graph)
    heads = []
    for (height, width), pair in by_grid.items():
        if len(pair) != 2:
            raise SplitHeadExportError(
                f'{src}: expected one box and one class head Conv per stride, found '
                f'{len(pair)} on the {height}x{width} grid')
        box_conv, cls_conv = _box_and_class(src, pair, [channels[id(c)] for c in pair],
                                            box_channels, consumers)
        heads.append((box_conv.output[0], cls_conv.output[0], channels[id(cls_conv)]))
    class_counts = {h[2] for h in heads}
    if len(class_counts) != 1:
        raise SplitHeadExportError(f'{src}: heads disagree on the class count {class_counts}')

    input_dims = graph.input[0].type.tensor_type.shape.dim
    input_height = input_dims[2].dim_value if len(input_dims) == 4 else 0
    # Finest grid first: stride 8, 16, 32 (the model zoo's output order).
    heads.sort(key=lambda head: -shapes[head[0]][0])

    opset = _opset(model)
    new_nodes, new_outputs, new_inits = [], [], []
    clip_low = clip_high = None
    for box_name, cls_name, num_classes in heads:
        height, width, elem_type = shapes[box_name]
        stride = input_height // height if input_height else 0
        tag = f's{stride}' if stride else f'{height}x{width}'
        box_out, cls_out, sum_out = f'box_{tag}', f'cls_{tag}', f'score_sum_{tag}'
        new_nodes.append(helper.make_node('Identity', [box_name], [box_out],
                                          name=f'split_head/{box_out}'))
        new_nodes.append(helper.make_node('Sigmoid', [cls_name], [cls_out],
                                          name=f'split_head/{cls_out}'))
        raw_sum = f'split_head/{sum_out}_raw'
        if opset >= 13:
            if not new_inits:
                new_inits.append(numpy_helper.from_array(np.array([1], np.int64),
                                                         'split_head/axes'))
            new_nodes.append(helper.make_node('ReduceSum', [cls_out, 'split_head/axes'],
                                              [raw_sum], keepdims=1, name=raw_sum))
        else:
            new_nodes.append(helper.make_node('ReduceSum', [cls_out], [raw_sum], axes=[1],
                                              keepdims=1, name=raw_sum))
        if opset >= 11:
            if clip_low is None:
                np_type = _numpy_type(elem_type)
                clip_low, clip_high = 'split_head/clip_min', 'split_head/clip_max'
                new_inits.append(numpy_helper.from_array(np.array(0, np_type), clip_low))
                new_inits.append(numpy_helper.from_array(np.array(1, np_type), clip_high))
            new_nodes.append(helper.make_node('Clip', [raw_sum, clip_low, clip_high], [sum_out],
                                              name=f'split_head/{sum_out}'))
        else:
            new_nodes.append(helper.make_node('Clip', [raw_sum], [sum_out], min=0.0, max=1.0,
                                              name=f'split_head/{sum_out}'))
        for name, count in ((box_out, box_channels), (cls_out, num_classes), (sum_out, 1)):
            new_outputs.append(helper.make_tensor_value_info(
                name, elem_type, [1, count, height, width]))

    graph.node.extend(new_nodes)
    graph.initializer.extend(new_inits)
    del graph.output[:]
    graph.output.extend(new_outputs)
    _prune(graph)
    onnx.checker.check_model(model)
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dst))
    return dst


def _prune(graph) -> None:
    """Drop nodes, initializers and value_info that no longer feed a graph output."""
    producers = _producers(graph)
    needed_tensors, needed_nodes = set(), set()
    frontier = [o.name for o in graph.output]
    while frontier:
        tensor = frontier.pop()
        if tensor in needed_tensors:
            continue
        needed_tensors.add(tensor)
        node = producers.get(tensor)
        if node is not None and id(node) not in needed_nodes:
            needed_nodes.add(id(node))
            frontier.extend(node.input)
    kept = [n for n in graph.node if id(n) in needed_nodes]
    del graph.node[:]
    graph.node.extend(kept)
    inits = [i for i in graph.initializer if i.name in needed_tensors]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    infos = [v for v in graph.value_info if v.name in needed_tensors]
    del graph.value_info[:]
    graph.value_info.extend(infos)
