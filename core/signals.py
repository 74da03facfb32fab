"""Ctrl-C and SIGTERM during training: finish the step, checkpoint, exit (the ``Run`` uses it)."""

from __future__ import annotations

import signal
import threading
from typing import Any


class StopFlag:
    """Set by SIGINT / SIGTERM: the loop finishes its step, the run checkpoints and the CLI
    exits 128 + the signal's number (130, 143). A second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.stopped = False
        self.signal: int | None = None
        self.previous: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.stopped

    def _handle(self, signum, frame) -> None:
        if self.stopped:
            raise KeyboardInterrupt
        self.stopped, self.signal = True, signum

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
