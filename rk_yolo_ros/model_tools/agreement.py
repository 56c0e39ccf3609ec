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
How closely two runs of a detector agree: box matching, IoU, score drift, class flips.

Used to compare a converted model (the rknn-toolkit2 simulator, or RKNNLite on a board core)
with the ONNX model it came from, image by image. Boxes are matched class-agnostically by IoU,
so a box found with another class shows up as a class flip rather than a miss plus an extra.

Detections near the confidence threshold flicker in and out under any numeric change, so both
runs are decoded at ``conf_threshold - score_margin``: a reference box counts as missed only if
it scored at least ``conf_threshold`` and the candidate has nothing above the lower threshold
there (and the same the other way round for extra boxes).
"""

from dataclasses import asdict, dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np


@dataclass(frozen=True)
class AgreementThresholds:
    """When a converted model agrees well enough with its reference to pass."""

    match_iou: float = 0.5  # two boxes at or above this IoU are the same object
    score_margin: float = 0.1  # tolerance around the confidence threshold (see module doc)
    min_recall: float = 0.9  # share of reference boxes the candidate finds
    min_precision: float = 0.9  # share of candidate boxes the reference has
    min_mean_iou: float = 0.85  # over matched boxes
    max_mean_score_drift: float = 0.05  # mean |candidate score - reference score| when matched
    max_class_flip_rate: float = 0.05  # share of matched boxes whose class differs

    def __post_init__(self):
        """Reject values outside [0, 1], naming the field."""
        for name, value in asdict(self).items():
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f'agreement threshold {name} must be in [0, 1], got {value}')


@dataclass
class DetectionSet:
    """Detections of one image: boxes (N, 4) x1y1x2y2, scores (N,), class ids (N,)."""

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray

    @classmethod
    def of(cls, detections) -> 'DetectionSet':
        """Build from anything with boxes/scores/class_ids (Detections, DetectionSet, a dict)."""
        get = detections.get if isinstance(detections, dict) else (
            lambda key: getattr(detections, key))
        boxes = np.asarray(get('boxes'), np.float32).reshape(-1, 4)
        scores = np.asarray(get('scores'), np.float32).reshape(-1)
        class_ids = np.asarray(get('class_ids'), np.int64).reshape(-1)
        if not boxes.shape[0] == scores.shape[0] == class_ids.shape[0]:
            raise ValueError(f'detections disagree in length: {boxes.shape[0]} boxes, '
                             f'{scores.shape[0]} scores, {class_ids.shape[0]} class ids')
        return cls(boxes, scores, class_ids)

    def to_json(self) -> Dict[str, list]:
        """Return a JSON-friendly dict (rounded, so files stay readable)."""
        return {'boxes': np.round(self.boxes.astype(np.float64), 2).tolist(),
                'scores': np.round(self.scores.astype(np.float64), 4).tolist(),
                'class_ids': [int(c) for c in self.class_ids]}

    def __len__(self):
        """Return the number of detections."""
        return int(self.scores.shape[0])


def box_iou(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Return the (N, M) IoU matrix of x1y1x2y2 boxes."""
    first = np.asarray(first, np.float32).reshape(-1, 4)[:, None, :]
    second = np.asarray(second, np.float32).reshape(-1, 4)[None, :, :]
    width = np.clip(np.minimum(first[..., 2], second[..., 2]) -
                    np.maximum(first[..., 0], second[..., 0]), 0, None)
    height = np.clip(np.minimum(first[..., 3], second[..., 3]) -
                     np.maximum(first[..., 1], second[..., 1]), 0, None)
    inter = width * height
    area_first = (first[..., 2] - first[..., 0]) * (first[..., 3] - first[..., 1])
    area_second = (second[..., 2] - second[..., 0]) * (second[..., 3] - second[..., 1])
    union = area_first + area_second - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def match_boxes(reference: np.ndarray, candidate: np.ndarray,
                min_iou: float) -> List[Tuple[int, int, float]]:
    """Pair boxes one-to-one, highest IoU first; return (reference index, candidate index, IoU)."""
    iou = box_iou(reference, candidate)
    if iou.size == 0:
        return []
    pairs = []
    used_ref, used_cand = set(), set()
    order = np.argsort(-iou, axis=None, kind='stable')
    for flat in order:
        i, j = np.unravel_index(flat, iou.shape)
        value = float(iou[i, j])
        if value < min_iou:
            break
        if i in used_ref or j in used_cand:
            continue
        used_ref.add(i)
        used_cand.add(j)
        pairs.append((int(i), int(j), value))
    return pairs


