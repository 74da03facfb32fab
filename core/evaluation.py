"""Deterministic evaluation episodes on env instances separate from training."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.interfaces import Policy, StatefulPolicy, Transition
from toolkit.loops import finished_episodes, successor_obs


def evaluate(policy: Policy, envs: Any, episodes: int, *, seed: int | None = None,
             video_path: str | Path | None = None, fps: float = 30.0, video_episodes: int = 1,
             on_episode: Callable[[int, float, int], None] | None = None) -> dict[str, Any]:
    """Run ``policy`` until ``episodes`` full episodes have finished and report their true
    returns (recorded before any training-only reward shaping such as Atari clipping).

    Each of the vector env's n envs runs a fixed quota of episodes (as SB3's
    ``evaluate_policy`` does), so short episodes are not over-represented. ``seed`` resets
    the envs to a known state first, so an evaluation does not depend on earlier ones.
    With ``video_path``, the first ``video_episodes`` episodes of env 0 are rendered (the envs
    must be made with ``render_mode="rgb_array"``) and written there as one MP4.
    ``on_episode(index, return, length)`` is called as each counted episode ends. A stateful
    policy (h-DQN's options) may define ``observe(transition)``; it is called after every step.
    """
    observe = policy.observe if isinstance(policy, StatefulPolicy) else None
    n_envs = envs.num_envs
    quota = np.array([(episodes + i) // n_envs for i in range(n_envs)])
    done_counts = np.zeros(n_envs, dtype=int)
    returns: list[float] = []
    lengths: list[int] = []
    obs, _ = envs.reset(seed=seed)
    frames = [envs.envs[0].render()] if video_path else None
    video_left = video_episodes
    while (done_counts < quota).any():
        action = policy(obs)
        next_obs, reward, terminated, truncated, infos = envs.step(action)
        if observe is not None:
            observe(Transition(obs, action, reward, successor_obs(next_obs, infos), terminated, truncated, infos))
        obs = next_obs
        if frames is not None:
            ended = bool(terminated[0] or truncated[0])
            video_left -= ended
            if ended and video_left == 0:
                frames = _finish_video(frames, video_path, fps)
            else:  # after an episode's end this is the next one's first frame (autoreset)
                frames.append(envs.envs[0].render())
        for i, episode_return, length in finished_episodes(infos):
            if done_counts[i] < quota[i]:
                done_counts[i] += 1
                returns.append(episode_return)
                lengths.append(length)
                if on_episode is not None:
                    on_episode(len(returns) - 1, float(episode_return), int(length))
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


def evaluate_data_algorithm(algorithm: Any, held_out: np.ndarray | None, run_dir: Path, step: int, report: Any,
                            console: Any) -> None:
    """Samples as a PNG (an image grid, or a scatter plot of 2-D points over the held-out
    data), then the algorithm's own ``evaluate(held_out)`` if it has one: numbers are logged
    as ``eval/<name>``, image batches (N, C, H, W) saved as grids, point sets as scatter plots."""
    from toolkit.interfaces import EvaluatesHeldOut

    n = 64 if held_out is None or held_out.ndim > 2 else 2000
    media = {"samples": str(save_samples(algorithm.sample(n), run_dir / "samples" / f"step_{step:09d}.png",
                                         reference=held_out))}
    if held_out is not None and isinstance(algorithm, EvaluatesHeldOut):
        scores: dict[str, float] = {}
        for name, value in algorithm.evaluate(held_out).items():
            if isinstance(value, np.ndarray) and value.ndim >= 2:
                media[name] = str(save_samples(value, run_dir / "samples" / f"{name.replace('/', '_')}_step_{step:09d}.png"))
            else:
                scores[f"eval/{name}"] = float(value)
        if scores:
            report.write(step, scores)
            console.print(f"eval at step {step:,}: " + ", ".join(f"{k[5:]} {v:.4g}" for k, v in scores.items()))
    report.media(step, media)


def save_samples(samples: np.ndarray, path: Path, reference: np.ndarray | None = None) -> Path:
    """(N, C, H, W) images -> a grid PNG; (N, 2) points -> a scatter PNG (over ``reference``)."""
    from toolkit.images import make_grid, save_png

    if samples.ndim == 2:
        from toolkit.plot import scatter_points

        return scatter_points(samples, path, reference=reference if reference is not None and reference.ndim == 2 else None)
    grid = make_grid(samples)
    scale = max(1, 256 // max(grid.shape[:2]))  # 8x8 digits would give a thumbnail: enlarge small grids
    return save_png(grid.repeat(scale, axis=0).repeat(scale, axis=1), path)
