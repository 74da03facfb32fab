"""The ``random`` algorithm: uniform random actions.

The baseline every learner must beat, and the smallest complete example of the env-loop
algorithm protocol (config dataclass -> act / observe / update -> state).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from toolkit.interfaces import EnvContext, Transition


@dataclass(frozen=True)
class RandomConfig:
    """Uniform random actions (no options to tune)."""


class RandomPolicy:
    """Uniformly random actions from its own seeded generator."""

    def __init__(self, action_space: spaces.Space, rng: np.random.Generator) -> None:
        self.action_space = action_space
        self.rng = rng
        # Resolve the space once: this runs every env step of the baseline.
        if isinstance(action_space, spaces.Discrete):
            # floor(u * n) is uniform over the n actions and ~3x cheaper than rng.integers.
            start, count = int(action_space.start), int(action_space.n)
            self._draw = lambda n: start + (self.rng.random(n) * count).astype(np.int64)
        elif isinstance(action_space, spaces.Box):
            low, high, shape, dtype = action_space.low, action_space.high, action_space.shape, action_space.dtype
            self._draw = lambda n: self.rng.uniform(low, high, size=(n, *shape)).astype(dtype)
        elif isinstance(action_space, spaces.MultiDiscrete):
            self._draw = lambda n: self.rng.integers(0, action_space.nvec, size=(n, *action_space.shape))
        else:
            self._draw = lambda n: np.stack([action_space.sample() for _ in range(n)])

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self._draw(len(obs))


class RandomAgent:
    """Acts uniformly at random; learns nothing."""

    Config: ClassVar[type] = RandomConfig
    loop: ClassVar[str] = "env"

    def __init__(self, config: RandomConfig, context: EnvContext) -> None:
        self.config = config
        self.rng = np.random.default_rng(context.seed)
        context.action_space.seed(context.seed)
        self._policy = RandomPolicy(context.action_space, self.rng)
        self.steps_seen = 0

    def act(self, obs: np.ndarray, step: int) -> np.ndarray:
        return self._policy(obs)

    def observe(self, transition: Transition) -> None:
        self.steps_seen += len(transition.reward)

    def update(self, step: int) -> dict[str, float]:
        return {}

    def policy(self) -> RandomPolicy:
        return self._policy

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "steps_seen": self.steps_seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.steps_seen = int(state["steps_seen"])
