"""Twin Delayed Deep Deterministic policy gradient (Fujimoto, van Hoof & Meger 2018,
"Addressing Function Approximation Error in Actor-Critic Methods", Algorithm 1).

    target smoothing  a'  = clip( mu'(s') + clip(eps, -c, c), -1, 1 ),  eps ~ N(0, sigma~^2)   (eq. 14-15)
    clipped double Q  y   = r + gamma (1 - d) min_j Q'_j(s', a')                              (eq. 10)
    critics           J   = sum_j (Q_j(s, a) - y)^2
    delayed actor     every d critic updates: ascend Q_1(s, mu(s)), then Polyak-average both
                      targets (tau)                                                         (Section 5.2)

Exploration adds N(0, exploration_noise^2) to mu(s) (the paper's Section 6.1 found it as good
as DDPG's Ornstein-Uhlenbeck noise), or with exploration_noise_type ornstein-uhlenbeck that
temporally correlated noise (Lillicrap et al. 2016), which rl-zoo3 keeps for
MountainCarContinuous. Actions live in [-1, 1] inside the
algorithm (the replay, the critics, the noise scales) and are scaled to the env's box only
when sent, as in SB3.

Reads top to bottom: config -> presets -> the actor network -> the math (the smoothed target
action) -> the algorithm. The twin critics and the Polyak update come from
``toolkit.policies`` (shared with SAC), replay and its samplers from core.
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
from toolkit.policies import ObservationLayout, TwinQ, polyak_update, require_bounded_box, scale_to_box, with_encoder
from toolkit.replay import ReplayBuffer
from toolkit.schedules import gradient_steps_due


@dataclass(frozen=True)
class TD3Config:
    """Hyperparameters of TD3. Defaults are SB3's and the paper's (exploration noise 0.1,
    which SB3 leaves off unless asked); presets give rl-zoo3's."""

    learning_rate: float = bounded(1e-3, above=0)
    """Adam step size of the actor and the critics."""
    buffer_size: int = bounded(1_000_000, at_least=1)
    """Replay capacity in transitions."""
    learning_starts: int = bounded(100, at_least=0)
    """Env steps of uniformly random actions collected before the first update."""
    batch_size: int = bounded(256, at_least=1)
    """Transitions per gradient step."""
    tau: float = bounded(0.005, above=0, at_most=1)
    """Polyak rate of the target actor and critics."""
    gamma: float = bounded(0.99, at_least=0, at_most=1)
    """Discount factor."""
    train_frequency: int = bounded(1, at_least=1)
    """Env steps (summed over envs) between training phases."""
    gradient_steps: int = bounded(1, at_least=-1)
    """Gradient steps per training phase (-1: as many as env steps since the last phase)."""
    policy_delay: int = bounded(2, at_least=1)
    """d: critic updates per actor (and target) update."""
    target_policy_noise: float = bounded(0.2, at_least=0)
    """sigma~: std of the noise added to the target action (in [-1, 1] action units)."""
    target_noise_clip: float = bounded(0.5, at_least=0)
    """c: the target noise is clipped to [-c, c]."""
    exploration_noise: float = bounded(0.1, at_least=0)
    """Std of the Gaussian noise added to mu(s) when acting (in [-1, 1] action units); with
    ornstein-uhlenbeck, the process's sigma."""
    exploration_noise_type: Literal["normal", "ornstein-uhlenbeck"] = "normal"
    """normal: independent noise each step; ornstein-uhlenbeck: noise that drifts back to 0
    (theta 0.15, dt 0.01, SB3's), restarted at 0 each episode, so actions keep pushing one way
    for hundreds of steps (rl-zoo3's setting for MountainCarContinuous)."""
    hidden: tuple[int, ...] = bounded((400, 300), at_least=1)
    """Hidden widths of the actor and critic MLPs (ReLU)."""
    network: Literal["auto", "nature", "mlp"] = "auto"
    """What reads the observations before those MLPs. nature: a Nature CNN for the actor and one
    shared by the twin critics (their targets have copies), for uint8 images of at least 36x36,
    channels first or last (SB3's CnnPolicy; replay then stores the images as uint8); auto: that
    CNN for Atari's (C, 84, 84) frames, the flattened observations otherwise; mlp: the flattened
    observations."""
    replay: str = field(default="uniform", metadata={"registry": "sampler"})
    """Replay sampler: uniform, or any registered sampler (e.g. prioritized)."""


