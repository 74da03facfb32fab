"""SVG(inf) (Heess et al. 2015, Section 4.1, equations 3-4): on-policy, finite horizon.
After each episode, back-propagate through the whole episode through the learned model at
the inferred noise, accumulating V_s = r_s + r_a pi_s + gamma V'_s' (f_s + f_a pi_s) and
V_theta = r_a pi_theta + gamma (V'_s' f_a pi_theta + V'_theta) backwards from the last step
(``svg_infinity_gradient``). Replay only fits the model. Shared parts: ``toolkit_svg.common``."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from toolkit.interfaces import EnvContext, Transition
from toolkit_svg.common import SVGBase, SVGConfig, infer_noise, svg_infinity_gradient


class SVGInfinity(SVGBase):
    """SVG(inf): on-policy, back-propagation through whole episodes of a finite-horizon task."""

    variant: ClassVar[str] = "svginf"
    uses_model: ClassVar[bool] = True
    replay_sampler_option: ClassVar[bool] = False

    def __init__(self, config: SVGConfig, context: EnvContext) -> None:
        super().__init__(config, context)
        self.episodes: list[list[tuple[np.ndarray, ...]]] = [[] for _ in range(context.n_envs)]
        self._finished = np.zeros(context.n_envs, dtype=bool)

    def observe(self, t: Transition) -> None:
        super().observe(t)
        obs, next_obs = t.obs.reshape(len(t.obs), -1), t.next_obs.reshape(len(t.next_obs), -1)
        for env in range(self.n_envs):
            self.episodes[env].append((obs[env], self._last_u[env], next_obs[env]))
        self._finished = np.logical_or(t.terminated, t.truncated)

    def update(self, step: int) -> dict[str, float]:
        """The model is fit from replay (``SVGBase.update``); the policy learns from each finished episode."""
        learning = step >= self.config.learning_starts
        metrics = super().update(step)
        for env in np.flatnonzero(self._finished):
            for _ in range(self.config.episode_gradient_steps if learning else 0):
                metrics |= self.svginf_step(self.episodes[env])
            self.episodes[env] = []
        return metrics

    def svginf_step(self, episode: list[tuple[np.ndarray, ...]]) -> dict[str, float]:
        """Back-propagate through one finished episode along its inferred noise (svg_infinity_gradient)
        and take an Adam step along V_theta at its first state."""
        if not episode:
            return {}
        obs = self.tensor(np.stack([o for o, _, _ in episode]))
        u = self.tensor(np.stack([a for _, a, _ in episode]))
        next_obs = self.tensor(np.stack([n for _, _, n in episode]))
        with torch.no_grad():
            xi = infer_noise(next_obs, self.model.mean(obs, self.policy_net.squash(u)), self.model.std())
            mean, log_std = self.policy_net(obs)
            eta = infer_noise(u, mean, log_std.exp())
        sigma_f = self.model.std().detach()
        params = list(self.policy_net.parameters())

        def step(s: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
            mean_t, log_std_t = self.policy_net(s.unsqueeze(0))
            action = self.policy_net.squash(mean_t + log_std_t.exp() * eta[t])
            next_state = self.model.mean(s.unsqueeze(0), action) + sigma_f * xi[t]
            reward = self.reward(s.unsqueeze(0), action) + self._policy_regulariser(mean_t, log_std_t).sum()
            return reward, next_state.squeeze(0)

        value_theta, _ = svg_infinity_gradient(obs, step, params, self.config.gamma)
        self.policy_optimizer.zero_grad(set_to_none=True)
        for p, g in zip(params, value_theta):
            p.grad = -g  # ascend V
        if self.config.max_grad_norm > 0:
            nn.utils.clip_grad_norm_(params, self.config.max_grad_norm)
        self.policy_optimizer.step()
        return {"train/policy_gradient_norm": float(torch.sqrt(sum(g.square().sum() for g in value_theta))),
                "train/episode_length": float(len(episode))}

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        # a checkpoint can fall in the middle of an episode
        state["episodes"] = [{"obs": np.array([o for o, _, _ in ep]), "action": np.array([a for _, a, _ in ep]),
                              "next_obs": np.array([n for _, _, n in ep])} for ep in self.episodes]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        width = int(np.prod(self.action_space.shape))
        # checkpoints before replay extras kept [u, log pi_old] rows here: keep u
        self.episodes = [list(zip(ep["obs"], [np.ravel(a)[:width] for a in ep["action"]], ep["next_obs"]))
                         for ep in state["episodes"]]
