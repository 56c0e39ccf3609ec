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
Frame slots: one preallocated shared-memory block holding K fixed-size 720p frame buffers.

The main process creates the block once and owns it: it alone unlinks it, in ``unlink()``, which
is safe to call twice. Workers attach by name and only close. Nothing is created per frame.

A crash cannot leave the block in /dev/shm for long: Python's resource tracker (shared by the
workers) unlinks it when the creator dies without unlinking, and ``remove_stale_segments`` removes
blocks whose creator pid no longer runs (called before a new pipeline creates its own).
"""

from dataclasses import dataclass
import logging
from multiprocessing import shared_memory
import os
import secrets
from typing import List, Tuple

import numpy as np
import psutil

SEGMENT_PREFIX = 'rk_yolo_'
SHM_DIR = '/dev/shm'
_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlotLayout:
    """Where the slots live and how big each is; small and picklable, sent to workers."""

    segment_name: str
    count: int
    max_height: int
    max_width: int
    channels: int = 3
    # room for a source frame the worker resizes, or its compressed bytes (0: none)
    staging_bytes: int = 0

    @property
    def frame_bytes(self) -> int:
        """Bytes of a slot's output-size frame area."""
        return self.max_height * self.max_width * self.channels

    @property
    def slot_bytes(self) -> int:
        """Bytes reserved per slot: the frame area, then the staging area."""
        return self.frame_bytes + self.staging_bytes


def output_size(source_width: int, source_height: int, height: int,
                max_width: int) -> Tuple[int, int]:
    """Size (width, height) a source frame takes in a slot: ``height`` rows, aspect kept."""
    scale = height / source_height
    if source_width * scale > max_width:
        scale = max_width / source_width
    return max(1, int(round(source_width * scale))), max(1, int(round(source_height * scale)))


def _owner_pid(segment_name: str) -> int:
    """Return the creator pid encoded in one of our segment names, or -1."""
    try:
        return int(segment_name[len(SEGMENT_PREFIX):].split('_')[0])
    except ValueError:
        return -1


def remove_stale_segments(shm_dir: str = SHM_DIR) -> List[str]:
    """Unlink our segments whose creating process is gone; return the names removed."""
    removed = []
    try:
        names = os.listdir(shm_dir)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(SEGMENT_PREFIX):
            continue
        pid = _owner_pid(name)
        if pid > 0 and psutil.pid_exists(pid):
            continue
        try:
            os.unlink(os.path.join(shm_dir, name))
            removed.append(name)
        except FileNotFoundError:
            pass  # its owner's resource tracker removed it first
        except OSError as error:
            _logger.warning('could not remove %s left by dead process %d: %s', name, pid, error)
    if removed:
        _logger.warning('removed %d shared-memory segment(s) left by dead processes: %s',
                        len(removed), ', '.join(removed))
    return removed


class FrameSlots:
    """K frame buffers in one shared-memory block, addressed by slot index."""

    def __init__(self, layout: SlotLayout, shm: shared_memory.SharedMemory, owner: bool):
        """Wrap an open block; use ``create`` or ``attach`` instead of calling this directly."""
        self.layout = layout
        self._shm = shm
        self._owner = owner
        self._unlinked = False
        self._closed = False

    @classmethod
    def create(cls, count: int, max_height: int, max_width: int, channels: int = 3,
               staging_bytes: int = 0):
        """
        Create the block for ``count`` slots of max_height x max_width x channels bytes.

        ``staging_bytes`` adds a second area per slot where the main process can put an input
        frame as it came, or its compressed bytes, for the worker to resize or decode (see
        ``PipelineConfig.staging_pixels``).
        """
        if count < 1:
            raise ValueError(f'slot count must be >= 1, got {count}')
        if max_height < 1 or max_width < 1:
            raise ValueError(f'slot size must be positive, got {max_width}x{max_height}')
        name = f'{SEGMENT_PREFIX}{os.getpid()}_{secrets.token_hex(4)}'
        layout = SlotLayout(name, count, max_height, max_width, channels, int(staging_bytes))
        shm = shared_memory.SharedMemory(name=name, create=True, size=count * layout.slot_bytes)
        return cls(layout, shm, owner=True)

    @classmethod
    def attach(cls, layout: SlotLayout):
        """Attach to a block created by another process (workers)."""
        return cls(layout, shared_memory.SharedMemory(name=layout.segment_name), owner=False)

    def view(self, slot: int, height: int, width: int) -> np.ndarray:
        """Return a writable (height, width, channels) uint8 view of one slot."""
        layout = self.layout
        if not 0 <= slot < layout.count:
            raise IndexError(f'slot {slot} out of range 0..{layout.count - 1}')
        if height > layout.max_height or width > layout.max_width:
            raise ValueError(f'frame {width}x{height} does not fit a '
                             f'{layout.max_width}x{layout.max_height} slot')
        return np.ndarray((height, width, layout.channels), dtype=np.uint8,
                          buffer=self._shm.buf, offset=slot * layout.slot_bytes)

    def staging_view(self, slot: int, height: int, width: int) -> np.ndarray:
        """Return a writable (height, width, channels) uint8 view of a slot's staging area."""
        layout = self.layout
        if not 0 <= slot < layout.count:
            raise IndexError(f'slot {slot} out of range 0..{layout.count - 1}')
        if height * width * layout.channels > layout.staging_bytes:
            raise ValueError(f'frame {width}x{height} does not fit the staging area '
                             f'({layout.staging_bytes} bytes)')
        return np.ndarray((height, width, layout.channels), dtype=np.uint8,
                          buffer=self._shm.buf, offset=slot * layout.slot_bytes
                          + layout.frame_bytes)

    def staging_bytes(self, slot: int, size: int) -> np.ndarray:
        """Return a writable view of the first ``size`` bytes of a slot's staging area."""
        layout = self.layout
        if not 0 <= slot < layout.count:
            raise IndexError(f'slot {slot} out of range 0..{layout.count - 1}')
        if not 0 <= size <= layout.staging_bytes:
            raise ValueError(f'{size} bytes do not fit the staging area '
                             f'({layout.staging_bytes} bytes)')
        return np.ndarray((size,), dtype=np.uint8, buffer=self._shm.buf,
                          offset=slot * layout.slot_bytes + layout.frame_bytes)

    def unlink(self) -> None:
        """Remove the block's name from /dev/shm (creator only); safe to call twice."""
        if self._owner and not self._unlinked:
            self._unlinked = True
            try:
                self._shm.unlink()
            except FileNotFoundError:
                pass

    def close(self) -> None:
        """Unmap the block (and unlink it if this process created it); safe to call twice."""
        self.unlink()
        if self._closed:
            return
        try:
            self._shm.close()
            self._closed = True
        except BufferError:
            # A caller still holds a view; the mapping goes away with the process, and the
            # name is already unlinked, so nothing is left in /dev/shm.
            _logger.debug('frame slots still referenced at close; unmapped at exit')
