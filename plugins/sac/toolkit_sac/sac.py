"""Soft Actor-Critic with automatic entropy tuning (Haarnoja, Zhou, Hartikainen, Tucker, Ha,
Tan, Kumar, Zhu, Gupta, Abbeel & Levine 2018, "Soft Actor-Critic Algorithms and
Applications", Algorithm 1).

    critics  J_Q(phi_i)   = E[ 1/2 (Q_i(s, a) - y)^2 ],
             y            = r + gamma (1 - d) ( min_j Q'_j(s', a') - alpha log pi(a'|s') ),  a' ~ pi(s')   (eq. 3, 5)
    actor    J_pi(theta)  = E[ alpha log pi(f(eta; s)|s) - min_j Q_j(s, f(eta; s)) ]                      (eq. 7)
    alpha    J(alpha)     = E[ -alpha (log pi(a|s) + H_target) ],  H_target = -|A|                        (eq. 18)

with the policy a tanh-squashed Gaussian, its log-density corrected by the log-determinant
of tanh (Appendix C, "Enforcing Action Bounds"), twin critics with Polyak-averaged targets
(tau), and alpha optimised as log alpha. With use_sde the Gaussian's noise is gSDE's (Raffin,
Kober & Stulp 2022): the last hidden features times a matrix held for several steps while
acting, as SB3's SAC does. Actions live in [-1, 1] inside the algorithm (the replay, the
critics, the entropy) and are scaled to the env's box only when sent, as in SB3.

Reads top to bottom: config -> presets -> the math (the temperature loss) -> the algorithm
(acting, the update, checkpoint state). The policy, the twin critics and the tanh correction
come from ``toolkit.policies`` (shared with SVG and TD3); replay and its samplers from core,
so ``--replay prioritized`` works unchanged.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from toolkit.config import Preset, bounded
from toolkit.interfaces import EnvContext, EnvSpec, Transition
from toolkit.nn import NatureCNN, check_network_option, mlp, uses_nature_cnn
from toolkit.policies import (ObservationLayout, SquashedGaussianPolicy, StateDependentNoisePolicy, TwinQ,
                              gsde_noise_due, polyak_update, require_bounded_box, scale_to_box,
                              tanh_log_det_jacobian, with_encoder)
from toolkit.replay import ReplayBuffer
from toolkit.rng import seeded_generator
from toolkit.schedules import gradient_steps_due, linear


@dataclass(frozen=True)
class SACConfig:
    """Hyperparameters of SAC. Defaults are SB3's (which are the paper's, Table 1, but for
    learning_starts); presets give rl-zoo3's."""

    learning_rate: float = bounded(3e-4, above=0)
    """Adam step size of the actor, the critics and the temperature (at the start of the run when
    learning_rate_schedule is linear)."""
    learning_rate_schedule: Literal["constant", "linear"] = "constant"
    """linear: anneal the step size to 0 over the run (rl-zoo3's ``lin_``)."""
    buffer_size: int = bounded(1_000_000, at_least=1)
    """Replay capacity in transitions."""
    learning_starts: int = bounded(100, at_least=0)
    """Env steps of uniformly random actions collected before the first update."""
    batch_size: int = bounded(256, at_least=1)
    """Transitions per gradient step."""
    tau: float = bounded(0.005, above=0, at_most=1)
    """Polyak rate of the target critics."""
    gamma: float = bounded(0.99, at_least=0, at_most=1)
    """Discount factor."""
    train_frequency: int = bounded(1, at_least=1)
    """Env steps (summed over envs) between training phases."""
    gradient_steps: int = bounded(1, at_least=-1)
    """Gradient steps per training phase (-1: as many as env steps since the last phase)."""
    target_update_interval: int = bounded(1, at_least=1)
    """Gradient steps between Polyak updates of the target critics."""
    ent_coef: float = bounded(1.0, above=0)
    """alpha: its initial value when autotune is on, else its fixed value."""
    autotune: bool = True
    """Learn alpha so the policy's entropy tracks target_entropy (the paper's Section 5)."""
    target_entropy_scale: float = 1.0
    """The entropy target is -target_entropy_scale * |A| (the paper's heuristic: 1)."""
    hidden: tuple[int, ...] = bounded((256, 256), at_least=1)
    """Hidden widths of the actor and critic MLPs (ReLU)."""
    network: Literal["auto", "nature", "mlp"] = "auto"
    """What reads the observations before those MLPs. nature: a Nature CNN for the actor and one
    shared by the twin critics, for uint8 images of at least 36x36, channels first or last (SB3's
    CnnPolicy; replay then stores the images as uint8); auto: that CNN for Atari's (C, 84, 84)
    frames, the flattened observations otherwise; mlp: the flattened observations."""
    log_std_bounds: tuple[float, float] = (-20.0, 2.0)
    """Clamp of the policy's log sigma(s) (without use_sde)."""
    use_sde: bool = False
    """Generalized state-dependent exploration (gSDE) as SB3's use_sde: the noise before the
    tanh is the policy's last hidden features times a matrix theta_eps ~ N(0, sigma^2), sigma
    learned per (feature, action), held for sde_sample_freq steps while acting and drawn once
    per gradient step in the update; the mean is clipped to [-2, 2]."""
    sde_sample_freq: int = bounded(-1, at_least=-1)
    """With use_sde: draw new exploration noise every this many env steps per env while acting
    (-1: once per training phase, SB3's default)."""
    log_std_init: float = -3.0
    """With use_sde: the initial log sigma (SB3's -3)."""
    replay: str = field(default="uniform", metadata={"registry": "sampler"})
    """Replay sampler: uniform, or any registered sampler (e.g. prioritized)."""


