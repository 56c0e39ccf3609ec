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

"""Tests for the letterbox geometry, pixels and inverse mapping."""

import cv2
import numpy as np
import pytest

from rk_yolo_ros.yolo.letterbox import Letterbox, letterbox_geometry, PAD_VALUE


def _frame(width, height, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), np.uint8)


def test_720p_frame_fills_width_and_is_centered_vertically():
    geometry = letterbox_geometry((1280, 720), (640, 640))
    assert geometry.resized_size == (640, 360)
    assert geometry.pad == (0, 140)


def test_portrait_frame_fills_height_and_is_centered_horizontally():
    geometry = letterbox_geometry((810, 1080), (640, 640))
    assert geometry.resized_size == (480, 640)
    assert geometry.pad == (80, 0)


@pytest.mark.parametrize('size', [(1000, 333), (333, 1000), (641, 479), (1920, 1080), (64, 48)])
def test_odd_sizes_keep_aspect_and_stay_centered(size):
    geometry = letterbox_geometry(size, (640, 640))
    (left, top), (width, height) = geometry.pad, geometry.resized_size
    assert max(width, height) == 640
    assert abs(width / height - size[0] / size[1]) < 2.0 / min(width, height)
    right, bottom = 640 - left - width, 640 - top - height
    assert right >= 0 and bottom >= 0
    assert abs(left - right) <= 1 and abs(top - bottom) <= 1


def test_pixels_are_resized_rgb_inside_gray_padding():
    frame = _frame(1280, 720)
    canvas, geometry = Letterbox((640, 640))(frame)
    assert canvas.shape == (1, 640, 640, 3) and canvas.dtype == np.uint8
    expected = cv2.resize(frame, (640, 360), interpolation=cv2.INTER_LINEAR)[:, :, ::-1]
    np.testing.assert_array_equal(canvas[0, 140:500], expected)
    assert (canvas[0, :140] == PAD_VALUE).all() and (canvas[0, 500:] == PAD_VALUE).all()


def test_buffer_is_reused_and_padding_repainted_when_frame_size_changes():
    letterbox = Letterbox((640, 640))
    first, _ = letterbox(_frame(1280, 720, seed=1))
    second, geometry = letterbox(_frame(720, 1280, seed=2))
    assert second is first  # one preallocated buffer
    left, width = geometry.pad[0], geometry.resized_size[0]
    # where the landscape frame was drawn, the portrait frame's padding must be gray again
    assert (second[0, :, :left] == PAD_VALUE).all()
    assert (second[0, :, left + width:] == PAD_VALUE).all()


def test_non_square_model_input():
    canvas, geometry = Letterbox((320, 256))(_frame(1280, 720))
    assert canvas.shape == (1, 256, 320, 3)
    assert geometry.resized_size == (320, 180) and geometry.pad == (0, 38)


def test_boxes_map_back_exactly_and_are_clipped():
    geometry = letterbox_geometry((1280, 720), (640, 640))
    frame_boxes = np.array([[10.0, 20.0, 300.5, 400.25], [0.0, 0.0, 1280.0, 720.0]], np.float32)
    np.testing.assert_allclose(geometry.to_frame(geometry.to_model(frame_boxes)), frame_boxes,
                               atol=1e-3)
    # a model box reaching into the padding ends at the frame edge
    outside = np.array([[-5.0, 100.0, 700.0, 600.0]], np.float32)
    mapped = geometry.to_frame(outside)
    assert mapped[0, 0] == 0.0 and mapped[0, 2] == 1280.0 and mapped[0, 3] == 720.0


def test_bad_frames_are_rejected_with_their_shape():
    letterbox = Letterbox((640, 640))
    with pytest.raises(ValueError, match=r'\(720, 1280\)'):
        letterbox(np.zeros((720, 1280), np.uint8))
    with pytest.raises(ValueError, match='float32'):
        letterbox(np.zeros((720, 1280, 3), np.float32))
    with pytest.raises(ValueError, match='positive'):
        Letterbox((0, 640))