def compare_image(reference, candidate, conf_threshold: float,
                  thresholds: AgreementThresholds = AgreementThresholds()) -> dict:
    """
    Compare one image's detections; both decoded down to ``conf_threshold - score_margin``.

    Return counts (``reference``, ``candidate``: boxes at or above conf_threshold; ``matched``,
    ``missed``, ``extra``, ``class_flips``), the matched pairs' IoUs and score drifts, and the
    flips as (reference class, candidate class) pairs.
    """
    reference, candidate = DetectionSet.of(reference), DetectionSet.of(candidate)
    ref_main = reference.scores >= conf_threshold
    cand_main = candidate.scores >= conf_threshold
    pairs = match_boxes(reference.boxes, candidate.boxes, thresholds.match_iou)
    matched_ref = {i for i, _, _ in pairs}
    matched_cand = {j for _, j, _ in pairs}
    # A pair of two near-threshold boxes says nothing about the deployed detections.
    counted = [(i, j, iou) for i, j, iou in pairs if ref_main[i] or cand_main[j]]
    ious = [iou for _, _, iou in counted]
    drifts = [float(candidate.scores[j] - reference.scores[i]) for i, j, _ in counted]
    flips = [(int(reference.class_ids[i]), int(candidate.class_ids[j]))
             for i, j, _ in counted if reference.class_ids[i] != candidate.class_ids[j]]
    missed = [i for i in np.flatnonzero(ref_main) if i not in matched_ref]
    extra = [j for j in np.flatnonzero(cand_main) if j not in matched_cand]
    return {
        'reference': int(ref_main.sum()),
        'candidate': int(cand_main.sum()),
        'matched': len(counted),
        'missed': len(missed),
        'extra': len(extra),
        'class_flips': len(flips),
        'flipped': flips,
        'ious': [round(v, 4) for v in ious],
        'score_drifts': [round(v, 4) for v in drifts],
    }


def summarize(images: Sequence[dict],
              thresholds: AgreementThresholds = AgreementThresholds()) -> dict:
    """
    Pool per-image comparisons into the agreement figures and a pass/fail verdict.

    ``recall`` is the share of reference boxes found, ``precision`` the share of candidate boxes
    the reference has, ``mean_iou`` and ``mean_abs_score_drift`` run over matched boxes,
    ``class_flip_rate`` is flips per matched box. ``failures`` says in words which threshold
    was missed; ``passed`` is true when there are none.
    """
    total = {key: sum(image[key] for image in images)
             for key in ('reference', 'candidate', 'missed', 'extra', 'matched', 'class_flips')}
    ious = [v for image in images for v in image['ious']]
    drifts = [v for image in images for v in image['score_drifts']]
    found = total['reference'] - total['missed']
    kept = total['candidate'] - total['extra']
    summary = dict(total)
    summary.update({
        'images': len(images),
        'recall': round(found / total['reference'], 4) if total['reference'] else 1.0,
        'precision': round(kept / total['candidate'], 4) if total['candidate'] else 1.0,
        'mean_iou': round(float(np.mean(ious)), 4) if ious else None,
        'min_iou': round(float(np.min(ious)), 4) if ious else None,
        'mean_score_drift': round(float(np.mean(drifts)), 4) if drifts else None,
        'mean_abs_score_drift': round(float(np.mean(np.abs(drifts))), 4) if drifts else None,
        'max_abs_score_drift': round(float(np.max(np.abs(drifts))), 4) if drifts else None,
        'class_flip_rate': (round(total['class_flips'] / total['matched'], 4)
                            if total['matched'] else 0.0),
    })
    failures = []
    if total['reference'] == 0:
        failures.append('the reference model found nothing on the verification images, so '
                        "there is nothing to compare: use images that show the model's classes")
    if summary['recall'] < thresholds.min_recall:
        failures.append(f'found {found} of {total["reference"]} reference boxes '
                        f'(recall {summary["recall"]:.2f} < {thresholds.min_recall:.2f})')
    if summary['precision'] < thresholds.min_precision:
        failures.append(f'{total["extra"]} boxes the reference does not have '
                        f'(precision {summary["precision"]:.2f} < {thresholds.min_precision:.2f})')
    if ious and summary['mean_iou'] < thresholds.min_mean_iou:
        failures.append(f'boxes moved: mean IoU {summary["mean_iou"]:.3f} < '
                        f'{thresholds.min_mean_iou:.3f}')
    if drifts and summary['mean_abs_score_drift'] > thresholds.max_mean_score_drift:
        failures.append(f'scores drifted by {summary["mean_abs_score_drift"]:.3f} on average '
                        f'(> {thresholds.max_mean_score_drift:.3f})')
    if summary['class_flip_rate'] > thresholds.max_class_flip_rate:
        failures.append(f'{total["class_flips"]} of {total["matched"]} matched boxes changed '
                        f'class (rate {summary["class_flip_rate"]:.2f} > '
                        f'{thresholds.max_class_flip_rate:.2f})')
    summary['failures'] = failures
    summary['passed'] = not failures
    summary['thresholds'] = asdict(thresholds)
    return summary


def format_summary(summary: dict, title: str) -> str:
    """Return the agreement figures and verdict as a few lines for the console."""
    def figure(value, digits=3):
        return '-' if value is None else f'{value:.{digits}f}'

    lines = [
        f'{title}: {"PASS" if summary["passed"] else "FAIL"}',
        f'  images {summary["images"]}, reference boxes {summary["reference"]}, '
        f'candidate boxes {summary["candidate"]}, matched {summary["matched"]}, '
        f'missed {summary["missed"]}, extra {summary["extra"]}',
        f'  recall {figure(summary["recall"], 2)}, precision {figure(summary["precision"], 2)}, '
        f'mean IoU {figure(summary["mean_iou"])} (min {figure(summary["min_iou"])}), '
        f'score drift mean |d| {figure(summary["mean_abs_score_drift"])} '
        f'(max {figure(summary["max_abs_score_drift"])}, signed mean '
        f'{figure(summary["mean_score_drift"])}), class flips {summary["class_flips"]}',
    ]
    lines.extend(f'  - {failure}' for failure in summary['failures'])
    return '\n'.join(lines)
