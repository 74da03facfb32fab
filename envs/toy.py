"""Tiny environments whose optimal policy is known, so learning tests finish in seconds.

| id                              | optimal return | what it tests                               |
|---------------------------------|----------------|---------------------------------------------|
| toolkit/Identity-v0             | 16             | discrete actions: repeat the shown symbol   |
| toolkit/IdentityContinuous-v0   | 0              | Box actions: output the observation         |
| toolkit/MultiIdentity-v0        | 16             | MultiDiscrete actions: repeat each shown symbol |
| toolkit/BinaryIdentity-v0       | 16             | MultiBinary actions: repeat each shown bit  |
| toolkit/ImageIdentity-v0        | 16             | image observations (H, W, C): act on the lit band (continuous=true: 0, a Box action, the band's height) |
| toolkit/Corridor-v0             | 1 (in 4 steps) | credit assignment over a few steps          |
| toolkit/Frames-v0               | (none)         | image frame stacks with short, random episodes |
| toolkit/SlowCartPole-v0         | 500            | CartPole-v1 whose step waits 2 ms: a slow simulator (scaling) |
| toolkit/BlindCliffwalk-v0       | 1 (in n steps) | a reward a random policy finds with probability 2^-n (PER's Figure 1) |

The Identity envs end by truncation (a 16-step time limit), never by termination, so they
also exercise bootstrapping on truncation. Constructor arguments (``--env-kwargs``) reach
the env: ``--env toolkit/MultiIdentity-v0 --env-kwargs sizes=(2,5),start=1``.
"""

from __future__ import annotations

import functools
import time

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from toolkit.interfaces import ResolvedEnv

HORIZON = 16


class IdentityEnv(gym.Env):
    """Observe a one-hot symbol out of ``n``; reward 1 for choosing that symbol's action."""

    def __init__(self, n: int = 4) -> None:
        self.n = n
        self.observation_space = spaces.Box(0.0, 1.0, (n,), dtype=np.float32)
        self.action_space = spaces.Discrete(n)
        self._symbol = 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.n, dtype=np.float32)
        obs[self._symbol] = 1.0
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._symbol = int(self.np_random.integers(self.n))
        return self._obs(), {}

    def step(self, action):
        reward = float(int(action) == self._symbol)
        self._symbol = int(self.np_random.integers(self.n))
        return self._obs(), reward, False, False, {}


class MultiIdentityEnv(gym.Env):
    """Observe one symbol per action dimension (``sizes[i]`` symbols in dimension i, one-hot,
    concatenated); reward the fraction of dimensions whose action names its symbol, the
    actions numbered from ``start``."""

    def __init__(self, sizes: tuple[int, ...] = (2, 3, 4), start: int = 0) -> None:
        self.sizes = tuple(int(n) for n in sizes)
        self.observation_space = spaces.Box(0.0, 1.0, (sum(self.sizes),), dtype=np.float32)
        self.action_space = spaces.MultiDiscrete(self.sizes, start=[start] * len(self.sizes))
        self._symbols = np.zeros(len(self.sizes), dtype=np.int64)

    def _draw(self) -> np.ndarray:
        self._symbols = self.np_random.integers(0, self.sizes)
        return np.concatenate([one_hot(int(k), n) for k, n in zip(self._symbols, self.sizes)])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._draw(), {}

    def step(self, action):
        reward = float(np.mean(np.asarray(action) - self.action_space.start == self._symbols))
        return self._draw(), reward, False, False, {}