PRESETS: dict[str, Preset] = {
    "pendulum": Preset({"learning_rate": 1e-3, "steps": 20_000, "eval_every": 2_000, "eval_episodes": 10},
                       envs=("Pendulum-v1",), description="rl-zoo3's Pendulum-v1 settings"),
    # rl-zoo3 hyperparams/sac.yml, "Mujoco Envs" (its v4 settings, here on v5)
    "mujoco": Preset({"learning_starts": 10_000, "steps": 1_000_000, "eval_every": 25_000, "eval_episodes": 10,
                      "checkpoint_every": 100_000},
                     envs=("Hopper-v5", "HalfCheetah-v5", "Walker2d-v5", "Ant-v5", "Humanoid-v5", "Swimmer-v5"),
                     description="rl-zoo3's MuJoCo settings",
                     overrides={"Humanoid-v5": {"steps": 2_000_000}, "Swimmer-v5": {"gamma": 0.999}}),
    # rl-zoo3 hyperparams/sac.yml (its settings published with sb3/sac-MountainCarContinuous-v0)
    "mountaincar": Preset({"use_sde": True, "log_std_init": -3.67, "hidden": (64, 64), "ent_coef": 0.1,
                           "autotune": False, "learning_rate": 3e-4, "buffer_size": 50_000, "batch_size": 512,
                           "gamma": 0.9999, "tau": 0.01, "train_frequency": 32, "gradient_steps": 32,
                           "learning_starts": 0, "steps": 50_000, "eval_every": 5_000, "eval_episodes": 10},
                          envs=("MountainCarContinuous-v0",),
                          description="rl-zoo3's MountainCarContinuous-v0 settings (gSDE, alpha fixed at 0.1)"),
    "lunarlander": Preset({"learning_rate": 7.3e-4, "learning_rate_schedule": "linear", "tau": 0.01,
                           "learning_starts": 10_000, "hidden": (400, 300), "steps": 500_000, "eval_every": 25_000,
                           "eval_episodes": 10, "checkpoint_every": 100_000},
                          envs=("LunarLanderContinuous-v3",), description="rl-zoo3's LunarLanderContinuous settings"),
}


# -- the math --------------------------------------------------------------------------------


