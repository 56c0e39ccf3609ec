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
Decode YOLO detection outputs into boxes, scores and classes, then run class-aware NMS.

Two output families, recognised from the tensor SHAPES (never from their order):

- Ultralytics: one tensor ``(1, 4 + nc, anchors)`` or its transpose ``(1, anchors, 4 + nc)``;
  boxes are center-x, center-y, width, height in model-input pixels, class scores are sigmoids.
- RKNN model zoo (split heads): per stride (8, 16, 32, ...) a box tensor of 4 * 16 = 64 DFL
  logits, a class tensor of nc sigmoid scores and optionally a 1-channel score sum (the class
  scores summed and clipped to 1), NCHW ``(1, C, H, W)`` or NHWC ``(1, H, W, C)``, in any order.

Roles inside one stride are given by channel count: 64 is the box, 1 is the score sum, the
other is the class tensor. Two cases cannot be told apart by shape and are resolved so:

- nc == 1 with a score sum: channels are 64, 1, 1. The class tensor and the score sum then
  hold the same numbers (the sum of one sigmoid, clipped to 1, is that sigmoid), so either is
  correct; the first of the two in output order is taken as the class scores.
- nc == 64: channels are 64, 64 (, 1). The box tensor is taken to be the first 64-channel
  tensor of that stride in output order, as the model zoo exports it (box, class, sum).

When every tensor also parses in the other memory layout (a class count equal to a grid size),
NCHW is assumed (what RK3588 returns); pass ``layout='nhwc'`` to override.

The score threshold runs BEFORE the DFL softmax so only candidates pay for it, and the score
sum (when present) prefilters anchors before the class maximum is taken. Grids, strides and
DFL constants are cached once per set of output shapes.
"""

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

REG_MAX = 16
BOX_CHANNELS = 4 * REG_MAX
KNOWN_STRIDES = (4, 8, 16, 32, 64, 128)
# Up to this many NMS candidates the full IoU matrix is the fastest; above, cluster rounds.
DENSE_NMS_LIMIT = 32


class DecodeError(ValueError):
    """The model's outputs do not match a YOLO layout this decoder knows."""


@dataclass
class _Head:
    """One stride of a split-head model: which outputs hold what, and its anchor centers."""

    stride: int
    grid: Tuple[int, int]  # (height, width)
    box: int
    cls: int
    score_sum: Optional[int]
    centers_x: np.ndarray  # (H * W,) anchor centers in model-input pixels
    centers_y: np.ndarray


@dataclass
class _Plan:
    """How to read one set of output shapes, computed once and cached."""

    family: str  # 'ultralytics' or 'rknn_split'
    num_classes: int
    index: int = 0  # ultralytics: which output
    transposed: bool = False  # ultralytics: (1, anchors, 4 + nc)
    nhwc: bool = False  # split heads
    heads: Tuple[_Head, ...] = ()


def _describe(shapes) -> str:
    return ', '.join(str(tuple(s)) for s in shapes)


