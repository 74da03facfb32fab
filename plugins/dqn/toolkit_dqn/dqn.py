"""Deep Q-Networks.

* Mnih et al. 2013, "Playing Atari with Deep Reinforcement Learning" (NIPS workshop): Q-learning
  with a CNN trained on minibatches from experience replay, no target network.
* Mnih et al. 2015, "Human-level control through deep reinforcement learning" (Nature): adds a
  target network copied every C updates and clips the TD error (the Huber loss).
* van Hasselt et al. 2016, "Deep Reinforcement Learning with Double Q-learning" (``--double``).
* Wang et al. 2016, "Dueling Network Architectures" (``--dueling``).

Reads top to bottom: config -> presets -> math -> networks -> the algorithm. The runtime owns
the env loop, evaluation, logging and checkpoints; replay storage and sampling come from
core, so ``--replay prioritized`` plugs in without any change here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import nn

from toolkit.config import Preset, bounded
from toolkit.errors import ToolkitError
from toolkit.interfaces import EnvContext, EnvSpec, Transition
from toolkit.nn import CompiledOptimizerStep, NatureCNN, image_layout, nature_cnn_fits
from toolkit.replay import ReplayBuffer
from toolkit.schedules import gradient_steps_due, linear


@dataclass(frozen=True)
class DQNConfig:
    """Hyperparameters of DQN. Defaults are SB3's; presets give the papers' and tuned values."""

    learning_rate: float = bounded(1e-4, above=0)
    """Optimizer step size."""
    optimizer: Literal["adam", "rmsprop"] = "adam"
    """adam, or rmsprop as in the papers (centered, with rmsprop_alpha and optimizer_eps)."""
    rmsprop_alpha: float = bounded(0.95, at_least=0, below=1)
    """RMSProp's squared-gradient decay (the Nature paper's 'gradient momentum')."""
    optimizer_eps: float = bounded(1e-8, above=0)
    """Denominator epsilon of Adam / RMSProp (Nature: 0.01, its 'min squared gradient')."""
    buffer_size: int = bounded(100_000, at_least=1)
    """Replay capacity in transitions."""
    learning_starts: int = bounded(1_000, at_least=0)
    """Env steps of experience collected before the first update."""
    batch_size: int = bounded(32, at_least=1)
    """Transitions per gradient step."""
    gamma: float = bounded(0.99, at_least=0, at_most=1)
    """Discount factor."""
    n_step: int = bounded(1, at_least=1)
    """Length of the bootstrapped return r_t + ... + gamma^(n-1) r_{t+n-1} + gamma^n max Q."""
    train_frequency: int = bounded(4, at_least=1)
    """Env steps (summed over envs) between training phases."""
    gradient_steps: int = bounded(1, at_least=-1)
    """Gradient steps per training phase (-1: as many as env steps since the last phase)."""
    target_update_interval: int = bounded(10_000, at_least=0)
    """Env steps between target-network updates; 0 means no target network (NIPS 2013)."""
    tau: float = bounded(1.0, above=0, at_most=1)
    """Target update rate: 1 copies the online network (hard update), < 1 is Polyak averaging."""
    loss: Literal["huber", "mse"] = "huber"
    """huber clips the TD error's gradient to [-1, 1] as in the Nature paper; mse is the 2013 loss."""
    max_grad_norm: float = bounded(10.0, at_least=0)
    """Clip the global gradient norm to this (0: no clipping)."""
    exploration_initial: float = bounded(1.0, at_least=0, at_most=1)
    """Epsilon at the first step."""
    exploration_final: float = bounded(0.05, at_least=0, at_most=1)
    """Epsilon after the decay."""
    exploration_fraction: float = bounded(0.1, at_least=0, at_most=1)
    """Fraction of the run over which epsilon decays linearly (used when exploration_steps is 0)."""
    exploration_steps: int = bounded(0, at_least=0)
    """Env steps over which epsilon decays linearly; overrides exploration_fraction when > 0."""
    eval_epsilon: float = bounded(0.0, at_least=0, at_most=1)
    """Epsilon of the evaluation policy (Atari presets: 0.001, so a stuck agent still moves)."""
    double: bool = False
    """Double DQN: the online network picks the next action, the target network values it."""
    dueling: bool = False
    """Dueling heads: Q = V + A - mean(A)."""
    network: Literal["auto", "nature", "nips2013", "minatar", "mlp"] = "auto"
    """auto: the Nature CNN for Atari-sized images, MinAtar's CNN for 10x10 grids, an MLP otherwise."""
    hidden: tuple[int, ...] = bounded((64, 64), at_least=1)
    """Hidden layer widths of the MLP."""
    replay: str = field(default="uniform", metadata={"registry": "sampler"})
    """Replay sampler: uniform, or any registered sampler (e.g. prioritized)."""
    channels_last: bool = True
    """Use the channels-last memory layout for the Atari CNNs (faster convolutions on CPU; MinAtar's
    small network is a little faster without it, so it never gets it)."""
    compile: bool = False
    """Compile the networks with torch.compile (slower start, faster steps)."""
    compile_optimizer: bool = False
    """Compile the optimizer step with torch.compile (a few seconds at the first update, then one
    fused loop per parameter: centred RMSProp on MinAtar's network 0.5 -> 0.2 ms per update here).
    Needs a C++ compiler on CPU; without one the eager step runs, after a warning."""
    amp: bool = False
    """Run the update's network passes in bfloat16 autocast (CPUs with bfloat16 units: AVX512-BF16,
    AMX; GPUs): about a third faster on Atari here; off by default so results match float32 runs."""


