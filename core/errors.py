"""The one error type users see: a single line, printed without a traceback, exit code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ToolkitError(Exception):
    """Bad input or a broken artefact that the user can fix; the CLI prints it as one line."""


def closest(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The valid names nearest to a mistyped one (case-insensitive), best first."""
    by_lower: dict[str, str] = {}
    for candidate in candidates:
        by_lower.setdefault(candidate.lower(), candidate)
    matches = difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=0.5)
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
