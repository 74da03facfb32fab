"""Deterministic evaluation episodes on env instances separate from training."""

from __future__ import annotations

from typing import Any

import numpy as np

from toolkit.interfaces import Policy


def evaluate(policy: Policy, envs: Any, episodes: int) -> dict[str, Any]:
    """Run ``policy`` until ``episodes`` full episodes have finished and report their true
    returns (recorded before any training-only reward shaping such as Atari clipping).

    Each of the vector env's n envs runs a fixed quota of episodes (as SB3's
    ``evaluate_policy`` does), so short episodes are not over-represented.
    """
    n_envs = envs.num_envs
    quota = np.array([(episodes + i) // n_envs for i in range(n_envs)])
    done_counts = np.zeros(n_envs, dtype=int)
    returns: list[float] = []
    lengths: list[int] = []
    obs, _ = envs.reset()
    while (done_counts < quota).any():
        obs, _, _, _, infos = envs.step(policy(obs))
        final_info = infos.get("final_info", {})
        if "episode" in final_info:
            for i in np.flatnonzero(final_info["_episode"]):
                if done_counts[i] < quota[i]:
                    done_counts[i] += 1
                    returns.append(float(final_info["episode"]["r"][i]))
                    lengths.append(int(final_info["episode"]["l"][i]))
    return {
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "episodes": len(returns),
        "mean_length": float(np.mean(lengths)),
        "returns": returns,
    }
