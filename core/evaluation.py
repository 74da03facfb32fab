"""Deterministic evaluation episodes on env instances separate from training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from toolkit.interfaces import Policy, Transition


def evaluate(policy: Policy, envs: Any, episodes: int, *, seed: int | None = None,
             video_path: str | Path | None = None, fps: float = 30.0) -> dict[str, Any]:
    """Run ``policy`` until ``episodes`` full episodes have finished and report their true
    returns (recorded before any training-only reward shaping such as Atari clipping).

    Each of the vector env's n envs runs a fixed quota of episodes (as SB3's
    ``evaluate_policy`` does), so short episodes are not over-represented. ``seed`` resets
    the envs to a known state first, so an evaluation does not depend on earlier ones.
    With ``video_path``, the first episode of env 0 is rendered (the envs must be made with
    ``render_mode="rgb_array"``) and written there as MP4. A stateful policy (h-DQN's
    options) may define ``observe(transition)``; it is called after every step.
    """
    observe = getattr(policy, "observe", None)
    n_envs = envs.num_envs
    quota = np.array([(episodes + i) // n_envs for i in range(n_envs)])
    done_counts = np.zeros(n_envs, dtype=int)
    returns: list[float] = []
    lengths: list[int] = []
    obs, _ = envs.reset(seed=seed)
    frames = [envs.envs[0].render()] if video_path else None
    while (done_counts < quota).any():
        action = policy(obs)
        next_obs, reward, terminated, truncated, infos = envs.step(action)
        if observe is not None:
            true_next_obs = next_obs
            if "final_obs" in infos:
                true_next_obs = next_obs.copy()
                for i in np.flatnonzero(infos["_final_obs"]):
                    true_next_obs[i] = infos["final_obs"][i]
            observe(Transition(obs, action, reward, true_next_obs, terminated, truncated, infos))
        obs = next_obs
        if frames is not None:
            if terminated[0] or truncated[0]:
                frames = _finish_video(frames, video_path, fps)
            else:
                frames.append(envs.envs[0].render())
        final_info = infos.get("final_info", {})
        if "episode" in final_info:
            for i in np.flatnonzero(final_info["_episode"]):
                if done_counts[i] < quota[i]:
                    done_counts[i] += 1
                    returns.append(float(final_info["episode"]["r"][i]))
                    lengths.append(int(final_info["episode"]["l"][i]))
    if frames:
        _finish_video(frames, video_path, fps)
    return {
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "episodes": len(returns),
        "mean_length": float(np.mean(lengths)),
        "returns": returns,
    }


def _finish_video(frames: list[np.ndarray], path: str | Path, fps: float) -> None:
    from toolkit.video import write_mp4

    write_mp4(frames, path, fps)
    return None
