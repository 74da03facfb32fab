"""Envs that fail on purpose, for the fault tests (``--env faulty_envs:Faulty-v0``).

  FAULTY_RAISE_AT   Faulty-v0 raises RuntimeError at this step of its own (0: never);
  FAULTY_STARTED    SlowStart-v0 touches this file in its constructor, then sleeps, so a test
                    can signal a process that is still starting up.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class Faulty(gym.Env):
    """Reward 1 for the action equal to the observed bit; raises at step FAULTY_RAISE_AT."""

    def __init__(self) -> None:
        self.observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.raise_at = int(os.environ.get("FAULTY_RAISE_AT", "0"))
        self.steps = self.t = 0
        self.bit = 0

    def _obs(self) -> np.ndarray:
        return np.array([self.bit], np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.bit = 0, int(self.np_random.integers(2))
        return self._obs(), {}

    def step(self, action):
        self.steps += 1
        if self.steps == self.raise_at:
            raise RuntimeError("sensor unplugged")
        reward = float(action == self.bit)
        self.t, self.bit = self.t + 1, int(self.np_random.integers(2))
        return self._obs(), reward, False, self.t >= 20, {}


class SlowStart(Faulty):
    def __init__(self) -> None:
        super().__init__()
        Path(os.environ["FAULTY_STARTED"]).touch()
        time.sleep(60)


gym.register("Faulty-v0", entry_point=Faulty)
gym.register("SlowStart-v0", entry_point=SlowStart)
