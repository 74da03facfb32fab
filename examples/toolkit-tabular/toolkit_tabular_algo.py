"""Tabular Q-learning from replay (Watkins 1989) on one-hot observations, and a sampler
that draws only from the newest transitions: a complete third-party algorithm and sampler
in about a hundred lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from toolkit.replay import ReplayBuffer
from toolkit.schedules import linear


@dataclass(frozen=True)
class TabularQConfig:
    learning_rate: float = 0.5
    """Step size of the tabular update."""
    gamma: float = 0.9
    """Discount factor."""
    epsilon_start: float = 1.0
    """Exploration rate at the start."""
    epsilon_end: float = 0.05
    """Exploration rate after the decay."""
    epsilon_fraction: float = 0.5
    """Fraction of the run over which epsilon decays linearly."""
    batch_size: int = 32
    """Transitions per update."""
    buffer_size: int = 10_000
    """Replay capacity."""
    replay: str = field(default="uniform", metadata={"registry": "sampler"})
    """Replay sampler (any registered sampler: uniform, recent, ...)."""


class RecentSampler:
    """Uniform over the ``window`` most recently added slots still stored."""

    def __init__(self, capacity: int, window: int = 1000) -> None:
        self.order = np.full(capacity, -1, dtype=np.int64)  # insertion counter per slot, -1 if empty
        self.counter = 0
        self.window = window

    def add(self, indices: np.ndarray) -> None:
        self.order[indices] = self.counter + np.arange(len(indices))
        self.counter += len(indices)

    def remove(self, indices: np.ndarray) -> None:
        self.order[indices] = -1

    def sample(self, batch_size, rng, progress=0.0):
        recent = np.flatnonzero(self.order >= self.counter - self.window)
        return rng.choice(recent, size=batch_size), np.ones(batch_size, dtype=np.float32)

    def update_priorities(self, indices, priorities) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {"order": self.order.copy(), "counter": self.counter}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.order[:] = state["order"]
        self.counter = int(state["counter"])


class TabularGreedy:
    def __init__(self, q: np.ndarray) -> None:
        self.q = q

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.q[np.argmax(obs, axis=1)].argmax(axis=1)


class TabularQ:
    Config: ClassVar[type] = TabularQConfig
    loop: ClassVar[str] = "env"

    def __init__(self, config: TabularQConfig, context) -> None:
        self.config = config
        self.total_steps = context.total_steps
        self.n_actions = int(context.action_space.n)
        self.q = np.zeros((context.observation_space.shape[0], self.n_actions))
        self.rng = np.random.default_rng(context.seed)
        self.replay = ReplayBuffer(config.buffer_size, context.observation_space, context.action_space,
                                   n_envs=context.n_envs, sampler=config.replay, seed=context.seed)

    def act(self, obs, step):
        c = self.config
        epsilon = linear(c.epsilon_start, c.epsilon_end, step, int(c.epsilon_fraction * self.total_steps))
        greedy = self.policy()(obs)
        explore = self.rng.random(len(obs)) < epsilon
        return np.where(explore, self.rng.integers(self.n_actions, size=len(obs)), greedy)

    def observe(self, t):
        self.replay.add(t.obs, t.action, t.reward, t.next_obs, t.terminated, t.truncated)

    def update(self, step):
        if len(self.replay) < self.config.batch_size:
            return {}
        batch = self.replay.sample(self.config.batch_size, gamma=self.config.gamma)
        s, s2 = batch.obs.argmax(axis=1), batch.next_obs.argmax(axis=1)
        target = batch.reward + batch.discount * self.q[s2].max(axis=1)
        td_error = target - self.q[s, batch.action]
        # Average the TD errors of repeated (state, action) pairs in the batch, so a pair drawn
        # several times moves by one learning-rate step, not several.
        cell = s * self.n_actions + batch.action
        sums = np.bincount(cell, weights=batch.weights * td_error, minlength=self.q.size)
        counts = np.maximum(np.bincount(cell, minlength=self.q.size), 1)
        self.q += self.config.learning_rate * (sums / counts).reshape(self.q.shape)
        self.replay.update_priorities(batch.indices, np.abs(td_error))
        return {"loss/td_abs": float(np.abs(td_error).mean())}

    def policy(self):
        return TabularGreedy(self.q)

    def replay_buffers(self):
        """Saved in checkpoints by the runtime when the user asks for --save-replay."""
        return {"replay": self.replay}

    def state_dict(self):
        return {"q": self.q.copy(), "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state):
        self.q[:] = state["q"]
        self.rng.bit_generator.state = state["rng"]
