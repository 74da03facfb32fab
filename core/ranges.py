"""Valid ranges of config fields, declared next to the field and its docstring:

    learning_rate: float = bounded(1e-4, above=0)
    \"\"\"Optimizer step size.\"\"\"
    gamma: float = bounded(0.99, at_least=0, at_most=1)

``--help`` shows them, and planning checks every field (flags, TOML and presets alike) before
anything is created. Float fields must be finite whether or not they declare a range: no
config value is ever NaN or infinite. A tuple field's range applies to each item.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from toolkit.errors import ToolkitError


@dataclass(frozen=True)
class Range:
    """low <= value <= high (or strictly, with ``*_open``); None: unbounded on that side."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def contains(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (self.high is not None and (value >= self.high if self.high_open else value > self.high))

    def describe(self) -> str:
        low = None if self.low is None else f"{'>' if self.low_open else '>='} {_number(self.low)}"
        high = None if self.high is None else f"{'<' if self.high_open else '<='} {_number(self.high)}"
        return " and ".join(part for part in (low, high) if part)


def bounded(default: Any, *, at_least: float | None = None, above: float | None = None,
            at_most: float | None = None, below: float | None = None, **metadata: Any) -> Any:
    """A dataclass field with a default and a valid range (``at_least`` / ``above`` for the
    lower bound, ``at_most`` / ``below`` for the upper)."""
    bounds = Range(above if above is not None else at_least, below if below is not None else at_most,
                   above is not None, below is not None)
    if isinstance(default, (list, dict, set)):
        raise TypeError("bounded() takes immutable defaults (use a tuple)")
    return dataclasses.field(default=default, metadata={**metadata, "range": bounds})


def range_of(field: dataclasses.Field, owner: type | None = None) -> Range | None:
    """The field's declared range; in a subclass that only changes a field's default (``owner``
    is the subclass), the range its base declared."""
    bounds = field.metadata.get("range")
    for base in (owner.__mro__[1:] if owner is not None and bounds is None else ()):
        if dataclasses.is_dataclass(base):
            inherited = next((f for f in dataclasses.fields(base) if f.name == field.name), None)
            if inherited is not None and "range" in inherited.metadata:
                return inherited.metadata["range"]
    return bounds


def check_ranges(config: Any, option: Any = None) -> None:
    """Every field finite and inside its declared range, else a one-line ``ToolkitError``
    (``option(name)`` spells the field as the user does, e.g. ``--learning-rate``)."""
    option = option or (lambda name: "--" + name.replace("_", "-"))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        bounds = range_of(field, type(config))
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, bool) or not isinstance(item, (int, float)):
                continue
            check_value(option(field.name), item, bounds)


def check_value(name: str, value: float | None, bounds: Range | None = None) -> None:
    """``value`` finite and inside ``bounds`` (None: not given, nothing to check), else a
    one-line error: ``--seed must be >= 0 and <= 4294967295, got -1``."""
    if value is None:
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolkitError(f"{name} must be a finite number, got {value}")
    if bounds is not None and not bounds.contains(value):
        raise ToolkitError(f"{name} must be {bounds.describe()}, got {_number(value)}")


SEEDS = Range(0, 2**32 - 1)
"""What numpy and torch accept as a seed."""


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"
