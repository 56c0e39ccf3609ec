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

"""Tests of the in-order release buffer."""

import random

import pytest

from rk_yolo_ros.core.reorder import ReorderBuffer


def test_releases_strictly_in_order_whatever_the_arrival_order():
    """Any arrival permutation comes out as 0, 1, 2, ... with nothing lost or repeated."""
    ids = list(range(200))
    random.Random(7).shuffle(ids)
    buffer = ReorderBuffer()
    released = []
    for frame_id in ids:
        released.extend(buffer.push(frame_id, f'result {frame_id}'))
    assert [frame_id for frame_id, _ in released] == list(range(200))
    assert all(item == f'result {frame_id}' for frame_id, item in released)
    assert len(buffer) == 0


def test_holds_results_until_the_gap_fills():
    """A later frame waits for an earlier one."""
    buffer = ReorderBuffer()
    assert buffer.push(1, 'b') == []
    assert buffer.push(2, 'c') == []
    assert len(buffer) == 2
    assert buffer.push(0, 'a') == [(0, 'a'), (1, 'b'), (2, 'c')]
    assert buffer.next_id == 3


def test_duplicates_and_stale_ids_are_refused():
    """A frame id can be released only once."""
    buffer = ReorderBuffer()
    buffer.push(0, 'a')
    with pytest.raises(ValueError, match='already released'):
        buffer.push(0, 'again')
    buffer.push(2, 'c')
    with pytest.raises(ValueError):
        buffer.push(2, 'again')


def test_pop_all_returns_the_waiting_results_in_order():
    """At shutdown the waiting results come out sorted."""
    buffer = ReorderBuffer()
    for frame_id in (5, 3, 4):
        buffer.push(frame_id, frame_id)
    assert buffer.pop_all() == [(3, 3), (4, 4), (5, 5)]
    assert len(buffer) == 0
