"""Proximal Policy Optimization (Schulman, Wolski, Dhariwal, Radford & Klimov 2017), with the
implementation details of OpenAI baselines' ppo2 that SB3 and CleanRL keep (Huang et al. 2022,
"The 37 Implementation Details of Proximal Policy Optimization"; Engstrom et al. 2020).

Each rollout of n_steps x n_envs steps is followed by n_epochs passes of minibatch Adam on

    L(theta) = E[ min(r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t) ]          (the paper's eq. 7)
               - c1 (V_theta(s_t) - V_t^targ)^2 + c2 H[pi_theta](s_t)       (eq. 9)

with r_t = pi_theta(a_t|s_t) / pi_old(a_t|s_t) and A_t the GAE(lambda) advantages (eq. 11-12),
standardised per minibatch. The details: orthogonal initialisation, Adam with eps 1e-5,
global gradient-norm clipping, linearly annealed step size and clip range (``*_schedule``),
optional value clipping, an early stop of the epochs when the approximate KL passes
1.5 x ``target_kl``, and for continuous control running normalisation of observations and
of rewards (by the std of the discounted return), both kept in checkpoints.

Reads top to bottom: config -> presets -> math (clipped_surrogate, clipped_value_loss,
approximate_kl) -> the actor-critic network -> the algorithm. Rollouts come from the core env
loop and ``RolloutStorage`` with ``gae()``; policies and normalisers from ``toolkit.policies``
(shared with TRPO, SVG and SAC).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from toolkit.config import Preset, bounded
from toolkit.errors import ToolkitError
from toolkit.interfaces import EnvContext, EnvSpec, Transition
from toolkit.nn import NatureCNN, check_network_option, mlp, uses_nature_cnn
from toolkit.policies import (CategoricalPolicy, FrozenNormalizer, GaussianPolicy, MultiCategoricalPolicy,
                              ReturnNormalizer, RunningNormalizer, StateDependentNoisePolicy, category_sizes,
                              first_action, gsde_noise_due, orthogonal_init, refuse_gsde_for_discrete,
                              rollout_action_space, sample_afresh)
from toolkit.rng import seeded_generator
from toolkit.rollout import RolloutStorage


@dataclass(frozen=True)
class PPOConfig:
    """Hyperparameters of PPO. Defaults are SB3's; presets give rl-zoo3's tuned values."""

    learning_rate: float = bounded(3e-4, above=0)
    """Adam step size (at the start of the run when learning_rate_schedule is linear)."""
    learning_rate_schedule: Literal["constant", "linear"] = "constant"
    """linear: anneal the step size to 0 over the run (rl-zoo3's lin_ values)."""
    n_steps: int = bounded(2048, at_least=1)
    """Env steps per env in each rollout (a rollout has n_steps * n_envs transitions)."""
    batch_size: int = bounded(64, at_least=1)
    """Minibatch size of the update."""
    n_epochs: int = bounded(10, at_least=1)
    """Passes over each rollout."""
    gamma: float = bounded(0.99, at_least=0, at_most=1)
    """Discount factor."""
    gae_lambda: float = bounded(0.95, at_least=0, at_most=1)
    """GAE lambda: 0 is one-step TD advantages, 1 is Monte-Carlo returns."""
    clip_range: float = bounded(0.2, above=0)
    """epsilon of the clipped surrogate (at the start of the run when clip_range_schedule is linear)."""
    clip_range_schedule: Literal["constant", "linear"] = "constant"
    """linear: anneal the clip range to 0 over the run (the Atari setting)."""
    clip_range_vf: float = bounded(0.0, at_least=0)
    """Clip the value update to this distance from the rollout's values, keeping the larger of
    the clipped and unclipped losses (baselines' ppo2); 0: no value clipping."""
    normalize_advantage: bool = True
    """Standardise advantages within each minibatch."""
    ent_coef: float = bounded(0.0, at_least=0)
    """c2: weight of the entropy bonus."""
    vf_coef: float = bounded(0.5, at_least=0)
    """c1: weight of the value loss (the mean squared error)."""
    max_grad_norm: float = bounded(0.5, at_least=0)
    """Clip the global gradient norm to this (0: no clipping)."""
    target_kl: float = bounded(0.0, at_least=0)
    """Stop a rollout's epochs once the approximate KL of a minibatch passes 1.5 x this (0: never)."""
    network: Literal["auto", "nature", "mlp"] = "auto"
    """auto: the Nature CNN (shared by policy and value) for Atari frames (C, 84, 84), separate
    MLPs otherwise; nature: the Nature CNN for any uint8 images of at least 36x36, channels first
    or last (CarRacing's (96, 96, 3) frames, as SB3's CnnPolicy)."""
    channels_last: bool = True
    """Use the channels-last memory layout for the CNN (faster convolutions on CPU)."""
    hidden: tuple[int, ...] = bounded((64, 64), at_least=1)
    """Hidden widths of the policy and value MLPs."""
    activation: Literal["tanh", "relu"] = "tanh"
    """Activation of the MLPs."""
    ortho_init: bool = True
    """Orthogonal initialisation (gain sqrt 2 for hidden layers, 0.01 policy head, 1 value head)."""
    log_std_init: float = 0.0
    """Initial log standard deviation of the Gaussian policy (state-independent, learned; with
    use_sde, of every entry of gSDE's noise scale)."""
    use_sde: bool = False
    """Continuous actions: generalized state-dependent exploration (gSDE, Raffin et al. 2022)
    instead of independent Gaussian noise each step."""
    sde_sample_freq: int = bounded(-1, at_least=-1)
    """With use_sde: draw new exploration noise every this many steps (-1: once per rollout)."""
    normalize_obs: bool = False
    """Running mean / std normalisation of observations (kept in checkpoints)."""
    normalize_reward: bool = False
    """Scale rewards by the running std of the discounted return (kept in checkpoints)."""


def _tuned_mujoco(**values: Any) -> dict[str, Any]:
    """An env of rl-zoo3's "10 mujoco envs" tuning: its values on 256-unit ReLU MLPs without
    orthogonal initialisation, log_std_init -2."""
    return {"hidden": (256, 256), "activation": "relu", "ortho_init": False, "log_std_init": -2.0, **values}


PRESETS: dict[str, Preset] = {
    "atari": Preset(
        {"n_envs": 8, "n_steps": 128, "n_epochs": 4, "batch_size": 256, "learning_rate": 2.5e-4,
         "learning_rate_schedule": "linear", "clip_range": 0.1, "clip_range_schedule": "linear",
         "vf_coef": 0.5, "ent_coef": 0.01, "steps": 10_000_000, "eval_every": 250_000, "eval_episodes": 10,
         "checkpoint_every": 250_000},
        envs=("atari",), description="rl-zoo3's Atari settings (8 envs, 128 steps, Nature CNN, clip 0.1, 4 epochs)"),
    "cartpole": Preset(
        {"n_envs": 8, "n_steps": 32, "batch_size": 256, "gae_lambda": 0.8, "gamma": 0.98, "n_epochs": 20,
         "ent_coef": 0.0, "learning_rate": 1e-3, "learning_rate_schedule": "linear", "clip_range": 0.2,
         "clip_range_schedule": "linear", "steps": 100_000, "eval_every": 10_000, "eval_episodes": 20},
        envs=("CartPole-v1",), description="rl-zoo3's CartPole-v1 settings"),
    "lunarlander": Preset(
        {"n_envs": 16, "n_steps": 1024, "batch_size": 64, "gae_lambda": 0.98, "gamma": 0.999, "n_epochs": 4,
         "ent_coef": 0.01, "steps": 1_000_000, "eval_every": 50_000, "eval_episodes": 20},
        envs=("LunarLander-v3", "LunarLanderContinuous-v3"),
        description="rl-zoo3's LunarLander-v3 settings (LunarLanderContinuous-v3's are the same)"),
    "bipedalwalker": Preset(
        {"n_envs": 32, "normalize_obs": True, "normalize_reward": True, "n_steps": 2048, "batch_size": 64,
         "gae_lambda": 0.95, "gamma": 0.999, "n_epochs": 10, "ent_coef": 0.0, "learning_rate": 3e-4,
         "clip_range": 0.18, "steps": 5_000_000, "eval_every": 100_000, "eval_episodes": 10,
         "checkpoint_every": 500_000},
        envs=("BipedalWalker-v3",), description="rl-zoo3's BipedalWalker-v3 settings"),
    "pendulum": Preset(
        {"n_envs": 4, "n_steps": 1024, "gae_lambda": 0.95, "gamma": 0.9, "n_epochs": 10, "ent_coef": 0.0,
         "learning_rate": 1e-3, "clip_range": 0.2, "use_sde": True, "sde_sample_freq": 4, "steps": 100_000,
         "eval_every": 10_000, "eval_episodes": 10},
        envs=("Pendulum-v1",), description="rl-zoo3's Pendulum-v1 settings (gSDE, new noise every 4 steps)"),
    # rl-zoo3 hyperparams/ppo.yml, "Mujoco Envs" (its v4 settings, here on v5): every env with
    # `normalize: true` and one env; Hopper, HalfCheetah, Walker2d and Humanoid tuned, Swimmer
    # tuned on SB3's defaults, Ant SB3's defaults
    "mujoco": Preset(
        {"n_envs": 1, "normalize_obs": True, "normalize_reward": True, "steps": 1_000_000, "eval_every": 50_000,
         "eval_episodes": 10},
        envs=("Hopper-v5", "HalfCheetah-v5", "Walker2d-v5", "Ant-v5", "Humanoid-v5", "Swimmer-v5"),
        description="rl-zoo3's MuJoCo settings, each env's own",
        overrides={
            "Hopper-v5": _tuned_mujoco(batch_size=32, n_steps=512, gamma=0.999, learning_rate=9.80828e-05,
                                       ent_coef=0.00229519, clip_range=0.2, n_epochs=5, gae_lambda=0.99,
                                       max_grad_norm=0.7, vf_coef=0.835671),
            "HalfCheetah-v5": _tuned_mujoco(batch_size=64, n_steps=512, gamma=0.98, learning_rate=2.0633e-05,
                                            ent_coef=0.000401762, clip_range=0.1, n_epochs=20, gae_lambda=0.92,
                                            max_grad_norm=0.8, vf_coef=0.58096),
            "Walker2d-v5": _tuned_mujoco(batch_size=32, n_steps=512, gamma=0.99, learning_rate=5.05041e-05,
                                         ent_coef=0.000585045, clip_range=0.1, n_epochs=20, gae_lambda=0.95,
                                         max_grad_norm=1.0, vf_coef=0.871923),
            "Humanoid-v5": _tuned_mujoco(batch_size=256, n_steps=512, gamma=0.95, learning_rate=3.56987e-05,
                                         ent_coef=0.00238306, clip_range=0.3, n_epochs=5, gae_lambda=0.9,
                                         max_grad_norm=2.0, vf_coef=0.431892, steps=10_000_000,
                                         eval_every=250_000, checkpoint_every=250_000),
            "Swimmer-v5": {"gamma": 0.9999, "n_envs": 4, "n_steps": 1024, "batch_size": 256, "learning_rate": 6e-4,
                           "gae_lambda": 0.98},
        }),
}


# -- the math --------------------------------------------------------------------------------


def clipped_surrogate(log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor,
                      clip_range: float) -> tuple[torch.Tensor, torch.Tensor]:
    """-L^CLIP (a loss to minimise) and the fraction of samples whose ratio was clipped.

    L^CLIP = mean( min(r A, clip(r, 1 - eps, 1 + eps) A) ),  r = exp(log pi - log pi_old)."""
    ratio = torch.exp(log_prob - old_log_prob)
    unclipped = ratio * advantages
    clipped = ratio.clamp(1.0 - clip_range, 1.0 + clip_range) * advantages
    clip_fraction = ((ratio - 1.0).abs() > clip_range).float().mean()
    return -torch.minimum(unclipped, clipped).mean(), clip_fraction


def clipped_value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
                       clip_range_vf: float) -> torch.Tensor:
    """Mean squared error to the returns; with clip_range_vf > 0, the larger of the errors of the
    new value and of the value moved at most clip_range_vf from the rollout's (baselines' ppo2)."""
    unclipped = (values - returns).square()
    if clip_range_vf <= 0:
        return unclipped.mean()
    moved = old_values + (values - old_values).clamp(-clip_range_vf, clip_range_vf)
    return torch.maximum(unclipped, (moved - returns).square()).mean()


