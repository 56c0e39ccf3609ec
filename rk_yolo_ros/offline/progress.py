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
The terminal progress bar of ``rk-yolo run``: frames done (of the total), failed, rate, ETA.

A thin layer over tqdm: it draws only when its stream is a terminal (or when asked), so logs
of scripted runs stay clean; log messages go through ``write_above`` so they do not tear the
bar. ``update`` may be called from any thread. A stream that goes away mid-run (the terminal
closed: SIGHUP) turns the bar off instead of failing the run.
"""

import logging
import os
from typing import Optional, TextIO, Tuple

from tqdm import tqdm

BAR_WIDTH = 24
DEFAULT_SIZE = (80, 24)  # columns, rows
REDRAW_SECONDS = 0.1
KNOWN_TOTAL = ('{percentage:3.0f}%|{bar:' + str(BAR_WIDTH) + '}| {n_fmt}/{total_fmt} frames'
               '{postfix}, {rate_fmt}, ETA {remaining}')
UNKNOWN_TOTAL = '{n_fmt} frames{postfix}, {rate_fmt}, {elapsed} elapsed'


def _terminal_size(stream: TextIO) -> Tuple[int, int]:
    """
    Return the terminal's (columns, rows), with defaults where it does not say.

    A pseudo-terminal nobody sized reports 0 x 0, which tqdm takes as no room for a bar.
    """
    try:
        columns, rows = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        columns = rows = 0
    return columns or DEFAULT_SIZE[0], rows or DEFAULT_SIZE[1]


class ProgressBar:
    """Show frames done (of ``total`` if known), failed, rate and ETA on one terminal line."""

    def __init__(self, total: Optional[int], stream: TextIO, enabled: Optional[bool] = None):
        """Draw to ``stream``; ``enabled=None`` draws only when the stream is a terminal."""
        if enabled is None:
            isatty = getattr(stream, 'isatty', None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.total = total
        self.failed = 0
        self._stream = stream
        columns, rows = _terminal_size(stream)
        self._bar = tqdm(total=total or None, file=stream, disable=not enabled,
                         unit=' frames', mininterval=REDRAW_SECONDS, ncols=columns, nrows=rows,
                         bar_format=KNOWN_TOTAL if total else UNKNOWN_TOTAL)

    @property
    def done(self) -> int:
        """Return the frames counted so far."""
        return self._bar.n

    def update(self, done: int = 1, failed: int = 0) -> None:
        """Count ``done`` more frames finished, ``failed`` of them failed; redraw if due."""
        try:
            if failed:
                self.failed += failed
                self._bar.set_postfix_str(f'{self.failed} failed', refresh=False)
            self._bar.update(done)
        except (OSError, ValueError):  # the terminal went away (closed file: ValueError)
            self._turn_off()

    def write_above(self, text: str) -> None:
        """Print a message line without tearing the bar (plainly when no bar is drawn)."""
        try:
            if self.enabled:
                self._bar.write(text, file=self._stream)
            else:
                self._stream.write(text + '\n')
                self._stream.flush()
        except (OSError, ValueError):
            self._turn_off()

    def close(self) -> None:
        """Draw the final state and end the line (only if anything was drawn)."""
        try:
            self._bar.close()
        except (OSError, ValueError):
            pass
        self.enabled = False

    def _turn_off(self) -> None:
        self.enabled = False
        self._bar.disable = True


class ProgressLogHandler(logging.Handler):
    """Send log records through ``ProgressBar.write_above`` so they do not break the bar."""

    def __init__(self, progress: ProgressBar):
        """Write through ``progress``."""
        super().__init__()
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        """Write one formatted record above the bar."""
        try:
            self.progress.write_above(self.format(record))
        except Exception:  # logging must never take the run down
            self.handleError(record)
