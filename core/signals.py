"""Ctrl-C and SIGTERM: during training, finish the step, checkpoint, exit (``StopFlag``, which
the ``Run`` uses); at any other time, stop at once and exit 128 + the signal (``Interrupted``)."""

from __future__ import annotations

import signal
import threading
from typing import Any


class StopFlag:
    """Set by SIGINT / SIGTERM: the loop finishes its step, the run checkpoints and the CLI
    exits 128 + the signal's number (130, 143). A second Ctrl-C interrupts at once; a second
    SIGTERM (a supervisor and a parent's death both sending one) changes nothing."""

    def __init__(self) -> None:
        self.stopped = False
        self.signal: int | None = None
        self.previous: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.stopped

    def _handle(self, signum, frame) -> None:
        if self.stopped:
            if signum == signal.SIGINT:  # an impatient second Ctrl-C; a repeated SIGTERM just waits
                raise KeyboardInterrupt
            return
        self.stopped, self.signal = True, signum

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


class Interrupted(BaseException):
    """SIGINT or SIGTERM outside training (start-up, offline commands): unwinds at once, so a
    half-made run directory is removed, and the CLI exits 128 + the signal's number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signal = signum


def _raise_interrupted(signum, frame) -> None:
    raise Interrupted(signum)


class interrupt_on_signals:
    """Within it, SIGINT and SIGTERM raise ``Interrupted`` (a BaseException that typer does not
    turn into a silent exit status, unlike KeyboardInterrupt)."""

    def __enter__(self) -> None:
        self.previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, _raise_interrupted)

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
