"""The run directory's own bookkeeping: choosing a new one, an OS-level lock for the lifetime
of a train or resume, and a status marker (running, finished, stopped, failed).

The lock is ``flock`` on ``.lock`` in the directory: the kernel drops it when the process
dies, so a SIGKILL never leaves a stale lock behind; the file holds the holder's pid for the
message a second process gets.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

from toolkit.errors import ToolkitError

LOCK_FILE = ".lock"
STATUS_FILE = "status.json"


def new_run_dir(run_dir_option: str, subject: str, algo: str, seed: int) -> Path:
    """The directory for a new run: ``--run-dir`` exactly (refused if it holds a run), else a
    fresh ``runs/<subject>__<algo>__<seed>__<time>``."""
    if run_dir_option:
        run_dir = Path(run_dir_option)
        if run_dir.exists() and not run_dir.is_dir():
            raise ToolkitError(f"--run-dir {run_dir} exists and is not a directory")
        held = [name for name in ("config.toml", "checkpoints", "metrics.jsonl", STATUS_FILE) if (run_dir / name).exists()]
        if held:
            raise ToolkitError(f"{run_dir} already holds a run ({held[0]}); continue it with `toolkit resume "
                               f"{run_dir}` or choose another --run-dir")
        return run_dir
    base = Path("runs") / f"{subject.replace('/', '-')}__{algo.replace(':', '-')}__{seed}__{int(time.time())}"
    run_dir, n = base, 1
    while run_dir.exists():
        run_dir, n = base.with_name(f"{base.name}_{n}"), n + 1
    return run_dir


class RunDirLock:
    """An exclusive lock on a run directory (a flock on its ``lock_file``), held until
    ``release`` or the process ends."""

    def __init__(self, run_dir: Path, lock_file: str = LOCK_FILE) -> None:
        path = Path(run_dir) / lock_file
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ToolkitError(f"cannot lock the run directory {run_dir}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(self.fd)
            raise ToolkitError(f"{run_dir} is in use by another toolkit process (pid {holder}); wait for it to "
                               "finish or stop it first") from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, str(os.getpid()).encode(), 0)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None


def wait_until_unlocked(run_dir: Path, timeout: float, lock_file: str = LOCK_FILE) -> bool:
    """True once no process holds ``run_dir``'s ``RunDirLock`` (or the flock on another
    ``lock_file`` there); False after ``timeout`` seconds."""
    path = Path(run_dir) / lock_file
    if not path.exists():
        return True
    deadline = time.monotonic() + timeout
    with open(path, "a") as fh:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fh, fcntl.LOCK_UN)
                return True
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.1)


def write_status(run_dir: Path, status: str, step: int, **extra: Any) -> None:
    """``status.json``: running / finished / stopped / failed, with the step, written atomically."""
    tmp = Path(run_dir) / f".{STATUS_FILE}.tmp"
    tmp.write_text(json.dumps({"status": status, "step": step, "pid": os.getpid(), "time": time.time(), **extra}))
    tmp.replace(Path(run_dir) / STATUS_FILE)


def read_status(run_dir: Path) -> dict[str, Any]:
    """The status marker, or {} for runs from before it existed (or an unreadable one)."""
    try:
        return json.loads((Path(run_dir) / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return {}
