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
Export an Ultralytics .pt detector straight to the split-head ONNX, in a python with ultralytics.

Run as ``<python> ultralytics_export_job.py MODEL.pt OUT.onnx IMGSZ OPSET`` by
``export.export_pt_to_onnx``; it imports only torch, ultralytics and onnx (never rk_yolo_ros).
Like the RKNN model zoo's YOLOv8/YOLO11 export, it replaces the Detect head's forward so the
graph ends, per stride, in the 64-channel DFL box logits (``cv2``), the sigmoid class scores
(``cv3``) and their sum clipped to 1, instead of the decoded (1, 4 + nc, anchors) tensor. This
does not depend on how a given Ultralytics release wires its own ONNX head (8.4 no longer
concatenates box and class per stride). Class names go into the ONNX metadata, as Ultralytics
does.
"""

import sys
import types


def split_forward(self, features):
    """Return box logits, sigmoid class scores and clipped score sum per stride (Detect head)."""
    import torch

    outputs = []
    for level in range(self.nl):
        box = self.cv2[level](features[level])
        scores = torch.sigmoid(self.cv3[level](features[level]))
        outputs += [box, scores, torch.clamp(scores.sum(1, keepdim=True), 0, 1)]
    return outputs


def export(source: str, target: str, imgsz: int, opset: int) -> None:
    """Load the .pt, swap the head's forward, export to ONNX with names in the metadata."""
    import onnx
    import torch
    from ultralytics import YOLO

    model = YOLO(source).model.float().eval()
    model = model.fuse() if hasattr(model, 'fuse') else model
    head = model.model[-1]
    if not all(hasattr(head, name) for name in ('cv2', 'cv3', 'nl', 'stride')):
        raise SystemExit(f'{source}: the last layer is {type(head).__name__}, not a YOLOv8/'
                         'YOLO11 Detect head (cv2/cv3 per stride); only detection models export')
    if getattr(head, 'reg_max', 16) != 16:
        raise SystemExit(f'{source}: Detect head has reg_max {head.reg_max}; expected 16')
    head.forward = types.MethodType(split_forward, head)
    strides = [int(s) for s in head.stride.tolist()]
    names = [f'{kind}_s{stride}' for stride in strides for kind in ('box', 'cls', 'score_sum')]
    export_kwargs = {'opset_version': opset, 'input_names': ['images'],
                     'output_names': names, 'do_constant_folding': True}
    if 'dynamo' in torch.onnx.export.__code__.co_varnames:
        export_kwargs['dynamo'] = False  # the TorchScript exporter honours old opsets
    with torch.no_grad():
        torch.onnx.export(model, torch.zeros(1, 3, imgsz, imgsz), target, **export_kwargs)
    exported = onnx.load(target)
    metadata = {'names': str(dict(model.names)), 'imgsz': str([imgsz, imgsz]),
                'stride': str(max(strides)), 'task': 'detect',
                'description': f'split-head export of {source} by rk_yolo_ros'}
    for key, value in metadata.items():
        entry = exported.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(exported, target)
    print('EXPORTED', target, flush=True)


if __name__ == '__main__':
    if len(sys.argv) != 5:
        raise SystemExit('usage: ultralytics_export_job.py MODEL.pt OUT.onnx IMGSZ OPSET')
    export(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
