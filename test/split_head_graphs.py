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
Tiny synthetic Ultralytics detection ONNX graphs in both head layouts, for the export tests.

The graphs copy the operator structure of real Ultralytics exports (the older export behind the
demo model, and 8.4.190 exports of yolov8n/yolo11n) with a toy backbone and random weights, so
they need no torch:

- ``'8.4'``: per stride, box Conv -> Reshape(1, 4 * reg_max, -1) and class Conv ->
  Reshape(1, nc, -1); the box reshapes are concatenated (axis -1) into the DFL, the class
  reshapes into a Sigmoid.
- ``'concat'`` (up to 8.3): per stride Concat(box Conv, class Conv) on channels ->
  Reshape(1, 4 * reg_max + nc, -1); those are concatenated (axis 2) and Split into the DFL
  part and the Sigmoid part.

Both then decode like Ultralytics: DFL = Reshape(1, 4, reg_max, A) -> Transpose(0, 2, 1, 3) ->
Softmax(axis 1) -> 1x1 Conv with weights 0..reg_max-1 -> Reshape(1, 4, A); box = Slice
left-top / right-bottom distances, anchors -/+ them, centre and size, times the stride; output
Concat(box, class scores) (1, 4 + nc, A). Node and tensor names are opaque on purpose.
"""

import pathlib
from typing import List, Sequence

from module_checks import optional
import numpy as np

# Collecting a test file that imports this module must not fail without onnx (that would be an
# error, not a skip); the tests that build these graphs are marked requires('onnx').
onnx = optional('onnx')
if onnx is not None:
    from onnx import helper, numpy_helper, TensorProto

LAYOUTS = ('8.4', 'concat')
STRIDES = (8, 16, 32)
BACKBONE_CHANNELS = 8


class _GraphBuilder:
    """Collect nodes and constants with generated names."""

    def __init__(self):
        self.nodes: List[onnx.NodeProto] = []
        self.initializers: List[onnx.TensorProto] = []
        self._count = 0

    def _name(self) -> str:
        self._count += 1
        return f't{self._count}'

    def const(self, array: np.ndarray) -> str:
        name = self._name()
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], outputs: int = 1, **attributes):
        names = [self._name() for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names,
                                           name=f'n{len(self.nodes)}', **attributes))
        return names[0] if outputs == 1 else names


def _anchors_and_strides(imgsz: int):
    points, strides = [], []
    for stride in STRIDES:
        cells = imgsz // stride
        ys, xs = np.meshgrid(np.arange(cells) + 0.5, np.arange(cells) + 0.5, indexing='ij')
        points.append(np.stack([xs.ravel(), ys.ravel()]))
        strides.append(np.full(cells * cells, stride))
    anchors = np.concatenate(points, axis=1)[None].astype(np.float32)
    return anchors, np.concatenate(strides)[None].astype(np.float32)


def write_ultralytics_onnx(path, layout: str = '8.4', num_classes: int = 3, imgsz: int = 128,
                           reg_max: int = 16, opset: int = 17, seed: int = 0) -> pathlib.Path:
    """Write a random-weight Ultralytics-style detection ONNX in ``layout``; return its path."""
    if layout not in LAYOUTS:
        raise ValueError(f'layout {layout!r}: expected one of {LAYOUTS}')
    if opset < 13:
        raise ValueError(f'opset {opset}: the generator writes opset 13+ Split/Softmax')
    rng = np.random.default_rng(seed)
    g = _GraphBuilder()
    box_channels = 4 * reg_max
    box_parts, cls_parts, head_parts = [], [], []
    for stride in STRIDES:
        # Toy backbone: a strided Conv to this grid, then SiLU as Ultralytics writes it.
        weight = rng.normal(0, 0.3, (BACKBONE_CHANNELS, 3, stride, stride)).astype(np.float32)
        feature = g.op('Conv', ['images', g.const(weight)], kernel_shape=[stride, stride],
                       strides=[stride, stride])
        feature = g.op('Mul', [feature, g.op('Sigmoid', [feature])])
        box_w = rng.normal(0, 1.0, (box_channels, BACKBONE_CHANNELS, 1, 1)).astype(np.float32)
        box_b = rng.normal(0, 1.0, box_channels).astype(np.float32)
        cls_w = rng.normal(0, 1.0, (num_classes, BACKBONE_CHANNELS, 1, 1)).astype(np.float32)
        cls_b = rng.normal(-2.0, 1.0, num_classes).astype(np.float32)
        box = g.op('Conv', [feature, g.const(box_w), g.const(box_b)], kernel_shape=[1, 1])
        cls = g.op('Conv', [feature, g.const(cls_w), g.const(cls_b)], kernel_shape=[1, 1])
        if layout == '8.4':
            box_parts.append(g.op('Reshape', [box, g.const(np.array([1, box_channels, -1]))]))
            cls_parts.append(g.op('Reshape', [cls, g.const(np.array([1, num_classes, -1]))]))
        else:
            both = g.op('Concat', [box, cls], axis=1)
            head_parts.append(g.op('Reshape', [both, g.const(
                np.array([1, box_channels + num_classes, -1]))]))
    anchors, strides = _anchors_and_strides(imgsz)
    count = anchors.shape[2]
    if layout == '8.4':
        box_all = g.op('Concat', box_parts, axis=-1)
        cls_all = g.op('Concat', cls_parts, axis=-1)
    else:
        heads = g.op('Concat', head_parts, axis=2)
        box_all, cls_all = g.op('Split', [heads, g.const(np.array([box_channels, num_classes]))],
                                outputs=2, axis=1)
    bins = g.op('Reshape', [box_all, g.const(np.array([1, 4, reg_max, count]))])
    bins = g.op('Softmax', [g.op('Transpose', [bins], perm=[0, 2, 1, 3])], axis=1)
    project = np.arange(reg_max, dtype=np.float32).reshape(1, reg_max, 1, 1)
    distances = g.op('Conv', [bins, g.const(project)], kernel_shape=[1, 1])
    distances = g.op('Reshape', [distances, g.const(np.array([1, 4, count]))])
    axis = g.const(np.array([1]))
    left_top = g.op('Slice', [distances, g.const(np.array([0])), g.const(np.array([2])), axis])
    right_bottom = g.op('Slice', [distances, g.const(np.array([2])), g.const(np.array([4])),
                                  axis])
    anchor_points = g.const(anchors)
    top_left = g.op('Sub', [anchor_points, left_top])
    bottom_right = g.op('Add', [anchor_points, right_bottom])
    centre = g.op('Div', [g.op('Add', [top_left, bottom_right]),
                          g.const(np.array(2.0, np.float32))])
    size = g.op('Sub', [bottom_right, top_left])
    boxes = g.op('Mul', [g.op('Concat', [centre, size], axis=1), g.const(strides)])
    scores = g.op('Sigmoid', [cls_all])
    g.nodes.append(helper.make_node('Concat', [boxes, scores], ['output0'], axis=1,
                                    name=f'n{len(g.nodes)}'))
    graph = helper.make_graph(
        g.nodes, 'synthetic_yolo',
        [helper.make_tensor_value_info('images', TensorProto.FLOAT, [1, 3, imgsz, imgsz])],
        [helper.make_tensor_value_info('output0', TensorProto.FLOAT,
                                       [1, 4 + num_classes, count])],
        g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', opset)])
    model.ir_version = min(model.ir_version, 8)  # readable by older onnxruntime builds
    onnx.checker.check_model(model)
    path = pathlib.Path(path)
    onnx.save(model, str(path))
    return path


def head_layout(path) -> str:
    """
    Return '8.4' or 'concat': whether box and class head Convs are concatenated per stride.

    A graph is 'concat' when some Concat takes exactly two Conv outputs (the per-stride
    ``cat(cv2(x), cv3(x))``), as exports up to Ultralytics 8.3 have it.
    """
    graph = onnx.load(str(path)).graph
    producers = {output: node for node in graph.node for output in node.output}
    for node in graph.node:
        if node.op_type == 'Concat' and len(node.input) == 2 and all(
                name in producers and producers[name].op_type == 'Conv'
                for name in node.input):
            return 'concat'
    return '8.4'