def _zoo(**values: Any) -> dict[str, Any]:
    """rl-zoo3's classic-control settings on its (256, 256) MLP, plus Double DQN and 3-step
    returns, which made CartPole-v1 reliable where the zoo config is not: the final
    20-episode evaluation reached >= 475 in 5 of 5 seeds against 2 of 5 (benchmarks/dqn_classic.py)."""
    return {"hidden": (256, 256), "double": True, "n_step": 3, **values}


# The step size of the MinAtar paper's learning curves, per game: each is the best of its DQN
# sweep over 2^-14 .. 2^-8 (the README's sensitivity plot, the return over the final 100 episodes
# of 5M frames). Space Invaders' best, 2^-12, is the reference's 2.5e-4 within 3%, so it keeps
# that. Breakout at 1M frames: 7.6 at 2.5e-4, 8.87 at 2^-9, the paper's curve 9.2 (benchmarks/dqn_minatar.py,
# 3 seeds each); Asterix, Freeway and Seaquest are the sweep's values, not measured here.
MINATAR_BEST_STEP_SIZES = {"Asterix": 2**-13, "Breakout": 2**-9, "Freeway": 2**-11, "Seaquest": 2**-13}

PRESETS: dict[str, Preset] = {
    "nature2015": Preset(
        {"network": "nature", "optimizer": "rmsprop", "learning_rate": 2.5e-4, "rmsprop_alpha": 0.95,
         "optimizer_eps": 0.01, "buffer_size": 1_000_000, "learning_starts": 50_000, "batch_size": 32,
         "gamma": 0.99, "train_frequency": 4, "gradient_steps": 1,
         "target_update_interval": 40_000,  # 10k updates at one update per 4 env steps
         "loss": "huber", "max_grad_norm": 0.0, "exploration_final": 0.1,
         "exploration_steps": 250_000,  # 1M frames at frame skip 4
         "eval_epsilon": 0.001, "steps": 10_000_000, "eval_every": 250_000, "eval_episodes": 10,
         "checkpoint_every": 250_000},
        envs=("atari",), description="Mnih et al. 2015 (Nature) hyperparameters"),
    "nips2013": Preset(
        {"network": "nips2013", "optimizer": "rmsprop", "learning_rate": 2.5e-4, "rmsprop_alpha": 0.95,
         "optimizer_eps": 0.01, "buffer_size": 1_000_000, "learning_starts": 50_000, "batch_size": 32,
         "train_frequency": 4, "target_update_interval": 0, "loss": "mse", "max_grad_norm": 0.0,
         "exploration_final": 0.1, "exploration_steps": 250_000, "eval_epsilon": 0.001, "steps": 2_500_000,
         "eval_every": 250_000, "checkpoint_every": 250_000},
        description="Mnih et al. 2013: 16/32/256 network, no target network, squared loss"),
    "minatar": Preset(
        # MinAtar's reference DQN (examples/dqn.py): centred RMSProp 2.5e-4 (per game: overrides), squared-gradient
        # decay 0.95, eps 0.01 (its 'gradient momentum' constant was never passed to the
        # optimizer); one update every step, the target network copied every 1,000
        {"network": "minatar", "optimizer": "rmsprop", "learning_rate": 2.5e-4, "rmsprop_alpha": 0.95,
         "optimizer_eps": 0.01, "buffer_size": 100_000, "learning_starts": 5_000, "batch_size": 32,
         "gamma": 0.99, "train_frequency": 1, "gradient_steps": 1, "target_update_interval": 1_000,
         "loss": "huber", "max_grad_norm": 0.0, "exploration_initial": 1.0, "exploration_final": 0.1,
         "exploration_steps": 100_000, "steps": 5_000_000, "eval_every": 100_000, "eval_episodes": 10,
         "checkpoint_every": 250_000},
        envs=("minatar",), description="Young & Tian 2019 (MinAtar) DQN settings, 5M frames",
        overrides={f"MinAtar/{game}-{version}": {"learning_rate": step_size}
                   for game, step_size in MINATAR_BEST_STEP_SIZES.items() for version in ("v0", "v1")}),
    "cartpole": Preset(
        _zoo(learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1_000,
             target_update_interval=10, train_frequency=256, gradient_steps=128, exploration_fraction=0.16,
             exploration_final=0.04, steps=50_000, eval_every=10_000, eval_episodes=20),
        envs=("CartPole-v1",), description="rl-zoo3's CartPole-v1 settings"),
    "acrobot": Preset(
        # 3-step returns hurt here (mean final return -85.9 against -76.5 for SB3's plain
        # config over seeds 0-4), so Acrobot keeps 1-step targets with Double DQN.
        _zoo(learning_rate=6.3e-4, batch_size=128, buffer_size=50_000, learning_starts=0,
             target_update_interval=250, train_frequency=4, gradient_steps=-1, exploration_fraction=0.12,
             exploration_final=0.1, steps=100_000, eval_every=10_000, eval_episodes=20, n_step=1),
        envs=("Acrobot-v1",), description="rl-zoo3's Acrobot-v1 settings"),
    "lunarlander": Preset(
        _zoo(learning_rate=6.3e-4, batch_size=128, buffer_size=50_000, learning_starts=0,
             target_update_interval=250, train_frequency=4, gradient_steps=-1, exploration_fraction=0.12,
             exploration_final=0.1, steps=100_000, eval_every=10_000, eval_episodes=20),
        envs=("LunarLander-v3",), description="rl-zoo3's LunarLander settings"),
    "mountaincar": Preset(
        _zoo(learning_rate=4e-3, batch_size=128, buffer_size=10_000, learning_starts=1_000, gamma=0.98,
             target_update_interval=600, train_frequency=16, gradient_steps=8, exploration_fraction=0.2,
             exploration_final=0.07, steps=120_000, eval_every=10_000, eval_episodes=20),
        envs=("MountainCar-v0",), description="rl-zoo3's MountainCar-v0 settings"),
}