PRESETS: dict[str, Preset] = {
    "pendulum": Preset({"gamma": 0.98, "buffer_size": 200_000, "learning_starts": 10_000, "exploration_noise": 0.1,
                        "learning_rate": 1e-3, "hidden": (400, 300), "steps": 20_000, "eval_every": 2_000,
                        "eval_episodes": 10},
                       envs=("Pendulum-v1",), description="rl-zoo3's Pendulum-v1 settings"),
    # rl-zoo3 hyperparams/td3.yml, "Mujoco Envs" (its v4 settings, here on v5)
    "mujoco": Preset({"learning_starts": 10_000, "exploration_noise": 0.1, "learning_rate": 1e-3, "batch_size": 256,
                      "hidden": (400, 300), "steps": 1_000_000, "eval_every": 25_000, "eval_episodes": 10,
                      "checkpoint_every": 100_000},
                     envs=("Hopper-v5", "HalfCheetah-v5", "Walker2d-v5", "Ant-v5", "Humanoid-v5", "Swimmer-v5"),
                     description="rl-zoo3's MuJoCo settings",
                     overrides={"Humanoid-v5": {"steps": 2_000_000}, "Swimmer-v5": {"gamma": 0.9999}}),
    # rl-zoo3 hyperparams/td3.yml: its other values are SB3's defaults, which are TD3Config's
    "mountaincar": Preset({"exploration_noise_type": "ornstein-uhlenbeck", "exploration_noise": 0.5,
                           "steps": 300_000, "eval_every": 25_000, "eval_episodes": 10, "checkpoint_every": 100_000},
                          envs=("MountainCarContinuous-v0",),
                          description="rl-zoo3's MountainCarContinuous-v0 settings (Ornstein-Uhlenbeck noise, sigma 0.5)"),
    # rl-zoo3 hyperparams/td3.yml: the two Box2D envs share these settings but for the budget
    "box2d": Preset({"gamma": 0.98, "buffer_size": 200_000, "learning_starts": 10_000, "exploration_noise": 0.1,
                     "learning_rate": 1e-3, "hidden": (400, 300), "steps": 300_000, "eval_every": 25_000,
                     "eval_episodes": 10, "checkpoint_every": 100_000},
                    envs=("LunarLanderContinuous-v3", "BipedalWalker-v3"),
                    description="rl-zoo3's LunarLanderContinuous and BipedalWalker settings",
                    overrides={"BipedalWalker-v3": {"steps": 1_000_000}}),
}


# -- the actor -------------------------------------------------------------------------------


class DeterministicActor(nn.Module):
    """mu(s) = tanh(MLP(s)), an action in [-1, 1]; with an ``encoder`` (a CNN), tanh(MLP(CNN(s)))."""

    def __init__(self, obs_dim: int, action_dim: int, hidden: tuple[int, ...], encoder: nn.Module | None = None) -> None:
        super().__init__()
        self.body = with_encoder(encoder, lambda features: mlp(features, hidden, action_dim), obs_dim)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.body(obs))


# -- the math --------------------------------------------------------------------------------


