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
with the ``onnx`` package:

1. Walk the graph backwards from the model's single output and collect every ``Concat`` whose
   inputs are exactly two ``Conv`` outputs: those are the per-stride head concatenations
   ``cat(cv2(x), cv3(x))`` that feed the reshape, split and DFL. Node names are not used.
2. In each, the first ``Conv`` is the box branch (4 * reg_max channels, 64 for reg_max 16) and
   the second the class branch (nc channels), as Ultralytics concatenates them.
3. Add ``Sigmoid`` on the class branch and ``Clip(ReduceSum(classes, axis 1), 0, 1)``, make
   those the outputs (box, classes, score sum for stride 8, then 16, then 32, the model zoo's
   order) and drop every node that no longer feeds an output.
"""

import pathlib
from typing import Dict, List, Tuple, Union

import numpy as np

PathLike = Union[str, pathlib.Path]


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


def _find_head_concats(graph) -> List[object]:
    """Return the Concat(Conv, Conv) nodes upstream of the graph output, nearest first."""
    producers = _producers(graph)
    found, seen = [], set()
    frontier = [o.name for o in graph.output]
    while frontier:
        tensor = frontier.pop(0)
        node = producers.get(tensor)
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if node.op_type == 'Concat' and len(node.input) == 2 and all(
                producers.get(i) is not None and producers[i].op_type == 'Conv'
                for i in node.input):
            found.append(node)
            continue  # the backbone above a head is not part of the search
        frontier.extend(node.input)
    return found


def _conv_out_channels(graph, conv) -> int:
    initializers = {init.name: init for init in graph.initializer}
    weight = initializers.get(conv.input[1])
    if weight is None:
        raise SplitHeadExportError(f'head Conv {conv.name!r} has no constant weight')
    return int(weight.dims[0])


def _spatial_and_type(model, tensor_names: List[str]) -> Dict[str, Tuple[int, int, int]]:
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
        raise SplitHeadExportError(f'cannot infer static NCHW shapes of head outputs {missing}; '
                                   'export the model with a fixed input size')
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
    concats = _find_head_concats(graph)
    if len(concats) < 2:
        raise SplitHeadExportError(
            f'{src} does not look like an Ultralytics YOLO detection model: expected per-stride '
            f'Concat(box Conv, class Conv) heads before the DFL, found {len(concats)}')

    producers = _producers(graph)
    heads = []
    for concat in concats:
        box_conv, cls_conv = producers[concat.input[0]], producers[concat.input[1]]
        box_channels = _conv_out_channels(graph, box_conv)
        num_classes = _conv_out_channels(graph, cls_conv)
        if box_channels % 4 != 0:
            raise SplitHeadExportError(
                f'{src}: head {concat.name!r} box branch has {box_channels} channels; expected '
                'a multiple of 4 (4 * reg_max)')
        heads.append((concat.input[0], concat.input[1], num_classes))
    class_counts = {h[2] for h in heads}
    if len(class_counts) != 1:
        raise SplitHeadExportError(f'{src}: heads disagree on the class count {class_counts}')

    shapes = _spatial_and_type(model, [name for head in heads for name in head[:2]])
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
        for name, channels in ((box_out, None), (cls_out, num_classes), (sum_out, 1)):
            if channels is None:
                channels = _conv_out_channels(graph, producers[box_name])
            new_outputs.append(helper.make_tensor_value_info(
                name, elem_type, [1, channels, height, width]))

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