def expected_anchor_count(input_size: Tuple[int, int], strides=(8, 16, 32)) -> int:
    """Return the anchor count of a (width, height) input over the given strides."""
    width, height = input_size
    return sum((height // s) * (width // s) for s in strides)


class YoloDecoder:
    """Decode raw YOLO outputs for one model input size; thresholds come per call."""

    def __init__(self, input_size: Tuple[int, int] = (640, 640), layout: Optional[str] = None):
        """Store the (width, height) model input; ``layout`` forces 'nchw' or 'nhwc' heads."""
        if layout not in (None, 'nchw', 'nhwc'):
            raise ValueError(f"layout must be None, 'nchw' or 'nhwc', got {layout!r}")
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.layout = layout
        self._plans: Dict[Tuple[Tuple[int, ...], ...], _Plan] = {}
        self._projection = np.arange(REG_MAX, dtype=np.float32)

    # ---------------------------------------------------------------- layout detection
    def plan(self, outputs: Sequence[np.ndarray]) -> _Plan:
        """Return the (cached) reading plan for these outputs; raise DecodeError if none fits."""
        key = tuple(tuple(int(d) for d in o.shape) for o in outputs)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._make_plan(key)
            self._plans[key] = plan
        return plan

    def family(self, outputs: Sequence[np.ndarray]) -> str:
        """Return 'ultralytics' or 'rknn_split' for these outputs."""
        return self.plan(outputs).family

    def num_classes(self, outputs: Sequence[np.ndarray]) -> int:
        """Return the class count these outputs carry."""
        return self.plan(outputs).num_classes

    def _make_plan(self, shapes) -> _Plan:
        if not shapes:
            raise DecodeError('the model returned no outputs; expected YOLO detection outputs')
        if len(shapes) == 1:
            return self._ultralytics_plan(shapes)
        return self._split_plan(shapes)

    def _ultralytics_plan(self, shapes) -> _Plan:
        shape = shapes[0]
        if len(shape) == 2:
            shape = (1,) + shape
        if len(shape) != 3 or shape[0] != 1:
            raise DecodeError(f'unexpected output shape {_describe(shapes)}; expected one '
                              '(1, 4 + classes, anchors) tensor or its transpose, or per-stride '
                              'split heads')
        anchors = expected_anchor_count(self.input_size)
        if shape[2] == anchors:
            transposed = False
        elif shape[1] == anchors:
            transposed = True
        else:  # unusual strides: anchors outnumber channels in any real model
            transposed = shape[1] > shape[2]
        channels = shape[2] if transposed else shape[1]
        if channels < 5:
            raise DecodeError(f'unexpected output shape {_describe(shapes)}: {channels} values '
                              'per anchor; expected 4 box values + at least one class score')
        return _Plan('ultralytics', num_classes=channels - 4, transposed=transposed)

    def _grid_stride(self, height: int, width: int) -> Optional[int]:
        input_w, input_h = self.input_size
        for stride in KNOWN_STRIDES:
            if input_h // stride == height and input_w // stride == width:
                return stride
        return None

    def _parse(self, shapes, nhwc: bool):
        """Group outputs by stride under one layout; return {stride: [(index, ch)]} or None."""
        groups: Dict[int, List[Tuple[int, int]]] = {}
        for index, shape in enumerate(shapes):
            if len(shape) != 4 or shape[0] != 1:
                return None
            height, width, channels = ((shape[1], shape[2], shape[3]) if nhwc
                                       else (shape[2], shape[3], shape[1]))
            stride = self._grid_stride(height, width)
            if stride is None:
                return None
            groups.setdefault(stride, []).append((index, channels))
        return groups

    def _split_plan(self, shapes) -> _Plan:
        layouts = [self.layout == 'nhwc'] if self.layout else [False, True]
        groups = None
        for nhwc in layouts:  # NCHW first: RK3588's native layout wins a tie
            groups = self._parse(shapes, nhwc)
            if groups is not None:
                break
        if groups is None:
            raise DecodeError(
                f'unexpected output shapes {_describe(shapes)}; for a {self.input_size[0]}x'
                f'{self.input_size[1]} input expected one (1, 4 + classes, anchors) tensor or '
                'per-stride split heads (1, C, H, W) / (1, H, W, C) with H, W = input / stride')
        heads, class_counts = [], set()
        for stride in sorted(groups):
            box, cls, score_sum = self._assign_roles(stride, groups[stride], shapes)
            class_counts.add(dict(groups[stride])[cls])
            grid_h, grid_w = self.input_size[1] // stride, self.input_size[0] // stride
            cols, rows = np.meshgrid(np.arange(grid_w, dtype=np.float32),
                                     np.arange(grid_h, dtype=np.float32))
            heads.append(_Head(stride, (grid_h, grid_w), box, cls, score_sum,
                               ((cols.ravel() + 0.5) * stride).astype(np.float32),
                               ((rows.ravel() + 0.5) * stride).astype(np.float32)))
        if len(class_counts) != 1:
            raise DecodeError(f'split-head outputs {_describe(shapes)} disagree on the class '
                              f'count across strides: {sorted(class_counts)}')
        return _Plan('rknn_split', num_classes=class_counts.pop(), nhwc=nhwc,
                     heads=tuple(heads))

    @staticmethod
    def _assign_roles(stride, members, shapes):
        """Return (box, class, score_sum or None) output indices of one stride."""
        members = sorted(members)  # output order breaks the documented ties
        channels = [c for _, c in members]
        expected = ('expected a 64-channel DFL box tensor, an nc-channel class tensor and '
                    'optionally a 1-channel score sum')
        if len(members) not in (2, 3) or BOX_CHANNELS not in channels:
            raise DecodeError(f'stride {stride} has outputs with channels {channels} '
                              f'(shapes {_describe([shapes[i] for i, _ in members])}); {expected}')
        box_pos = channels.index(BOX_CHANNELS)
        rest = [m for k, m in enumerate(members) if k != box_pos]
        if len(rest) == 1:
            return members[box_pos][0], rest[0][0], None
        ones = [m for m in rest if m[1] == 1]
        if not ones:
            raise DecodeError(f'stride {stride} has three outputs with channels {channels} '
                              f'(shapes {_describe([shapes[i] for i, _ in members])}) but none '
                              f'with 1 channel; {expected}')
        score_sum = ones[-1]  # with nc == 1 the earlier 1-channel tensor is the class tensor
        cls = [m for m in rest if m is not score_sum][0]
        return members[box_pos][0], cls[0], score_sum[0]

    # ---------------------------------------------------------------- decoding
    def decode(self, outputs: Sequence[np.ndarray], settings
               ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """
        Decode, threshold, filter classes and NMS one image's outputs.

        ``settings`` is a DetectionSettings (conf_threshold, iou_threshold, max_detections,
        classes). Return boxes (N, 4) float32 x1y1x2y2 in model-input pixels, scores (N,)
        float32 and class ids (N,) int32, best score first.
        """
        plan = self.plan(outputs)
        if plan.family == 'ultralytics':
            boxes, scores, class_ids = self._candidates_ultralytics(plan, outputs, settings)
        else:
            boxes, scores, class_ids = self._candidates_split(plan, outputs, settings)
        if settings.classes is not None and len(scores):
            wanted = np.isin(class_ids, np.asarray(settings.classes, np.int32))
            boxes, scores, class_ids = boxes[wanted], scores[wanted], class_ids[wanted]
        keep = nms_per_class(boxes, scores, class_ids, settings.iou_threshold,
                             settings.max_detections)
        return boxes[keep], scores[keep], class_ids[keep]

    @staticmethod
    def _candidates_ultralytics(plan, outputs, settings):
        output = outputs[plan.index]
        table = output.reshape(output.shape[-2:]) if output.ndim == 3 else output
        if plan.transposed:
            table = table.T  # a view: (4 + nc, anchors)
        class_scores = table[4:]
        best = class_scores[0] if plan.num_classes == 1 else class_scores.max(axis=0)
        candidates = np.flatnonzero(best > settings.conf_threshold)
        scores = best[candidates].astype(np.float32)
        if plan.num_classes == 1:
            class_ids = np.zeros(candidates.size, np.int32)
        else:
            class_ids = class_scores[:, candidates].argmax(axis=0).astype(np.int32)
        xywh = table[:4, candidates].astype(np.float32)
        half_w, half_h = xywh[2] / 2, xywh[3] / 2
        boxes = np.stack([xywh[0] - half_w, xywh[1] - half_h,
                          xywh[0] + half_w, xywh[1] + half_h], axis=1)
        return boxes, scores, class_ids

    def _candidates_split(self, plan, outputs, settings):
        conf = settings.conf_threshold
        nc = plan.num_classes
        found = []  # per stride: head, kept cells, scores, class ids, DFL logits
        for head in plan.heads:
            cells = head.grid[0] * head.grid[1]
            if plan.nhwc:
                cls = outputs[head.cls].reshape(cells, nc).T  # (nc, cells) view
            else:
                cls = outputs[head.cls].reshape(nc, cells)
            if head.score_sum is not None:
                # sum >= every class score, so this never drops a true candidate
                total = outputs[head.score_sum].reshape(cells)
                cells_kept = np.flatnonzero(total > conf)
            elif nc == 1:
                cells_kept = np.flatnonzero(cls[0] > conf)
            else:
                cells_kept = np.flatnonzero(cls.max(axis=0) > conf)
            if cells_kept.size == 0:
                continue
            cls_kept = cls[:, cells_kept]
            if nc == 1:
                class_ids = np.zeros(cells_kept.size, np.int32)
                best = cls_kept[0]
            else:  # the score at the first maximum is the maximum: one reduction, not two
                class_ids = cls_kept.argmax(axis=0).astype(np.int32)
                best = cls_kept[class_ids, np.arange(cells_kept.size)]
            if head.score_sum is not None:
                passing = np.flatnonzero(best > conf)
                if passing.size == 0:
                    continue
                cells_kept, best = cells_kept[passing], best[passing]
                class_ids = class_ids[passing]
            if plan.nhwc:
                logits = outputs[head.box].reshape(cells, 4, REG_MAX)[cells_kept]
            else:
                logits = outputs[head.box].reshape(4, REG_MAX, cells)[:, :, cells_kept]
                logits = logits.transpose(2, 0, 1)  # (K, 4, REG_MAX), C-ordered
            found.append((head, cells_kept, best, class_ids, logits))
        if not found:
            return (np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                    np.zeros(0, np.int32))
        heads, cells_kept, scores, class_ids, logits = zip(*found)
        # one DFL and one box assembly for all strides: fewer numpy calls, same arithmetic
        strides = np.concatenate([np.full(cells.size, head.stride, np.float32)
                                  for head, cells in zip(heads, cells_kept)])
        distances = self._dfl(np.concatenate(logits)) * strides[:, None]  # l, t, r, b
        cx = np.concatenate([h.centers_x[c] for h, c in zip(heads, cells_kept)])
        cy = np.concatenate([h.centers_y[c] for h, c in zip(heads, cells_kept)])
        boxes = np.stack([cx - distances[:, 0], cy - distances[:, 1],
                          cx + distances[:, 2], cy + distances[:, 3]], axis=1)
        return boxes, np.concatenate(scores).astype(np.float32), np.concatenate(class_ids)

    def _dfl(self, logits: np.ndarray) -> np.ndarray:
        """
        Return the (K, 4) expected distances, in grid cells, of C-ordered (K, 4, REG_MAX) logits.

        The softmax runs on that C-ordered array (the order matters: the sums round along
        it). Its maximum over the bins is taken on a bins-first copy, one element-wise pass per
        bin, instead of a reduction along a 16-long last axis, which costs numpy a call per
        anchor side; a maximum is exact whichever way it is taken, so every bit of the result
        stays the same.
        """
        logits = logits.astype(np.float32, copy=False)
        peaks = np.maximum.reduce(np.ascontiguousarray(logits.transpose(2, 0, 1)), axis=0)
        weights = np.subtract(logits, peaks[:, :, None])
        np.exp(weights, out=weights)
        return (weights @ self._projection) / weights.sum(axis=2)


def nms_per_class(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray,
                  iou_threshold: float, max_detections: int) -> np.ndarray:
    """
    Return indices kept by greedy class-aware NMS, best score first, at most max_detections.

    Each class is shifted to its own region of the plane (the class-offset trick: class c adds
    c * (largest coordinate + 1) to all four coordinates, in float32), then greedy NMS runs in
    score order (ties: lower index first): a box is dropped when its float32 IoU with an
    already kept box is above the threshold. Boxes of different classes thus never meet unless
    some lie beyond the top-left image corner. Numpy only, so OpenCV 4.5 (no NMSBoxesBatched)
    and newer behave the same.
    """
    if scores.size == 0:
        return np.zeros(0, np.int64)
    span = float(max(boxes.max(), 0.0)) + 1.0
    shifted = boxes + (class_ids.astype(np.float32) * span)[:, None]
    order = np.argsort(-scores, kind='stable')
    ranked = shifted[order]
    if order.size <= DENSE_NMS_LIMIT:
        keep = _greedy_dense(ranked, iou_threshold, max_detections)
    else:
        keep = _greedy_by_clusters(ranked, iou_threshold, max_detections)
        if keep is None:
            keep = _greedy_exact(ranked, iou_threshold, max_detections)
    return order[keep]


def _areas(boxes):
    return np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)


def _ious(a, b):
    """
    Return the float32 IoU of boxes a and b, each (x1, y1, x2, y2, area) arrays or scalars.

    This arithmetic, in this order, is the definition NMS follows bit for bit.
    """
    inter_w = np.maximum(np.minimum(a[2], b[2]) - np.maximum(a[0], b[0]), 0)
    inter_h = np.maximum(np.minimum(a[3], b[3]) - np.maximum(a[1], b[1]), 0)
    inter = inter_w * inter_h
    union = a[4] + b[4] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _columns(ranked, areas, index):
    """Return the boxes at index as x1, y1, x2, y2, area arrays."""
    return [ranked[index, 0], ranked[index, 1], ranked[index, 2], ranked[index, 3], areas[index]]


def _greedy_exact(ranked, iou_threshold, max_detections):
    """Greedy NMS over boxes sorted by score, one box at a time."""
    return _greedy_one_by_one(_columns(ranked, _areas(ranked), slice(None)), iou_threshold,
                              max_detections)


def _greedy_one_by_one(boxes, iou_threshold, max_detections):
    """Greedy NMS over (x1, y1, x2, y2, area) columns in score order, one vector pass per keep."""
    remaining = np.arange(len(boxes[4]))
    keep = []
    while remaining.size and len(keep) < max_detections:
        best, rest = remaining[0], remaining[1:]
        keep.append(best)
        iou = _ious([column[best] for column in boxes], [column[rest] for column in boxes])
        remaining = rest[iou <= iou_threshold]
    return np.asarray(keep, np.int64)


def _greedy_dense(ranked, iou_threshold, max_detections):
    """Greedy NMS over boxes sorted by score, from the full IoU matrix (for few boxes)."""
    boxes = _columns(ranked, _areas(ranked), slice(None))
    overlaps = _ious([c[:, None] for c in boxes], [c[None, :] for c in boxes]) > iou_threshold
    suppressed = np.zeros(len(ranked), bool)
    keep = []
    for index in range(len(ranked)):
        if not suppressed[index]:
            keep.append(index)
            if len(keep) == max_detections:
                break
            suppressed |= overlaps[index]
    return np.asarray(keep, np.int64)


def _greedy_by_clusters(ranked, iou_threshold, max_detections):
    """
    Return _greedy_exact's result, computed for all clusters at once; None if it cannot.

    Boxes are split into clusters along x: sorted by x1, a new cluster starts where x1 reaches
    the largest x2 so far, so boxes of different clusters never intersect (IoU 0, which with a
    threshold >= 0 suppresses nothing) and greedy NMS can run on each cluster alone. Each round
    keeps the best remaining box of every cluster and drops the boxes of its cluster that it
    overlaps above the threshold, with _greedy_exact's arithmetic, until one cluster is left,
    which finishes one box at a time. With the class offset putting classes in clusters of
    their own, rounds number the most boxes one cluster keeps, not all boxes kept.
    """
    areas = _areas(ranked)
    if not iou_threshold >= 0 or not np.isfinite(areas).all():
        return None  # a finite area leaves no NaN coordinate and no infinite side
    by_x1 = np.argsort(ranked[:, 0])
    starts = ranked[by_x1, 0]
    reach = np.maximum.accumulate(ranked[by_x1, 2])
    cluster = np.empty(len(ranked), np.int64)
    cluster[by_x1] = np.cumsum(np.concatenate(([True], starts[1:] >= reach[:-1])))
    # by cluster, then score (small integer keys make numpy's stable sort a radix sort)
    remaining = np.argsort(cluster.astype(np.uint16) if len(ranked) < 2 ** 16 else cluster,
                           kind='stable')
    cluster = cluster[remaining]
    boxes = _columns(ranked, areas, remaining)
    keep = []
    while remaining.size:
        first = np.concatenate(([True], cluster[1:] != cluster[:-1]))
        leaders = np.flatnonzero(first)
        if leaders.size == 1:
            keep.append(remaining[_greedy_one_by_one(boxes, iou_threshold, max_detections)])
            break
        keep.append(remaining[leaders])
        which = leaders[np.cumsum(first) - 1]  # each box's cluster leader
        survivors = _ious([column[which] for column in boxes], boxes) <= iou_threshold
        survivors[leaders] = False
        remaining, cluster = remaining[survivors], cluster[survivors]
        boxes = [column[survivors] for column in boxes]
    return np.sort(np.concatenate(keep))[:max_detections]
