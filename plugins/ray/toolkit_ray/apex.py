"""Ape-X DQN: distributed prioritized experience replay on Ray actors.

Horgan et al. 2018, "Distributed Prioritized Experience Replay" (ICLR 2018):

* Actors (Algorithm 1). Each of N actors steps its own envs with a copy of the network and its
  own exploration rate, eps_i = eps^(1 + alpha * i / (N - 1)) with eps = 0.4, alpha = 7
  (Section 4.1), builds n-step transitions, computes their initial priorities |delta| with its
  copy of the network (so new data need not enter at the maximum priority), and sends them to
  the replay in batches ("fragments", 50 steps in the paper's Atari runs).
* Learner (Algorithm 2). It samples prioritized batches, takes the Double-DQN step with dueling
  heads and importance weights, sends the new priorities back and publishes its weights, which
  the actors fetch periodically. The replay evicts the oldest data (FIFO).

Here the learner is the toolkit run's own process: the runtime keeps the run directory,
loggers, evaluation, checkpoints, signals and the step schedule (``RunsOwnLoop``), with steps
counting the env steps of all actors. The learner's update is the DQN plugin's ``QLearner`` and
networks; each replay shard is a Ray actor holding core's ``ReplayBuffer`` with a registered
sampler (the PER plugin's ``prioritized`` by default), one ring per actor env, filled a fragment
at a time. A samples-per-insert limiter (Reverb's ``SampleToInsertRatio``) holds the learner at
R sampled transitions per inserted one, throttling whichever side runs ahead, so that sample
efficiency compares with single-process DQN at the same R (DQN's batch 32 every 4 env steps is
R = 8).

Not bit-exact on resume: the actors run asynchronously, so which transitions reach the replay
before which update depends on timing. A checkpoint holds the learner, its optimizer, the
counters, the actors' epsilons and, with ``--save-replay``, the replay shards; actors restart
with fresh episodes.

Reads top to bottom: config -> presets -> math (epsilons, n-step returns, the limiter) ->
the actor -> the replay shard -> the learner (the algorithm).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

from toolkit.config import Preset, bounded
from toolkit.errors import FailedAt, ToolkitError
from toolkit.interfaces import EnvContext, EnvSpec
from toolkit.replay import (Fragment, ReplayBuffer, check_replay_fits, make_fragment, memory_available,
                            replay_slot_bytes)
from toolkit_dqn.dqn import (GreedyModule, GreedyPolicy, QLearner, TDUpdate, build_q_network, channels_first_images,
                             check_q_learning_spaces, epsilon_greedy, make_optimizer, memory_format_for)


@dataclass(frozen=True)
class ApexConfig:
    """Hyperparameters of Ape-X DQN. The paper's values where they fit one machine; presets give
    the per-env settings (with the samples-per-insert ratio of the matching DQN preset)."""

    actors: int = bounded(2, at_least=1)
    """Ray actors stepping envs (the paper: 360 on Atari)."""
    envs_per_actor: int = bounded(1, at_least=1)
    """Envs each actor steps as one vector env."""
    fragment: int = bounded(50, at_least=1)
    """Env steps (per env) an actor collects before sending them to the replay (the paper: 50)."""
    collects_in_flight: int = bounded(2, at_least=1)
    """Fragment requests queued at each actor: with 2 an actor starts its next fragment while the
    learner still handles the last one, instead of idling for the round trip."""
    epsilon: float = bounded(0.4, at_least=0, at_most=1)
    """eps in eps_i = eps^(1 + alpha * i / (N - 1)), the exploration rate of actor i of N."""
    epsilon_alpha: float = bounded(7.0, at_least=0)
    """alpha in the actors' epsilon schedule (the paper: 7)."""
    weight_sync: int = bounded(50, at_least=1)
    """Learner updates between publishing its weights to the actors (the paper's actors fetch
    them every 400 frames; an actor takes the newest at the start of each fragment)."""
    replay: str = field(default="prioritized", metadata={"registry": "sampler"})
    """Replay sampler: prioritized (the paper's proportional variant, alpha 0.6, beta 0.4), rank or uniform."""
    buffer_size: int = bounded(100_000, at_least=1)
    """Replay capacity in transitions, over all shards (the paper: 2M); the oldest go first."""
    replay_shards: int = bounded(1, at_least=1)
    """Ray actors the replay is split over; actor i sends to shard i mod K."""
    learning_starts: int = bounded(1_000, at_least=0)
    """Transitions in the replay before the learner's first update, at least a batch per shard (the paper: 50k)."""
    samples_per_insert: float = bounded(8.0, above=0)
    """Sampled transitions per inserted one that the learner is held to (Reverb's rate limiter):
    a learner that runs ahead waits for data and actors that run ahead wait for the learner."""
    batch_size: int = bounded(32, at_least=1)
    """Transitions per learner update (the paper: 512)."""
    batches_per_request: int = bounded(4, at_least=1)
    """Batches the learner asks a shard for at once, two requests always in flight: a Ray call
    costs about a millisecond here, as much as a small network's update, so one call per
    update would halve the learner's speed. Their priorities go back in one call too."""
    learning_rate: float = bounded(1e-4, above=0)
    """Optimizer step size (the paper: centred RMSProp, 0.00025 / 4)."""
    optimizer: Literal["adam", "rmsprop"] = "adam"
    """adam, or rmsprop (centred, with rmsprop_alpha and optimizer_eps) as in the paper."""
    rmsprop_alpha: float = bounded(0.95, at_least=0, below=1)
    """RMSProp's squared-gradient decay."""
    optimizer_eps: float = bounded(1e-8, above=0)
    """Denominator epsilon of Adam / RMSProp."""
    gamma: float = bounded(0.99, at_least=0, at_most=1)
    """Discount factor."""
    n_step: int = bounded(3, at_least=1)
    """Length of the bootstrapped return (the paper: 3)."""
    target_update_interval: int = bounded(2_500, at_least=1)
    """Learner updates between target-network copies (the paper: 2500)."""
    tau: float = bounded(1.0, above=0, at_most=1)
    """Target update rate: 1 copies the online network, < 1 is Polyak averaging."""
    loss: Literal["huber", "mse"] = "huber"
    """huber clips the TD error's gradient to [-1, 1]; mse is the plain squared error."""
    max_grad_norm: float = bounded(40.0, at_least=0)
    """Clip the global gradient norm to this (the paper: 40; 0: no clipping)."""
    double: bool = True
    """Double-DQN targets (the paper uses them)."""
    dueling: bool = True
    """Dueling heads (the paper uses them)."""
    network: Literal["auto", "nature", "nips2013", "minatar", "mlp"] = "auto"
    """auto: the Nature CNN for Atari-sized images, MinAtar's CNN for 10x10 grids, an MLP otherwise."""
    hidden: tuple[int, ...] = bounded((64, 64), at_least=1)
    """Hidden layer widths of the MLP."""
    channels_last: bool = True
    """Use the channels-last memory layout for the Atari CNNs (faster convolutions on CPU; never
    for MinAtar's small one, which is a little faster without it)."""
    compile_optimizer: bool = False
    """Compile the learner's optimizer step with torch.compile (as dqn's ``--compile-optimizer``:
    centred RMSProp on the Nature CNN 6.4 -> 1.4 ms per update here; the eager step, after a
    warning, where it cannot compile)."""
    eval_epsilon: float = bounded(0.0, at_least=0, at_most=1)
    """Epsilon of the evaluation policy (Atari: 0.001, so a stuck agent still moves)."""
    address: str = ""
    """An existing Ray cluster to place the actors on (``ray start --head`` prints it); empty:
    a local Ray sized to this machine, started and stopped with the run."""


