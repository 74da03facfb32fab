"""SVG(0) (Heess et al. 2015, Section 4.2): model-free. A critic Q(s, a) learned off-policy
from replay, and the policy gradient grad_theta Q(s, pi(s, eta; theta)) at the eta inferred
from the replayed action, each sample weighted by the truncated importance weight
min(pi_theta(a|s) / pi_old(a|s), c). Shared parts: ``toolkit_svg.common``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from toolkit.config import bounded
from toolkit_svg.common import SVGBase, SVGConfig, saturated_fraction, truncated_importance_weight


@dataclass(frozen=True)
class SVG0Config(SVGConfig):
    """SVG(0)'s hyperparameters: the shared ones, with a penalty on the pre-tanh mean."""

    mean_penalty: float = bounded(1e-3, at_least=0)
    """Weight of an L2 penalty on the policy's mean before the tanh, which keeps it out of the
    tanh's flat tails where the action gradient vanishes. Without it, InvertedPendulum's
    seed 2 ended at 111 after 20k steps; with it, at 1,000 (plugins/svg/README.md)."""


class SVG0(SVGBase):
    """SVG(0): model-free, the gradient of a learned Q(s, a) through the reparameterised action."""

    Config: ClassVar[type] = SVG0Config
    variant: ClassVar[str] = "svg0"
    critic_input: ClassVar[str | None] = "state_action"

    def replay_step(self, data: dict[str, torch.Tensor], indices: np.ndarray) -> dict[str, float]:
        return self.svg0_step(data, indices)

    def svg0_step(self, data: dict[str, torch.Tensor], indices: np.ndarray) -> dict[str, float]:
        """Critic: Q(s, a) -> r + gamma Q'(s', a'), a' ~ pi(s'). Policy: ascend
        w * Q(s, pi(s, eta; theta)) at the inferred eta, w the truncated importance weight."""
        obs, u = data["obs"], data["action"]
        stored_action = self.policy_net.squash(u)
        with torch.no_grad():
            next_mean, next_log_std = self.policy_net(data["next_obs"])
            next_u = next_mean + next_log_std.exp() * torch.randn(next_mean.shape, generator=self.generator, device=self.device)
            next_q = self.critic_target(torch.cat([data["next_obs"], self.policy_net.squash(next_u)], -1)).squeeze(-1)
            target = data["reward"] + data["discount"] * next_q
        q = self.critic(torch.cat([obs, stored_action], -1)).squeeze(-1)
        td_error = target - q
        critic_loss = (data["weights"] * td_error.square()).mean()
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()
        self._update_target()
        self.replay.update_priorities(indices, td_error.detach().abs().cpu().numpy())

        action, log_prob, regulariser, mean = self._reparameterised_action(obs, u)
        weight = truncated_importance_weight(log_prob, data["log_prob_old"], self.config.importance_clip)
        self.critic.requires_grad_(False)
        objective = data["weights"] * weight * self.critic(torch.cat([obs, action], -1)).squeeze(-1)
        policy_loss = self._policy_step(objective, regulariser)
        self.critic.requires_grad_(True)
        return {"loss/critic": critic_loss.item(), "loss/policy": policy_loss, "train/q_mean": q.mean().item(),
                "train/importance_weight": weight.mean().item(), "train/saturated_fraction": saturated_fraction(mean)}
