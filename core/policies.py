"""Policy and critic pieces shared by the policy-gradient and actor-critic plugins (TRPO, PPO,
SVG, SAC, TD3): the Gaussian log-density, the tanh squashing of an unbounded Gaussian sample
into an action box with its change-of-variables correction, the categorical (one or several
dimensions) and Gaussian policies over a network, state-dependent exploration (gSDE), the
twin Q-networks, orthogonal initialisation and the running observation / return normalisers.

Everything here is a plain function or a small ``nn.Module`` with no knowledge of replay,
rollouts or the training loop, so an algorithm module still reads top to bottom.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import nn

from toolkit.errors import ToolkitError
from toolkit.nn import mlp

# -- the math --------------------------------------------------------------------------------


def gaussian_log_prob(u: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log N(u; mean, diag(exp(log_std))^2), summed over the last axis."""
    z = (u - mean) * torch.exp(-log_std)
    return (-0.5 * z.square() - log_std).sum(-1) - 0.5 * u.shape[-1] * math.log(2 * math.pi)


def tanh_log_det_jacobian(u: torch.Tensor) -> torch.Tensor:
    """log |det d tanh(u) / du| = sum_i log(1 - tanh(u_i)^2), summed over the last axis.

    Written as 2 (log 2 - u - softplus(-2u)), which is the same number but finite for any u
    (log(1 - tanh(u)^2) underflows to log 0 beyond |u| of about 9 in float32), as the SAC
    authors' softlearning computes it. SB3 and CleanRL take log(1 - tanh(u)^2 + 1e-6) instead,
    whose gradient fades beyond |u| of about 7: the one place toolkit's SAC update differs from
    SB3's (tests/test_sb3_parity.py; what it weighs in a run: benchmarks/sac_update_drift.py)."""
    return (2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))).sum(-1)


