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


"""Release out-of-order results strictly by frame id."""

from typing import Any, Dict, List, Tuple


class ReorderBuffer:
    """Hold results that arrive early until every earlier frame id has been released."""

    def __init__(self, first_id: int = 0):
        """Start expecting ``first_id``."""
        self.next_id = first_id
        self._waiting: Dict[int, Any] = {}

    def push(self, frame_id: int, item: Any) -> List[Tuple[int, Any]]:
        """Add one result; return the results now releasable, in frame order."""
        if frame_id < self.next_id or frame_id in self._waiting:
            raise ValueError(f'frame {frame_id} already released or waiting '
                             f'(next expected: {self.next_id})')
        self._waiting[frame_id] = item
        released = []
        while self.next_id in self._waiting:
            released.append((self.next_id, self._waiting.pop(self.next_id)))
            self.next_id += 1
        return released

    def pop_all(self) -> List[Tuple[int, Any]]:
        """Remove and return everything still waiting, in frame order (for shutdown)."""
        items = sorted(self._waiting.items())
        self._waiting.clear()
        return items

    def __len__(self):
        """Return how many results wait for an earlier frame."""
        return len(self._waiting)
