"""The one error type users see: a single line, printed without a traceback, exit code 2."""

from __future__ import annotations

import difflib
import os
import sysconfig
import traceback
from collections.abc import Iterable


class ToolkitError(Exception):
    """Bad input or a broken artefact that the user can fix; the CLI prints it as one line
    and exits with ``exit_code`` (2: refused input)."""

    exit_code = 2


class RunFailed(ToolkitError):
    """A run that started and then failed (a NaN loss, ...): one line, exit code 1."""

    exit_code = 1


class NonFiniteError(Exception):
    """A NaN or inf where training needs finite numbers; ``what`` names it (a metric, the reward)."""

    def __init__(self, what: str, step: int) -> None:
        super().__init__(f"non-finite {what} at step {step:,}")
        self.what, self.step = what, step


class FailedAt(Exception):
    """Something outside the algorithm failed at ``step`` (the env while stepping, an
    evaluation), after the algorithm's state had reached that step: an emergency checkpoint
    of it is consistent. The original exception is ``__cause__``."""

    def __init__(self, what: str, step: int) -> None:
        super().__init__(f"{what} failed at step {step:,}")
        self.what, self.step = what, step


def closest(name: str, candidates: Iterable[str], n: int = 3, cutoff: float = 0.5) -> list[str]:
    """The valid names nearest to a mistyped one (case-insensitive), best first."""
    by_lower: dict[str, str] = {}
    for candidate in candidates:
        by_lower.setdefault(candidate.lower(), candidate)
    matches = difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=cutoff)
    return [by_lower[m] for m in matches]


def unknown_name(kind: str, name: str, candidates: Iterable[str]) -> ToolkitError:
    """`unknown algorithm 'dqm'; did you mean: dqn?` (or the list of valid names when nothing is close)."""
    candidates = sorted(set(candidates))
    suggestions = closest(name, candidates)
    if suggestions:
        hint = "did you mean: " + ", ".join(suggestions) + "?"
    elif len(candidates) <= 12:
        hint = "valid: " + (", ".join(candidates) or "none installed")
    else:
        hint = "see `toolkit list`"
    return ToolkitError(f"unknown {kind} '{name}'; {hint}")


def describe_exception(exc: BaseException) -> str:
    """``Type: message (file.py:line)`` on one line, where the line is the deepest frame in the
    code that raised it (a plugin's), not in the library it called (numpy, torch, the stdlib)."""
    message = " ".join(str(exc).split())
    where = origin(exc)
    return f"{type(exc).__name__}: {message}" + (f" ({where})" if where else "")


def origin(exc: BaseException) -> str:
    """``path/file.py:line`` of the deepest frame outside the stdlib, third-party packages and
    toolkit's core; the deepest frame when there is none. For a SyntaxError, where it is."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    if not frames:
        return ""
    stdlib = sysconfig.get_paths()["stdlib"]
    core = os.path.dirname(os.path.abspath(__file__))

    def ours(filename: str) -> bool:
        path = os.path.abspath(filename)
        if path.startswith(core + os.sep) or path.startswith(stdlib + os.sep) or filename.startswith("<"):
            return False
        if "site-packages" in path:  # an installed plugin is named toolkit_<name> by convention
            package = path.split("site-packages" + os.sep, 1)[1].split(os.sep, 1)[0]
            return package.startswith("toolkit")
        return True

    frame = next((f for f in reversed(frames) if ours(f.filename)), frames[-1])
    return f"{frame.filename}:{frame.lineno}"


def plugin_error(plugin: str, what: str, exc: BaseException) -> ToolkitError:
    """One line for an exception raised inside a plugin: which plugin, what failed, where."""
    return ToolkitError(f"plugin '{plugin}': {what}: {describe_exception(exc)}")