def smoothed_target_action(target_action: torch.Tensor, noise_std: float, noise_clip: float,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """Target policy smoothing (eq. 14-15): clip(mu'(s') + clip(N(0, sigma~^2), -c, c), -1, 1)."""
    noise = torch.randn(target_action.shape, generator=generator, dtype=target_action.dtype,
                        device=target_action.device)
    return (target_action + (noise * noise_std).clamp(-noise_clip, noise_clip)).clamp(-1.0, 1.0)


# SB3's OrnsteinUhlenbeckActionNoise defaults, which rl-zoo3 keeps
OU_THETA, OU_DT = 0.15, 1e-2


def ornstein_uhlenbeck_step(noise: np.ndarray, sigma: float, standard_normal: np.ndarray,
                            theta: float = OU_THETA, dt: float = OU_DT) -> np.ndarray:
    """The next value of an Ornstein-Uhlenbeck process around 0 (its Euler-Maruyama step):
    x + theta (0 - x) dt + sigma sqrt(dt) N(0, 1). Successive values are correlated by
    1 - theta dt, and the process settles to the std sigma sqrt(dt / (1 - (1 - theta dt)^2))."""
    return noise - theta * noise * dt + sigma * math.sqrt(dt) * standard_normal


# -- the algorithm ---------------------------------------------------------------------------


class DeterministicPolicy:
    """mu(s) scaled to the action box."""

    def __init__(self, algorithm: TD3) -> None:
        self.algorithm = algorithm

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        a = self.algorithm
        with torch.no_grad():
            unit_action = a.actor(a.layout.tensor(obs, a.device)).cpu().numpy()
        return a.to_env_action(unit_action)


class PolicyModule(nn.Module):
    """``DeterministicPolicy`` as one module (``toolkit export``)."""

    def __init__(self, algorithm: TD3) -> None:
        super().__init__()
        self.actor, self.layout = algorithm.actor, algorithm.layout
        self.register_buffer("low", torch.as_tensor(algorithm.action_space.low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(algorithm.action_space.high, dtype=torch.float32))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return scale_to_box(self.actor(self.layout.module_input(obs)), self.low, self.high)


class TD3:
    """Off-policy: every env step goes to replay; each training phase takes critic steps, and
    every policy_delay-th of them an actor step and the target updates."""

    Config: ClassVar[type] = TD3Config
    loop: ClassVar[str] = "env"
    presets: ClassVar[dict[str, Preset]] = PRESETS

    @classmethod
    def check(cls, config: TD3Config, spec: EnvSpec) -> None:
        """TD3's tanh actor needs a bounded continuous (Box) action space; the CNN, images."""
        require_bounded_box("td3", spec)
        check_network_option(config.network, spec)

    def __init__(self, config: TD3Config, context: EnvContext) -> None:
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

        self.actor = DeterministicActor(obs_dim, self.action_dim, config.hidden, encoder()).to(self.device)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic = TwinQ(obs_dim, self.action_dim, config.hidden, encoder()).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=config.learning_rate)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=config.learning_rate)
        self.replay = ReplayBuffer(config.buffer_size, self.layout.replay_space,
                                   spaces.Box(-1.0, 1.0, (self.action_dim,), np.float32), n_envs=context.n_envs,
                                   sampler=config.replay, seed=context.seed)
        self.total_steps = context.total_steps
        self._last_unit_action = np.zeros(0, np.float32)
        self.ou_noise = np.zeros((context.n_envs, self.action_dim))  # each env's, with ornstein-uhlenbeck
        self.last_step = 0
        self.updates = 0

    def to_env_action(self, unit_action: np.ndarray) -> np.ndarray:
        return scale_to_box(unit_action, self.action_space.low, self.action_space.high).astype(self.action_space.dtype)

    # -- acting ------------------------------------------------------------------------------

    def act(self, obs: np.ndarray, step: int) -> np.ndarray:
        """Uniformly random actions until learning_starts, then mu(s) plus the exploration noise."""
        c = self.config
        if step < c.learning_starts:
            unit_action = self.rng.uniform(-1.0, 1.0, (len(obs), self.action_dim))
        else:
            with torch.no_grad():
                unit_action = self.actor(self.layout.tensor(obs, self.device)).cpu().numpy()
            if c.exploration_noise_type == "ornstein-uhlenbeck":
                self.ou_noise = ornstein_uhlenbeck_step(self.ou_noise, c.exploration_noise,
                                                        self.rng.standard_normal(self.ou_noise.shape))
                unit_action = unit_action + self.ou_noise
            else:
                unit_action = unit_action + self.rng.normal(0.0, c.exploration_noise, unit_action.shape)
        self._last_unit_action = np.clip(unit_action, -1.0, 1.0).astype(np.float32)
        return self.to_env_action(self._last_unit_action)

    def observe(self, t: Transition) -> None:
        self.replay.add(self.layout.stored(t.obs), self._last_unit_action, t.reward, self.layout.stored(t.next_obs),
                        t.terminated, t.truncated)
        if self.config.exploration_noise_type == "ornstein-uhlenbeck":  # a new episode starts it afresh
            self.ou_noise[np.logical_or(t.terminated, t.truncated)] = 0.0

    # -- learning ----------------------------------------------------------------------------

    def update(self, step: int) -> dict[str, float]:
        c = self.config
        if step < c.learning_starts:
            self.last_step = step
            return {}
        metrics: dict[str, float] = {}
        for _ in range(gradient_steps_due(step, self.last_step, c.train_frequency, c.gradient_steps)):
            metrics |= self.train_step(progress=step / self.total_steps)
        self.last_step = step
        return metrics

    def train_step(self, progress: float = 0.0) -> dict[str, float]:
        """One critic step; every policy_delay-th, an actor step and the target updates."""
        c = self.config
        batch = self.replay.sample(c.batch_size, gamma=c.gamma, progress=progress)
        data = batch.to_torch(self.device)
        obs, action, weights = data["obs"].float(), data["action"].float(), data["weights"].float()
        with torch.no_grad():
            next_obs = data["next_obs"].float()
            next_action = smoothed_target_action(self.actor_target(next_obs), c.target_policy_noise,
                                                 c.target_noise_clip, self.generator)
            target = data["reward"].float() + data["discount"].float() * self.critic_target.min(next_obs, next_action)
        q1, q2 = self.critic(obs, action)
        critic_loss = (weights * ((q1 - target).square() + (q2 - target).square())).mean()
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()
        td_error = 0.5 * ((q1 - target).abs() + (q2 - target).abs())
        self.replay.update_priorities(batch.indices, td_error.detach().cpu().numpy())
        self.updates += 1
        metrics = {"loss/critic": critic_loss.item(), "train/q_mean": q1.mean().item()}

        if self.updates % c.policy_delay == 0:
            self.critic.requires_grad_(False)  # the actor's loss only moves the actor
            actor_loss = -self.critic.q1_value(obs, self.actor(obs)).mean()
            self.actor_optimizer.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.actor_optimizer.step()
            self.critic.requires_grad_(True)
            polyak_update(self.critic_target, self.critic, c.tau)
            polyak_update(self.actor_target, self.actor, c.tau)
            metrics["loss/actor"] = actor_loss.item()
        return metrics

    # -- the rest of the protocol ------------------------------------------------------------

    def policy(self) -> DeterministicPolicy:
        return DeterministicPolicy(self)

    def policy_module(self) -> PolicyModule:
        return PolicyModule(self)

    def stochastic_policy(self, seed: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
        """mu(s) plus the exploration noise, as in training (a random generator of its own, seeded
        with ``seed``; with ornstein-uhlenbeck, independent Gaussian noise of the same sigma, since
        a policy called on any batch of observations carries no noise from one call to the next)."""
        rng = np.random.default_rng(seed)

        def sample(obs: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                unit_action = self.actor(self.layout.tensor(obs, self.device)).cpu().numpy()
            noisy = unit_action + rng.normal(0.0, self.config.exploration_noise, unit_action.shape)
            return self.to_env_action(np.clip(noisy, -1.0, 1.0))

        return sample

    def replay_buffers(self) -> dict[str, ReplayBuffer]:
        return {"replay": self.replay}

    def state_dict(self) -> dict[str, Any]:
        return {"actor": self.actor.state_dict(), "actor_target": self.actor_target.state_dict(),
                "critic": self.critic.state_dict(), "critic_target": self.critic_target.state_dict(),
                "actor_optimizer": self.actor_optimizer.state_dict(),
                "critic_optimizer": self.critic_optimizer.state_dict(), "generator": self.generator.get_state(),
                "rng": self.rng.bit_generator.state, "last_step": self.last_step, "updates": self.updates,
                "ou_noise": torch.as_tensor(self.ou_noise)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("actor", "actor_target", "critic", "critic_target", "actor_optimizer", "critic_optimizer"):
            getattr(self, name).load_state_dict(state[name])
        self.generator.set_state(state["generator"])
        self.rng.bit_generator.state = state["rng"]
        self.last_step, self.updates = int(state["last_step"]), int(state["updates"])
        if "ou_noise" in state:  # checkpoints before ornstein-uhlenbeck noise have none
            self.ou_noise = state["ou_noise"].numpy().copy()
