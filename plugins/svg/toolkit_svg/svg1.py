"""SVG(1)-ER (Heess et al. 2015, Section 4.2): a value function V(s), a learned dynamics model
and reward; the policy gradient is grad_theta [ r(s, a) + gamma V(f(s, a, xi)) ], one step
through the model at the noise inferred from the replayed step, each sample weighted by the
truncated importance weight min(pi_theta(a|s) / pi_old(a|s), c). Shared parts:
``toolkit_svg.common``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from toolkit.config import bounded
from toolkit_svg.common import (SVGBase, SVGConfig, gaussian_log_prob, infer_noise, saturated_fraction,
                                truncated_importance_weight)


@dataclass(frozen=True)
class SVG1Config(SVGConfig):
    """SVG(1)-ER's hyperparameters: the shared ones, with a higher floor under sigma and a
    penalty on the pre-tanh mean (both found by the probes in plugins/svg/README.md)."""

    log_std_bounds: tuple[float, float] = (-1.0, 1.0)
    """Clamp of the policy's state-dependent log sigma(s). The value gradient shrinks sigma
    wherever the value is concave in the action, so sigma reaches its floor within a few thousand
    steps, and there the truncated importance weights of older replayed actions vanish: at the
    shared floor log sigma = -5 their batch mean fell to 0.03 on InvertedPendulum and SVG(1)
    collapsed; at exp(-2) = 0.14 (before the tanh) it stays near 0.2, but the policy stopped
    exploring and later drove the cart into the end of the rail; at exp(-1) = 0.37 seeds 0 and 2
    reach 1,000 by 5k steps and end there (plugins/svg/README.md)."""
    mean_penalty: float = bounded(1e-3, at_least=0)
    """Weight of an L2 penalty on the policy's mean before the tanh. Without it the mean of an
    InvertedPendulum policy sat in tanh's flat tails in 95% of states, the policy gradient there
    vanished, and a late drift of sigma dropped one seed from 1,000 to 841 at 20k steps; with it
    (at the earlier floor log sigma = -2), 4% of states are saturated and the seed holds 1,000 from 10k steps on."""


class SVG1(SVGBase):
    """SVG(1)-ER: one step through a learned model into a learned V, off-policy from replay."""

    Config: ClassVar[type] = SVG1Config
    variant: ClassVar[str] = "svg1"
    critic_input: ClassVar[str | None] = "state"
    uses_model: ClassVar[bool] = True

    def replay_step(self, data: dict[str, torch.Tensor], indices: np.ndarray) -> dict[str, float]:
        return self.svg1_step(data, indices)

    def svg1_step(self, data: dict[str, torch.Tensor], indices: np.ndarray) -> dict[str, float]:
        """Critic: w * (V(s) - (r + gamma V'(s')))^2. Policy: ascend
        w * [ r(s, a(theta)) + gamma V(s + g(s, a(theta)) + sigma_f xi) ] with eta and xi inferred
        from the replayed step, w = min(pi_theta(a|s) / pi_old(a|s), c)."""
        c = self.config
        obs, next_obs, u = data["obs"], data["next_obs"], data["action"]
        with torch.no_grad():
            mean, log_std = self.policy_net(obs)
            weight = truncated_importance_weight(gaussian_log_prob(u, mean, log_std), data["log_prob_old"],
                                                 c.importance_clip)

        with torch.no_grad():
            target = data["reward"] + data["discount"] * self.critic_target(next_obs).squeeze(-1)
        value = self.critic(obs).squeeze(-1)
        td_error = target - value
        critic_loss = (data["weights"] * weight * td_error.square()).mean()
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()
        self._update_target()
        self.replay.update_priorities(indices, td_error.detach().abs().cpu().numpy())

        frozen = [self.critic, self.model] + ([self.reward_model] if self.reward_model is not None else [])
        for module in frozen:
            module.requires_grad_(False)
        objective, regulariser = self.one_step_value(obs, u, next_obs, data["discount"])
        policy_loss = self._policy_step(data["weights"] * weight * objective, regulariser)
        for module in frozen:
            module.requires_grad_(True)
        return {"loss/critic": critic_loss.item(), "loss/policy": policy_loss, "train/value_mean": value.mean().item(),
                "train/importance_weight": weight.mean().item(), "train/policy_log_std": log_std.mean().item(),
                "train/saturated_fraction": saturated_fraction(mean)}

    def one_step_value(self, obs: torch.Tensor, u: torch.Tensor, next_obs: torch.Tensor,
                       discount: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """r(s, a(theta)) + discount * V(s + g(s, a(theta)) + sigma_f xi) per sample, with eta
        inferred from the replayed action u and xi from the observed s' (so at the current theta
        the predicted next state is the observed one); also the policy's regulariser."""
        action, _, regulariser, _ = self._reparameterised_action(obs, u)
        with torch.no_grad():
            xi = infer_noise(next_obs, self.model.mean(obs, self.policy_net.squash(u)), self.model.std())
        predicted_next = self.model.mean(obs, action) + self.model.std() * xi
        # discount is gamma, or 0 where the episode terminated: no value after the end
        return self.reward(obs, action) + discount * self.critic(predicted_next).squeeze(-1), regulariser
