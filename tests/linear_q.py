"""A small learning algorithm for lifecycle tests: linear Q-learning with torch, Adam,
replay and an epsilon schedule, so a checkpoint holds parameters, optimizer moments, RNG
states, schedule position and (with --save-replay) a replay buffer.

Test hooks, read from the environment so that a resumed run does not inherit them:
  LINEAR_Q_KILL_AT  the process SIGKILLs itself when training reaches this env step;
  LINEAR_Q_BALLAST  megabytes of extra state, to make checkpoint writes slow.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from toolkit import hookimpl
from toolkit.replay import ReplayBuffer
from toolkit.schedules import linear


@dataclass(frozen=True)
class LinearQConfig:
    learning_rate: float = 0.01
    """Adam step size."""
    gamma: float = 0.9
    """Discount."""
    batch_size: int = 16
    """Transitions per update."""
    buffer_size: int = 2000
    """Replay capacity."""
    learning_starts: int = 64
    """Env steps before learning."""


class LinearQ:
    Config: ClassVar[type] = LinearQConfig
    loop: ClassVar[str] = "env"

    def __init__(self, config, context):
        self.config, self.total = config, context.total_steps
        torch.manual_seed(context.seed)
        self.q = torch.nn.Linear(context.observation_space.shape[0], int(context.action_space.n))
        self.optimizer = torch.optim.Adam(self.q.parameters(), lr=config.learning_rate)
        self.rng = np.random.default_rng(context.seed)
        self.replay = ReplayBuffer(config.buffer_size, context.observation_space, context.action_space,
                                   n_envs=context.n_envs, seed=context.seed)
        self.kill_at = int(os.environ.get("LINEAR_Q_KILL_AT", "0"))
        ballast = int(os.environ.get("LINEAR_Q_BALLAST", "0"))
        self.ballast = torch.rand(ballast * 2**18) if ballast else None  # 4 bytes per float

    def act(self, obs, step):
        epsilon = linear(1.0, 0.05, step, self.total // 2)
        greedy = self.policy()(obs)
        explore = self.rng.random(len(obs)) < epsilon
        return np.where(explore, self.rng.integers(self.q.out_features, size=len(obs)), greedy)

    def observe(self, t):
        self.replay.add(t.obs, t.action, t.reward, t.next_obs, t.terminated, t.truncated)

    def update(self, step):
        if self.kill_at and step >= self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if step < self.config.learning_starts:
            return {}
        b = self.replay.sample(self.config.batch_size, gamma=self.config.gamma).to_torch()
        with torch.no_grad():
            target = b["reward"] + b["discount"] * self.q(b["next_obs"]).max(dim=1).values
        q = self.q(b["obs"]).gather(1, b["action"].long().unsqueeze(1)).squeeze(1)
        loss = ((q - target) ** 2 * b["weights"]).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"loss/td": loss.item()}

    def policy(self):
        def greedy(obs):
            with torch.no_grad():
                return self.q(torch.as_tensor(obs, dtype=torch.float32)).argmax(dim=1).numpy()
        return greedy

    def replay_buffers(self):
        return {"replay": self.replay}

    def state_dict(self):
        state = {"q": self.q.state_dict(), "optimizer": self.optimizer.state_dict(), "rng": self.rng.bit_generator.state}
        if self.ballast is not None:
            state["ballast"] = self.ballast
        return state

    def load_state_dict(self, state):
        self.q.load_state_dict(state["q"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["rng"]


@hookimpl
def register_algorithms(register):
    register("linear-q", LinearQ, "Linear Q-learning (lifecycle tests)")
