"""Checkpoints: written atomically, loaded without executing code.

A checkpoint is a ``torch.save`` file of plain containers, numbers, strings and tensors, so
``torch.load(weights_only=True)`` can read it (no pickled classes). numpy arrays are stored
as tensors tagged ``{"__ndarray__": tensor}`` and come back as numpy arrays.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import ToolkitError

FORMAT_VERSION = 1
_NDARRAY = "__ndarray__"


def to_storable(value: Any) -> Any:
    """``value`` with numpy arrays and scalars turned into what the safe loader accepts."""
    import torch

    if isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        return {_NDARRAY: torch.from_numpy(array.copy() if not array.flags.writeable else array)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: to_storable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_storable(v) for v in value)
    return value


def from_storable(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {_NDARRAY}:
            return value[_NDARRAY].numpy()
        return {k: from_storable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(from_storable(v) for v in value)
    return value


def save(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically: a temporary file in the same directory,
    flushed and fsync'ed, then renamed over the target, so a crash never leaves a
    half-written checkpoint under the real name."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(to_storable(state), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException as exc:
        Path(tmp_name).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not exc.filename:  # name the file a full disk refused
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)
    return path


# What every checkpoint holds, and what resuming needs besides, with the type of each entry.
ENTRIES = {"algorithm": str, "step": int, "config": dict, "state": dict}
RESUME_ENTRIES = {"rng": dict, "logger": dict}


def load(path: str | Path, entries: dict[str, type] | None = None) -> dict[str, Any]:
    """Read a checkpoint without executing code; a corrupt or truncated file, or one missing
    one of ``entries`` (name: type, e.g. ``ENTRIES`` for a run's checkpoint), is a one-line error."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise ToolkitError(f"checkpoint {path} does not exist")
    try:
        # mmap: a checkpoint holding a large replay buffer is paged in, not read twice.
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as exc:
        unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if unsafe:
            raise ToolkitError(f"checkpoint {path} is unsafe: loading it would execute code ({unsafe.group(1)}); "
                               "toolkit loads weights and plain data only") from None
        raise ToolkitError(f"checkpoint {path} is corrupt or truncated ({_first_line(exc)})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError,
            AttributeError, KeyError, IndexError, TypeError) as exc:
        raise ToolkitError(f"checkpoint {path} is corrupt or truncated ({_first_line(exc)})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise ToolkitError(f"{path} is not a toolkit checkpoint (format {FORMAT_VERSION})")
    check_entries(state, path, entries or {})
    return from_storable(state)


def check_entries(state: dict[str, Any], path: Path, entries: dict[str, type]) -> None:
    """Each entry present with its type (a step is a non-negative integer), else a one-line error."""
    for key, kind in entries.items():
        if key not in state:
            raise ToolkitError(f"checkpoint {path} has no '{key}' entry: it is incomplete or was not written by "
                               "a toolkit run")
        value = state[key]
        if not isinstance(value, kind) or (kind is int and (isinstance(value, bool) or value < 0)):
            raise ToolkitError(f"checkpoint {path}: '{key}' is {type(value).__name__} {str(value)[:40]!r}, "
                               f"expected {'a non-negative integer' if kind is int else kind.__name__}")


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message, without terminal escape codes, for a one-line error."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def remove_temporaries(run_dir: Path) -> None:
    """Delete temporary files left by a process killed in the middle of ``save``."""
    for pattern in (".*.tmp", "checkpoints/.*.tmp"):
        for stale in Path(run_dir).glob(pattern):
            stale.unlink(missing_ok=True)


def step_path(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"step_{step:012d}.pt"


def step_of(path: Path) -> int:
    """The step in a step checkpoint's name (``step_path``'s inverse)."""
    return int(Path(path).stem.split("_")[1])


def list_step_checkpoints(run_dir: Path) -> list[Path]:
    """Step checkpoints of a run, oldest first."""
    return sorted((run_dir / "checkpoints").glob("step_*.pt"))


def latest(run_dir: Path) -> Path | None:
    checkpoints = list_step_checkpoints(run_dir)
    return checkpoints[-1] if checkpoints else None


def prune(run_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` step checkpoints."""
    if keep <= 0:
        return
    for old in list_step_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
