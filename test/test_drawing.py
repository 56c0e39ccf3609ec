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

"""Tests for drawing detections into a frame in place."""

import numpy as np

from rk_yolo_ros.yolo.drawing import class_color, draw_detections, draw_overlay


def test_boxes_and_tags_are_drawn_in_place_in_the_class_color():
    frame = np.zeros((720, 1280, 3), np.uint8)
    boxes = np.array([[100, 200, 300, 500], [1200, 0, 1280, 100]], np.float32)
    draw_detections(frame, boxes, np.array([0.9, 0.5], np.float32),
                    np.array([3, 7], np.int32), ['a', 'b', 'c', 'car'])
    assert tuple(frame[350, 100]) == class_color(3)  # left edge of the first box
    assert tuple(frame[500, 200]) == class_color(3)  # bottom edge
    assert not frame[260:480, 120:280].any()  # the inside is untouched
    assert frame[:20, 1100:1280].any()  # the tag of the box at the corner stays in the frame


def test_nothing_to_draw_leaves_the_frame_alone():
    frame = np.full((72, 128, 3), 7, np.uint8)
    draw_detections(frame, np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                    np.zeros(0, np.int32), [])
    assert (frame == 7).all()


def test_class_colors_are_stable_and_distinct():
    colors = [class_color(i) for i in range(20)]
    assert colors == [class_color(i) for i in range(20)]
    assert len(set(colors)) == 20


def test_overlay_writes_status_lines_in_the_top_left_corner_only():
    """The status overlay (frame id, workers) changes the top-left corner and nothing else."""
    frame = np.full((720, 1280, 3), 128, np.uint8)
    draw_overlay(frame, ['frame 12  skipped 0', 'worker 1 of 3  40 ms'])
    changed = np.argwhere((frame != 128).any(axis=2))
    assert changed.size > 0
    assert changed[:, 0].max() < 80 and changed[:, 1].max() < 400
