"""Gymnasium wrappers the runtime adds to envs (imported only when envs are made)."""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym


class TimeLimitWithEpisodeStatistics(gym.wrappers.TimeLimit):
    """A time limit around an env that records its episode statistics further in (Atari
    records the true score before reward clipping). The recorder never sees an episode the
    limit cuts, so this reports its running return and length in ``info["episode"]``, as the
    recorder itself does at an episode's end: evaluation counts episodes by that key."""

    def __init__(self, env: gym.Env, max_episode_steps: int, recorder: gym.wrappers.RecordEpisodeStatistics) -> None:
        super().__init__(env, max_episode_steps)
        self.recorder = recorder

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = super().step(action)
        if truncated and "episode" not in info:
            r = self.recorder
            info = {**info, "episode": {"r": r.episode_returns, "l": r.episode_lengths,
                                        "t": round(time.perf_counter() - r.episode_start_time, 6)}}
        return obs, reward, terminated, truncated, info
