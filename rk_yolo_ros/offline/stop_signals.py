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
SIGINT, SIGTERM and SIGHUP stop ``rk-yolo run`` the same way.

Ctrl-C sends SIGINT; ``kill``, ``timeout``, ``docker stop`` and ``systemctl stop`` send
SIGTERM; a closed terminal sends SIGHUP. ``StopSignals`` turns each into the same request,
and the run ends with exit code 128 + the first signal's number, as shells report it.

NOTE [stop signals]: a handler that raises can interrupt any line, also one half-way through
handing a frame to the outputs, so while frames are in the pipeline the handlers only set
flags: the first signal (``requested``) stops reading and lets the frames in flight finish, a
second one (``cancel``) cancels them; the run polls both between frames. Only where nothing
needs finishing (checks before any output exists, the workers starting) does a signal raise
``Interrupted`` (see ``raising``), which unwinds like Ctrl-C's KeyboardInterrupt. The worker
processes ignore these signals: the main process stops them.
"""

import contextlib
import signal
import threading
from typing import Callable, Dict, Optional

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def signal_name(signum: int) -> str:
    """Return how a stop signal is named in messages ('Ctrl-C' for SIGINT)."""
    if signum == signal.SIGINT:
        return 'Ctrl-C'
    return signal.Signals(signum).name


def exit_code_for(signum: int) -> int:
    """Return the exit code of a run a signal stopped: 128 + its number, as shells report."""
    return 128 + int(signum)


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived where there was nothing to finish; the command unwinds."""

    def __init__(self, signum: int):
        """Remember which signal it was."""
        super().__init__(signal_name(signum))
        self.signum = int(signum)


class StopSignals:
    """Catch the stop signals for a run: flags while frames are in flight, see NOTE above."""

    def __init__(self):
        """Start with no signal received and no handler installed."""
        self.first: Optional[int] = None  # the first stop signal received
        self.requested = threading.Event()  # stop reading, finish the frames in flight
        self.cancel = threading.Event()  # a second signal: cancel the frames in flight
        self._raising = False
        self._previous: Dict[int, Callable] = {}

    @property
    def installed(self) -> bool:
        """Return True while this object's handlers are installed."""
        return bool(self._previous)

    def install(self) -> 'StopSignals':
        """Install the handlers (main thread only; elsewhere signals keep their handlers)."""
        if threading.current_thread() is threading.main_thread() and not self._previous:
            for number in STOP_SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def restore(self) -> None:
        """Put the earlier handlers back; safe to call twice."""
        previous, self._previous = self._previous, {}
        for number, handler in previous.items():
            signal.signal(number, handler)

    def __enter__(self) -> 'StopSignals':
        """Install the handlers."""
        return self.install()

    def __exit__(self, *exc_info) -> None:
        """Restore the earlier handlers."""
        self.restore()

    @contextlib.contextmanager
    def raising(self):
        """Let a stop signal raise ``Interrupted`` inside this block (one already seen too)."""
        if self.first is not None:
            raise Interrupted(self.first)
        self._raising = True
        try:
            yield
        finally:
            self._raising = False

    def request(self, signum: int = signal.SIGINT) -> None:
        """Record a stop signal as the handler does (without raising)."""
        if self.first is None:
            self.first = int(signum)
            self.requested.set()
        else:
            self.cancel.set()

    def _handle(self, signum: int, frame) -> None:
        self.request(signum)
        if self._raising:
            self._raising = False  # raise once; the unwinding code must not be cut again
            raise Interrupted(self.first)


__all__ = ['exit_code_for', 'Interrupted', 'signal_name', 'STOP_SIGNALS', 'StopSignals']
