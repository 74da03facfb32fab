"""Hierarchical DQN (Kulkarni, Narasimhan, Saeedi & Tenenbaum 2016, "Hierarchical Deep
Reinforcement Learning: Integrating Temporal Abstraction and Intrinsic Motivation").

Two Q-learners at two time scales:

* the meta-controller Q2(s, g) picks a goal g and is trained on the extrinsic reward summed
  over the option: F = f_t + ... + f_{t+N-1}, target F + gamma^N max_g' Q2(s_{t+N}, g');
* the controller Q1(s, a; g) picks primitive actions toward g and is trained only on the
  critic's intrinsic reward (1 when g is reached), target r + gamma max_a' Q1(s', a'; g),
  with the option ending (no bootstrap) when g is reached or the episode ends.

An option ends when its goal is reached, the episode ends, or (optionally) after
``max_option_steps``. Two replay memories with their own sizes and samplers; separate
epsilon schedules (1.0 -> 0.1); and the paper's two-phase schedule: for the first
``pretrain_steps`` the meta-controller picks goals at random and only the controller learns.

The critic is the environment's: a goal env names its goals and reports which are reached in
``info["achieved_goals"]`` (see toolkit_hdqn.envs). Networks, the TD target and the loss are
the DQN plugin's (imported, not copied): the controller sees the observation with the goal
appended, as a one-hot vector for vector observations or as an image-sized mask channel for
frame stacks (as in the paper's Montezuma agent).

Reads top to bottom: config -> presets -> goal encoding -> the algorithm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from gymnasium import spaces

from toolkit.config import Preset, bounded
from toolkit.errors import ToolkitError
from toolkit.interfaces import EnvContext, EnvSpec, Transition
from toolkit.loops import step_info
from toolkit.vec_env import spec_of
from toolkit.replay import ReplayBuffer
from toolkit.schedules import gradient_steps_due, linear
from toolkit_dqn.dqn import DQNConfig, QLearner, TDUpdate, build_q_network, check_q_learning_spaces


@dataclass(frozen=True)
class HDQNConfig:
    """Hyperparameters of h-DQN; the Atari preset follows the paper's Montezuma settings."""

    learning_rate: float = bounded(1e-3, above=0)
    """Adam step size of both Q-networks."""
    batch_size: int = bounded(32, at_least=1)
    """Transitions per gradient step, for each level."""
    gamma: float = bounded(0.99, at_least=0, at_most=1)
    """Discount of the meta-controller (it bootstraps with gamma^N after N steps), and of the controller unless set."""
    controller_gamma: float = bounded(0.0, at_least=0, at_most=1)
    """Discount of the controller (0: gamma). With gamma 0.99 the values of neighbouring cells
    differ by ~1%, below the noise of the fit in a small gridworld; 0.9 makes them 10% apart."""
    controller_buffer_size: int = bounded(1_000_000, at_least=1)
    """Controller replay D1 capacity (transitions)."""
    meta_buffer_size: int = bounded(50_000, at_least=1)
    """Meta-controller replay D2 capacity (options)."""
    controller_replay: str = "uniform"
    """Sampler of D1: uniform, prioritized or rank."""
    meta_replay: str = "uniform"
    """Sampler of D2: uniform, prioritized or rank."""
    learning_starts: int = bounded(1_000, at_least=0)
    """Env steps before the first update."""
    train_frequency: int = bounded(1, at_least=1)
    """Env steps (summed over envs) between gradient steps of each level."""
    target_update_interval: int = bounded(1_000, at_least=1)
    """Env steps between target-network copies (both levels)."""
    pretrain_steps: int = bounded(0, at_least=0)
    """Phase one: env steps during which goals are random and only the controller learns."""
    controller_exploration_steps: int = bounded(50_000, at_least=0)
    """Env steps over which the controller's epsilon goes from 1.0 to exploration_final."""
    meta_exploration_steps: int = bounded(50_000, at_least=0)
    """Env steps after pretraining over which the meta-controller's epsilon goes to exploration_final."""
    exploration_final: float = bounded(0.1, at_least=0, at_most=1)
    """Final epsilon of both levels."""
    max_option_steps: int = bounded(0, at_least=0)
    """End an option after this many steps even if its goal is not reached (0: never)."""
    intrinsic_reward: float = 1.0
    """The critic's reward to the controller when its goal is reached."""
    loss: Literal["huber", "mse"] = "mse"
    """TD loss; the paper minimises squared errors."""
    double: bool = False
    """Double DQN targets at both levels (van Hasselt et al. 2016)."""
    max_grad_norm: float = bounded(0.0, at_least=0)
    """Clip each level's global gradient norm to this (0: no clipping, as in the paper)."""
    amp: bool = False
    """Run both levels' network passes in bfloat16 autocast (CPUs with bfloat16 units: AVX512-BF16, AMX; GPUs)."""
    network: Literal["auto", "nature", "mlp"] = "auto"
    """auto: the Nature CNN for frame stacks, an MLP otherwise."""
    hidden: tuple[int, ...] = bounded((64, 64), at_least=1)
    """Hidden widths of the MLPs."""
    eval_epsilon: float = bounded(0.0, at_least=0, at_most=1)
    """Epsilon of both levels during evaluation."""


