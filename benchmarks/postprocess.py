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
80-class outputs (COCO-sized) for both families.

Crowds, low thresholds (0.01 for mAP runs) and 80-class models give hundreds or thousands of
NMS candidates, so decode + NMS is also timed on synthetic 80-class split heads holding exactly
100, 500, 1000 and 3000 candidates clustered around 40 objects, side by side, on the same
tensors and in the same run, with the reference design's post-processing (the seed guide's
``post_process``, re-implemented here from its description: DFL and boxes for every anchor,
class maximum over every anchor, class-agnostic ``cv2.dnn.NMSBoxes`` on Python lists). Run::

    python benchmarks/postprocess.py [--iterations 300] [--clustered-only]
"""

import argparse
import json
import pathlib
import sys
import tempfile
import time

import cv2
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from rk_yolo_ros.core.frame_processing import DetectionSettings  # noqa: E402
from rk_yolo_ros.offline import throughput_benchmark  # noqa: E402
from rk_yolo_ros.yolo import demo_assets  # noqa: E402
from rk_yolo_ros.yolo.backends.onnx_backend import OnnxBackend  # noqa: E402
from rk_yolo_ros.yolo.decode import YoloDecoder  # noqa: E402
from rk_yolo_ros.yolo.drawing import draw_detections  # noqa: E402
from rk_yolo_ros.yolo.letterbox import Letterbox  # noqa: E402

TARGET_DECODE_MS = 0.5
# decode + NMS targets on clustered 80-class split heads: candidates -> milliseconds
TARGET_CLUSTERED_MS = {100: 0.5, 1000: 1.5, 3000: 5.0}
STRIDES = (8, 16, 32)


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


def timed_side_by_side(first, second, iterations, blocks=5):
    """
    Time two functions in alternating blocks, so load changes hit both alike.

    Blocks rather than call by call: one function's large arrays would otherwise evict the
    other's data between calls. Wall time, and this process's CPU time (less disturbed when
    other processes share the cores).
    """
    for _ in range(min(10, iterations)):
        first()
        second()
    wall, cpu = ([], []), ([], [])
    for _ in range(blocks):
        for index, function in enumerate((first, second)):
            for _ in range(max(1, iterations // blocks)):
                started, started_cpu = time.perf_counter(), time.process_time()
                function()
                cpu[index].append((time.process_time() - started_cpu) * 1e3)
                wall[index].append((time.perf_counter() - started) * 1e3)
    return [{'median_ms': round(float(np.median(w)), 4),
             'p90_ms': round(float(np.percentile(w, 90)), 4),
             'mean_ms': round(float(np.mean(w)), 4),
             'cpu_median_ms': round(float(np.median(c)), 4), 'iterations': len(w)}
            for w, c in zip(wall, cpu)]


def machine_info():
    """Describe the machine, as every benchmark here does, and the ONNX Runtime version."""
    import onnxruntime
    return dict(throughput_benchmark.machine_info(), onnxruntime=onnxruntime.__version__)


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


def clustered_split_heads(num_candidates, num_classes=80, num_objects=40, conf=0.25, seed=0,
                          size=640):
    """
    Return model-zoo split heads (box, class, score sum per stride, NCHW) of a crowded image.

    Exactly num_candidates anchors score above conf, all around num_objects objects: each is
    an anchor whose center lies in an object's box, with that box jittered (sides +-15%,
    center +-5% of the size) as its DFL box and a score in (conf, 0.95] for the object's class,
    or in one of every five for the object's look-alike class. The rest is background.
    """
    rng = np.random.default_rng(seed)
    centers = rng.uniform(60, size - 60, (num_objects, 2))
    sizes = rng.uniform(40, 220, (num_objects, 2))
    primary = rng.integers(0, num_classes, num_objects)
    look_alikes = (primary + rng.integers(1, max(2, num_classes), num_objects)) % num_classes
    classes = np.stack([primary, look_alikes], axis=1)
    pool = []  # (stride, cell, object) of every anchor inside an object's box
    for stride in STRIDES:
        grid = size // stride
        middles = (np.arange(grid) + 0.5) * stride
        for index, (center, extent) in enumerate(zip(centers, sizes)):
            cols = np.flatnonzero(np.abs(middles - center[0]) < extent[0] / 2)
            rows = np.flatnonzero(np.abs(middles - center[1]) < extent[1] / 2)
            cells = (rows[:, None] * grid + cols[None, :]).ravel()
            pool.append(np.stack([np.full(cells.size, stride), cells,
                                  np.full(cells.size, index)], axis=1))
    pool = np.concatenate(pool)
    pool = pool[np.sort(np.unique(pool[:, :2], axis=0, return_index=True)[1])]
    if len(pool) < num_candidates:
        raise ValueError(f'only {len(pool)} anchors lie in the objects; ask for fewer')
    chosen = pool[rng.choice(len(pool), num_candidates, replace=False)]
    outputs = []
    for stride in STRIDES:
        grid = size // stride
        box = rng.normal(0, 1, (4, 16, grid * grid)).astype(np.float32)
        cls = rng.uniform(0, 0.004, (num_classes, grid * grid)).astype(np.float32)
        cell, owner = chosen[chosen[:, 0] == stride, 1], chosen[chosen[:, 0] == stride, 2]
        anchor = np.stack([cell % grid + 0.5, cell // grid + 0.5], axis=1) * stride
        middle = centers[owner] + sizes[owner] * rng.normal(0, 0.05, (cell.size, 2))
        half = sizes[owner] / 2 * rng.uniform(0.85, 1.15, (cell.size, 2))
        sides = np.concatenate([anchor - (middle - half), (middle + half) - anchor], axis=1)
        sides = np.clip(sides / stride, 0, 15)  # l, t, r, b in grid cells
        peaks = -2.0 * (np.arange(16)[None, None, :] - sides[:, :, None]) ** 2 + 4
        box[:, :, cell] += peaks.transpose(1, 2, 0).astype(np.float32)
        look_alike = (rng.random(cell.size) < 0.2).astype(int)
        cls[classes[owner, look_alike], cell] = rng.uniform(conf + 0.02, 0.95, cell.size)
        cls = cls.reshape(1, num_classes, grid, grid)
        outputs += [box.reshape(1, 64, grid, grid), cls,
                    np.minimum(cls.sum(axis=1, keepdims=True), 1.0)]
    return outputs


def reference_design_post_process(outputs, conf, iou, input_size=(640, 640)):
    """
    Decode and NMS as the reference design (seed guide) does, written anew for comparison.

    Per grid size, the 64-channel tensor is the box and the first other tensor in output order
    the class scores. The DFL softmax and the box of every anchor are computed, all anchors of
    all strides are flattened, the best class of every anchor is taken, anchors scoring
    >= conf are kept and handed, as Python lists of x, y, w, h, to cv2.dnn.NMSBoxes, which
    ignores classes. Return boxes (x1y1x2y2), class ids and scores of the kept anchors.
    """
    by_grid = {}
    for output in outputs:
        by_grid.setdefault(output.shape[2], []).append(output)
    all_boxes, all_scores = [], []
    for grid_h in sorted(by_grid, reverse=True):
        tensors = by_grid[grid_h]
        box = next(t for t in tensors if t.shape[1] == 64)
        cls = next(t for t in tensors if t is not box)
        _, _, height, width = box.shape
        logits = box.reshape(4, 16, height, width)
        weights = np.exp(logits - logits.max(axis=1, keepdims=True))
        weights /= weights.sum(axis=1, keepdims=True)
        distances = (weights * np.arange(16, dtype=np.float32).reshape(1, 16, 1, 1)).sum(axis=1)
        cols, rows = np.meshgrid(np.arange(width), np.arange(height))
        stride_x, stride_y = input_size[0] // width, input_size[1] // height
        corners = np.stack([(cols + 0.5 - distances[0]) * stride_x,
                            (rows + 0.5 - distances[1]) * stride_y,
                            (cols + 0.5 + distances[2]) * stride_x,
                            (rows + 0.5 + distances[3]) * stride_y])
        all_boxes.append(corners.reshape(4, -1).T)
        all_scores.append(cls[0].reshape(cls.shape[1], -1).T)
    boxes, scores = np.concatenate(all_boxes), np.concatenate(all_scores)
    best, class_ids = scores.max(axis=1), scores.argmax(axis=1)
    passing = np.flatnonzero(best >= conf)
    boxes, best, class_ids = boxes[passing], best[passing], class_ids[passing]
    if not passing.size:
        return boxes, class_ids, best
    xywh = boxes.copy()
    xywh[:, 2:] -= xywh[:, :2]
    keep = np.asarray(cv2.dnn.NMSBoxes(xywh.tolist(), best.tolist(), conf, iou),
                      np.int64).reshape(-1)
    return boxes[keep], class_ids[keep], best[keep]


def clustered_comparison(counts, iterations, conf, max_detections):
    """Time our decode + NMS and the reference design's on the same clustered tensors."""
    decoder = YoloDecoder((640, 640))
    settings = DetectionSettings(conf_threshold=conf, max_detections=max_detections)
    results = {}
    for count in counts:
        outputs = clustered_split_heads(count, conf=conf)
        candidates = sum(int((o.max(axis=1) > conf).sum()) for o in outputs if o.shape[1] == 80)
        ours, reference = timed_side_by_side(
            lambda: decoder.decode(outputs, settings),
            lambda: reference_design_post_process(outputs, conf, settings.iou_threshold),
            iterations if count < 1000 else max(20, iterations // 3))
        entry = {'candidates': candidates,
                 'detections': {'ours': len(decoder.decode(outputs, settings)[1]),
                                'reference_design': len(reference_design_post_process(
                                    outputs, conf, settings.iou_threshold)[2])},
                 'ours': ours, 'reference_design': reference,
                 'reference_over_ours': round(reference['median_ms'] / ours['median_ms'], 2),
                 'reference_over_ours_cpu': round(
                     reference['cpu_median_ms'] / ours['cpu_median_ms'], 2)}
        if count in TARGET_CLUSTERED_MS:
            entry['target_ms'] = TARGET_CLUSTERED_MS[count]
            entry['target_met'] = bool(ours['median_ms'] <= TARGET_CLUSTERED_MS[count])
        results[str(count)] = entry
    return results


def main(argv=None):
    """Run the measurements and print one JSON document."""
    parser = argparse.ArgumentParser(description='YOLO pre/post-processing benchmark')
    parser.add_argument('--iterations', type=int, default=300)
    parser.add_argument('--conf', type=float, default=0.25)
    parser.add_argument('--counts', default='100,500,1000,3000',
                        help='candidate counts of the clustered comparison')
    parser.add_argument('--max-detections', type=int, default=300,
                        help='max_detections of the clustered comparison')
    parser.add_argument('--clustered-only', action='store_true',
                        help='only the clustered comparison (no model, no image needed)')
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.counts.split(',')]
    inputs = {
        'tensors': 'model-zoo split heads, NCHW box (64) / class (80) / score sum (1) for '
                   'strides 8, 16, 32 of a 640x640 input; candidates clustered around 40 '
                   'objects (see clustered_split_heads)',
        'conf_threshold': args.conf, 'iou_threshold': DetectionSettings().iou_threshold,
        'max_detections': args.max_detections, 'classes': 80, 'objects': 40,
        'reference_design': 'benchmarks/postprocess.py reference_design_post_process: the '
                            'seed guide post_process algorithm (DFL for all anchors, '
                            'class-agnostic cv2.dnn.NMSBoxes)'}
    clustered = {'inputs': inputs, 'results': clustered_comparison(
        counts, args.iterations, args.conf, args.max_detections)}
    if args.clustered_only:
        print(json.dumps({'benchmark': 'postprocess', 'machine': machine_info(),
                          'clustered_80cls': clustered}, indent=1))
        return 0

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
    report['clustered_80cls'] = clustered
    print(json.dumps(report, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
