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


r"""
Produce test/fixtures/ultralytics_reference.json with the Ultralytics predictor.

The accuracy tests compare rk_yolo_ros's detector against these results: the same real model
(the demo YOLOv8n ONNX), the same images (bus.jpg, zidane.jpg) and the same thresholds.
``images`` holds the originals (1080 and 720 rows); ``small_images`` the same two pictures
shrunk to 360 and 480 rows, shorter than the 720-row output, which rk_yolo_ros must not
enlarge before inference. The script writes those (test/fixtures/small_images/, JPEG
quality 95, so every reader decodes the same pixels) and runs the predictor on the files.
Run it in a separate virtual environment that has ultralytics, torch and onnxruntime, e.g.::

    python3 -m venv /work/envs/ultralytics
    /work/envs/ultralytics/bin/pip install torch==2.13.0        # the CPU wheel
    /work/envs/ultralytics/bin/pip install --no-deps ultralytics
    /work/envs/ultralytics/bin/pip install numpy matplotlib opencv-python-headless pillow \\
        pyyaml requests scipy psutil polars ultralytics-thop onnxruntime onnx
    /work/envs/ultralytics/bin/python scripts/make_ultralytics_reference.py

torchvision is NOT installed: PyPI's torchvision does not load its compiled operators beside the
CPU torch wheel ("operator torchvision::nms does not exist"), and the Ultralytics predictor
needs only ``torchvision.ops.nms``. When ``import torchvision`` fails, this script installs a
small stand-in module whose ``ops.nms`` is a plain-torch greedy NMS with torchvision's
semantics (boxes sorted by score, a box is dropped when its IoU with a kept box is > the
threshold). The fixture records which was used. With a working torchvision (e.g. torch 2.14.1
with torchvision 0.29.1) the real one is used.
"""

import argparse
import importlib.metadata
import json
import os
import pathlib
import platform
import sys
import types

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rk_yolo_ros.yolo import demo_assets  # noqa: E402

CONF_THRESHOLD = 0.25
IOU_THRESHOLD = 0.45
IMAGE_SIZE = 640
MAX_DETECTIONS = 300
SHIM_TORCHVISION_VERSION = '0.28.0'
SMALL_HEIGHTS = (360, 480)
SMALL_IMAGES = REPO / 'test' / 'fixtures' / 'small_images'
SMALL_JPEG_QUALITY = 95


def install_torchvision_shim():
    """Register a minimal ``torchvision`` (ops.nms only) when the real one cannot load."""
    try:
        import torchvision
        import torch
        torchvision.ops.nms(torch.zeros((1, 4)), torch.zeros(1), 0.5)
        return 'torchvision ' + torchvision.__version__
    except Exception:  # missing, or present without its compiled operators
        for name in [n for n in sys.modules if n == 'torchvision' or n.startswith('torchvision.')]:
            del sys.modules[name]

    import torch

    def nms(boxes, scores, iou_threshold):
        """Greedy NMS in plain torch; return kept indices sorted by decreasing score."""
        order = torch.argsort(scores, descending=True)
        boxes = boxes[order]
        areas = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
        suppressed = torch.zeros(len(order), dtype=torch.bool)
        keep = []
        for i in range(len(order)):
            if suppressed[i]:
                continue
            keep.append(i)
            top_left = torch.maximum(boxes[i, :2], boxes[i + 1:, :2])
            bottom_right = torch.minimum(boxes[i, 2:], boxes[i + 1:, 2:])
            inter = (bottom_right - top_left).clamp(min=0).prod(dim=1)
            iou = inter / (areas[i] + areas[i + 1:] - inter)
            suppressed[i + 1:] |= iou > iou_threshold
        return order[torch.tensor(keep, dtype=torch.long)]

    shim = types.ModuleType('torchvision')
    # Ultralytics reads torchvision's version from package metadata and compares it; claim the
    # release that pairs with torch 2.13 so its checks pass.
    shim.__version__ = SHIM_TORCHVISION_VERSION
    shim.ops = types.ModuleType('torchvision.ops')
    shim.ops.nms = nms
    sys.modules['torchvision'] = shim
    sys.modules['torchvision.ops'] = shim.ops
    real_version = importlib.metadata.version

    def version(distribution):
        if distribution == 'torchvision':
            return SHIM_TORCHVISION_VERSION
        return real_version(distribution)

    importlib.metadata.version = version
    return 'rk_yolo_ros torch shim for torchvision.ops.nms (torchvision not installed)'


