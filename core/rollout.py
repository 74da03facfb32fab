"""On-policy rollout storage and generalized advantage estimation (Schulman et al. 2016)."""

from __future__ import annotations

from typing import Any

import numpy as np


def gae(
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    terminated: np.ndarray,
    episode_end: np.ndarray,
    gamma: float,
    lam: float,
) -> np.ndarray:
    """GAE(gamma, lambda) advantages, arrays shaped (T, n_envs).

    delta_t = r_t + gamma * (1 - terminated_t) * V(s_{t+1}) - V(s_t)
    A_t     = delta_t + gamma * lambda * (1 - end_t) * A_{t+1}

    ``next_values[t]`` is V of the true successor of step t, so a truncated episode
    bootstraps from the value of its final observation, while the lambda-trace is cut at
    every episode end (``episode_end`` = terminated or truncated) so it never mixes episodes.
    """
    bootstrap = gamma * (1.0 - terminated.astype(np.float64)) * next_values
    deltas = rewards + bootstrap - values
    carry = gamma * lam * (1.0 - episode_end.astype(np.float64))
    advantages = np.zeros_like(deltas, dtype=np.float64)
    running = np.zeros(deltas.shape[1:], dtype=np.float64)
    for t in range(len(deltas) - 1, -1, -1):
        running = deltas[t] + carry[t] * running
        advantages[t] = running
    return advantages.astype(np.float32)


class RolloutStorage:
    """A fixed-length on-policy rollout of n_steps x n_envs steps.

    The algorithm fills it with ``add`` (it knows the values and log-probabilities it
    computed in ``act``) and, once ``full``, calls ``compute_advantages`` with the values of
    the true successor observations.
    """

    def __init__(self, n_steps: int, n_envs: int, observation_space: Any, action_space: Any) -> None:
        self.n_steps, self.n_envs = n_steps, n_envs
        shape = (n_steps, n_envs)
        self.obs = np.zeros(shape + tuple(observation_space.shape), dtype=observation_space.dtype)
        self.next_obs = np.zeros_like(self.obs)
        self.actions = np.zeros(shape + tuple(action_space.shape or ()), dtype=action_space.dtype)
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.values = np.zeros(shape, dtype=np.float32)
        self.log_probs = np.zeros(shape, dtype=np.float32)
        self.terminated = np.zeros(shape, dtype=bool)
        self.episode_end = np.zeros(shape, dtype=bool)
        self.advantages = np.zeros(shape, dtype=np.float32)
        self.returns = np.zeros(shape, dtype=np.float32)
        self.step = 0

    @property
    def full(self) -> bool:
        return self.step == self.n_steps

    def add(self, obs, action, reward, next_obs, terminated, truncated, value, log_prob) -> None:
        t = self.step
        self.obs[t], self.actions[t], self.rewards[t], self.next_obs[t] = obs, action, reward, next_obs
        self.terminated[t] = terminated
        self.episode_end[t] = np.logical_or(terminated, truncated)
        self.values[t], self.log_probs[t] = value, log_prob
        self.step += 1

    def compute_advantages(self, next_values: np.ndarray, gamma: float, lam: float) -> None:
        """``next_values``: V(next_obs) for every stored step, shape (n_steps, n_envs)."""
        self.advantages[:] = gae(self.rewards, self.values, next_values, self.terminated,
                                 self.episode_end, gamma, lam)
        self.returns[:] = self.advantages + self.values

    def reset(self) -> None:
        self.step = 0

    _STATE = ("obs", "next_obs", "actions", "rewards", "values", "log_probs", "terminated", "episode_end")

    def state_dict(self) -> dict[str, Any]:
        """The steps stored so far (a checkpoint can fall in the middle of a rollout)."""
        return {name: getattr(self, name).copy() for name in self._STATE} | {"step": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self._STATE:
            getattr(self, name)[...] = state[name]
        self.step = int(state["step"])