SUCCESS_WINDOW = 100  # options per goal behind the logged train/goal_success/<goal> rates

PRESETS: dict[str, Preset] = {
    "chain": Preset({"steps": 60_000, "gamma": 0.99, "learning_starts": 500, "controller_buffer_size": 50_000,
                     "meta_buffer_size": 20_000, "controller_exploration_steps": 20_000,
                     "meta_exploration_steps": 30_000, "pretrain_steps": 5_000, "target_update_interval": 500,
                     "eval_every": 10_000, "eval_episodes": 100},
                    envs=("toolkit/StochasticChain-v0",), description="the stochastic decision process"),
    "keydoor": Preset({"steps": 60_000, "learning_starts": 1_000, "controller_buffer_size": 100_000, "controller_gamma": 0.9,
                       "meta_buffer_size": 20_000, "controller_exploration_steps": 20_000,
                       "meta_exploration_steps": 30_000, "pretrain_steps": 10_000, "max_option_steps": 50,
                       "target_update_interval": 1_000, "hidden": (128, 128), "eval_every": 10_000,
                       # a greedy agent can walk into a wall for the whole episode; DQN's evaluation epsilon
                       "eval_episodes": 20, "eval_epsilon": 0.05},
                      envs=("toolkit/KeyDoor-v0",), description="the key-door gridworld"),
    # the 15x15 room: schedules about 2.5x the 9x9 room's, options long enough to cross it
    "keydoor-large": Preset({"steps": 150_000, "learning_starts": 1_000, "controller_buffer_size": 150_000,
                             "controller_gamma": 0.9, "meta_buffer_size": 20_000,
                             "controller_exploration_steps": 50_000, "meta_exploration_steps": 60_000,
                             "pretrain_steps": 25_000, "max_option_steps": 100, "target_update_interval": 1_000,
                             "hidden": (128, 128), "eval_every": 25_000, "eval_episodes": 20, "eval_epsilon": 0.05},
                            envs=("toolkit/KeyDoorLarge-v0",), description="the 15x15 key-door gridworld"),
    "montezuma": Preset({"learning_rate": 2.5e-4, "controller_buffer_size": 1_000_000, "meta_buffer_size": 50_000,
                         "learning_starts": 50_000, "train_frequency": 4, "target_update_interval": 40_000,
                         "pretrain_steps": 1_000_000, "controller_exploration_steps": 1_000_000,
                         "meta_exploration_steps": 1_000_000, "max_option_steps": 500, "loss": "huber",
                         "steps": 10_000_000, "eval_every": 250_000, "eval_episodes": 5,
                         "checkpoint_every": 250_000},
                        envs=("MontezumaRevenge-goals",), description="Montezuma's Revenge (Kulkarni et al. 2016)"),
}


# -- goal encoding ---------------------------------------------------------------------------


def option_discount(discount: np.ndarray, length: np.ndarray, gamma: float) -> np.ndarray:
    """gamma^N for an option of N steps whose episode went on; 0 where it terminated (the
    replay reports that as discount 0)."""
    return np.where(discount > 0, gamma ** length.astype(np.float64), 0.0).astype(np.float32)


# -- the algorithm ---------------------------------------------------------------------------


class HierarchicalPolicy:
    """Both levels acting with ``epsilon``, with their own option state per env: a new goal
    is chosen where the last one was reached or the episode ended."""

    def __init__(self, algorithm: HDQN, epsilon: float) -> None:
        self.algorithm, self.epsilon = algorithm, epsilon
        self.goals = np.zeros(0, dtype=np.int64)
        self.needs_goal = np.zeros(0, dtype=bool)
        self.rng = np.random.default_rng(algorithm.seed + 7)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        a = self.algorithm
        if len(self.goals) != len(obs):
            self.goals, self.needs_goal = np.zeros(len(obs), dtype=np.int64), np.ones(len(obs), dtype=bool)
        new = np.flatnonzero(self.needs_goal)
        if len(new):
            self.goals[new] = a.choose_goals(obs[new], self.epsilon, self.rng)
            self.needs_goal[new] = False
        return a.choose_actions(obs, self.goals, self.epsilon, self.rng)

    def observe(self, t: Transition) -> None:
        achieved = step_info(t, "achieved_goals").astype(bool)
        self.needs_goal |= achieved[np.arange(len(self.goals)), self.goals] | t.terminated | t.truncated