class BinaryIdentityEnv(gym.Env):
    """Observe ``n`` random bits; reward the fraction of them the (MultiBinary) action repeats."""

    def __init__(self, n: int = 4) -> None:
        self.observation_space = spaces.Box(0.0, 1.0, (n,), dtype=np.float32)
        self.action_space = spaces.MultiBinary(n)
        self._bits = np.zeros(n, dtype=np.int8)

    def _draw(self) -> np.ndarray:
        self._bits = self.np_random.integers(0, 2, self._bits.shape).astype(np.int8)
        return self._bits.astype(np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._draw(), {}

    def step(self, action):
        reward = float(np.mean(np.asarray(action) == self._bits))
        return self._draw(), reward, False, False, {}


class ImageIdentityEnv(IdentityEnv):
    """IdentityEnv seen through a uint8 image, black but for a lit horizontal band, one of
    ``n``: reward 1 for choosing that band's action. Channels last (H, W, C) as CarRacing's
    frames, or first with ``channels_last=False``: checks that a CNN reads either layout.
    ``continuous=True``: the action is a number in [-1, 1] instead, rewarded -(action - height)^2
    with the band's height from -1 (top) to 1 (bottom), for actor-critics with a CNN."""

    def __init__(self, n: int = 2, size: int = 40, channels: int = 3, channels_last: bool = True,
                 continuous: bool = False) -> None:
        super().__init__(n)
        self.size, self.channels_last, self.continuous = size, channels_last, continuous
        shape = (size, size, channels) if channels_last else (channels, size, size)
        self.observation_space = spaces.Box(0, 255, shape, dtype=np.uint8)
        if continuous:
            self.action_space = spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)

    def step(self, action):
        if not self.continuous:
            return super().step(action)
        height = -1.0 + 2.0 * self._symbol / max(self.n - 1, 1)
        reward = -float((np.asarray(action, dtype=np.float32).reshape(-1)[0] - height) ** 2)
        self._symbol = int(self.np_random.integers(self.n))
        return self._obs(), reward, False, False, {}

    def _obs(self) -> np.ndarray:
        image = np.zeros((self.size, self.size), dtype=np.uint8)
        band = self.size // self.n
        image[self._symbol * band:(self._symbol + 1) * band] = 255
        channels = self.observation_space.shape[-1 if self.channels_last else 0]
        return np.stack([image] * channels, axis=-1 if self.channels_last else 0)


