"""Trained agents and models in Python: ``toolkit.load(run_dir_or_checkpoint)``.

An RL run loads as an ``Agent``: ``predict(obs)`` for one observation or a batch, the
resolved config, the env, the run's scores, and ``make_env()``, the env exactly as the run
evaluated it. A generative run loads as a ``GenerativeModel`` with ``sample(n)``. Loading
goes through ``toolkit.offline.restore_algorithm`` (weights only, no pickled code), the same
path ``toolkit eval`` takes, so both see the same policy.

Observations: ``predict`` takes what the run's policy saw. For envs without preprocessing
(CartPole, MuJoCo) that is exactly what ``gym.make(env_id)`` returns (normalisation an
algorithm learned, such as TRPO's running mean, is inside its policy); for Atari the
observation is a stack of preprocessed frames, which only the wrapped env produces: use
``agent.make_env()``. Dict and Tuple observations are flattened into one vector for every
algorithm; ``predict`` takes them as the env gives them or flat.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import ToolkitError


@dataclass(frozen=True)
class Scores:
    """The evaluations a run logged (``eval/mean_return`` by step), empty when none were."""

    steps: tuple[int, ...] = ()
    mean_returns: tuple[float, ...] = ()

    @property
    def last(self) -> float | None:
        return self.mean_returns[-1] if self.mean_returns else None

    @property
    def best(self) -> float | None:
        return max(self.mean_returns) if self.mean_returns else None


@dataclass
class Agent:
    """A trained env-loop algorithm, rebuilt from its checkpoint."""

    algorithm: Any
    """The algorithm object (its networks, in eval use only)."""
    algo: str
    """Its registered name (``dqn``, ``trpo``, ...)."""
    env_id: str
    """The gymnasium id the run trained on (``PongNoFrameskip-v4`` for ``--env Pong``)."""
    config: dict[str, Any]
    """The resolved config: ``{"run": {...}, "algo": {...}}``, as in ``config.toml``."""
    step: int
    """Env steps the checkpoint had trained for."""
    checkpoint: Path
    scores: Scores = field(default_factory=Scores)
    plan: Any = field(default=None, repr=False)
    _policies: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def observation_space(self) -> Any:
        return self.plan.spec.observation_space

    @property
    def action_space(self) -> Any:
        return self.plan.spec.action_space

    def predict(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        """The action for one observation, or the actions for a batch (a leading batch axis).

        ``deterministic=True`` is the policy ``toolkit eval`` runs (greedy Q-values, the
        Gaussian's mean); ``deterministic=False`` samples the exploring policy where the
        algorithm has one (``stochastic_policy``). An env with Dict or Tuple observations
        trained on them flattened: ``predict`` takes the env's own (a dict, or a list of them)."""
        obs = self._flattened(obs)
        shape = tuple(self.observation_space.shape)
        single = obs.shape == shape
        if not single and obs.shape[1:] != shape:
            raise ToolkitError(self._shape_error(obs.shape))
        batch = obs[None] if single else obs
        policy = self._policy_for(deterministic)
        actions = np.asarray(policy(batch.astype(self.observation_space.dtype, copy=False)))
        return actions[0] if single else actions

    def _flattened(self, obs: Any) -> np.ndarray:
        structured = self.plan.spec.structured_observation_space
        if structured is None:
            return np.asarray(obs)
        from gymnasium.spaces import flatten

        if isinstance(obs, (list, np.ndarray)) and len(obs) and isinstance(obs[0], (dict, tuple)):
            return np.stack([flatten(structured, one) for one in obs])
        return flatten(structured, obs) if isinstance(obs, (dict, tuple)) else np.asarray(obs)

    def _policy_for(self, deterministic: bool) -> Any:
        from toolkit.interfaces import StatefulPolicy
        from toolkit.offline import stochastic_policy

        key = "deterministic" if deterministic else "stochastic"
        if key not in self._policies:
            policy = self.algorithm.policy() if deterministic else stochastic_policy(self.algorithm, self.algo)
            if isinstance(policy, StatefulPolicy):
                raise ToolkitError(f"'{self.algo}''s policy keeps state between steps (h-DQN's goals), which "
                                   "predict cannot carry; play it with `toolkit enjoy` or `toolkit eval`")
            self._policies[key] = policy
        return self._policies[key]

    def _shape_error(self, got: tuple[int, ...]) -> str:
        shape = tuple(self.observation_space.shape)
        hint = (" (the run's preprocessing: frame stacks of the wrapped env; use agent.make_env())"
                if self.plan.env is not None and self.plan.env.family == "atari" else "")
        return f"observation of shape {got} for '{self.env_id}': expected {shape} or a batch (N, *{shape}){hint}"

    def make_env(self, render_mode: str | None = None, seed: int | None = None) -> Any:
        """One env exactly as the run's evaluation made it (Atari: preprocessing, no episodic
        life, no reward clipping), whose observations ``predict`` takes."""
        from toolkit.vec_env import make_env

        env = make_env(self.plan.env, training=False, max_episode_steps=self.plan.run.max_episode_steps,
                       render_mode=render_mode)
        if seed is not None:
            env.reset(seed=seed)
            env.action_space.seed(seed)
        return env


@dataclass
class GenerativeModel:
    """A trained data-loop algorithm (GAN, VAE), rebuilt from its checkpoint."""

    algorithm: Any
    algo: str
    dataset: str
    config: dict[str, Any]
    step: int
    checkpoint: Path
    plan: Any = field(default=None, repr=False)

    def sample(self, n: int, seed: int | None = None) -> np.ndarray:
        """``n`` samples (images (N, C, H, W) in [0, 1], or points (N, D)); ``seed`` fixes the noise."""
        import torch

        if n < 1:
            raise ToolkitError(f"n must be at least 1, got {n}")
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            return np.asarray(self.algorithm.sample(n))


def load(path: str | Path, device: str = "cpu") -> Agent | GenerativeModel:
    """The agent (or generative model) of a run directory (its best.pt, else its latest
    checkpoint) or of a checkpoint file."""
    from toolkit.offline import restore_algorithm

    restored = restore_algorithm(path, device=device)
    p = restored.plan
    common = {"algorithm": restored.algorithm, "algo": p.algo, "config": p.sections, "step": int(restored.state["step"]),
              "checkpoint": restored.path, "plan": p}
    if p.algo_class.loop != "env":
        return GenerativeModel(dataset=p.run.data, **common)
    return Agent(env_id=p.env.id, scores=read_scores(_run_dir_of(restored.path)), **common)


def _run_dir_of(checkpoint_path: Path) -> Path:
    parent = checkpoint_path.parent
    return parent.parent if parent.name == "checkpoints" else parent


def read_scores(run_dir: Path) -> Scores:
    """The ``eval/mean_return`` records of a run's metrics.jsonl (empty if it has none)."""
    from toolkit.loggers import read_metric_lines

    steps, returns = [], []
    for line in read_metric_lines(run_dir):
        record = json.loads(line)
        if record.get("eval/mean_return") is not None:
            steps.append(int(record["step"]))
            returns.append(float(record["eval/mean_return"]))
    return Scores(tuple(steps), tuple(returns))