def predict(model_path, image_paths):
    """Run the Ultralytics predictor on each image; return the fixture's per-image entries."""
    from ultralytics import YOLO

    model = YOLO(str(model_path), task='detect')
    entries = []
    for path in image_paths:
        result = model.predict(str(path), conf=CONF_THRESHOLD, iou=IOU_THRESHOLD,
                               imgsz=IMAGE_SIZE, max_det=MAX_DETECTIONS, device='cpu',
                               verbose=False)[0]
        boxes = result.boxes
        height, width = result.orig_shape
        entries.append({
            'image': pathlib.Path(path).name,
            'size': [int(width), int(height)],
            'boxes_xyxy': [[round(float(v), 3) for v in box] for box in boxes.xyxy.tolist()],
            'scores': [round(float(s), 5) for s in boxes.conf.tolist()],
            'class_ids': [int(c) for c in boxes.cls.tolist()],
            'labels': [result.names[int(c)] for c in boxes.cls.tolist()],
        })
    return entries


def make_small_images(image_paths, folder=SMALL_IMAGES):
    """Write each image shrunk to each of SMALL_HEIGHTS rows (INTER_AREA); return the paths."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for path in image_paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        height, width = image.shape[:2]
        for rows in SMALL_HEIGHTS:
            size = (int(round(width * rows / height)), rows)
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            target = folder / f'{pathlib.Path(path).stem}_{rows}.jpg'
            if not cv2.imwrite(str(target), small, [cv2.IMWRITE_JPEG_QUALITY, SMALL_JPEG_QUALITY]):
                raise RuntimeError(f'could not write {target}')
            written.append(target)
    return written


def main(argv=None):
    """Write the reference fixture (default test/fixtures/ultralytics_reference.json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    default_output = REPO / 'test' / 'fixtures' / 'ultralytics_reference.json'
    parser.add_argument('--output', default=str(default_output))
    args = parser.parse_args(argv)
    os.environ.setdefault('YOLO_OFFLINE', '1')  # no hub or update checks

    nms_source = install_torchvision_shim()
    model_path = demo_assets.fetch_model()
    image_paths = demo_assets.fetch_images()

    import onnxruntime
    import torch
    import ultralytics

    fixture = {
        'produced_by': 'scripts/make_ultralytics_reference.py',
        'versions': {
            'ultralytics': ultralytics.__version__,
            'torch': torch.__version__,
            'onnxruntime': onnxruntime.__version__,
            'nms': nms_source,
            'python': platform.python_version(),
        },
        'model': {
            'file': model_path.name,
            'source': demo_assets.MODEL_PACKAGE + ':' + demo_assets.MODEL_MEMBER,
        },
        'settings': {'conf_threshold': CONF_THRESHOLD, 'iou_threshold': IOU_THRESHOLD,
                     'imgsz': IMAGE_SIZE, 'max_detections': MAX_DETECTIONS},
        'images': predict(model_path, image_paths),
        'small_images_folder': str(SMALL_IMAGES.relative_to(REPO)),
        'small_images': predict(model_path, make_small_images(image_paths)),
    }
    output = pathlib.Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(fixture, indent=1) + '\n')
    print(f'wrote {output}')
    for entry in fixture['images'] + fixture['small_images']:
        print(entry['image'], entry['size'], len(entry['scores']), 'detections',
              entry['labels'])
    return 0


if __name__ == '__main__':
    sys.exit(main())
