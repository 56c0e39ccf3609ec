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
Benchmark the per-frame CPU work of YOLO detection and print JSON.

Measures, on the real demo model (Ultralytics YOLOv8n, 2 classes) and the 720p bus image:
letterbox (720p BGR -> 640x640 RGB), decode + NMS for both output families (the model's own
output, and the RKNN model-zoo split heads exported from it), drawing, and ONNX Runtime
inference with one intra-op thread (what one worker uses). Also decode + NMS on synthetic
80-class outputs (COCO-sized) for both families. Run::

    python benchmarks/postprocess.py [--iterations 300]
"""

import argparse
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

import cv2
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from rk_yolo_ros.core.frame_processing import DetectionSettings  # noqa: E402
from rk_yolo_ros.yolo import demo_assets  # noqa: E402
from rk_yolo_ros.yolo.backends.onnx_backend import OnnxBackend  # noqa: E402
from rk_yolo_ros.yolo.decode import YoloDecoder  # noqa: E402
from rk_yolo_ros.yolo.drawing import draw_detections  # noqa: E402
from rk_yolo_ros.yolo.letterbox import Letterbox  # noqa: E402

TARGET_DECODE_MS = 0.5


def timed_ms(function, iterations):
    """Return median, p90 and mean milliseconds of ``function()`` after a short warm-up."""
    for _ in range(min(10, iterations)):
        function()
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1e3)
    samples = np.array(samples)
    return {'median_ms': round(float(np.median(samples)), 4),
            'p90_ms': round(float(np.percentile(samples, 90)), 4),
            'mean_ms': round(float(samples.mean()), 4), 'iterations': iterations}


def machine_info():
    """Describe the machine and library versions."""
    import onnxruntime
    cpu = platform.processor()
    try:
        with open('/proc/cpuinfo') as info:
            cpu = next((line.split(':', 1)[1].strip() for line in info
                        if line.startswith('model name')), cpu)
    except OSError:
        pass
    return {'machine': platform.machine(), 'cpu': cpu, 'cpus': os.cpu_count(),
            'python': platform.python_version(), 'numpy': np.__version__,
            'opencv': cv2.__version__, 'onnxruntime': onnxruntime.__version__}


def synthetic_outputs(num_classes, seed=0):
    """Return (ultralytics, split) 80-class-style outputs with a few confident objects."""
    rng = np.random.default_rng(seed)
    strides, size = (8, 16, 32), 640
    anchors = sum((size // s) ** 2 for s in strides)
    single = np.zeros((1, 4 + num_classes, anchors), np.float32)
    single[0, :2] = rng.uniform(0, size, (2, anchors))
    single[0, 2:4] = rng.uniform(8, 200, (2, anchors))
    # background sigmoid scores of a trained model are ~1e-3 (the demo model's max is 0.012)
    single[0, 4:] = rng.uniform(0, 0.004, (num_classes, anchors))
    hits = rng.choice(anchors, 60, replace=False)
    single[0, 4 + rng.integers(0, num_classes, hits.size), hits] = rng.uniform(0.3, 0.9, 60)
    split = []
    for stride in strides:
        grid = size // stride
        cls = rng.uniform(0, 0.004, (1, num_classes, grid, grid)).astype(np.float32)
        cells = rng.choice(grid * grid, 20, replace=False)
        cls.reshape(num_classes, -1)[rng.integers(0, num_classes, 20), cells] = 0.8
        split += [rng.normal(0, 2, (1, 64, grid, grid)).astype(np.float32), cls,
                  np.minimum(cls.sum(axis=1, keepdims=True), 1.0)]
    return [single], split


def main(argv=None):
    """Run the measurements and print one JSON document."""
    parser = argparse.ArgumentParser(description='YOLO pre/post-processing benchmark')
    parser.add_argument('--iterations', type=int, default=300)
    parser.add_argument('--conf', type=float, default=0.25)
    args = parser.parse_args(argv)

    model = demo_assets.fetch_model()
    image = cv2.imread(str(demo_assets.fetch_images()[0]))
    frame = cv2.resize(image, (int(round(image.shape[1] * 720 / image.shape[0])), 720),
                       interpolation=cv2.INTER_AREA)
    wide = cv2.resize(image[:608], (1280, 720))  # a 16:9 720p frame, the pipeline's usual
    settings = DetectionSettings(conf_threshold=args.conf)
    report = {'benchmark': 'postprocess', 'machine': machine_info(),
              'inputs': {'model': model.name, 'image': 'bus.jpg', 'frame_720p': list(
                  frame.shape[1::-1]), 'conf_threshold': args.conf,
                  'iou_threshold': settings.iou_threshold}, 'results': {}}
    results = report['results']

    letterbox = Letterbox((640, 640))
    results['letterbox_1280x720'] = timed_ms(lambda: letterbox(wide), args.iterations)
    results['letterbox_bus_540x720'] = timed_ms(lambda: letterbox(frame), args.iterations)

    backend = OnnxBackend(model, threads=1)
    backend.load()
    tensor, geometry = letterbox(frame)
    single = backend.infer(tensor)
    results['onnxruntime_infer_1_thread'] = timed_ms(lambda: backend.infer(tensor),
                                                     max(20, args.iterations // 10))

    decoder = YoloDecoder((640, 640))
    count = len(decoder.decode(single, settings)[1])
    results['decode_nms_ultralytics_real'] = dict(
        timed_ms(lambda: decoder.decode(single, settings), args.iterations),
        detections=count, output_shapes=[list(o.shape) for o in single])
    try:
        from rk_yolo_ros.model_tools.split_head_export import export_split_heads
        with tempfile.TemporaryDirectory() as folder:
            split_backend = OnnxBackend(export_split_heads(model, pathlib.Path(folder) / 's.onnx'))
            split_backend.load()
            split = split_backend.infer(tensor)
        count = len(decoder.decode(split, settings)[1])
        results['decode_nms_rknn_split_real'] = dict(
            timed_ms(lambda: decoder.decode(split, settings), args.iterations),
            detections=count, output_shapes=[list(o.shape) for o in split])
    except ImportError as error:
        results['decode_nms_rknn_split_real'] = f'skipped: {error}'

    synthetic_single, synthetic_split = synthetic_outputs(80)
    for name, outputs in (('decode_nms_ultralytics_synthetic_80cls', synthetic_single),
                          ('decode_nms_rknn_split_synthetic_80cls', synthetic_split)):
        count = len(decoder.decode(outputs, settings)[1])
        results[name] = dict(timed_ms(lambda: decoder.decode(outputs, settings),
                                      args.iterations), detections=count)

    boxes, scores, class_ids = decoder.decode(single, settings)
    frame_boxes = geometry.to_frame(boxes)
    canvas = frame.copy()
    results['draw'] = dict(timed_ms(lambda: draw_detections(canvas, frame_boxes, scores,
                                                            class_ids, ['Normal', 'Fall']),
                                    args.iterations), detections=len(scores))
    real = [results['decode_nms_ultralytics_real']['median_ms']]
    if isinstance(results['decode_nms_rknn_split_real'], dict):
        real.append(results['decode_nms_rknn_split_real']['median_ms'])
    report['target'] = {'decode_nms_ms': TARGET_DECODE_MS,
                        'met_on_real_outputs': bool(max(real) <= TARGET_DECODE_MS)}
    print(json.dumps(report, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