def approximate_kl(log_prob: torch.Tensor, old_log_prob: torch.Tensor) -> torch.Tensor:
    """KL(pi_old || pi_theta) estimated from samples of pi_old as mean((r - 1) - log r), which is
    unbiased and never negative (Schulman 2020, "Approximating KL divergence")."""
    log_ratio = log_prob - old_log_prob
    return (torch.exp(log_ratio) - 1.0 - log_ratio).mean()


def explained_variance(predicted: np.ndarray, target: np.ndarray) -> float:
    """1 - Var[target - predicted] / Var[target]: 1 is perfect, 0 no better than a constant."""
    variance = float(np.var(target))
    return float("nan") if variance == 0 else 1.0 - float(np.var(target - predicted)) / variance


# -- the network -----------------------------------------------------------------------------


class ActorCritic(nn.Module):
    """A torso shared by the policy and the value function, then a head each: the Nature CNN
    and two linear heads on Atari frames (SB3's CnnPolicy); on vectors the torso only flattens
    and each head is its own MLP (SB3's MlpPolicy)."""

    def __init__(self, obs_space: spaces.Space, action_space: spaces.Space, config: PPOConfig,
                 n_envs: int = 1) -> None:
        super().__init__()
        sizes = category_sizes(action_space)  # None for Box actions
        n_out = sum(sizes) if sizes else int(np.prod(action_space.shape))
        if uses_nature_cnn(config.network, obs_space):
            self.torso: nn.Module = NatureCNN.for_images(obs_space)
            policy_head: nn.Module = nn.Linear(self.torso.out_features, n_out)
            value_head: nn.Module = nn.Linear(self.torso.out_features, 1)
        else:
            obs_dim = int(np.prod(obs_space.shape))
            activation = nn.Tanh if config.activation == "tanh" else nn.ReLU
            self.torso = nn.Flatten()
            policy_head = mlp(obs_dim, config.hidden, n_out, activation)
            value_head = mlp(obs_dim, config.hidden, 1, activation)
        if config.ortho_init:
            orthogonal_init(self.torso, math.sqrt(2))
            orthogonal_init(policy_head, math.sqrt(2))
            orthogonal_init(value_head, math.sqrt(2))
            orthogonal_init(_last_linear(policy_head), 0.01)
            orthogonal_init(_last_linear(value_head), 1.0)
        self.actor: nn.Module
        if isinstance(action_space, spaces.Discrete):
            self.actor = CategoricalPolicy(policy_head)
        elif sizes:  # MultiDiscrete, MultiBinary
            self.actor = MultiCategoricalPolicy(policy_head, sizes)
        elif config.use_sde:  # the noise is read from the layer before the mean
            body = policy_head[:-1] if isinstance(policy_head, nn.Sequential) else nn.Identity()
            self.actor = StateDependentNoisePolicy(body, _last_linear(policy_head), config.log_std_init, n_envs)
        else:
            self.actor = GaussianPolicy(policy_head, n_out, config.log_std_init)
        self.critic = value_head
        cnn = isinstance(self.torso, NatureCNN)
        self.memory_format = torch.channels_last if config.channels_last and cnn else torch.contiguous_format
        self.torso.to(memory_format=self.memory_format)
        # channels-last images (B, H, W, C) reach the convolutions channels-last in memory already
        self.input_format = torch.contiguous_format if cnn and self.torso.channels_last_input else self.memory_format

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        return self.torso(obs.contiguous(memory_format=self.input_format) if obs.dim() == 4 else obs)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(torso features, V(s))."""
        features = self.features(obs)
        return features, self.critic(features).squeeze(-1)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(self.features(obs)).squeeze(-1)


def _last_linear(module: nn.Module) -> nn.Linear:
    return [m for m in module.modules() if isinstance(m, nn.Linear)][-1]


# -- the algorithm ---------------------------------------------------------------------------


class DeterministicPolicy:
    """The policy's mode (argmax, or the Gaussian mean clipped to the action bounds) on
    observations normalised with the statistics frozen."""

    def __init__(self, algorithm: PPO) -> None:
        self.algorithm = algorithm

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        a = self.algorithm
        with torch.no_grad():
            action = a.net.actor.mode(a.net.features(a.prepare(obs, update=False))).cpu().numpy()
        return a.to_env_action(action)


class PolicyModule(nn.Module):
    """``DeterministicPolicy`` as one module (``toolkit export``): the frozen observation
    normaliser (in float64, as numpy computes it), the torso, the mode, the action bounds (or
    for discrete actions the env's first action number)."""

    def __init__(self, algorithm: PPO) -> None:
        super().__init__()
        self.net, self.discrete, self.image = algorithm.net, algorithm.discrete, algorithm.image
        normalizer = algorithm.obs_normalizer
        self.normalize = FrozenNormalizer(normalizer) if normalizer is not None else None
        if self.discrete:
            self.register_buffer("first", torch.as_tensor(first_action(algorithm.action_space)))
        else:
            self.register_buffer("low", torch.as_tensor(algorithm.action_space.low))
            self.register_buffer("high", torch.as_tensor(algorithm.action_space.high))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs if self.image else obs.reshape(obs.shape[0], -1).to(torch.float32)
        if self.normalize is not None:
            x = self.normalize(x)
        action = self.net.actor.mode(self.net.features(x))
        return action + self.first if self.discrete else torch.minimum(torch.maximum(action, self.low), self.high)


class PPO:
    """Collect a rollout of n_steps per env, then n_epochs of clipped-surrogate minibatch updates."""

    Config: ClassVar[type] = PPOConfig
    loop: ClassVar[str] = "env"
    presets: ClassVar[dict[str, Preset]] = PRESETS

    @classmethod
    def check(cls, config: PPOConfig, spec: EnvSpec) -> None:
        """PPO's policies are categorical (Discrete; one per dimension for MultiDiscrete and
        MultiBinary) or Gaussian (Box); the CNN needs uint8 images of at least 36x36."""
        if category_sizes(spec.action_space) is None and not isinstance(spec.action_space, spaces.Box):
            raise ToolkitError(f"ppo needs a Discrete, MultiDiscrete, MultiBinary (one-dimensional) or Box action "
                               f"space; {spec.id} has {spec.action_space}")
        check_network_option(config.network, spec)
        if config.normalize_obs and uses_nature_cnn(config.network, spec.observation_space):
            raise ToolkitError(f"--normalize-obs is for vector observations; {spec.id}'s frames go to the CNN, "
                               "which scales them to [0, 1] itself (drop --normalize-obs)")
        refuse_gsde_for_discrete(config.use_sde, spec)

    def __init__(self, config: PPOConfig, context: EnvContext) -> None:
        self.config = config
        torch.manual_seed(context.seed)
        obs_space, action_space = context.observation_space, context.action_space
        self.discrete = not isinstance(action_space, spaces.Box)
        self.first_action = first_action(action_space)
        self.image = uses_nature_cnn(config.network, obs_space)
        self.device = torch.device(context.device)
        self.net = ActorCritic(obs_space, action_space, config, context.n_envs).to(self.device)
        # eps 1e-5 as in baselines and SB3 (torch's 1e-8 lets early steps grow too large)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.learning_rate, eps=1e-5)
        self.action_space = action_space
        stored_obs = obs_space if self.image else spaces.Box(-np.inf, np.inf, (int(np.prod(obs_space.shape)),),
                                                             np.float32)
        self.rollout = RolloutStorage(config.n_steps, context.n_envs, stored_obs, rollout_action_space(action_space))
        self.obs_normalizer = RunningNormalizer(stored_obs.shape) if config.normalize_obs else None
        self.reward_normalizer = ReturnNormalizer(context.n_envs, config.gamma) if config.normalize_reward else None
        self.generator = torch.Generator(self.device).manual_seed(context.seed)
        self.total_steps = context.total_steps
        self._last: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self.updates = 0

    # -- acting ------------------------------------------------------------------------------

    def tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, device=self.device)

    def prepare(self, obs: np.ndarray, update: bool) -> torch.Tensor:
        """Observations as the network takes them: frames stay uint8; vectors are flattened to
        float32 and normalised (updating the running statistics when ``update``)."""
        return self.tensor(self.stored_obs(obs, update))

    def stored_obs(self, obs: np.ndarray, update: bool) -> np.ndarray:
        if self.image:
            return obs
        flat = obs.reshape(len(obs), -1).astype(np.float32)
        if self.obs_normalizer is None:
            return flat
        if update:
            self.obs_normalizer.update(flat)
        return self.obs_normalizer(flat)

    def to_env_action(self, action: np.ndarray) -> np.ndarray:
        if self.discrete:
            return (action + self.first_action).astype(self.action_space.dtype)
        return np.clip(action, self.action_space.low, self.action_space.high).astype(self.action_space.dtype)

    def act(self, obs: np.ndarray, step: int) -> np.ndarray:
        if self.config.use_sde and gsde_noise_due(self.rollout.step, self.config.sde_sample_freq):
            self.net.actor.resample_noise(self.generator)
        stored = self.stored_obs(obs, update=True)
        with torch.no_grad():
            features, value = self.net(self.tensor(stored))
            action, log_prob = self.net.actor.sample(features, self.generator)
        action = action.cpu().numpy()
        self._last = (stored, action, log_prob.cpu().numpy(), value.cpu().numpy())
        return self.to_env_action(action)

    def observe(self, t: Transition) -> None:
        stored, action, log_prob, value = self._last
        reward = t.reward
        if self.reward_normalizer is not None:
            reward = self.reward_normalizer(reward, np.logical_or(t.terminated, t.truncated))
        self.rollout.add(stored, action, reward, self.stored_obs(t.next_obs, update=False), t.terminated,
                         t.truncated, value, log_prob)

    # -- learning ----------------------------------------------------------------------------

    def next_values(self) -> np.ndarray:
        """V of each step's true successor. Within an episode that is the next step's stored
        value; only where an episode ended, and after the last step, is the critic run on the
        successor observation (a CNN pass per rollout step would add a tenth to an Atari update)."""
        r = self.rollout
        next_values = np.zeros_like(r.values)
        next_values[:-1] = r.values[1:]
        needed = r.episode_end.copy()
        needed[-1] = True
        t, e = np.nonzero(needed)
        with torch.no_grad():
            next_values[t, e] = self.net.value(self.tensor(r.next_obs[t, e])).cpu().numpy()
        return next_values

    def schedule(self, step: int) -> tuple[float, float]:
        """The step size and clip range at ``step`` (SB3 anneals both by the fraction of the
        budget remaining, evaluated at the start of each update)."""
        c = self.config
        remaining = max(0.0, 1.0 - step / self.total_steps) if self.total_steps > 0 else 1.0
        learning_rate = c.learning_rate * (remaining if c.learning_rate_schedule == "linear" else 1.0)
        clip_range = c.clip_range * (remaining if c.clip_range_schedule == "linear" else 1.0)
        return learning_rate, clip_range

    def update(self, step: int) -> dict[str, float]:
        if not self.rollout.full:
            return {}
        c, r = self.config, self.rollout
        learning_rate, clip_range = self.schedule(step)
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate
        r.compute_advantages(self.next_values(), c.gamma, c.gae_lambda)
        n = r.n_steps * r.n_envs
        obs = self.tensor(r.obs.reshape(n, *r.obs.shape[2:]))
        actions = self.tensor(r.actions.reshape(n, *r.actions.shape[2:]))
        old_log_probs = self.tensor(r.log_probs.reshape(n))
        advantages = self.tensor(r.advantages.reshape(n))
        returns = self.tensor(r.returns.reshape(n))
        old_values = self.tensor(r.values.reshape(n))

        sums = {"loss/policy": 0.0, "loss/value": 0.0, "loss/entropy": 0.0, "loss/clip_fraction": 0.0,
                "perf/approx_kl": 0.0}
        minibatches, epochs_done, stopped = 0, 0, False
        for _ in range(c.n_epochs):
            order = torch.randperm(n, generator=self.generator, device=self.device)
            for start in range(0, n, c.batch_size):
                batch = order[start : start + c.batch_size]
                features, values = self.net(obs[batch])
                distribution = self.net.actor.distribution(features)
                log_prob = distribution.log_prob(actions[batch])
                batch_advantages = advantages[batch]
                if c.normalize_advantage and len(batch) > 1:
                    batch_advantages = (batch_advantages - batch_advantages.mean()) / (batch_advantages.std() + 1e-8)
                policy_loss, clip_fraction = clipped_surrogate(log_prob, old_log_probs[batch], batch_advantages,
                                                               clip_range)
                value_loss = clipped_value_loss(values, old_values[batch], returns[batch], c.clip_range_vf)
                entropy_loss = -distribution.entropy().mean()
                with torch.no_grad():
                    kl = approximate_kl(log_prob, old_log_probs[batch]).item()
                if c.target_kl > 0 and kl > 1.5 * c.target_kl:
                    stopped = True  # as SB3: checked before the step, so this minibatch is not applied
                    break
                loss = policy_loss + c.ent_coef * entropy_loss + c.vf_coef * value_loss
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if c.max_grad_norm > 0:
                    nn.utils.clip_grad_norm_(self.net.parameters(), c.max_grad_norm)
                self.optimizer.step()
                minibatches += 1
                for key, value in (("loss/policy", policy_loss), ("loss/value", value_loss),
                                   ("loss/entropy", entropy_loss), ("loss/clip_fraction", clip_fraction)):
                    sums[key] += value.item()
                sums["perf/approx_kl"] += kl
            if stopped:
                break
            epochs_done += 1
        metrics = {key: total / max(minibatches, 1) for key, total in sums.items()}
        metrics |= {"train/explained_variance": explained_variance(r.values.ravel(), r.returns.ravel()),
                    "train/learning_rate": learning_rate, "train/clip_range": clip_range,
                    "train/epochs": float(epochs_done)}
        if not self.discrete:
            metrics["train/std"] = self.net.actor.log_std.exp().mean().item()
        r.reset()
        self.updates += 1
        return metrics

    # -- the rest of the protocol ------------------------------------------------------------

    def policy(self) -> DeterministicPolicy:
        return DeterministicPolicy(self)

    def policy_module(self) -> PolicyModule:
        return PolicyModule(self)

    def stochastic_policy(self, seed: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
        """Actions sampled from pi(a|s) (a random generator of its own, seeded with ``seed``; with
        use_sde, a noise matrix drawn afresh for each call)."""
        generator = seeded_generator(self.device, seed)

        def sample(obs: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                action, _ = sample_afresh(self.net.actor, self.net.features(self.prepare(obs, update=False)), generator)
            return self.to_env_action(action.cpu().numpy())

        return sample

    def state_dict(self) -> dict[str, Any]:
        state = {
            "net": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "updates": self.updates,
            "rollout": self.rollout.state_dict(),  # a checkpoint can fall in the middle of a rollout
        }
        if self.obs_normalizer is not None:
            state["obs_normalizer"] = self.obs_normalizer.state_dict()
        if self.reward_normalizer is not None:
            state["reward_normalizer"] = self.reward_normalizer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.updates = int(state["updates"])
        self.rollout.load_state_dict(state["rollout"])
        if self.obs_normalizer is not None:
            self.obs_normalizer.load_state_dict(state["obs_normalizer"])
        if self.reward_normalizer is not None:
            self.reward_normalizer.load_state_dict(state["reward_normalizer"])