# -- the math --------------------------------------------------------------------------------


def td_target(reward: torch.Tensor, discount: torch.Tensor, next_q_target: torch.Tensor,
              next_q_online: torch.Tensor | None = None) -> torch.Tensor:
    """The bootstrapped target y = r + discount * Q_target(s', a*).

    DQN (Mnih et al. 2015, eq. 3): a* = argmax_a Q_target(s', a).
    Double DQN (van Hasselt et al. 2016, eq. 4): a* = argmax_a Q_online(s', a), valued by the
    target network. ``discount`` is gamma^n, or 0 where the episode terminated (the replay
    computes it, so a truncated episode is still bootstrapped).
    """
    if next_q_online is None:
        next_value = next_q_target.max(dim=1).values
    else:
        next_value = next_q_target.gather(1, next_q_online.argmax(dim=1, keepdim=True)).squeeze(1)
    return reward + discount * next_value


def dueling_aggregate(value: torch.Tensor, advantage: torch.Tensor) -> torch.Tensor:
    """Q(s, a) = V(s) + A(s, a) - mean_a' A(s, a') (Wang et al. 2016, eq. 9)."""
    return value + advantage - advantage.mean(dim=1, keepdim=True)


def td_loss(q: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, kind: str) -> torch.Tensor:
    """Importance-weighted mean of the per-sample loss (weights are all ones for uniform
    replay; prioritized replay's w_i correct its sampling bias, Schaul et al. 2016)."""
    per_sample = F.smooth_l1_loss(q, target, reduction="none") if kind == "huber" else F.mse_loss(q, target, reduction="none")
    return (weights * per_sample).mean()


