"""Files written where the user said (``--out``): checked before any work is done, so a bad
path is refused at once, in one line naming it and the reason."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from toolkit.errors import ToolkitError


def check_output_file(path: str | Path, suffixes: Iterable[str], option: str = "--out") -> Path:
    """``path`` can be written: not a directory, a known image suffix, and its nearest existing
    folder is a writable directory (missing folders below it are created when writing)."""
    path = Path(path)
    suffixes = tuple(suffixes)
    if path.is_dir():
        raise ToolkitError(f"{option} {path} is a directory; give a file name, e.g. {path / ('out' + suffixes[0])}")
    if path.suffix.lower() not in suffixes:
        raise ToolkitError(f"{option} {path}: the file type '{path.suffix or '(none)'}' is not one of "
                           f"{', '.join(suffixes)}")
    folder = next(p for p in (path.absolute().parent, *path.absolute().parents) if p.exists())
    if not folder.is_dir():
        raise ToolkitError(f"{option} {path}: {folder} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ToolkitError(f"{option} {path}: {folder} is not writable")
    return path
