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

"""Tests for YOLO output decoding (both families) and class-aware NMS."""

import itertools

import numpy as np
import pytest

from rk_yolo_ros.core.frame_processing import DetectionSettings
from rk_yolo_ros.yolo import decode as yolo_decode
from rk_yolo_ros.yolo.decode import DecodeError, nms_per_class, YoloDecoder

SIZE = (640, 640)
STRIDES = (8, 16, 32)
BACKGROUND = 0.01

# (stride, row, col, class id, score, (left, top, right, bottom) in grid cells, < 16)
OBJECTS = [
    (8, 10, 12, 3, 0.91, (2, 3, 4, 5)),
    (16, 20, 5, 0, 0.72, (1, 1, 6, 9)),
    (32, 7, 15, 2, 0.55, (3, 4, 2, 3)),
    (32, 12, 3, 1, 0.30, (5, 2, 5, 2)),
]


def expected_boxes(objects=OBJECTS):
    """Return the x1y1x2y2 boxes the objects describe, in model-input pixels."""
    boxes = []
    for stride, row, col, _, _, (left, top, right, bottom) in objects:
        cx, cy = (col + 0.5) * stride, (row + 0.5) * stride
        boxes.append([cx - left * stride, cy - top * stride, cx + right * stride,
                      cy + bottom * stride])
    return np.array(boxes, np.float32)


def split_heads(num_classes, objects=OBJECTS, score_sum=True):
    """Build model-zoo split-head outputs (NCHW, box/cls/sum per stride) holding the objects."""
    outputs = []
    for stride in STRIDES:
        grid = SIZE[1] // stride
        box = np.zeros((1, 64, grid, grid), np.float32)
        cls = np.full((1, num_classes, grid, grid), BACKGROUND, np.float32)
        for s, row, col, class_id, score, sides in objects:
            if s != stride:
                continue
            for side, distance in enumerate(sides):
                box[0, side * 16 + distance, row, col] = 30.0  # softmax ~ one-hot at distance
            cls[0, class_id, row, col] = score
        outputs += [box, cls]
        if score_sum:
            outputs.append(np.minimum(cls.sum(axis=1, keepdims=True), 1.0))
    return outputs


