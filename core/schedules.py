"""Schedules as plain functions of training progress."""

from __future__ import annotations


def linear(start: float, end: float, step: int, duration: int) -> float:
    """``start`` moving linearly to ``end`` over ``duration`` steps, then held at ``end``."""
    if duration <= 0:
        return end
    fraction = min(max(step / duration, 0.0), 1.0)
    return start + fraction * (end - start)
