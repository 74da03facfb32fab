"""The MinAtar family (Young & Tian 2019): five Atari games (Asterix, Breakout, Freeway,
Seaquest, Space Invaders) on a 10x10 grid with one binary channel per object kind, small
enough for a CPU to run the DQN experiments of the Atari papers in hours. From the
``minatar`` package (``pip install toolkit[minatar]``), which registers ``MinAtar/<Game>-v0``
(all six actions, as in the paper) and ``MinAtar/<Game>-v1`` (each game's minimal action set).

Observations become channels-first uint8 arrays (C, 10, 10) of 0 / 1, the layout of toolkit's
convolutional networks. Nothing else changes: MinAtar's own sticky actions (probability 0.1)
and difficulty ramping stay, as in the paper; no frame stacking (the channels already encode
motion trails), no reward clipping.
"""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np

from toolkit.errors import ToolkitError
from toolkit.interfaces import ResolvedEnv

GAMES = ("Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders")
VERSIONS = ("v0", "v1")


def env_names() -> list[str]:
    return [f"MinAtar/{game}-{version}" for game in GAMES for version in VERSIONS]


def resolve(name: str) -> ResolvedEnv | None:
    """``MinAtar/Breakout-v1`` (any case), or None when ``name`` is not a MinAtar id."""
    lowered = name.lower()
    if not lowered.startswith("minatar/"):
        return None
    env_id = {n.lower(): n for n in env_names()}.get(lowered)
    if env_id is None:
        return None
    try:
        import minatar  # noqa: F401
    except ImportError:
        raise ToolkitError(f"{env_id} needs the minatar package: pip install 'toolkit[minatar]'") from None
    protocol = ("MinAtar (Young & Tian 2019): 10x10 binary channels as (C, 10, 10) uint8, the game's sticky "
                f"actions (p=0.1), {'all 6 actions' if env_id.endswith('v0') else 'the minimal action set'}")
    return ResolvedEnv(env_id, "minatar", functools.partial(make, env_id), protocol)


def make(env_id: str, training: bool = True, render_mode: str | None = None) -> gym.Env:
    if env_id not in gym.registry:
        from minatar.gym import register_envs

        register_envs()
    env = gym.make(env_id, render_mode=render_mode) if render_mode else gym.make(env_id)
    return ChannelsFirst(env)


class ChannelsFirst(gym.ObservationWrapper):
    """(10, 10, C) bool -> (C, 10, 10) uint8."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        height, width, channels = env.observation_space.shape
        self.observation_space = gym.spaces.Box(0, 1, (channels, height, width), dtype=np.uint8)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.moveaxis(observation, -1, 0), dtype=np.uint8)