def epsilon_greedy(obs: np.ndarray, epsilon: float, rng: np.random.Generator, n_actions: int,
                   greedy: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """A random action with probability ``epsilon``, else ``greedy(obs)``'s, per row; the
    network (``greedy``) runs only when some row acts greedily."""
    n = len(obs)
    explore = rng.random(n) < epsilon
    actions = rng.integers(n_actions, size=n)
    if not explore.all():
        actions = np.where(explore, actions, greedy(obs))
    return actions


def epsilon(config: DQNConfig, step: int, total_steps: int) -> float:
    """Linearly decaying exploration rate."""
    duration = config.exploration_steps or int(config.exploration_fraction * total_steps)
    return linear(config.exploration_initial, config.exploration_final, step, duration)


# -- networks --------------------------------------------------------------------------------


class Nips2013CNN(nn.Module):
    """The 2013 network: 16 8x8/4, 32 4x4/2, then 256 units; uint8 frames scaled inside."""

    def __init__(self, in_channels: int = 4) -> None:
        super().__init__()
        self.convs = nn.Sequential(nn.Conv2d(in_channels, 16, 8, stride=4), nn.ReLU(),
                                   nn.Conv2d(16, 32, 4, stride=2), nn.ReLU(), nn.Flatten())
        self.fc = nn.Sequential(nn.Linear(32 * 9 * 9, 256), nn.ReLU())
        self.out_features = 256

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.fc(self.convs(frames.float() / 255.0))


class MinAtarCNN(nn.Module):
    """Young & Tian 2019's network: 16 3x3/1 convolutions, then 128 units; 0/1 channels, no scaling."""

    def __init__(self, in_channels: int, height: int = 10, width: int = 10) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(in_channels, 16, 3, stride=1), nn.ReLU(), nn.Flatten())
        self.fc = nn.Sequential(nn.Linear(16 * (height - 2) * (width - 2), 128), nn.ReLU())
        self.out_features = 128

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(grid.float()))


class MLPTorso(nn.Module):
    def __init__(self, in_features: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.body = nn.Sequential(*layers)
        self.out_features = width

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.body(obs.float())


class QNetwork(nn.Module):
    """A torso followed by a linear Q head, or dueling value and advantage heads."""

    def __init__(self, torso: nn.Module, n_actions: int, dueling: bool) -> None:
        super().__init__()
        self.torso = torso
        self.dueling = dueling
        if dueling:
            self.value = nn.Linear(torso.out_features, 1)
            self.advantage = nn.Linear(torso.out_features, n_actions)
        else:
            self.head = nn.Linear(torso.out_features, n_actions)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        features = self.torso(obs)
        if self.dueling:
            return dueling_aggregate(self.value(features), self.advantage(features))
        return self.head(features)


def network_kind(config: DQNConfig, observation_space: Any) -> str:
    """The torso ``config.network`` names, with auto resolved from the observations."""
    shape = tuple(observation_space.shape)
    if config.network != "auto":
        return config.network
    if len(shape) == 3 and observation_space.dtype == np.uint8:
        small = not nature_cnn_fits(observation_space)
        return "minatar" if small and image_layout(observation_space) != "HWC" else "nature"
    return "mlp"


def channels_first_images(observation_space: Any) -> bool:
    """(C, H, W) stacks, which the learner lays out channels-last before the CNN; (H, W, C)
    images already are once the CNN transposes them, and vectors have no layout."""
    return len(observation_space.shape) == 3 and image_layout(observation_space) != "HWC"


def memory_format_for(config: DQNConfig, observation_space: Any) -> torch.memory_format:
    """channels-last for the Atari CNNs when asked (faster convolutions on CPU), otherwise contiguous."""
    atari_cnn = network_kind(config, observation_space) in ("nature", "nips2013")
    return torch.channels_last if config.channels_last and atari_cnn else torch.contiguous_format


def build_q_network(config: DQNConfig, observation_space: Any, n_actions: int) -> QNetwork:
    shape = tuple(observation_space.shape)
    kind = network_kind(config, observation_space)
    if kind == "nature":
        torso: nn.Module = NatureCNN.for_images(observation_space)
    elif kind == "nips2013":
        torso = Nips2013CNN(shape[0])
    elif kind == "minatar":
        torso = MinAtarCNN(*shape)
    else:
        torso = MLPTorso(int(np.prod(shape)), config.hidden)
    return QNetwork(torso, n_actions, config.dueling)


# -- the Q-learner: DQN's update, reusable (h-DQN's two levels are two of these) -------------


@dataclass(frozen=True)
class TDUpdate:
    """How a ``QLearner`` takes its TD step."""

    loss: Literal["huber", "mse"] = "huber"
    """huber clips the TD error's gradient to [-1, 1] (Nature); mse is the plain squared error."""
    double: bool = False
    """Double DQN targets: the online network picks a*, the target network values it."""
    max_grad_norm: float = 0.0
    """Clip the global gradient norm to this (0: no clipping)."""
    tau: float = 1.0
    """Target update rate: 1 copies the online network, < 1 is Polyak averaging."""
    amp: bool = False
    """The network passes in bfloat16 autocast."""


def make_optimizer(config: DQNConfig, parameters: Any) -> torch.optim.Optimizer:
    """DQN's optimizers; multi-tensor / fused kernels: one call per step, not one per tensor."""
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=config.learning_rate, alpha=config.rmsprop_alpha,
                                   eps=config.optimizer_eps, centered=True, foreach=True)
    return torch.optim.Adam(parameters, lr=config.learning_rate, eps=config.optimizer_eps, fused=True)


