"""Search dimensions from the command line: ``NAME=loguniform(a,b)``, ``uniform(a,b)``,
``int(a,b)`` (both ends included) and ``choice(v1,v2,...)``, turned into Ray Tune domains
(which Optuna's TPE sampler samples through ``OptunaSearch``); and grid axes,
``NAME=v1,v2,...``, every value of which runs (Tune's ``grid_search``)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from toolkit.errors import ToolkitError

KINDS = ("loguniform", "uniform", "int", "choice")
GRID = "grid"
"""The kind of a ``--grid`` axis: every value runs, with every seed."""
_SPEC = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*=\s*(\w+)\s*\((.*)\)\s*$")


@dataclass(frozen=True)
class Dimension:
    """One searched option: its config field name, the distribution and its arguments."""

    name: str
    kind: str
    values: tuple[Any, ...]

    def to_tune(self) -> Any:
        from ray import tune

        if self.kind == "loguniform":
            return tune.loguniform(*self.values)
        if self.kind == "uniform":
            return tune.uniform(*self.values)
        if self.kind == "int":
            return tune.randint(self.values[0], self.values[1] + 1)  # Tune's upper end is exclusive
        if self.kind == GRID:
            return tune.grid_search(list(self.values))
        return tune.choice(list(self.values))

    def probes(self) -> tuple[Any, ...]:
        """Values that span the dimension: both ends, or every choice (checked by planning)."""
        return self.values

    @property
    def log_scale(self) -> bool:
        return self.kind == "loguniform"


def parse_dimension(spec: str) -> Dimension:
    """``learning_rate=loguniform(1e-5,1e-2)`` -> Dimension; a malformed spec is a one-line error."""
    match = _SPEC.match(spec)
    if not match:
        raise ToolkitError(f"--search '{spec}': expected NAME=KIND(ARGS) with KIND one of {', '.join(KINDS)}, "
                           "e.g. learning_rate=loguniform(1e-5,1e-2)")
    name, kind, args = match.group(1).replace("-", "_"), match.group(2), match.group(3)
    if kind not in KINDS:
        from toolkit.errors import unknown_name

        raise unknown_name("search distribution", kind, KINDS)
    items = [item.strip() for item in args.split(",") if item.strip()]
    if kind == "choice":
        if not items:
            raise ToolkitError(f"--search '{spec}': choice() needs at least one value")
        return Dimension(name, kind, tuple(_scalar(item) for item in items))
    if len(items) != 2:
        raise ToolkitError(f"--search '{spec}': {kind}() takes two numbers, low and high")
    try:
        low, high = (int(i) for i in items) if kind == "int" else (float(i) for i in items)
    except ValueError:
        raise ToolkitError(f"--search '{spec}': {kind}() takes {'integers' if kind == 'int' else 'numbers'}, "
                           f"got {', '.join(items)}") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise ToolkitError(f"--search '{spec}': needs finite low < high, got {low}, {high}")
    if kind == "loguniform" and low <= 0:
        raise ToolkitError(f"--search '{spec}': loguniform needs low > 0, got {low}")
    return Dimension(name, kind, (low, high))


def parse_grid(spec: str) -> Dimension:
    """``replay=uniform,prioritized,rank`` -> a grid Dimension; a malformed spec is a one-line error."""
    name, equals, values = spec.partition("=")
    items = [item.strip() for item in values.split(",") if item.strip()]
    if not equals or not re.fullmatch(r"[A-Za-z_][\w-]*", name.strip()) or not items:
        raise ToolkitError(f"--grid '{spec}': expected NAME=VALUE,VALUE,..., e.g. replay=uniform,prioritized")
    if len(set(items)) != len(items):
        raise ToolkitError(f"--grid '{spec}': a value is given twice")
    return Dimension(name.strip().replace("-", "_"), GRID, tuple(_scalar(item) for item in items))


def _scalar(text: str) -> Any:
    """A choice value as the CLI would read it: int, float, else the text itself."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip("'\"")


def as_flag_value(value: Any) -> str:
    """A sampled value as a command-line argument (floats in full precision)."""
    if isinstance(value, float):
        return repr(value)
    return str(value)