class IdentityContinuousEnv(gym.Env):
    """Observe a point in [-1, 1]^d; reward -||action - point||^2."""

    def __init__(self, dim: int = 2) -> None:
        self.observation_space = spaces.Box(-1.0, 1.0, (dim,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (dim,), dtype=np.float32)
        self._point = np.zeros(dim, dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._point = self.np_random.uniform(-1, 1, self._point.shape).astype(np.float32)
        return self._point.copy(), {}

    def step(self, action):
        reward = -float(np.sum((np.asarray(action, dtype=np.float32) - self._point) ** 2))
        self._point = self.np_random.uniform(-1, 1, self._point.shape).astype(np.float32)
        return self._point.copy(), reward, False, False, {}


def one_hot(index: int, size: int) -> np.ndarray:
    obs = np.zeros(size, dtype=np.float32)
    obs[index] = 1.0
    return obs


class CorridorEnv(gym.Env):
    """A corridor of ``length`` cells, starting at the left end; action 1 moves right, 0 left.
    Reaching the right end pays 1 and terminates."""

    def __init__(self, length: int = 5) -> None:
        self.length = length
        self.observation_space = spaces.Box(0.0, 1.0, (length,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self._cell = 0

    def _obs(self) -> np.ndarray:
        return one_hot(self._cell, self.length)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._cell = 0
        return self._obs(), {}

    def step(self, action):
        self._cell = min(max(self._cell + (1 if int(action) == 1 else -1), 0), self.length - 1)
        done = self._cell == self.length - 1
        return self._obs(), float(done), done, False, {}


class FramesEnv(gym.Env):
    """8x8 uint8 frames whose pixels encode (episode, step), with random episode lengths of
    2..9 steps that end by termination or truncation: checks frame-stacked replay quickly."""

    def __init__(self) -> None:
        self.observation_space = spaces.Box(0, 255, (8, 8), dtype=np.uint8)
        self.action_space = spaces.Discrete(3)
        self._episode, self._t, self._length = 0, 0, 0

    def _obs(self) -> np.ndarray:
        frame = np.zeros((8, 8), dtype=np.uint8)
        frame[0] = self._episode % 256
        frame[1] = self._t
        frame[2:] = self.np_random.integers(0, 256, (6, 8), dtype=np.uint8)
        return frame

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._episode += 1
        self._t, self._length = 0, int(self.np_random.integers(2, 10))
        return self._obs(), {}

    def step(self, action):
        self._t += 1
        end = self._t >= self._length
        terminated = end and self._episode % 2 == 0
        return self._obs(), float(action), terminated, end and not terminated, {}


class SlowCartPoleEnv(gym.Wrapper):
    """CartPole-v1 whose every step first waits 2 ms: a stand-in for a simulator that is slow
    but light on the CPU, so throughput across actors can scale past the cores (Ape-X's
    scaling benchmark)."""

    def __init__(self, delay: float = 0.002) -> None:
        super().__init__(gym.make("CartPole-v1").unwrapped)
        self.delay = delay

    def step(self, action):
        time.sleep(self.delay)
        return self.env.step(action)


class BlindCliffwalkEnv(gym.Env):
    """Schaul et al. 2016's Blind Cliffwalk (prioritized replay, Section 3.1 and Figure 1): n
    states in a row; in each, one action moves on and the other ends the episode with reward 0.
    Which action is the right one differs from state to state (fixed by ``layout_seed``), so
    nothing learned in one state carries to another: the agent is blind to it. Moving on from the
    last state pays 1 and ends the episode. A random policy is rewarded with probability 2^-n;
    the rare successes hide in a mass of short failures, which is what prioritized replay is for.
    Observations are one-hot states."""

    def __init__(self, n: int = 10, layout_seed: int = 0) -> None:
        if n < 1:
            raise ValueError(f"BlindCliffwalk needs at least one state, got n={n}")
        self.n = n
        self.right_actions = np.random.default_rng(layout_seed).integers(0, 2, size=n)
        self.observation_space = spaces.Box(0.0, 1.0, (n,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self.state = 0

    def _obs(self) -> np.ndarray:
        return one_hot(self.state, self.n)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state = 0
        return self._obs(), {}

    def step(self, action):
        if int(action) != self.right_actions[self.state]:
            return self._obs(), 0.0, True, False, {}
        if self.state == self.n - 1:
            return self._obs(), 1.0, True, False, {}
        self.state += 1
        return self._obs(), 0.0, False, False, {}


TOY_ENVS = {
    "toolkit/Identity-v0": (IdentityEnv, HORIZON, 0),
    "toolkit/IdentityContinuous-v0": (IdentityContinuousEnv, HORIZON, 0),
    "toolkit/MultiIdentity-v0": (MultiIdentityEnv, HORIZON, 0),
    "toolkit/BinaryIdentity-v0": (BinaryIdentityEnv, HORIZON, 0),
    "toolkit/ImageIdentity-v0": (ImageIdentityEnv, HORIZON, 0),
    "toolkit/Corridor-v0": (CorridorEnv, 20, 0),
    "toolkit/Frames-v0": (FramesEnv, None, 4),
    "toolkit/SlowCartPole-v0": (SlowCartPoleEnv, 500, 0),
    "toolkit/BlindCliffwalk-v0": (BlindCliffwalkEnv, None, 0),
}


def _make(env_id: str, training: bool = True, render_mode: str | None = None, **env_kwargs) -> gym.Env:
    env_class, max_steps, frame_stack = TOY_ENVS[env_id]
    env = env_class(**env_kwargs)
    if max_steps:
        env = gym.wrappers.TimeLimit(env, max_steps)
    if frame_stack:
        env = gym.wrappers.FrameStackObservation(env, frame_stack, padding_type="reset")
    return env


def resolve(name: str) -> ResolvedEnv | None:
    if name not in TOY_ENVS:
        return None
    _, max_steps, frame_stack = TOY_ENVS[name]
    protocol = f"toolkit toy env (time limit {max_steps})" if max_steps else "toolkit toy env"
    return ResolvedEnv(name, "toy", functools.partial(_make, name), protocol, frame_stack)