class QLearner:
    """One Q-function: online and target networks on a device, their optimizer, and the TD
    step (eq. 3, or Double DQN's eq. 4, with n-step discounts, importance weights, gradient
    clipping and autocast) and target sync. Inputs are tensors already on the device, so a
    caller can transform observations first (h-DQN appends the goal)."""

    def __init__(self, build_network: Callable[[], nn.Module], make_optim: Callable[[Any], torch.optim.Optimizer],
                 update: TDUpdate, device: torch.device, *, target_network: bool = True,
                 memory_format: torch.memory_format = torch.contiguous_format, compile: bool = False,
                 compile_optimizer: bool = False) -> None:
        self.update, self.device = update, device
        self.q = build_network().to(device).to(memory_format=memory_format)
        self.target = None
        if target_network:  # built, not copied, so the torch RNG advances as it always did
            self.target = build_network().to(device).to(memory_format=memory_format)
            self.target.load_state_dict(self.q.state_dict())
            self.target.requires_grad_(False)
        self.optimizer = make_optim(self.q.parameters())
        self.optimizer_step = CompiledOptimizerStep(self.optimizer) if compile_optimizer else self.optimizer.step
        self.q_forward = torch.compile(self.q) if compile else self.q
        self.target_forward = torch.compile(self.target) if compile and self.target is not None else self.target

    @torch.inference_mode()
    def greedy(self, obs: torch.Tensor) -> np.ndarray:
        """argmax_a Q(s, a) per row."""
        return self.q_forward(obs).argmax(dim=1).cpu().numpy()

    def td_step(self, obs: torch.Tensor, action: torch.Tensor, reward: torch.Tensor, discount: torch.Tensor,
                next_obs: torch.Tensor, weights: torch.Tensor) -> tuple[float, torch.Tensor, torch.Tensor]:
        """One gradient step on the importance-weighted TD loss; returns (loss, Q(s, a), TD error)."""
        u = self.update
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=u.amp):
            with torch.no_grad():
                target_net = self.target_forward if self.target is not None else self.q_forward
                next_q_target = target_net(next_obs).float()
                next_q_online = self.q_forward(next_obs).float() if u.double else None
                target = td_target(reward, discount, next_q_target, next_q_online)
            q = self.q_forward(obs).float().gather(1, action.unsqueeze(1)).squeeze(1)
        loss = td_loss(q, target, weights, u.loss)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if u.max_grad_norm > 0:
            nn.utils.clip_grad_norm_(self.q.parameters(), u.max_grad_norm)
        self.optimizer_step()
        return loss.item(), q.detach(), (target - q).detach()

    @torch.no_grad()
    def sync_target(self) -> None:
        if self.update.tau >= 1.0:
            self.target.load_state_dict(self.q.state_dict())
            return
        for target, online in zip(self.target.parameters(), self.q.parameters()):
            target.lerp_(online, self.update.tau)

    def state_dict(self) -> dict[str, Any]:
        return {"q": self.q.state_dict(), "target": self.target.state_dict() if self.target is not None else {},
                "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.q.load_state_dict(state["q"])
        if self.target is not None:
            self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])


