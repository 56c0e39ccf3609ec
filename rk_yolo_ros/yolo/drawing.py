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

"""Draw detection boxes, class names and scores into a BGR frame in place."""

from typing import List, Sequence, Tuple

import cv2
import numpy as np

from rk_yolo_ros.yolo.labels import label_for

# Golden-ratio hue steps give neighbouring class ids clearly different colors.
_GOLDEN = 0.618033988749895


def class_color(class_id: int) -> Tuple[int, int, int]:
    """Return a stable, saturated BGR color for a class id."""
    hue = int(((class_id * _GOLDEN) % 1.0) * 180)
    hsv = np.array([[[hue, 220, 255]]], np.uint8)
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


_PALETTE: List[Tuple[int, int, int]] = [class_color(i) for i in range(256)]


def draw_detections(frame: np.ndarray, boxes: np.ndarray, scores: np.ndarray,
                    class_ids: np.ndarray, names: Sequence[str]) -> None:
    """Draw x1y1x2y2 boxes (frame pixels) with 'name score' tags into ``frame`` in place."""
    if len(scores) == 0:
        return
    height, width = frame.shape[:2]
    thickness = max(1, int(round(min(height, width) / 360)))
    font_scale = 0.4 * thickness
    names = list(names)
    corners = np.rint(boxes).astype(np.int32)
    for (x1, y1, x2, y2), score, class_id in zip(corners.tolist(), scores.tolist(),
                                                 class_ids.tolist()):
        color = _PALETTE[class_id % len(_PALETTE)]
        # LINE_8: axis-aligned boxes gain nothing from anti-aliasing, which costs 4x the time
        cv2.rectangle(frame, (x1, y1), (x2, y2), color, thickness, cv2.LINE_8)
        text = f'{label_for(names, class_id)} {score:.2f}'
        (text_w, text_h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX,
                                                     font_scale, thickness)
        # the tag sits above the box, or inside it when the box touches the top edge
        top = y1 - text_h - baseline if y1 - text_h - baseline >= 0 else y1
        left = max(0, min(x1, width - text_w))  # keep the tag inside the frame
        cv2.rectangle(frame, (left, top), (left + text_w, top + text_h + baseline), color,
                      cv2.FILLED)
        cv2.putText(frame, text, (left, top + text_h), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                    (255, 255, 255), thickness, cv2.LINE_8)


def draw_track_ids(image: np.ndarray, detections, source_size: Tuple[int, int]) -> None:
    """
    Write each tracked detection's id ('#12') inside its box's bottom-left corner, in place.

    The workers draw boxes and labels before the tracker (which runs in frame order in the main
    process) has given ids, so the ids are added here. Boxes are in source pixels.
    """
    if not getattr(detections, 'tracked', False) or len(detections) == 0:
        return  # untracked, or a processor's own result type (not Detections)
    height, width = image.shape[:2]
    scale_x, scale_y = width / source_size[0], height / source_size[1]
    thickness = max(1, int(round(min(height, width) / 360)))
    font_scale = 0.4 * thickness  # as the workers' labels
    for (x1, _, _, y2), track_id, class_id in zip(
            detections.boxes.tolist(), detections.track_ids.tolist(),
            detections.class_ids.tolist()):
        if track_id < 1:
            continue
        text = f'#{track_id}'
        (text_w, text_h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX,
                                                     font_scale, thickness)
        left = max(0, min(int(x1 * scale_x), width - text_w - 2))
        bottom = max(text_h + baseline, min(int(y2 * scale_y), height))
        cv2.rectangle(image, (left, bottom - text_h - baseline), (left + text_w + 2, bottom),
                      _PALETTE[class_id % len(_PALETTE)], cv2.FILLED)
        cv2.putText(image, text, (left + 1, bottom - baseline), cv2.FONT_HERSHEY_SIMPLEX,
                    font_scale, (0, 0, 0), thickness, cv2.LINE_AA)


def draw_overlay(image, lines):
    """Draw status lines (frame id, workers, fps) on a dark panel in the top-left corner."""
    scale = image.shape[0] / 720.0
    font_scale, thickness = 0.7 * scale, max(1, int(round(2 * scale)))
    line_height = int(30 * scale)
    width = max(cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)[0][0]
                for text in lines) if lines else 0
    panel = (width + int(20 * scale), line_height * len(lines) + int(12 * scale))
    cv2.rectangle(image, (0, 0), panel, (0, 0, 0), cv2.FILLED)
    for index, text in enumerate(lines):
        origin = (int(10 * scale), int(10 * scale) + line_height * (index + 1) - int(8 * scale))
        cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, font_scale, (255, 255, 255),
                    thickness, cv2.LINE_AA)