def temperature_loss(log_alpha: torch.Tensor, log_prob: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """J(alpha) = E[-alpha (log pi(a|s) + H_target)] (eq. 18), written in log alpha as SB3 and
    the authors' code do: its gradient -(E[log pi] + H_target) raises alpha while the policy's
    entropy -E[log pi] is below the target and lowers it above."""
    return -(log_alpha * (log_prob.detach() + target_entropy)).mean()


# -- the gSDE actor --------------------------------------------------------------------------


class SquashedStateDependentPolicy(nn.Module):
    """SAC's actor with gSDE (SB3's use_sde): u = mu(s) + z(s)^T theta_eps with z(s) the last
    hidden layer (its gradient kept) and mu(s) clipped to [-2, 2]; the action is tanh(u), its
    log-density that of u under N(mu(s), diag(z(s)^2 sigma^2)) minus tanh's log-determinant,
    as the plain policy's. The noise pieces are ``toolkit.policies``' (shared with PPO, TRPO)."""

    def __init__(self, obs_dim: int, action_space: spaces.Box, hidden: tuple[int, ...], log_std_init: float,
                 n_envs: int, encoder: nn.Module | None = None) -> None:
        super().__init__()
        action_dim = int(np.prod(action_space.shape))
        body = with_encoder(encoder, lambda features: nn.Sequential(*mlp(features, hidden[:-1], hidden[-1]), nn.ReLU()),
                            obs_dim)
        self.noise = StateDependentNoisePolicy(body, nn.Linear(hidden[-1], action_dim), log_std_init, n_envs,
                                               learn_features=True, clip_mean=2.0)
        self.register_buffer("low", torch.as_tensor(action_space.low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(action_space.high, dtype=torch.float32))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, None]:
        """(mu(s), None): the mean, as ``SquashedGaussianPolicy`` gives it with its log sigma."""
        return self.noise.mode(obs), None

    def squash(self, u: torch.Tensor) -> torch.Tensor:
        return scale_to_box(torch.tanh(u), self.low, self.high)

    def explore(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """An action in [-1, 1] per env with that env's held noise (``noise.resample_noise``), and its log-density."""
        u, log_prob = self.noise.sample(obs)
        return torch.tanh(u), log_prob - tanh_log_det_jacobian(u)

    def sample_unit(self, obs: torch.Tensor, generator: torch.Generator,
                    noise_matrix: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised action in [-1, 1] for every row with one noise matrix (``noise_matrix``,
        else a fresh draw), and its log-density."""
        matrix = self.noise.draw_noise_matrix(generator) if noise_matrix is None else noise_matrix
        u, log_prob = self.noise.sample_with(obs, matrix)
        return torch.tanh(u), log_prob - tanh_log_det_jacobian(u)


# -- the algorithm ---------------------------------------------------------------------------


class DeterministicPolicy:
    """tanh of the Gaussian mean, scaled to the action box."""

    def __init__(self, algorithm: SAC) -> None:
        self.algorithm = algorithm

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        a = self.algorithm
        with torch.no_grad():
            mean, _ = a.actor(a.layout.tensor(obs, a.device))
            return a.actor.squash(mean).cpu().numpy().astype(a.action_space.dtype)


class PolicyModule(torch.nn.Module):
    """``DeterministicPolicy`` as one module (``toolkit export``): observations as the env gives
    them (images stay uint8 for the CNN, which scales them itself)."""

    def __init__(self, actor: SquashedGaussianPolicy | SquashedStateDependentPolicy, layout: ObservationLayout) -> None:
        super().__init__()
        self.actor, self.layout = actor, layout

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        mean, _ = self.actor(self.layout.module_input(obs))
        return self.actor.squash(mean)


class SAC:
    """Off-policy: every env step goes to replay; each training phase takes gradient steps on
    the critics, the actor and the temperature from replayed batches."""

    Config: ClassVar[type] = SACConfig
    loop: ClassVar[str] = "env"
    presets: ClassVar[dict[str, Preset]] = PRESETS

    @classmethod
    def check(cls, config: SACConfig, spec: EnvSpec) -> None:
        """SAC's squashed Gaussian needs a bounded continuous (Box) action space; the CNN, images."""
        require_bounded_box("sac", spec)
        check_network_option(config.network, spec)

    def __init__(self, config: SACConfig, context: EnvContext) -> None:
        self.config = config
        self.device = torch.device(context.device)
        torch.manual_seed(context.seed)
        self.generator = torch.Generator(self.device).manual_seed(context.seed)
        self.rng = np.random.default_rng(context.seed)
        self.action_space = context.action_space
        obs_space = context.observation_space
        obs_dim = int(np.prod(obs_space.shape))
        self.action_dim = int(np.prod(context.action_space.shape))
        self.layout = ObservationLayout(obs_space, image=uses_nature_cnn(config.network, obs_space))

        def encoder() -> NatureCNN | None:  # the actor's and the critics' own (SB3's share_features_extractor=False)
            return NatureCNN.for_images(obs_space) if self.layout.image else None

        self.actor: SquashedGaussianPolicy | SquashedStateDependentPolicy
        if config.use_sde:
            self.actor = SquashedStateDependentPolicy(obs_dim, context.action_space, config.hidden,
                                                      config.log_std_init, context.n_envs, encoder()).to(self.device)
        else:
            self.actor = SquashedGaussianPolicy(obs_dim, context.action_space, config.hidden,
                                                config.log_std_bounds, encoder()).to(self.device)
        self.n_envs = context.n_envs
        self.critic = TwinQ(obs_dim, self.action_dim, config.hidden, encoder()).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=config.learning_rate)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=config.learning_rate)
        self.log_alpha = torch.tensor(math.log(config.ent_coef), device=self.device, requires_grad=config.autotune)
        self.alpha_optimizer = torch.optim.Adam([self.log_alpha], lr=config.learning_rate)
        self.target_entropy = -config.target_entropy_scale * self.action_dim
        # stored: the observation flattened (an image as it is, for the CNN), the action in [-1, 1]
        self.replay = ReplayBuffer(config.buffer_size, self.layout.replay_space,
                                   spaces.Box(-1.0, 1.0, (self.action_dim,), np.float32), n_envs=context.n_envs,
                                   sampler=config.replay, seed=context.seed)
        self.total_steps = context.total_steps
        self._last_unit_action = np.zeros(0, np.float32)
        self.last_step = 0
        self.updates = 0

    # -- acting ------------------------------------------------------------------------------

    def act(self, obs: np.ndarray, step: int) -> np.ndarray:
        """Uniformly random actions until learning_starts, then samples of pi(a|s)."""
        c = self.config
        if step < c.learning_starts:
            unit_action = self.rng.uniform(-1.0, 1.0, (len(obs), self.action_dim)).astype(np.float32)
        else:
            obs_t = self.layout.tensor(obs, self.device)
            with torch.no_grad():
                if c.use_sde:
                    if self._gsde_noise_due(step):
                        self.actor.noise.resample_noise(self.generator)
                    unit_action, _ = self.actor.explore(obs_t)
                else:
                    unit_action, _ = self.actor.sample_unit(obs_t, self.generator)
            unit_action = unit_action.cpu().numpy()
        self._last_unit_action = unit_action
        return scale_to_box(unit_action, self.action_space.low, self.action_space.high).astype(self.action_space.dtype)

    def _gsde_noise_due(self, step: int) -> bool:
        """SB3 draws gSDE noise at the start of each collection of train_frequency steps and
        every sde_sample_freq steps within it (both counted per env); and toolkit on the first
        step the policy acts, wherever that falls in a collection."""
        c = self.config
        phase_length = max(1, c.train_frequency // self.n_envs)
        first = step < c.learning_starts + self.n_envs
        return first or gsde_noise_due((step // self.n_envs) % phase_length, c.sde_sample_freq)

    def observe(self, t: Transition) -> None:
        self.replay.add(self.layout.stored(t.obs), self._last_unit_action, t.reward, self.layout.stored(t.next_obs),
                        t.terminated, t.truncated)

    # -- learning ----------------------------------------------------------------------------

    def update(self, step: int) -> dict[str, float]:
        c = self.config
        if step < c.learning_starts:
            self.last_step = step
            return {}
        annealed = c.learning_rate_schedule == "linear"
        if annealed:  # SB3 sets it from the budget left at each training phase
            learning_rate = linear(c.learning_rate, 0.0, step, self.total_steps)
            for optimizer in (self.actor_optimizer, self.critic_optimizer, self.alpha_optimizer):
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate
        metrics: dict[str, float] = {}
        for _ in range(gradient_steps_due(step, self.last_step, c.train_frequency, c.gradient_steps)):
            metrics = self.train_step(progress=step / self.total_steps)
        if metrics and annealed:
            metrics["train/learning_rate"] = learning_rate
        self.last_step = step
        return metrics

    def train_step(self, progress: float = 0.0) -> dict[str, float]:
        """One gradient step of the temperature, the twin critics and the actor, in SB3's order."""
        c = self.config
        batch = self.replay.sample(c.batch_size, gamma=c.gamma, progress=progress)
        data = batch.to_torch(self.device)
        obs, action, weights = data["obs"].float(), data["action"].float(), data["weights"].float()

        # gSDE: one noise matrix for this step's samples, of the batch and of its successors (SB3's reset_noise)
        noise_matrix = self.actor.noise.draw_noise_matrix(self.generator) if c.use_sde else None
        pi_action, log_prob = self._sample(obs, noise_matrix)
        alpha = self.log_alpha.detach().exp()
        metrics = {}
        if c.autotune:
            alpha_loss = temperature_loss(self.log_alpha, log_prob, self.target_entropy)
            self.alpha_optimizer.zero_grad(set_to_none=True)
            alpha_loss.backward()
            self.alpha_optimizer.step()
            metrics["loss/alpha"] = alpha_loss.item()

        with torch.no_grad():
            next_obs = data["next_obs"].float()
            next_action, next_log_prob = self._sample(next_obs, noise_matrix)
            next_q = self.critic_target.min(next_obs, next_action) - alpha * next_log_prob
            target = data["reward"].float() + data["discount"].float() * next_q
        q1, q2 = self.critic(obs, action)
        critic_loss = 0.5 * (weights * ((q1 - target).square() + (q2 - target).square())).mean()
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()
        td_error = 0.5 * ((q1 - target).abs() + (q2 - target).abs())
        self.replay.update_priorities(batch.indices, td_error.detach().cpu().numpy())

        self.critic.requires_grad_(False)  # the actor's loss only moves the actor
        actor_loss = (alpha * log_prob - self.critic.min(obs, pi_action)).mean()
        self.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_optimizer.step()
        self.critic.requires_grad_(True)

        self.updates += 1
        if self.updates % c.target_update_interval == 0:
            polyak_update(self.critic_target, self.critic, c.tau)
        return metrics | {"loss/critic": critic_loss.item(), "loss/actor": actor_loss.item(),
                          "train/alpha": alpha.item(), "train/entropy": -log_prob.mean().item(),
                          "train/q_mean": q1.mean().item()}

    def _sample(self, obs: torch.Tensor, noise_matrix: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if noise_matrix is None:
            return self.actor.sample_unit(obs, self.generator)
        return self.actor.sample_unit(obs, self.generator, noise_matrix)

    # -- the rest of the protocol ------------------------------------------------------------

    def policy(self) -> DeterministicPolicy:
        return DeterministicPolicy(self)

    def policy_module(self) -> PolicyModule:
        return PolicyModule(self.actor, self.layout)

    def stochastic_policy(self, seed: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
        """Actions sampled from the squashed Gaussian, as in training (a random generator of its
        own, seeded with ``seed``; with use_sde, a noise matrix drawn afresh for each call)."""
        generator = seeded_generator(self.device, seed)

        def sample(obs: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                unit_action, _ = self.actor.sample_unit(self.layout.tensor(obs, self.device), generator)
                return scale_to_box(unit_action, self.actor.low, self.actor.high).cpu().numpy().astype(
                    self.action_space.dtype)

        return sample

    def replay_buffers(self) -> dict[str, ReplayBuffer]:
        return {"replay": self.replay}

    def state_dict(self) -> dict[str, Any]:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "critic_target": self.critic_target.state_dict(), "log_alpha": self.log_alpha.detach().clone(),
                "actor_optimizer": self.actor_optimizer.state_dict(),
                "critic_optimizer": self.critic_optimizer.state_dict(),
                "alpha_optimizer": self.alpha_optimizer.state_dict(), "generator": self.generator.get_state(),
                "rng": self.rng.bit_generator.state, "last_step": self.last_step, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.critic_target.load_state_dict(state["critic_target"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.alpha_optimizer.load_state_dict(state["alpha_optimizer"])
        self.generator.set_state(state["generator"])
        self.rng.bit_generator.state = state["rng"]
        self.last_step, self.updates = int(state["last_step"]), int(state["updates"])