def check_q_learning_spaces(config: DQNConfig, spec: EnvSpec, algo: str) -> None:
    """A Q-network needs a finite action set, and a CNN needs (C, H, W) image observations."""
    if not isinstance(spec.action_space, spaces.Discrete):
        raise ToolkitError(f"{algo} needs a discrete action space; {spec.id} has {spec.action_space} "
                           "(for continuous actions try sac, td3 or ppo)")
    space = spec.observation_space
    shape = tuple(space.shape or ())
    if config.network in ("nature", "nips2013") and len(shape) != 3:
        raise ToolkitError(f"--network {config.network} is a CNN for images (C, H, W) or (H, W, C); {spec.id} observes "
                           f"shape {shape}: use --network mlp or auto")
    if network_kind(config, space) == "nature" and not nature_cnn_fits(space):
        raise ToolkitError(f"the Nature CNN needs images of at least 36x36 pixels; {spec.id} observes {space}: "
                           f"use --network minatar or mlp")
    if config.network == "nips2013" and (image_layout(space) == "HWC" or shape[1:] != (84, 84)):
        raise ToolkitError(f"--network nips2013 is the 2013 CNN for (C, 84, 84) frame stacks; {spec.id} observes "
                           f"{space}: use --network nature or auto")


# -- the algorithm ---------------------------------------------------------------------------


class GreedyPolicy:
    """argmax_a Q(s, a), with probability ``epsilon`` a random action instead."""

    def __init__(self, algorithm: DQN, epsilon: float) -> None:
        self.algorithm, self.epsilon = algorithm, epsilon

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.algorithm.select_actions(obs, self.epsilon, self.algorithm.eval_rng)


class GreedyModule(nn.Module):
    """argmax_a Q(s, a) as one module (``toolkit export``): observations in their env dtype
    (the networks scale uint8 frames themselves) -> int64 actions."""

    def __init__(self, q_network: nn.Module) -> None:
        super().__init__()
        self.q = q_network

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.q(obs).argmax(dim=1)


