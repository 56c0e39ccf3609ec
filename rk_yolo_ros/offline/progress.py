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
A one-line terminal progress bar: frames done, failed, fps and ETA.

Hand-written (no tqdm dependency) and quiet unless its stream is a terminal, so logs of
scripted runs stay clean. Updates are throttled; ``update`` is cheap enough to call per frame
from any thread.
"""

import logging
import threading
import time
from typing import Optional, TextIO

BAR_WIDTH = 24
REDRAW_SECONDS = 0.1


def format_duration(seconds: float) -> str:
    """Format seconds as H:MM:SS (or M:SS under an hour)."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f'{hours}:{minutes:02d}:{secs:02d}' if hours else f'{minutes}:{secs:02d}'


def progress_line(done: int, failed: int, total: Optional[int], elapsed_s: float) -> str:
    """Return the text of one progress line (no carriage return)."""
    fps = done / elapsed_s if elapsed_s > 0 else 0.0
    failed_text = f', {failed} failed' if failed else ''
    if total:
        fraction = min(1.0, done / total)
        filled = int(fraction * BAR_WIDTH)
        bar = '#' * filled + '-' * (BAR_WIDTH - filled)
        eta = format_duration((total - done) / fps) if fps > 0 and done < total else '--:--'
        return (f'[{bar}] {done}/{total} frames{failed_text} {fraction * 100:5.1f}% '
                f'{fps:6.1f} fps  ETA {eta}')
    return f'{done} frames{failed_text} {fps:6.1f} fps  {format_duration(elapsed_s)} elapsed'


class ProgressBar:
    """Show frames done (of ``total`` if known), fps and ETA on one redrawn terminal line."""

    def __init__(self, total: Optional[int], stream: TextIO, enabled: Optional[bool] = None):
        """Draw to ``stream``; ``enabled=None`` draws only when the stream is a terminal."""
        if enabled is None:
            isatty = getattr(stream, 'isatty', None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.total = total
        self._stream = stream
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._width = 0
        self.done = 0
        self.failed = 0

    def update(self, done: int = 1, failed: int = 0) -> None:
        """Count ``done`` more frames finished, ``failed`` of them failed; redraw if due."""
        with self._lock:
            self.done += done
            self.failed += failed
            now = time.monotonic()
            if self.enabled and now - self._last_draw >= REDRAW_SECONDS:
                self._last_draw = now
                self._draw(now)

    def _draw(self, now: float) -> None:
        line = progress_line(self.done, self.failed, self.total, now - self._started)
        # pad over the previous, possibly longer, line
        self._stream.write('\r' + line.ljust(self._width))
        self._stream.flush()
        self._width = len(line)

    def write_above(self, text: str) -> None:
        """Print a message line without tearing the bar: clear it, print, redraw."""
        with self._lock:
            if self.enabled:
                self._stream.write('\r' + ' ' * self._width + '\r')
            self._stream.write(text + '\n')
            if self.enabled:
                self._draw(time.monotonic())
            else:
                self._stream.flush()

    def close(self) -> None:
        """Draw the final state and end the line (only if anything was drawn)."""
        with self._lock:
            if self.enabled:
                self._draw(time.monotonic())
                self._stream.write('\n')
                self._stream.flush()
                self.enabled = False


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