def squashed_gaussian_log_prob(u: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log pi(a|s) of a = tanh(u), u ~ N(mean, sigma^2): the Gaussian log-density minus the
    log-determinant of the squashing (Haarnoja et al. 2018, Appendix C, "Enforcing Action Bounds")."""
    return gaussian_log_prob(u, mean, log_std) - tanh_log_det_jacobian(u)


def scale_to_box(unit_action: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Map an action in [-1, 1] to the box [low, high] (affine, so no density correction is
    needed for the entropy targets, which are defined in the [-1, 1] space)."""
    return low + (unit_action + 1.0) * 0.5 * (high - low)


def orthogonal_init(module: nn.Module, gain: float) -> nn.Module:
    """Orthogonal weights scaled by ``gain`` and zero biases for every linear and convolutional
    layer in ``module`` (the initialisation of OpenAI baselines' PPO, kept by SB3 and CleanRL:
    sqrt(2) for hidden layers, 0.01 for the policy head, 1 for the value head)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            nn.init.orthogonal_(layer.weight, gain)
            nn.init.zeros_(layer.bias)
    return module


def require_bounded_box(algorithm: str, spec: Any) -> None:
    """Refuse an env whose action space is not a Box with finite bounds: a policy that squashes
    or scales its output into [low, high] needs both (``spec`` is the env's ``EnvSpec``)."""
    space = spec.action_space
    if not isinstance(space, spaces.Box):
        raise ToolkitError(f"{algorithm} needs a continuous (Box) action space; {spec.id} has {space} "
                           "(for discrete actions try dqn or ppo)")
    if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
        raise ToolkitError(f"{algorithm} maps its actions into the action box; {spec.id}'s is unbounded ({space})")


def refuse_gsde_for_discrete(use_sde: bool, spec: Any) -> None:
    """gSDE (``StateDependentNoisePolicy``) is exploration noise for continuous actions."""
    if use_sde and not isinstance(spec.action_space, spaces.Box):
        raise ToolkitError(f"--use-sde is exploration noise for continuous actions; {spec.id}'s are "
                           f"discrete ({spec.action_space}; drop --use-sde)")


def category_sizes(action_space: Any) -> tuple[int, ...] | None:
    """The number of choices of each dimension of a discrete action space: (n,) for
    Discrete(n), nvec for a one-dimensional MultiDiscrete, (2, ..., 2) for MultiBinary(n);
    None for any other space."""
    if isinstance(action_space, spaces.Discrete):
        return (int(action_space.n),)
    if isinstance(action_space, spaces.MultiDiscrete) and action_space.nvec.ndim == 1:
        return tuple(int(n) for n in action_space.nvec)
    if isinstance(action_space, spaces.MultiBinary) and np.ndim(action_space.n) == 0:
        return (2,) * int(action_space.n)
    return None


def rollout_action_space(action_space: Any) -> spaces.Space:
    """The space a rollout keeps a policy's actions in: a Discrete space as it is, the choice
    of each dimension (counted from 0) for MultiDiscrete and MultiBinary, and for a Box the
    Gaussian sample before the env's clipping, as float32."""
    if isinstance(action_space, spaces.Discrete):
        return action_space
    sizes = category_sizes(action_space)
    if sizes is not None:
        return spaces.MultiDiscrete(sizes)
    return spaces.Box(-np.inf, np.inf, action_space.shape, np.float32)


def first_action(action_space: Any) -> np.ndarray:
    """What choice 0 of each dimension is in the env's numbering (Discrete and MultiDiscrete
    may start elsewhere than 0): the env's action is the policy's choice plus this."""
    return np.asarray(getattr(action_space, "start", 0), dtype=np.int64)


def gsde_noise_due(rollout_step: int, sample_freq: int) -> bool:
    """Whether gSDE draws new noise before this step of a rollout: at its start, and every
    ``sample_freq`` steps when that is positive (SB3's ``sde_sample_freq``)."""
    return rollout_step == 0 or (sample_freq > 0 and rollout_step % sample_freq == 0)


# -- policies --------------------------------------------------------------------------------


def with_encoder(encoder: nn.Module | None, head: Callable[[int], nn.Module], obs_dim: int) -> nn.Module:
    """``head(obs_dim)`` on flat observations, or ``encoder`` then ``head(encoder.out_features)``
    (a CNN in front of an MLP)."""
    if encoder is None:
        return head(obs_dim)
    return nn.Sequential(encoder, head(encoder.out_features))


class CategoricalPolicy(nn.Module):
    """pi(a|s) = softmax(logits(s)) for Discrete actions; ``logits`` is any network."""

    def __init__(self, logits: nn.Module) -> None:
        super().__init__()
        self.logits = logits

    def distribution(self, obs: torch.Tensor) -> torch.distributions.Categorical:
        return torch.distributions.Categorical(logits=self.logits(obs), validate_args=False)

    def sample(self, obs: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """An action per row and its log-probability, in one forward pass (this runs every env step)."""
        distribution = self.distribution(obs)
        action = torch.multinomial(distribution.probs, 1, generator=generator).squeeze(1)
        return action, distribution.log_prob(action)

    def mode(self, obs: torch.Tensor) -> torch.Tensor:
        return self.logits(obs).argmax(dim=1)


class MultiCategorical:
    """Independent categoricals, one per action dimension, from one row of concatenated logits:
    log-probabilities and entropies add up over the dimensions."""

    def __init__(self, logits: torch.Tensor, sizes: Sequence[int]) -> None:
        self.parts = [torch.distributions.Categorical(logits=part, validate_args=False)
                      for part in logits.split(list(sizes), dim=-1)]

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return torch.stack([part.log_prob(a) for part, a in zip(self.parts, actions.unbind(-1))], -1).sum(-1)

    def entropy(self) -> torch.Tensor:
        return torch.stack([part.entropy() for part in self.parts], -1).sum(-1)


def kl_divergence(p: Any, q: Any) -> torch.Tensor:
    """KL(p || q) per row: torch's for its distributions, the sum over dimensions for two
    ``MultiCategorical`` (independent dimensions)."""
    if isinstance(p, MultiCategorical):
        return torch.stack([torch.distributions.kl_divergence(a, b) for a, b in zip(p.parts, q.parts)], -1).sum(-1)
    return torch.distributions.kl_divergence(p, q)


class MultiCategoricalPolicy(nn.Module):
    """pi(a|s) = prod_i softmax(logits_i(s)) for MultiDiscrete and MultiBinary actions (SB3's
    MultiCategoricalDistribution): ``logits`` outputs sum(sizes) numbers per row, split into one
    categorical per action dimension."""

    def __init__(self, logits: nn.Module, sizes: Sequence[int]) -> None:
        super().__init__()
        self.logits, self.sizes = logits, tuple(sizes)

    def distribution(self, obs: torch.Tensor) -> MultiCategorical:
        return MultiCategorical(self.logits(obs), self.sizes)

    def sample(self, obs: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """An action per row (one choice per dimension) and its log-probability."""
        distribution = self.distribution(obs)
        action = torch.stack([torch.multinomial(part.probs, 1, generator=generator).squeeze(1)
                              for part in distribution.parts], dim=1)
        return action, distribution.log_prob(action)

    def mode(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.stack([part.argmax(dim=1) for part in self.logits(obs).split(list(self.sizes), dim=1)], dim=1)


class GaussianPolicy(nn.Module):
    """pi(a|s) = N(mean(s), diag(exp(log_std))^2) with a state-independent learned log_std
    (TRPO, PPO); ``mean`` is any network. The env clips the sample to its bounds."""

    def __init__(self, mean: nn.Module, action_dim: int, log_std_init: float) -> None:
        super().__init__()
        self.mean = mean
        self.log_std = nn.Parameter(torch.full((action_dim,), float(log_std_init)))

    def distribution(self, obs: torch.Tensor) -> torch.distributions.Independent:
        normal = torch.distributions.Normal(self.mean(obs), self.log_std.exp(), validate_args=False)
        return torch.distributions.Independent(normal, 1, validate_args=False)

    def sample(self, obs: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """An action per row and its log-probability, in one forward pass (this runs every env step)."""
        mean = self.mean(obs)
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        action = mean + self.log_std.exp() * noise
        # scored as the update scores it (not as -noise^2/2 - log sigma, which is the same
        # number up to rounding): TRPO's Hopper runs are sensitive to rounding at this level
        normal = torch.distributions.Normal(mean, self.log_std.exp(), validate_args=False)
        return action, normal.log_prob(action).sum(dim=1)

    def mode(self, obs: torch.Tensor) -> torch.Tensor:
        return self.mean(obs)


class SquashedGaussianPolicy(nn.Module):
    """u = mu(s) + sigma(s) * eta, eta ~ N(0, I), with a state-dependent, clamped log sigma(s);
    the env action is tanh(u) scaled into the action box (SVG, SAC). ``encoder``: a module with
    ``out_features`` (a CNN) that the observations pass through before the MLP, which then
    takes its features instead of ``obs_dim`` numbers."""

    def __init__(self, obs_dim: int, action_space: spaces.Box, hidden: tuple[int, ...],
                 log_std_bounds: tuple[float, float], encoder: nn.Module | None = None) -> None:
        super().__init__()
        self.action_dim = int(np.prod(action_space.shape))
        self.body = with_encoder(encoder, lambda features: mlp(features, hidden, 2 * self.action_dim), obs_dim)
        self.log_std_bounds = log_std_bounds
        self.register_buffer("low", torch.as_tensor(action_space.low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(action_space.high, dtype=torch.float32))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.body(obs).chunk(2, dim=-1)
        return mean, log_std.clamp(*self.log_std_bounds)

    def squash(self, u: torch.Tensor) -> torch.Tensor:
        return scale_to_box(torch.tanh(u), self.low, self.high)

    def sample_unit(self, obs: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised action tanh(u) in [-1, 1] and its log-density there (SAC's
        entropy is measured in this space, as in the paper and SB3)."""
        mean, log_std = self(obs)
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        u = mean + log_std.exp() * noise
        return torch.tanh(u), squashed_gaussian_log_prob(u, mean, log_std)


class StateDependentNoisePolicy(nn.Module):
    """Generalized state-dependent exploration, gSDE (Raffin, Kober & Stulp 2022, "Smooth
    Exploration for Robotic Reinforcement Learning", eq. 2-3): the action is mu(s) + eps(s) with
    eps(s) = z(s)^T theta_eps, where z(s) is the policy's last hidden layer (detached) and the
    matrix theta_eps ~ N(0, sigma^2) is drawn by ``resample_noise`` (every few steps, not every
    step), so exploration is smooth in time and state. Actions are scored under
    pi(a|s) = N(mu(s), diag(z(s)^2 sigma^2)), with a learned log sigma per (feature, action).
    As SB3's ``StateDependentNoiseDistribution`` with full_std and no expln; ``learn_features``
    lets the noise's gradient reach the body (SB3's SAC does, its PPO does not) and
    ``clip_mean`` > 0 clips mu(s) to [-clip_mean, clip_mean] (SB3's SAC: 2, before its tanh)."""

    def __init__(self, body: nn.Module, head: nn.Linear, log_std_init: float, n_envs: int,
                 learn_features: bool = False, clip_mean: float = 0.0) -> None:
        super().__init__()
        self.body, self.head = body, head
        self.learn_features, self.clip_mean = learn_features, clip_mean
        self.log_std = nn.Parameter(torch.full((head.in_features, head.out_features), float(log_std_init)))
        # one theta_eps per env, kept in the state dict so a resumed run explores on
        self.register_buffer("exploration", torch.zeros(n_envs, head.in_features, head.out_features))

    def resample_noise(self, generator: torch.Generator) -> None:
        std = self.log_std.detach().exp()
        noise = torch.randn(self.exploration.shape, generator=generator, dtype=std.dtype, device=std.device)
        self.exploration.copy_(noise * std)

    def draw_noise_matrix(self, generator: torch.Generator) -> torch.Tensor:
        """One theta_eps ~ N(0, sigma^2) drawn as sigma * N(0, I), so that a loss through the
        action it makes also moves log sigma (SAC's actor loss, as SB3's rsample)."""
        std = self.log_std.exp()
        return std * torch.randn(std.shape, generator=generator, dtype=std.dtype, device=std.device)

    def _features_and_mean(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(obs)
        mean = self.head(features)
        if self.clip_mean > 0:
            mean = mean.clamp(-self.clip_mean, self.clip_mean)
        return (features if self.learn_features else features.detach()), mean

    def _normal(self, features: torch.Tensor, mean: torch.Tensor) -> torch.distributions.Normal:
        variance = features.square() @ self.log_std.exp().square()
        # SB3's 1e-6 keeps the scale positive where every feature is 0 (a dead ReLU layer)
        return torch.distributions.Normal(mean, torch.sqrt(variance + 1e-6), validate_args=False)

    def distribution(self, obs: torch.Tensor) -> torch.distributions.Independent:
        return torch.distributions.Independent(self._normal(*self._features_and_mean(obs)), 1, validate_args=False)

    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """mu(s) + z(s)^T theta_eps with each row's env's matrix (the first for a batch of
        another size), and its log-density under pi(a|s); ``generator`` is unused (the noise
        was drawn by ``resample_noise``)."""
        features, mean = self._features_and_mean(obs)
        if len(features) == len(self.exploration):
            noise = torch.bmm(features.unsqueeze(1), self.exploration).squeeze(1)
        else:
            noise = features @ self.exploration[0]
        action = mean + noise
        return action, self._normal(features, mean).log_prob(action).sum(dim=1)

    def sample_with(self, obs: torch.Tensor, noise_matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """mu(s) + z(s)^T noise_matrix, one matrix for every row (``draw_noise_matrix``; SAC's
        update draws one per gradient step), and the log-density under pi(a|s)."""
        features, mean = self._features_and_mean(obs)
        action = mean + features @ noise_matrix
        return action, self._normal(features, mean).log_prob(action).sum(dim=1)

    def mode(self, obs: torch.Tensor) -> torch.Tensor:
        return self._features_and_mean(obs)[1]


def sample_afresh(actor: Any, inputs: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """An action per row sampled from pi(a|s) with ``generator``'s noise, and its log-probability:
    ``actor.sample``, except that a gSDE actor gets a theta_eps drawn for this call instead of the
    exploration noise it holds for training (with which every call would be the same function of
    the observation). What a ``stochastic_policy`` plays."""
    if isinstance(actor, StateDependentNoisePolicy):
        return actor.sample_with(inputs, actor.draw_noise_matrix(generator))
    return actor.sample(inputs, generator)


# -- observations ----------------------------------------------------------------------------


class ObservationLayout:
    """How an algorithm stores observations (replay, rollouts) and its networks take them:
    images as the env gives them (uint8, for a CNN that scales them itself:
    ``toolkit.nn.uses_nature_cnn``), anything else flattened to float32 vectors (Dict and Tuple
    observations arrive flattened already)."""

    def __init__(self, observation_space: spaces.Space, image: bool) -> None:
        self.image = image
        flat = spaces.Box(-np.inf, np.inf, (int(np.prod(observation_space.shape)),), np.float32)
        self.replay_space = observation_space if image else flat
        """The observation space replay (or a rollout) stores."""

    def stored(self, obs: np.ndarray) -> np.ndarray:
        """A batch of env observations as replay keeps them."""
        return obs if self.image else obs.reshape(len(obs), -1)

    def tensor(self, obs: np.ndarray, device: torch.device) -> torch.Tensor:
        """A batch of env observations as the networks take them."""
        if self.image:
            return torch.as_tensor(obs, device=device)
        return torch.as_tensor(self.stored(obs), dtype=torch.float32, device=device)

    def module_input(self, obs: torch.Tensor) -> torch.Tensor:
        """``tensor`` inside an exported policy, which takes the env's observations as a tensor."""
        return obs if self.image else obs.reshape(obs.shape[0], -1).to(torch.float32)


# -- critics ---------------------------------------------------------------------------------


class TwinQ(nn.Module):
    """Two independent Q(s, a) networks over the concatenated state and action (clipped double
    Q-learning, Fujimoto et al. 2018; SAC's twin critics). ``encoder``: a module with
    ``out_features`` (a CNN) that turns observations into the state features both networks
    take, as SB3's critics share one features extractor."""

    def __init__(self, obs_dim: int, action_dim: int, hidden: Sequence[int], encoder: nn.Module | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        state_features = obs_dim if encoder is None else encoder.out_features
        self.q1 = mlp(state_features + action_dim, hidden, 1)
        self.q2 = mlp(state_features + action_dim, hidden, 1)

    def _inputs(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return torch.cat([obs if self.encoder is None else self.encoder(obs), action], dim=-1)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = self._inputs(obs, action)
        return self.q1(inputs).squeeze(-1), self.q2(inputs).squeeze(-1)

    def min(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return torch.minimum(*self(obs, action))

    def q1_value(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q_1 alone (TD3's actor ascends it)."""
        return self.q1(self._inputs(obs, action)).squeeze(-1)


@torch.no_grad()
def polyak_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """target <- (1 - tau) target + tau online, parameter by parameter."""
    for target_param, param in zip(target.parameters(), online.parameters()):
        target_param.lerp_(param, tau)


# -- normalisers -----------------------------------------------------------------------------


class RunningNormalizer:
    """Running mean and variance of observations (Chan et al. parallel update); calling it
    standardises and clips."""

    def __init__(self, shape: tuple[int, ...], clip: float = 10.0) -> None:
        self.mean, self.var, self.count = np.zeros(shape), np.ones(shape), 1e-4
        self.clip = clip

    def update(self, batch: np.ndarray) -> None:
        mean, var, n = batch.mean(axis=0), batch.var(axis=0), len(batch)
        delta, total = mean - self.mean, self.count + n
        self.mean = self.mean + delta * n / total
        self.var = (self.var * self.count + var * n + delta**2 * self.count * n / total) / total
        self.count = total

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return np.clip((obs - self.mean) / np.sqrt(self.var + 1e-8), -self.clip, self.clip).astype(np.float32)

    def state_dict(self) -> dict[str, object]:
        return {"mean": self.mean, "var": self.var, "count": self.count}

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.mean, self.var = np.array(state["mean"]), np.array(state["var"])
        self.count = float(state["count"])


class FrozenNormalizer(nn.Module):
    """A ``RunningNormalizer``'s statistics frozen into a module (``toolkit export``), computed in
    float64 as numpy computes them, so an exported policy sees exactly what ``eval`` sees."""

    def __init__(self, normalizer: RunningNormalizer) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(normalizer.mean, dtype=torch.float64))
        self.register_buffer("std", torch.sqrt(torch.as_tensor(normalizer.var, dtype=torch.float64) + 1e-8))
        self.clip = float(normalizer.clip)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return ((obs.double() - self.mean) / self.std).clamp(-self.clip, self.clip).float()


class ReturnNormalizer:
    """Reward scaling by the running standard deviation of the discounted return (no mean
    subtraction: the sign of a reward is kept), as SB3's VecNormalize and OpenAI baselines do
    for PPO on continuous control; the discounted return restarts where an episode ends."""

    def __init__(self, n_envs: int, gamma: float, clip: float = 10.0) -> None:
        self.returns = np.zeros(n_envs)
        self.statistics = RunningNormalizer(())
        self.gamma, self.clip = gamma, clip

    def __call__(self, reward: np.ndarray, episode_end: np.ndarray) -> np.ndarray:
        self.returns = self.returns * self.gamma + reward
        self.statistics.update(self.returns)
        scaled = np.clip(reward / np.sqrt(self.statistics.var + 1e-8), -self.clip, self.clip)
        self.returns[episode_end] = 0.0
        return scaled.astype(np.float32)

    def state_dict(self) -> dict[str, object]:
        return {"returns": self.returns, **{f"statistics_{k}": v for k, v in self.statistics.state_dict().items()}}

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.returns = np.array(state["returns"])
        self.statistics.load_state_dict({k: state[f"statistics_{k}"] for k in ("mean", "var", "count")})