class DQN:
    """DQN with a target network, Double DQN, dueling heads and n-step returns.

    Each env step: act epsilon-greedily, store the transition. Every ``train_frequency`` env
    steps after ``learning_starts``: ``gradient_steps`` minibatch updates on the TD loss;
    every ``target_update_interval`` env steps: update the target network.
    """

    Config: ClassVar[type] = DQNConfig
    loop: ClassVar[str] = "env"
    presets: ClassVar[dict[str, Preset]] = PRESETS

    @classmethod
    def check(cls, config: DQNConfig, spec: EnvSpec) -> None:
        """Refuse, before anything is created, what DQN cannot train: continuous actions, a CNN
        on observations that are not image stacks."""
        check_q_learning_spaces(config, spec, "dqn")
        if config.gradient_steps == 0:
            raise ToolkitError("--gradient-steps must be >= 1, or -1 (as many as env steps since the last phase)")

    def __init__(self, config: DQNConfig, context: EnvContext) -> None:
        self.config = config
        self.total_steps = context.total_steps
        self.device = torch.device(context.device)
        torch.manual_seed(context.seed)
        self.n_actions = int(context.action_space.n)
        self.image_input = channels_first_images(context.observation_space)
        self.memory_format = memory_format_for(config, context.observation_space)
        self.learner = QLearner(lambda: build_q_network(config, context.observation_space, self.n_actions),
                                lambda parameters: make_optimizer(config, parameters),
                                TDUpdate(config.loss, config.double, config.max_grad_norm, config.tau, config.amp),
                                self.device, target_network=config.target_update_interval > 0,
                                memory_format=self.memory_format, compile=config.compile,
                                compile_optimizer=config.compile_optimizer)
        self.replay = ReplayBuffer(config.buffer_size, context.observation_space, context.action_space,
                                   n_envs=context.n_envs, frame_stack=context.frame_stack, sampler=config.replay,
                                   seed=context.seed)
        self.rng = np.random.default_rng(context.seed)
        self.eval_rng = np.random.default_rng(context.seed + 1)
        self.last_train_step = 0
        self.last_target_step = 0
        self.updates = 0
        self.epsilon = config.exploration_initial

    @property
    def q(self) -> nn.Module:
        """The online Q-network."""
        return self.learner.q

    @property
    def target(self) -> nn.Module | None:
        """The target network (None without one, as in the 2013 paper)."""
        return self.learner.target

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        """numpy -> device tensor; on a GPU through pinned memory with a non-blocking copy."""
        tensor = torch.from_numpy(array)
        if self.device.type == "cuda":
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor

    def _as_tensor(self, obs: np.ndarray) -> torch.Tensor:
        """Observations stay uint8 until here; the network scales them."""
        tensor = self._to_device(obs)
        return tensor.contiguous(memory_format=self.memory_format) if self.image_input else tensor

    def select_actions(self, obs: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
        """Epsilon-greedy actions; the network runs only when some env acts greedily."""
        return epsilon_greedy(obs, epsilon, rng, self.n_actions, lambda o: self.learner.greedy(self._as_tensor(o)))

    def act(self, obs: np.ndarray, step: int) -> np.ndarray:
        self.epsilon = epsilon(self.config, step, self.total_steps)
        return self.select_actions(obs, self.epsilon, self.rng)

    def observe(self, t: Transition) -> None:
        self.replay.add(t.obs, t.action, t.reward, t.next_obs, t.terminated, t.truncated)

    def update(self, step: int) -> dict[str, float]:
        c = self.config
        if step < c.learning_starts:
            self.last_train_step = self.last_target_step = step
            return {}
        metrics: dict[str, float] = {}
        if self.target is not None and step // c.target_update_interval > self.last_target_step // c.target_update_interval:
            self.learner.sync_target()
        self.last_target_step = step
        n_updates = gradient_steps_due(step, self.last_train_step, c.train_frequency, c.gradient_steps)
        if n_updates > 0:
            for _ in range(n_updates):
                metrics = self.train_step(progress=step / self.total_steps)
            metrics["train/epsilon"] = self.epsilon
            self.last_train_step = step
        return metrics

    def train_step(self, progress: float = 0.0) -> dict[str, float]:
        """One minibatch update of the TD loss; new |TD errors| go back to the sampler."""
        c = self.config
        batch = self.replay.sample(c.batch_size, gamma=c.gamma, n_step=c.n_step, progress=progress)
        loss, q, td_error = self.learner.td_step(
            self._as_tensor(batch.obs), self._to_device(batch.action).long(), self._to_device(batch.reward),
            self._to_device(batch.discount), self._as_tensor(batch.next_obs), self._to_device(batch.weights))
        self.updates += 1
        self.replay.update_priorities(batch.indices, td_error.abs().cpu().numpy())
        return {"loss/td": loss, "train/q_mean": q.mean().item()}

    def policy(self) -> GreedyPolicy:
        return GreedyPolicy(self, self.config.eval_epsilon)

    def stochastic_policy(self, seed: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
        """Epsilon-greedy at the end of the exploration schedule (a random generator of its own,
        seeded with ``seed``)."""
        rng = np.random.default_rng(seed)
        return lambda obs: self.select_actions(obs, self.config.exploration_final, rng)

    def policy_module(self) -> GreedyModule:
        return GreedyModule(self.learner.q)

    def replay_buffers(self) -> dict[str, ReplayBuffer]:
        return {"replay": self.replay}

    def state_dict(self) -> dict[str, Any]:
        return {
            **self.learner.state_dict(),  # q, target, optimizer
            "rng": self.rng.bit_generator.state,
            "eval_rng": self.eval_rng.bit_generator.state,
            "last_train_step": self.last_train_step,
            "last_target_step": self.last_target_step,
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.learner.load_state_dict(state)
        self.rng.bit_generator.state = state["rng"]
        self.eval_rng.bit_generator.state = state["eval_rng"]
        self.last_train_step = int(state["last_train_step"])
        self.last_target_step = int(state["last_target_step"])
        self.updates = int(state["updates"])