def ultralytics_output(num_classes, objects=OBJECTS):
    """Build the single (1, 4 + nc, 8400) output holding the same objects."""
    anchors = sum((SIZE[1] // s) ** 2 for s in STRIDES)
    output = np.zeros((1, 4 + num_classes, anchors), np.float32)
    output[0, 4:] = BACKGROUND
    offsets = dict(zip(STRIDES, np.cumsum([0] + [(SIZE[1] // s) ** 2 for s in STRIDES])))
    for (stride, row, col, class_id, score, _), box in zip(objects, expected_boxes(objects)):
        anchor = offsets[stride] + row * (SIZE[1] // stride) + col
        output[0, :4, anchor] = [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2,
                                 box[2] - box[0], box[3] - box[1]]
        output[0, 4 + class_id, anchor] = score
    return [output]


def _sorted(result):
    boxes, scores, class_ids = result
    order = np.argsort(-scores)
    return boxes[order], scores[order], class_ids[order]


def _check(result, objects=OBJECTS, conf=0.25):
    boxes, scores, class_ids = _sorted(result)
    wanted = [o for o in objects if o[4] > conf]
    wanted.sort(key=lambda o: -o[4])
    np.testing.assert_allclose(boxes, expected_boxes(wanted), atol=1e-3)
    np.testing.assert_allclose(scores, [o[4] for o in wanted], atol=1e-6)
    assert class_ids.tolist() == [o[3] for o in wanted]


@pytest.mark.parametrize('transposed', [False, True])
def test_ultralytics_output_and_its_transpose(transposed):
    output = ultralytics_output(5)
    if transposed:
        output = [np.ascontiguousarray(output[0].transpose(0, 2, 1))]
    decoder = YoloDecoder(SIZE)
    assert decoder.family(output) == 'ultralytics' and decoder.num_classes(output) == 5
    _check(decoder.decode(output, DetectionSettings(conf_threshold=0.25)))


@pytest.mark.parametrize('num_classes,score_sum', [(80, True), (80, False), (5, True),
                                                   (64, True), (64, False)])
def test_split_heads_nchw(num_classes, score_sum):
    outputs = split_heads(num_classes, score_sum=score_sum)
    decoder = YoloDecoder(SIZE)
    assert decoder.family(outputs) == 'rknn_split'
    assert decoder.num_classes(outputs) == num_classes
    _check(decoder.decode(outputs, DetectionSettings(conf_threshold=0.25)))


def test_split_heads_single_class_with_score_sum():
    """With one class the class tensor and the score sum are both 1-channel and equal."""
    objects = [(s, r, c, 0, score, sides) for s, r, c, _, score, sides in OBJECTS]
    outputs = split_heads(1, objects)
    decoder = YoloDecoder(SIZE)
    assert decoder.num_classes(outputs) == 1
    _check(decoder.decode(outputs, DetectionSettings(conf_threshold=0.25)), objects)
    _check(decoder.decode(split_heads(1, objects, score_sum=False),
                          DetectionSettings(conf_threshold=0.25)), objects)


@pytest.mark.parametrize('seed', range(4))
def test_split_heads_in_any_order_and_nhwc(seed):
    outputs = split_heads(80)
    order = np.random.default_rng(seed).permutation(len(outputs))
    shuffled = [outputs[i] for i in order]
    _check(YoloDecoder(SIZE).decode(shuffled, DetectionSettings(conf_threshold=0.25)))
    nhwc = [np.ascontiguousarray(o.transpose(0, 2, 3, 1)) for o in shuffled]
    _check(YoloDecoder(SIZE).decode(nhwc, DetectionSettings(conf_threshold=0.25)))


def test_both_families_agree_on_the_same_objects():
    decoder = YoloDecoder(SIZE)
    settings = DetectionSettings(conf_threshold=0.2)
    split = _sorted(decoder.decode(split_heads(7), settings))
    single = _sorted(decoder.decode(ultralytics_output(7), settings))
    for a, b in zip(split, single):
        np.testing.assert_allclose(a, b, atol=1e-3)


def test_thresholds_apply_per_call():
    decoder = YoloDecoder(SIZE)
    outputs = split_heads(80)
    assert len(decoder.decode(outputs, DetectionSettings(conf_threshold=0.25))[1]) == 4
    assert len(decoder.decode(outputs, DetectionSettings(conf_threshold=0.6))[1]) == 2
    assert len(decoder.decode(outputs, DetectionSettings(conf_threshold=0.95))[1]) == 0
    assert len(decoder.decode(outputs, DetectionSettings(max_detections=3))[1]) == 3
    kept = decoder.decode(outputs, DetectionSettings(classes=(0, 2)))[2]
    assert sorted(kept.tolist()) == [0, 2]


def test_overlapping_boxes_of_different_classes_both_survive_nms():
    same_place = [(8, 30, 30, 1, 0.9, (4, 4, 4, 4)), (8, 30, 31, 2, 0.8, (4, 4, 4, 4)),
                  (8, 31, 30, 1, 0.7, (4, 4, 4, 4))]
    boxes, scores, class_ids = YoloDecoder(SIZE).decode(
        ultralytics_output(3, same_place), DetectionSettings(iou_threshold=0.5))
    assert class_ids.tolist() == [1, 2]  # the class-1 duplicate is suppressed
    np.testing.assert_allclose(scores, [0.9, 0.8], atol=1e-6)


def _reference_nms(boxes, scores, class_ids, iou_threshold):
    """Slow per-class greedy NMS written independently with plain Python loops."""
    keep = []
    for cls in set(class_ids.tolist()):
        idx = sorted([i for i in range(len(scores)) if class_ids[i] == cls],
                     key=lambda i: -scores[i])
        while idx:
            best = idx.pop(0)
            keep.append(best)
            survivors = []
            for i in idx:
                ix = max(0.0, min(boxes[best][2], boxes[i][2]) - max(boxes[best][0], boxes[i][0]))
                iy = max(0.0, min(boxes[best][3], boxes[i][3]) - max(boxes[best][1], boxes[i][1]))
                inter = ix * iy
                area = ((boxes[best][2] - boxes[best][0]) * (boxes[best][3] - boxes[best][1])
                        + (boxes[i][2] - boxes[i][0]) * (boxes[i][3] - boxes[i][1]) - inter)
                if inter / area <= iou_threshold:
                    survivors.append(i)
            idx = survivors
    return sorted(keep, key=lambda i: -scores[i])


def _force_nms_path(monkeypatch, path):
    """Make nms_per_class take one of its three ways, whatever the box count."""
    monkeypatch.setattr(yolo_decode, 'DENSE_NMS_LIMIT', 10 ** 9 if path == 'dense' else 0)
    if path == 'one_by_one':  # what the cluster rounds fall back to
        monkeypatch.setattr(yolo_decode, '_greedy_by_clusters', lambda *args: None)


NMS_PATHS = ('dense', 'clusters', 'one_by_one')


@pytest.mark.parametrize('seed,iou,path', list(itertools.product(
    range(5), (0.3, 0.45, 0.7), NMS_PATHS)))
def test_nms_matches_an_independent_reference(seed, iou, path, monkeypatch):
    _force_nms_path(monkeypatch, path)
    rng = np.random.default_rng(seed)
    corners = rng.uniform(0, 200, (150, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(10, 80, (150, 2))], 1)
    boxes = boxes.astype(np.float32)
    scores = rng.permutation(150).astype(np.float32) / 150 + 0.001  # distinct scores
    class_ids = rng.integers(0, 3, 150).astype(np.int32)
    kept = nms_per_class(boxes, scores, class_ids, iou, 1000)
    assert kept.tolist() == _reference_nms(boxes, scores, class_ids, iou)
    assert nms_per_class(boxes, scores, class_ids, iou, 5).tolist() == kept[:5].tolist()


def _greedy_by_definition(boxes, scores, class_ids, iou_threshold, max_detections):
    """
    Class-aware greedy NMS written straight from nms_per_class's definition, pair by pair.

    float32 scalars throughout, like the decoder's boxes: each class is shifted by class id x
    (largest coordinate + 1); boxes are visited best score first, ties lower index first; a
    box is kept unless its IoU with a box kept before exceeds the threshold, compared in
    float32 (numpy's rule for a Python float against float32 values); at most max_detections.
    """
    f32, zero = np.float32, np.float32(0)
    span = f32(float(max(boxes.max(), 0.0)) + 1.0)
    threshold = f32(iou_threshold)
    shifted = [[f32(v) + f32(c) * span for v in box] for box, c in zip(boxes, class_ids)]

    def area(b):
        return max(b[2] - b[0], zero) * max(b[3] - b[1], zero)

    def iou(a, b):
        inter = (max(min(a[2], b[2]) - max(a[0], b[0]), zero)
                 * max(min(a[3], b[3]) - max(a[1], b[1]), zero))
        union = area(a) + area(b) - inter
        return inter / union if union > zero else zero

    kept = []
    for i in sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i)):
        if len(kept) == max_detections:
            break
        if all(iou(shifted[k], shifted[i]) <= threshold for k in kept):
            kept.append(i)
    return kept


def _nms_case(seed):
    """Return random (boxes, scores, class_ids, iou_threshold, max_detections), hard cases."""
    rng = np.random.default_rng(seed)
    kind = ('crowd', 'grid', 'degenerate', 'beyond_corner')[seed % 4]
    count = int(rng.integers(1, 160))
    if kind == 'crowd':  # many jittered boxes around a few objects, some past the image edge
        objects = int(rng.integers(1, 12))
        centers = rng.uniform(-20, 660, (objects, 2))
        sizes = rng.uniform(4, 250, (objects, 2))
        owner = rng.integers(0, objects, count)
        middle = centers[owner] + rng.normal(0, 0.08, (count, 2)) * sizes[owner]
        half = sizes[owner] / 2 * rng.uniform(0.75, 1.25, (count, 2))
        boxes = np.concatenate([middle - half, middle + half], 1)
    elif kind == 'grid':  # small integer boxes: IoUs such as 1/2, 1/3 or 3/10 hit thresholds
        corners = rng.integers(-2, 10, (count, 2))
        boxes = np.concatenate([corners, corners + rng.integers(0, 5, (count, 2))], 1)
    elif kind == 'degenerate':  # duplicates, zero width or height, points
        base = rng.uniform(0, 100, (max(1, count // 4), 2))
        base = np.concatenate([base, base + rng.uniform(0, 40, base.shape)], 1)
        boxes = base[rng.integers(0, len(base), count)]
        flat = rng.random(count) < 0.3
        boxes[flat, 2 + rng.integers(0, 2)] = boxes[flat, rng.integers(0, 2)]
        points = rng.random(count) < 0.1
        boxes[points, 2:] = boxes[points, :2]
    else:  # boxes past the top-left corner meet the previous class's far corner when shifted
        far = rng.uniform(80, 100, (count, 2))
        boxes = np.concatenate([far - rng.uniform(0, 20, (count, 2)), far], 1)
        beyond = rng.random(count) < 0.5
        boxes[beyond] -= 101 + rng.uniform(-3, 3, (int(beyond.sum()), 1))
    boxes = boxes.astype(np.float32)
    if rng.random() < 0.5:
        scores = rng.integers(0, 4, count).astype(np.float32) / 4  # many equal scores
    else:
        scores = rng.random(count).astype(np.float32)
    class_ids = rng.integers(0, int(rng.choice([1, 2, 3, 80])), count).astype(np.int32)
    iou_threshold = float(rng.choice([0.0, 0.3, 1 / 3, 0.45, 0.5, 0.7, 1.0]))
    max_detections = int(rng.choice([1, 7, 100, 10000]))
    return boxes, scores, class_ids, iou_threshold, max_detections


@pytest.mark.parametrize('seed', range(120))
def test_nms_is_identical_to_greedy_nms_by_definition(seed, monkeypatch):
    boxes, scores, class_ids, iou_threshold, max_detections = _nms_case(seed)
    expected = _greedy_by_definition(boxes, scores, class_ids, iou_threshold, max_detections)
    kept = nms_per_class(boxes, scores, class_ids, iou_threshold, max_detections)
    assert kept.dtype == np.int64 and kept.tolist() == expected
    assert len(kept) <= max_detections and np.all(np.diff(scores[kept]) <= 0)
    for path in NMS_PATHS:
        with monkeypatch.context() as patch:
            _force_nms_path(patch, path)
            assert nms_per_class(boxes, scores, class_ids, iou_threshold,
                                 max_detections).tolist() == expected, path


def test_cluster_rounds_handle_every_finite_case():
    """The one-box-at-a-time pass is only a fallback for non-finite boxes."""
    for seed in range(40):
        boxes, scores, class_ids, iou_threshold, max_detections = _nms_case(seed)
        ranked = boxes + (class_ids.astype(np.float32) * (max(boxes.max(), 0) + 1))[:, None]
        assert yolo_decode._greedy_by_clusters(ranked, iou_threshold, max_detections) is not None
    boxes[0, 2] = np.inf
    assert yolo_decode._greedy_by_clusters(boxes, 0.5, 10) is None


def test_nms_shift_lets_a_box_past_the_corner_meet_the_previous_class():
    """
    Keep the class offset as part of the definition, with its one corner case.

    A box wholly past the top-left corner can land on a box of the previous class when
    shifted, and is then suppressed like a duplicate.
    """
    boxes = np.array([[90, 90, 100, 100], [-11, -11, -1, -1]], np.float32)  # offset 101
    scores = np.array([0.9, 0.8], np.float32)
    class_ids = np.array([0, 1], np.int32)
    assert nms_per_class(boxes, scores, class_ids, 0.5, 10).tolist() == [0]
    assert _greedy_by_definition(boxes, scores, class_ids, 0.5, 10) == [0]


def _reference_split_candidates(outputs, num_classes, conf):
    """Decode NCHW box/class(/sum) split heads anchor by anchor, in float64, no NMS."""
    boxes, scores, class_ids = [], [], []
    tensors = iter(outputs)
    for stride in STRIDES:
        box, cls = next(tensors)[0].astype(np.float64), next(tensors)[0]
        if len(outputs) == 3 * len(STRIDES):
            next(tensors)  # the score sum only prefilters
        for row in range(box.shape[1]):
            for col in range(box.shape[2]):
                best = int(np.argmax(cls[:, row, col]))
                if not cls[best, row, col] > conf:
                    continue
                logits = box[:, row, col].reshape(4, 16)
                weights = np.exp(logits - logits.max(axis=1, keepdims=True))
                left, top, right, bottom = (weights @ np.arange(16)) / weights.sum(axis=1)
                cx, cy = (col + 0.5) * stride, (row + 0.5) * stride
                boxes.append([cx - left * stride, cy - top * stride, cx + right * stride,
                              cy + bottom * stride])
                scores.append(cls[best, row, col])
                class_ids.append(best)
    return np.array(boxes).reshape(-1, 4), np.array(scores, np.float32), np.array(class_ids)


@pytest.mark.parametrize('num_classes,score_sum,nhwc',
                         [(80, True, False), (80, False, True), (1, True, True),
                          (1, False, False), (3, True, False)])
def test_split_decode_matches_a_per_anchor_reference(num_classes, score_sum, nhwc):
    rng = np.random.default_rng(num_classes)
    outputs = []
    for stride in STRIDES:
        grid = SIZE[1] // stride
        cls = (rng.random((1, num_classes, grid, grid)) ** (24 * num_classes)).astype(np.float32)
        outputs += [rng.normal(0, 3, (1, 64, grid, grid)).astype(np.float32), cls]
        if score_sum:
            outputs.append(np.minimum(cls.sum(axis=1, keepdims=True), 1.0))
    expected = _reference_split_candidates(outputs, num_classes, 0.3)
    assert 200 < len(expected[1]) < 1000  # about 5% of the anchors
    if nhwc:
        outputs = [np.ascontiguousarray(o.transpose(0, 2, 3, 1)) for o in outputs]
    boxes, scores, class_ids = YoloDecoder(SIZE).decode(
        outputs, DetectionSettings(conf_threshold=0.3, iou_threshold=1.0, max_detections=10000))
    order = np.argsort(-expected[1], kind='stable')
    assert class_ids.tolist() == expected[2][order].tolist()
    np.testing.assert_array_equal(scores, expected[1][order])
    np.testing.assert_allclose(boxes, expected[0][order], rtol=0, atol=1e-3)


@pytest.mark.parametrize('nhwc', [False, True])
def test_dfl_gives_the_plain_softmax_bit_for_bit(nhwc):
    """The faster maximum over the bins must not change a single bit of the distances."""
    rng = np.random.default_rng(7)
    cells = 6400
    box = rng.normal(0, 4, (1, 64, 80, 80)).astype(np.float32)
    kept = np.sort(rng.choice(cells, 700, replace=False))
    logits = box.reshape(4, 16, cells)[:, :, kept].transpose(2, 0, 1).astype(np.float32)
    weights = np.exp(logits - logits.max(axis=2, keepdims=True))
    expected = (weights @ np.arange(16, dtype=np.float32)) / weights.sum(axis=2)
    if nhwc:  # the same logits gathered from the other layout
        logits = np.ascontiguousarray(box.transpose(0, 2, 3, 1)).reshape(cells, 4, 16)[kept]
    np.testing.assert_array_equal(YoloDecoder(SIZE)._dfl(logits), expected)


@pytest.mark.parametrize('shapes', [
    [(1, 3, 80)],  # too few values per anchor
    [(1, 2, 3, 4, 5)],
    [(1, 64, 80, 80), (1, 80, 33, 33)],  # a grid that fits no stride
    [(1, 64, 80, 80), (1, 63, 40, 40), (1, 80, 40, 40)],  # stride 16 without a box tensor
    [(1, 64, 80, 80), (1, 80, 80, 80), (1, 3, 80, 80)],  # third tensor not a 1-ch score sum
])
def test_unexpected_outputs_name_their_shapes(shapes):
    outputs = [np.zeros(s, np.float32) for s in shapes]
    with pytest.raises(DecodeError, match=r'\(1, '):
        YoloDecoder(SIZE).decode(outputs, DetectionSettings())


def test_layout_option_is_validated():
    with pytest.raises(ValueError, match='nchw'):
        YoloDecoder(SIZE, layout='chw')