class HDQN:
    """h-DQN: a meta-controller over goals and a goal-conditioned controller."""

    Config: ClassVar[type] = HDQNConfig
    loop: ClassVar[str] = "env"
    presets: ClassVar[dict[str, Preset]] = PRESETS

    @classmethod
    def check(cls, config: HDQNConfig, spec: EnvSpec) -> None:
        """h-DQN needs the env's goal interface (the critic), discrete actions, and for image
        observations a screen mask per goal (the controller's goal channel)."""
        if spec.goals is None:
            raise ToolkitError(f"hdqn needs a goal environment (one with goal_names and info['achieved_goals']); "
                               f"{spec.id} has none. Try toolkit/StochasticChain-v0, toolkit/KeyDoor-v0, "
                               "toolkit/KeyDoorLarge-v0 or MontezumaRevenge-goals")
        check_q_learning_spaces(DQNConfig(network=config.network), spec, "hdqn")
        if len(spec.observation_space.shape) == 3 and spec.goals.masks is None:
            raise ToolkitError(f"{spec.id} has image observations but no goal_masks for the controller")

    def __init__(self, config: HDQNConfig, context: EnvContext) -> None:
        self.config = config
        self.seed = context.seed
        torch.manual_seed(context.seed)
        spec = spec_of(context)
        self.check(config, spec)
        self.goal_names = list(spec.goals.names)
        masks = spec.goals.masks
        self.n_goals, self.n_actions = len(self.goal_names), int(context.action_space.n)
        obs_space = context.observation_space
        self.image = len(obs_space.shape) == 3
        self.goal_masks = torch.as_tensor(masks * 255, dtype=torch.uint8) if self.image else None
        controller_shape = ((obs_space.shape[0] + 1, *obs_space.shape[1:]) if self.image
                            else (int(np.prod(obs_space.shape)) + self.n_goals,))
        controller_space = spaces.Box(0, 255, controller_shape, np.uint8) if self.image else \
            spaces.Box(-np.inf, np.inf, controller_shape, np.float32)
        # DQN's Q-learner at both levels: same networks, TD step, Double DQN, clipping, AMP, device
        net = DQNConfig(network=config.network, hidden=config.hidden)
        update = TDUpdate(config.loss, config.double, config.max_grad_norm, 1.0, config.amp)

        def adam(parameters):
            return torch.optim.Adam(parameters, lr=config.learning_rate)

        self.device = torch.device(context.device)
        self.controller = QLearner(lambda: build_q_network(net, controller_space, self.n_actions), adam, update,
                                   self.device)
        self.meta = QLearner(lambda: build_q_network(net, obs_space, self.n_goals), adam, update, self.device)
        if self.goal_masks is not None:
            self.goal_masks = self.goal_masks.to(self.device)
        # D1: the controller's steps, with the goal pursued and whether it was reached beside the action
        self.controller_replay = ReplayBuffer(
            config.controller_buffer_size, obs_space, context.action_space, n_envs=context.n_envs,
            frame_stack=context.frame_stack, sampler=config.controller_replay, seed=context.seed,
            extras={"goal": spaces.Discrete(self.n_goals), "reached": spaces.Discrete(2)},
            capacity_option="--controller-buffer-size")
        # D2: one option per entry, each stored with its own successor; the action is the goal
        self.meta_replay = ReplayBuffer(config.meta_buffer_size, obs_space, spaces.Discrete(self.n_goals), n_envs=1,
                                        sampler=config.meta_replay, seed=context.seed + 1,
                                        extras={"option_length": spaces.Box(0, np.inf, (), np.float32)},
                                        capacity_option="--meta-buffer-size")
        self.total_steps = context.total_steps
        self.rng = np.random.default_rng(context.seed)
        n = context.n_envs
        # option state per env
        self.goals = np.zeros(n, dtype=np.int64)
        self.needs_goal = np.ones(n, dtype=bool)
        self.option_obs = np.zeros((n, *obs_space.shape), dtype=obs_space.dtype)
        self.option_return = np.zeros(n)
        self.option_length = np.zeros(n, dtype=np.int64)
        # the goals the current state satisfies, and whether the option's goal already was when it began
        self.achieved = np.zeros((n, self.n_goals), dtype=bool)
        self.option_began_reached = np.zeros(n, dtype=bool)
        # per goal: options ended (that began away from the goal), and the success rate over
        # about the last SUCCESS_WINDOW of them
        self.goal_options = np.zeros(self.n_goals, dtype=np.int64)
        self.goal_success_rate = np.zeros(self.n_goals)
        self.last_train_step = self.last_target_step = 0

    # -- acting ------------------------------------------------------------------------------

    def epsilons(self, step: int) -> tuple[float, float]:
        """(controller epsilon, meta-controller epsilon); the meta-controller is random in phase one."""
        c = self.config
        controller = linear(1.0, c.exploration_final, step, c.controller_exploration_steps)
        meta = 1.0 if step < c.pretrain_steps else linear(1.0, c.exploration_final, step - c.pretrain_steps,
                                                           c.meta_exploration_steps)
        return controller, meta

    def controller_input(self, obs: torch.Tensor, goals: torch.Tensor) -> torch.Tensor:
        """The observation with the goal appended: a mask channel for frame stacks, one-hot otherwise."""
        if self.image:
            return torch.cat([obs, self.goal_masks[goals].unsqueeze(1)], dim=1)
        return torch.cat([obs.reshape(len(obs), -1).float(),
                          torch.nn.functional.one_hot(goals, self.n_goals).float()], dim=1)

    def choose_goals(self, obs: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
        greedy = self.meta.greedy(self._tensor(obs))
        explore = rng.random(len(obs)) < epsilon
        return np.where(explore, rng.integers(0, self.n_goals, len(obs)), greedy)

    def choose_actions(self, obs: np.ndarray, goals: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
        with torch.inference_mode():
            greedy = self.controller.greedy(self.controller_input(self._tensor(obs), self._tensor(goals)))
        explore = rng.random(len(obs)) < epsilon
        return np.where(explore, rng.integers(0, self.n_actions, len(obs)), greedy)

    def act(self, obs: np.ndarray, step: int) -> np.ndarray:
        controller_epsilon, meta_epsilon = self.epsilons(step)
        new = np.flatnonzero(self.needs_goal)
        if len(new):
            self.goals[new] = self.choose_goals(obs[new], meta_epsilon, self.rng)
            self.option_obs[new] = obs[new]
            self.option_return[new], self.option_length[new] = 0.0, 0
            self.option_began_reached[new] = self.achieved[new, self.goals[new]]
            self.needs_goal[new] = False
        return self.choose_actions(obs, self.goals, controller_epsilon, self.rng)

    def observe(self, t: Transition) -> None:
        """Store the controller's step; where an option ended, store the meta-controller's."""
        c = self.config
        achieved = step_info(t, "achieved_goals").astype(bool)
        envs = np.arange(len(self.goals))
        reached = achieved[envs, self.goals]
        self.controller_replay.add(t.obs, t.action, reached * np.float32(c.intrinsic_reward), t.next_obs,
                                   t.terminated, t.truncated, extras={"goal": self.goals, "reached": reached})
        self.option_return += t.reward
        self.option_length += 1
        done = np.logical_or(t.terminated, t.truncated)
        ended = reached | done
        if c.max_option_steps:
            ended |= self.option_length >= c.max_option_steps
        for e in np.flatnonzero(ended):
            self.meta_replay.add(self.option_obs[e : e + 1], self.goals[e : e + 1], np.array([self.option_return[e]]),
                                 t.next_obs[e : e + 1], t.terminated[e : e + 1], ~t.terminated[e : e + 1],
                                 extras={"option_length": self.option_length[e : e + 1]})
            goal = self.goals[e]
            if self.option_began_reached[e]:
                continue  # standing on the goal says nothing about reaching it
            self.goal_options[goal] += 1
            # a running mean over the first options, then an exponential average: a learning curve, not a lifetime total
            weight = 1.0 / min(self.goal_options[goal], SUCCESS_WINDOW)
            self.goal_success_rate[goal] += weight * (float(reached[e]) - self.goal_success_rate[goal])
        self.needs_goal |= ended
        self.achieved = np.array(t.infos["achieved_goals"], dtype=bool)  # after a reset: the new episode's

    # -- learning ----------------------------------------------------------------------------

    def update(self, step: int) -> dict[str, float]:
        c = self.config
        if step < c.learning_starts:
            self.last_train_step = self.last_target_step = step
            return {}
        if step // c.target_update_interval > self.last_target_step // c.target_update_interval:
            self.controller.sync_target()
            self.meta.sync_target()
        self.last_target_step = step
        phases = gradient_steps_due(step, self.last_train_step, c.train_frequency, gradient_steps=1)
        self.last_train_step = step
        metrics: dict[str, float] = {}
        for _ in range(phases):
            metrics |= self.controller_step(step)
            if step >= c.pretrain_steps and len(self.meta_replay) >= c.batch_size:
                metrics |= self.meta_step(step)
        if metrics:
            controller_epsilon, meta_epsilon = self.epsilons(step)
            metrics |= {"train/controller_epsilon": controller_epsilon, "train/meta_epsilon": meta_epsilon}
            metrics |= {f"train/goal_success/{name}": float(rate)
                        for name, rate, options in zip(self.goal_names, self.goal_success_rate, self.goal_options) if options}
        return metrics

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array).to(self.device)

    def controller_step(self, step: int) -> dict[str, float]:
        """L1 = E[(r_int + gamma max_a' Q1(s', a'; g) - Q1(s, a; g))^2], no bootstrap once g is reached."""
        c = self.config
        batch = self.controller_replay.sample(c.batch_size, gamma=c.controller_gamma or c.gamma,
                                              progress=step / self.total_steps)
        goal = self._tensor(batch.extras["goal"])
        discount = torch.as_tensor(batch.discount * (1 - batch.extras["reached"]), dtype=torch.float32)
        loss, _, td_error = self.controller.td_step(
            self.controller_input(self._tensor(batch.obs), goal), self._tensor(batch.action),
            self._tensor(batch.reward), discount.to(self.device),
            self.controller_input(self._tensor(batch.next_obs), goal), self._tensor(batch.weights))
        self.controller_replay.update_priorities(batch.indices, td_error.abs().cpu().numpy())
        return {"loss/controller": loss}

    def meta_step(self, step: int) -> dict[str, float]:
        """L2 = E[(F + gamma^N max_g' Q2(s_{t+N}, g') - Q2(s_t, g))^2]."""
        c = self.config
        batch = self.meta_replay.sample(c.batch_size, gamma=c.gamma, progress=step / self.total_steps)
        discount = torch.as_tensor(option_discount(batch.discount, batch.extras["option_length"], c.gamma))
        loss, q, td_error = self.meta.td_step(self._tensor(batch.obs), self._tensor(batch.action),
                                              self._tensor(batch.reward), discount.to(self.device),
                                              self._tensor(batch.next_obs), self._tensor(batch.weights))
        self.meta_replay.update_priorities(batch.indices, td_error.abs().cpu().numpy())
        return {"loss/meta": loss, "train/meta_q_mean": q.mean().item()}

    # -- the rest of the protocol ------------------------------------------------------------

    def policy(self) -> HierarchicalPolicy:
        return HierarchicalPolicy(self, self.config.eval_epsilon)

    def replay_buffers(self) -> dict[str, ReplayBuffer]:
        return {"controller_replay": self.controller_replay, "meta_replay": self.meta_replay}

    # the state keys of each level, as checkpoints have always named them
    _LEVEL_KEYS = {"controller": ("controller", "controller_target", "controller_optimizer"),
                   "meta": ("meta", "meta_target", "meta_optimizer")}
    _OPTION_STATE = ("goals", "needs_goal", "option_obs", "option_return", "option_length", "achieved",
                     "option_began_reached", "goal_options", "goal_success_rate")

    def state_dict(self) -> dict[str, Any]:
        state = {}
        for level, keys in self._LEVEL_KEYS.items():
            learned = getattr(self, level).state_dict()
            state |= dict(zip(keys, (learned["q"], learned["target"], learned["optimizer"])))
        state |= {name: getattr(self, name).copy() for name in self._OPTION_STATE}
        state |= {"rng": self.rng.bit_generator.state, "last_train_step": self.last_train_step,
                  "last_target_step": self.last_target_step}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for level, keys in self._LEVEL_KEYS.items():
            getattr(self, level).load_state_dict(dict(zip(("q", "target", "optimizer"), (state[k] for k in keys))))
        for name in self._OPTION_STATE:
            getattr(self, name)[...] = state[name]
        self.rng.bit_generator.state = state["rng"]
        self.last_train_step, self.last_target_step = int(state["last_train_step"]), int(state["last_target_step"])