def _classic(**values: Any) -> dict[str, Any]:
    """The DQN plugin's classic-control presets, translated: its train_frequency,
    gradient_steps and batch_size become samples_per_insert (128 updates of 64 every 256 env
    steps is R = 32), and its target sync, checked once per training phase, becomes one every
    phase's worth of updates. One torch thread: small networks, and the actors share the cores."""
    return {"hidden": (256, 256), "double": True, "n_step": 3, "dueling": False, "threads": 1, **values}


PRESETS: dict[str, Preset] = {
    "cartpole": Preset(
        # dqn: 128 updates of 64 every 256 env steps, target sync once per such phase
        _classic(learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1_000,
                 samples_per_insert=32.0, target_update_interval=128, steps=50_000, eval_every=10_000,
                 eval_episodes=20),
        envs=("CartPole-v1",), description="the dqn cartpole preset (rl-zoo3's settings) at R = 32"),
    "lunarlander": Preset(
        # dqn: 4 updates of 128 every 4 env steps (gradient_steps -1), target sync every 250 env steps
        _classic(learning_rate=6.3e-4, batch_size=128, buffer_size=50_000, learning_starts=0,
                 samples_per_insert=128.0, target_update_interval=250, steps=100_000, eval_every=10_000,
                 eval_episodes=20),
        envs=("LunarLander-v3",), description="the dqn lunarlander preset (rl-zoo3's settings) at R = 128"),
    "atari": Preset(
        {"network": "nature", "optimizer": "rmsprop", "learning_rate": 0.00025 / 4, "rmsprop_alpha": 0.95,
         "optimizer_eps": 1.5e-7, "buffer_size": 1_000_000, "learning_starts": 50_000, "batch_size": 32,
         "samples_per_insert": 8.0, "target_update_interval": 2_500, "max_grad_norm": 40.0,
         "eval_epsilon": 0.001, "steps": 10_000_000, "eval_every": 250_000, "eval_episodes": 10,
         "checkpoint_every": 250_000},
        envs=("atari",), description="Horgan et al. 2018 (Ape-X) learner settings at DQN's R = 8, "
                                     "batch 32 (the paper: 512 with 360 actors)"),
}


