"""Schedules as plain functions of training progress."""

from __future__ import annotations


def linear(start: float, end: float, step: int, duration: int) -> float:
    """``start`` moving linearly to ``end`` over ``duration`` steps, then held at ``end``."""
    if duration <= 0:
        return end
    fraction = min(max(step / duration, 0.0), 1.0)
    return start + fraction * (end - start)


def gradient_steps_due(step: int, last_step: int, train_frequency: int, gradient_steps: int) -> int:
    """Gradient steps an off-policy learner owes when the env-step count (summed over envs)
    moved from ``last_step`` to ``step``: ``gradient_steps`` for each multiple of
    ``train_frequency`` crossed, or with ``gradient_steps`` = -1 one per env step of each phase."""
    phases = step // train_frequency - last_step // train_frequency
    return max(phases, 0) * (gradient_steps if gradient_steps > 0 else train_frequency)