# -- the math ----------------------------------------------------------------------------------


def actor_epsilons(n_actors: int, epsilon: float = 0.4, alpha: float = 7.0) -> list[float]:
    """eps_i = eps^(1 + alpha * i / (N - 1)) for i = 0..N-1 (Horgan et al. 2018, Section 4.1);
    a single actor explores with eps."""
    if n_actors == 1:
        return [epsilon]
    return [epsilon ** (1 + alpha * i / (n_actors - 1)) for i in range(n_actors)]


def n_step_returns(rewards: np.ndarray, terminated: np.ndarray, ended: np.ndarray, gamma: float,
                   n: int, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the first ``count`` steps of (T, m) arrays: the n-step return R_t = sum_{k<j}
    gamma^k r_{t+k}, the bootstrap discount gamma^j (0 where the episode terminated) and the
    index t + j - 1 of the last step used, j <= n cut at an episode's end and at step T - 1.
    The same cut as ``ReplayBuffer.sample``, so initial priorities match the learner's targets."""
    T = len(rewards)
    ret = rewards[:count].astype(np.float32).copy()
    discount = np.full(ret.shape, gamma, dtype=np.float32)
    last = np.tile(np.arange(count)[:, None], (1, rewards.shape[1]))
    running = ~ended[:count].copy()
    for k in range(1, n):
        nxt = last + 1
        running &= nxt < T
        step_reward = rewards[np.minimum(nxt, T - 1), np.arange(rewards.shape[1])]
        ret += np.where(running, discount * step_reward, 0.0).astype(np.float32)
        discount = np.where(running, discount * gamma, discount).astype(np.float32)
        last = np.where(running, nxt, last)
        running &= ~ended[np.minimum(nxt, T - 1), np.arange(rewards.shape[1])]
    discount = np.where(terminated[last, np.arange(rewards.shape[1])], 0.0, discount).astype(np.float32)
    return ret, discount, last


class SamplesPerInsertLimiter:
    """Reverb's ``SampleToInsertRatio``: after ``min_inserts`` transitions, the learner may draw
    only while samples <= R * (inserts - min_inserts) + tolerance, and actors may insert only
    while R * (inserts - min_inserts) - samples <= tolerance. Both are never blocked at once when
    the tolerance covers one batch plus R times one insert (``tolerance_for``)."""

    def __init__(self, ratio: float, min_inserts: int, tolerance: float) -> None:
        self.ratio, self.min_inserts, self.tolerance = ratio, min_inserts, tolerance
        self.inserts = 0
        self.samples = 0

    @staticmethod
    def tolerance_for(ratio: float, batch_size: int, insert_size: int) -> float:
        return batch_size + ratio * insert_size

    def _credit(self, inserts: int) -> float:
        return self.ratio * max(0, inserts - self.min_inserts)

    def can_sample(self, n: int) -> bool:
        return self.inserts >= max(self.min_inserts, 1) and self.samples + n <= self._credit(self.inserts) + self.tolerance

    def can_insert(self, n: int, pending: int = 0) -> bool:
        """``pending``: inserts already on their way (counted as if done)."""
        return self._credit(self.inserts + pending + n) - self.samples <= self.tolerance

    def state_dict(self) -> dict[str, Any]:
        return {"inserts": self.inserts, "samples": self.samples}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inserts, self.samples = int(state["inserts"]), int(state["samples"])


# -- the actor (a Ray actor) -------------------------------------------------------------------


@dataclass(frozen=True)
class ActorSpec:
    """What one actor needs to start: its place, its exploration, its envs and its network."""

    index: int
    epsilon: float
    seed: int
    env_name: str
    max_episode_steps: int
    envs: int
    frame_stack: int
    observation_space: Any
    n_actions: int
    shard_rings: np.ndarray
    """The ring of each of its envs in its replay shard."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """The env's constructor arguments (``--env-kwargs``)."""


class Actor:
    """Steps its own vector env epsilon-greedily with its copy of the network; every
    ``fragment`` steps sends the transitions and their initial priorities to its replay shard
    (at most two sends in flight) and returns what happened (env steps, finished episodes, the
    weights version it acted with)."""

    def __init__(self, spec: ActorSpec, config: ApexConfig, shard: Any) -> None:
        import ray

        from toolkit.vec_env import make_vec_env

        torch.set_num_threads(1)
        self.node = ray.get_runtime_context().get_node_id()
        self.spec, self.config, self.shard = spec, config, shard
        self.envs = make_vec_env(spec.env_name, spec.envs, max_episode_steps=spec.max_episode_steps,
                                 env_kwargs=spec.env_kwargs)
        self.obs, _ = self.envs.reset(seed=spec.seed)
        self.envs.action_space.seed(spec.seed)
        self.rng = np.random.default_rng(spec.seed)
        self.q = build_q_network(config, spec.observation_space, spec.n_actions)
        self.q.requires_grad_(False)
        self.version = -1
        self.window: list[tuple] = []  # steps not yet sent: (obs, action, reward, next_obs, terminated, truncated)
        self.sends: list[Any] = []

    def set_weights(self, weights: dict[str, torch.Tensor], version: int) -> None:
        self.q.load_state_dict(weights)
        self.version = version

    def _act(self, obs: np.ndarray) -> np.ndarray:
        """Epsilon-greedy actions (called in inference mode: ``collect`` holds it per fragment,
        which halves the network call's cost against entering it every step)."""
        return epsilon_greedy(obs, self.spec.epsilon, self.rng, self.spec.n_actions,
                              lambda o: self.q(torch.from_numpy(o)).argmax(dim=1).numpy())

    def collect(self, weights: dict[str, torch.Tensor] | None = None, version: int = -1) -> dict[str, Any]:
        """Step ``fragment`` steps (the first call n - 1 more, to look ahead for n-step
        returns), send the oldest ``fragment`` steps to the replay, return the statistics."""
        import ray

        from toolkit.loops import finished_episodes, successor_obs

        if weights is not None:
            self.set_weights(weights, version)
        c = self.config
        episodes = []
        steps = 0
        with torch.inference_mode():
            while len(self.window) < c.fragment + c.n_step - 1:
                action = self._act(self.obs)
                next_obs, reward, terminated, truncated, infos = self.envs.step(action)
                true_next = successor_obs(next_obs, infos)
                episodes += [(r, length) for _, r, length in finished_episodes(infos)]
                self.window.append((self.obs, action, reward, true_next, terminated, truncated))
                self.obs = next_obs
                steps += self.spec.envs
        fragment = self._fragment(c.fragment)
        self.window = self.window[c.fragment:]
        while len(self.sends) >= 2:  # at most two sends in flight
            done, self.sends = ray.wait(self.sends, num_returns=1)
            ray.get(done)  # a failed add fails this actor
        self.sends.append(self.shard.add_fragment.remote(fragment))
        return {"steps": steps, "inserts": c.fragment * self.spec.envs, "episodes": episodes,
                "version": self.version, "actor": self.spec.index, "node": self.node}

    def _fragment(self, count: int) -> Fragment:
        """The first ``count`` steps of the window with their initial priorities |delta|,
        delta = R_t + gamma^j Q(s_{t+j}, argmax_a Q(s_{t+j}, a)) - Q(s_t, a_t), with the actor's
        network in both roles (it has no target network)."""
        c = self.config
        obs, actions, rewards, next_obs, terminated, truncated = (np.stack(column) for column in zip(*self.window))
        ended = terminated | truncated
        ret, discount, last = n_step_returns(rewards, terminated, ended, c.gamma, c.n_step, count)
        columns = np.arange(obs.shape[1])
        with torch.inference_mode():
            q_taken = self.q(torch.from_numpy(_flatten(obs[:count]))).numpy().reshape(count, -1, self.spec.n_actions)
            q_taken = np.take_along_axis(q_taken, actions[:count, :, None].astype(np.int64), axis=2)[..., 0]
            bootstrap = next_obs[last, columns]
            q_next = self.q(torch.from_numpy(_flatten(bootstrap))).numpy().reshape(count, -1, self.spec.n_actions)
        priorities = np.abs(ret + discount * q_next.max(axis=2) - q_taken)
        return make_fragment(self.spec.shard_rings, obs[:count], actions[:count], rewards[:count], next_obs[:count],
                             terminated[:count], truncated[:count], frame_stack=self.spec.frame_stack,
                             priorities=priorities.astype(np.float32))

    def flush(self) -> None:
        """Wait for the sends in flight."""
        import ray

        ray.get(self.sends)
        self.sends = []


def _flatten(array: np.ndarray) -> np.ndarray:
    """(T, m, ...) -> (T * m, ...) for one network call."""
    return array.reshape(-1, *array.shape[2:])


# -- a replay shard (a Ray actor) --------------------------------------------------------------


class ReplayShard:
    """Core's ReplayBuffer with one ring per actor env that sends here, behind Ray calls."""

    def __init__(self, capacity: int, observation_space: Any, action_space: Any, rings: int, frame_stack: int,
                 sampler: str, seed: int) -> None:
        self.replay = ReplayBuffer(capacity, observation_space, action_space, n_envs=rings,
                                   frame_stack=frame_stack, sampler=sampler, seed=seed)

    def add_fragment(self, fragment: Fragment) -> None:
        self.replay.add_fragment(fragment)

    def sample(self, batches: int, batch_size: int, gamma: float, n_step: int, progress: float) -> list[Any]:
        """``batches`` batches, or none while the shard holds fewer than ``batch_size``
        transitions (the actors' first sends may still be on their way)."""
        if len(self.replay) < batch_size:
            return []
        return [self.replay.sample(batch_size, gamma=gamma, n_step=n_step, progress=progress) for _ in range(batches)]

    def update_priorities(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        self.replay.update_priorities(indices, priorities)

    def state_dict(self) -> dict[str, Any]:
        return self.replay.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.replay.load_state_dict(state)


class RemoteReplay:
    """A shard as the runtime sees replay buffers (``HasReplayBuffers``): its state is fetched
    from the Ray actor when a checkpoint is written; a state loaded before the shard exists (a
    resume) is handed to it when it starts."""

    def __init__(self) -> None:
        self.handle: Any = None
        self.pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        import ray

        if self.handle is None:
            return self.pending or {}
        return ray.get(self.handle.state_dict.remote())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        import ray

        if self.handle is None:
            self.pending = state
        else:
            ray.get(self.handle.load_state_dict.remote(state))


# -- the learner: the algorithm ------------------------------------------------------------------


class ApexDQN:
    """The learner of Ape-X, with its actors and replay shards on Ray (see the module docstring)."""

    Config: ClassVar[type] = ApexConfig
    loop: ClassVar[str] = "env"
    presets: ClassVar[dict[str, Preset]] = PRESETS

    @classmethod
    def check(cls, config: ApexConfig, spec: EnvSpec) -> None:
        check_q_learning_spaces(config, spec, "apex")
        if config.replay_shards > config.actors:
            raise ToolkitError(f"--replay-shards {config.replay_shards} is more than --actors {config.actors}: "
                               "a shard gets data from the actors i with i mod K = its index")
        if not config.address:  # a local Ray puts every shard on this machine: together they must fit
            # (each shard checks itself too, but only against what is left, and from inside a Ray actor)
            check_replay_fits(config.buffer_size, replay_slot_bytes(spec.observation_space, spec.action_space,
                                                                    spec.frame_stack), "--buffer-size",
                              memory_available())

    def __init__(self, config: ApexConfig, context: EnvContext) -> None:
        self.config, self.context = config, context
        self.device = torch.device(context.device)
        torch.manual_seed(context.seed)
        self.n_actions = int(context.action_space.n)
        self.image_input = channels_first_images(context.observation_space)
        self.memory_format = memory_format_for(config, context.observation_space)
        self.learner = QLearner(lambda: build_q_network(config, context.observation_space, self.n_actions),
                                lambda parameters: make_optimizer(config, parameters),
                                TDUpdate(config.loss, config.double, config.max_grad_norm, config.tau),
                                self.device, memory_format=self.memory_format,
                                compile_optimizer=config.compile_optimizer)
        self.eval_rng = np.random.default_rng(context.seed + 1)
        self.epsilons = actor_epsilons(config.actors, config.epsilon, config.epsilon_alpha)
        insert_size = config.fragment * config.envs_per_actor
        # a shard answers a sample request only once it holds a batch, so the limiter must not
        # hold the actors back before there is one per shard (learning_starts 0 deadlocked here)
        self.limiter = SamplesPerInsertLimiter(
            config.samples_per_insert, max(config.learning_starts, config.batch_size * config.replay_shards),
            SamplesPerInsertLimiter.tolerance_for(config.samples_per_insert,
                                                  config.batch_size * config.batches_per_request, insert_size))
        self.updates = 0
        self.actor_seeds: list[int] = []  # each actor's env seed, set when the actors start
        self.shards = [RemoteReplay() for _ in range(config.replay_shards)]
        self._ray_started = False
        self._actors: list[Any] = []

    # -- the runtime's view ------------------------------------------------------------------

    @property
    def q(self) -> nn.Module:
        return self.learner.q

    def as_tensor(self, obs: np.ndarray) -> torch.Tensor:
        # a copy: arrays from Ray's object store are read-only views
        tensor = torch.from_numpy(np.array(obs)).to(self.device)
        return tensor.contiguous(memory_format=self.memory_format) if self.image_input else tensor

    def select_actions(self, obs: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
        """Epsilon-greedy actions of the learner's network (what the DQN plugin's policy calls)."""
        return epsilon_greedy(obs, epsilon, rng, self.n_actions, lambda o: self.learner.greedy(self.as_tensor(o)))

    def policy(self) -> GreedyPolicy:
        """The learner's greedy policy (the DQN plugin's, over ``select_actions``)."""
        return GreedyPolicy(self, self.config.eval_epsilon)

    def policy_module(self) -> GreedyModule:
        return GreedyModule(self.learner.q)

    def replay_buffers(self) -> dict[str, RemoteReplay]:
        return {f"shard{k}": shard for k, shard in enumerate(self.shards)}

    def state_dict(self) -> dict[str, Any]:
        return {**self.learner.state_dict(), "updates": self.updates, "limiter": self.limiter.state_dict(),
                "epsilons": np.array(self.epsilons), "actor_seeds": np.array(self.actor_seeds, dtype=np.int64),
                "eval_rng": self.eval_rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.learner.load_state_dict(state)
        self.updates = int(state["updates"])
        self.limiter.load_state_dict(state["limiter"])
        self.epsilons = [float(e) for e in state["epsilons"]]
        self.actor_seeds = [int(seed) for seed in state["actor_seeds"]]
        self.eval_rng.bit_generator.state = state["eval_rng"]

    # -- Ray: actors and shards ----------------------------------------------------------------

    def _start(self, step: int) -> None:
        """Ray (the cluster at ``address``, or a local one), the replay shards, the actors (their
        env seeds differ with the step a run starts from, so a resumed run sees new episodes)."""
        import signal

        import ray

        c, context = self.config, self.context
        if not ray.is_initialized():
            handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
            os.environ.setdefault("RAY_DEDUP_LOGS", "0")
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
            if c.address:
                ray.init(address=c.address, **kwargs)
            else:  # a new local Ray (not one found running), a logical CPU per actor: the OS shares the cores
                ray.init(address="local", num_cpus=max(os.cpu_count() or 1, c.actors + 1), **kwargs)
                # the learner gets the cores the actors leave: torch threads beyond them would fight
                # the actors for the same cores (on 2 cores, 2 threads against 2 actors halve both)
                torch.set_num_threads(min(torch.get_num_threads(), max(1, (os.cpu_count() or 1) - c.actors)))
            self._ray_started = True
            for signum, handler in handlers.items():  # the run's own: a signal stops it at a checkpoint
                signal.signal(signum, handler)
        spec = context.spec
        env_name = spec.id if spec else context.env_id
        shard_class = ray.remote(num_cpus=0)(ReplayShard)
        actor_class = ray.remote(num_cpus=1)(Actor)
        members = [[i for i in range(c.actors) if i % c.replay_shards == k] for k in range(c.replay_shards)]
        self.actor_seeds = [context.seed + 10_000 * (i + 1) + step for i in range(c.actors)]
        capacity = c.buffer_size // c.replay_shards
        for k, shard in enumerate(self.shards):
            shard.handle = shard_class.remote(capacity, context.observation_space, context.action_space,
                                              len(members[k]) * c.envs_per_actor, context.frame_stack, c.replay,
                                              context.seed + k)
            if shard.pending is not None:
                ray.get(shard.handle.load_state_dict.remote(shard.pending))
                shard.pending = None
        for i in range(c.actors):
            k = i % c.replay_shards
            position = members[k].index(i)
            rings = np.arange(position * c.envs_per_actor, (position + 1) * c.envs_per_actor)
            limit = (spec.max_episode_steps or 0) if spec else 0
            actor_spec = ActorSpec(i, self.epsilons[i], self.actor_seeds[i], env_name, limit, c.envs_per_actor,
                                   context.frame_stack, context.observation_space, self.n_actions, rings,
                                   dict(spec.env_kwargs) if spec else {})
            self._actors.append(actor_class.options(scheduling_strategy="SPREAD").remote(
                actor_spec, c, self.shards[k].handle))

    def close(self) -> None:
        """Stop the actors and shards (and the local Ray this run started): no Ray worker stays."""
        import ray

        if not ray.is_initialized():
            return
        for handle in [*self._actors, *(s.handle for s in self.shards if s.handle is not None)]:
            try:
                ray.kill(handle)
            except Exception:
                pass
        self._actors = []
        for shard in self.shards:
            shard.handle = None
        if self._ray_started:
            ray.shutdown()
            self._ray_started = False

    # -- the loop ------------------------------------------------------------------------------

    def run_loop(self, control: Any) -> int:
        """Actors collect, the learner learns at the samples-per-insert ratio, until the step
        budget or a stop; the runtime's evaluation and checkpoints fire through ``control``."""
        import ray
        from ray.exceptions import RayError

        c = self.config
        step = control.start
        self._start(step)
        weights, version = self._publish(), self.updates
        collecting: dict[Any, int] = {}  # collect call -> actor
        sampling: list[tuple[Any, int]] = []  # sample call, shard
        next_shard = 0
        lags: list[float] = []
        nodes: set[str] = set()
        last_report_time, last_report_step, last_report_updates = time.monotonic(), step, self.updates
        sent_version = [-1] * c.actors
        in_flight = [0] * c.actors
        insert_size = c.fragment * c.envs_per_actor
        try:
            while True:
                # actors: up to collects_in_flight calls each (a level at a time, so every actor gets
                # its first before any gets a second) while the limiter allows their inserts
                for depth in range(c.collects_in_flight):
                    for i in range(c.actors):
                        if in_flight[i] > depth:
                            continue
                        if control.stopped or step + len(collecting) * insert_size >= control.total_steps:
                            break
                        if not self.limiter.can_insert(insert_size, pending=len(collecting) * insert_size):
                            break
                        new = version if sent_version[i] < version else -1
                        ref = self._actors[i].collect.remote(weights if new >= 0 else None, new)
                        sent_version[i] = max(sent_version[i], new)
                        collecting[ref] = i
                        in_flight[i] += 1
                # learner: keep two sample requests in flight once there is enough to sample
                request = c.batch_size * c.batches_per_request
                while (len(sampling) < 2 and not control.stopped
                       and self.limiter.can_sample(request * (len(sampling) + 1))):
                    sampling.append((self.shards[next_shard].handle.sample.remote(
                        c.batches_per_request, c.batch_size, c.gamma, c.n_step, min(step / control.total_steps, 1.0)),
                        next_shard))
                    next_shard = (next_shard + 1) % c.replay_shards
                if not collecting and not sampling:
                    break  # the budget is reached (or stopped) and nothing is on its way
                waiting = list(collecting) + [ref for ref, _ in sampling[:1]]
                ready, _ = ray.wait(waiting, num_returns=1, timeout=1.0)
                for ref in ready:
                    if ref in collecting:
                        in_flight[collecting.pop(ref)] -= 1
                        result = ray.get(ref)
                        step += result["steps"]
                        self.limiter.inserts += result["inserts"]
                        lags.append(self.updates - max(result["version"], 0))
                        nodes.add(result["node"])
                        for episode_return, length in result["episodes"]:
                            control.report.episode(step, episode_return, length)
                            control.report.metrics(step, {f"train/actor{result['actor']}_episode_return": episode_return})
                    else:
                        batches_ref, shard = sampling.pop(0)
                        batches = ray.get(batches_ref)
                        if not batches:  # the shard had too little yet
                            time.sleep(0.01)
                            continue
                        indices, priorities = [], []
                        for batch in batches:
                            metrics, td_error = self._learn(batch)
                            indices.append(batch.indices)
                            priorities.append(td_error)
                            control.report.metrics(step, metrics)
                            if self.updates % c.weight_sync == 0:
                                weights, version = self._publish(), self.updates
                        self.limiter.samples += c.batch_size * len(batches)
                        self.shards[shard].handle.update_priorities.remote(np.concatenate(indices),
                                                                           np.concatenate(priorities))
                now = time.monotonic()
                ending = control.tick(step) and not collecting
                if (now - last_report_time >= 1.0 or ending) and lags:
                    control.report.metrics(step, {
                        "perf/env_sps": (step - last_report_step) / (now - last_report_time),
                        "perf/updates_per_s": (self.updates - last_report_updates) / (now - last_report_time),
                        "perf/samples_per_insert": self.limiter.samples / max(self.limiter.inserts, 1),
                        "perf/weight_lag": float(np.mean(lags)), "perf/actor_nodes": len(nodes)})
                    last_report_time, last_report_step, last_report_updates, lags = now, step, self.updates, []
                if ending:  # the budget is reached or a stop came: the sample requests in flight are dropped
                    break
        except RayError as exc:
            raise FailedAt("an actor", step) from exc
        for actor in self._actors:
            ray.get(actor.flush.remote())  # what the actors sent is in the replay before a checkpoint
        return step

    def _publish(self) -> Any:
        """The learner's weights in Ray's object store, for the actors' next fragment."""
        import ray

        return ray.put({k: v.detach().cpu() for k, v in self.learner.q.state_dict().items()})

    def _learn(self, batch: Any) -> tuple[dict[str, float], np.ndarray]:
        """One DQN update on a prioritized batch; returns its metrics and the new |TD errors|."""
        def tensor(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.array(array)).to(self.device)

        loss, q, td_error = self.learner.td_step(
            self.as_tensor(batch.obs), tensor(batch.action).long(), tensor(batch.reward), tensor(batch.discount),
            self.as_tensor(batch.next_obs), tensor(batch.weights))
        self.updates += 1
        if self.updates % self.config.target_update_interval == 0:
            self.learner.sync_target()
        return {"loss/td": loss, "train/q_mean": q.mean().item()}, td_error.abs().cpu().numpy()
