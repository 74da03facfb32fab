"""Offline use of a checkpoint: ``restore_algorithm`` is the one way a saved algorithm is
rebuilt (checkpoint -> plan -> context -> construct -> load), used by ``toolkit eval``,
``toolkit sample`` and anything later (loading, exporting, sharing)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit import checkpoint
from toolkit.errors import ToolkitError

EVAL_SEED_OFFSET = 1_000_003  # as in toolkit.run: the same evaluation a run performs


@dataclass(frozen=True)
class Restored:
    """A checkpoint's algorithm, rebuilt and loaded, with the plan and the raw checkpoint."""

    algorithm: Any
    plan: Any
    state: dict[str, Any]
    path: Path


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or the best (else latest) checkpoint of a run directory."""
    path = Path(path)
    if path.is_dir():
        for candidate in (path / "best.pt", checkpoint.latest(path)):
            if candidate is not None and candidate.is_file():
                return candidate
        raise ToolkitError(f"no checkpoint in {path} (looked for best.pt and checkpoints/step_*.pt)")
    if not path.exists():
        raise ToolkitError(f"{path} does not exist (expected a run directory or a .pt checkpoint)")
    return path


def restore_algorithm(path: str | Path, device: str = "auto") -> Restored:
    """The algorithm of a checkpoint (a file, or a run directory's best.pt else latest), built
    from the checkpoint's own config and loaded, on ``device``."""
    from toolkit.planning import construct, data_context, env_context, plan
    from toolkit.plugins import get_registry

    ckpt_path = find_checkpoint(path)
    state = checkpoint.load(ckpt_path, checkpoint.ENTRIES)
    algo, plugin = state["algorithm"], state.get("plugin")
    registry = get_registry()
    if plugin and registry.plugin(plugin) is None:
        version = f" {state['plugin_version']}" if state.get("plugin_version") else ""
        raise ToolkitError(f"{ckpt_path} was written by algorithm '{algo}' of plugin '{plugin}'{version}, "
                           "which is not installed (or not loaded: see `toolkit plugins` and TOOLKIT_PLUGINS)")
    if plugin and ("algorithm", algo) in registry.conflicts:
        algo = f"{plugin}:{algo}"  # the name is ambiguous now; the checkpoint says whose it is
    p = plan(algo, {"device": device}, config_values=state["config"], registry=registry)
    if p.algo_class.loop == "env":
        context = env_context(p)
    elif "data" in state:
        context = data_context(p, state["data"]["sample_shape"], state["data"]["n_samples"])
    else:
        raise ToolkitError(f"{ckpt_path} predates sampling (no data shape recorded)")
    algorithm = construct(p, context)
    try:
        algorithm.load_state_dict(state["state"])
    except (KeyError, RuntimeError, ValueError, TypeError, IndexError) as exc:
        raise ToolkitError(f"{ckpt_path} does not fit '{algo}' as its config describes: {type(exc).__name__}: "
                           f"{' '.join(str(exc).split())[:200]}") from None
    return Restored(algorithm, p, state, ckpt_path)


def restored_from(target: str | Path | Restored, device: str = "auto") -> Restored:
    """``target`` itself when it is already restored, else its checkpoint restored: callers that
    evaluate, film and sample one checkpoint (``toolkit push``) load it once."""
    return target if isinstance(target, Restored) else restore_algorithm(target, device=device)


def evaluate_checkpoint(path: str | Path | Restored, episodes: int | None = None,
                        seed: int | None = None, stochastic: bool = False) -> dict[str, Any]:
    """``toolkit eval``: the same evaluation a run performs, on a saved checkpoint;
    ``stochastic``: with the exploring policy's sampled actions instead."""
    restored = restored_from(path)
    episodes = episodes or restored.plan.run.eval_episodes
    return _play(restored, episodes, seed, n_envs=min(episodes, 4), stochastic=stochastic)


def enjoy_checkpoint(path: str | Path | Restored, episodes: int, *, video: str | Path | None = None, render: bool = False,
                     seed: int | None = None, on_episode: Any = None, stochastic: bool = False) -> dict[str, Any]:
    """``toolkit enjoy``: play a checkpoint's evaluation policy (``stochastic``: its exploring
    one) for ``episodes`` episodes in one env, made as evaluation makes it; ``video``: one MP4
    of all of them; ``render``: a window."""
    if render:
        check_display()
    restored = restored_from(path)
    result = _play(restored, episodes, seed, n_envs=1, render_mode="human" if render else "rgb_array" if video else None,
                   video=video, on_episode=on_episode, stochastic=stochastic)
    return result | ({"video": str(video)} if video else {})


def stochastic_policy(algorithm: Any, algo: str, seed: int | None = None) -> Any:
    """``algorithm``'s exploring policy (``HasStochasticPolicy``), its samples seeded with
    ``seed`` where its ``stochastic_policy`` takes one; a clear error where it has none."""
    from toolkit.interfaces import HasStochasticPolicy

    if not isinstance(algorithm, HasStochasticPolicy):
        raise ToolkitError(f"'{algo}' has no stochastic policy to sample: evaluate its deterministic one "
                           "(without --stochastic, or deterministic=True)")
    if "seed" in inspect.signature(algorithm.stochastic_policy).parameters:
        return algorithm.stochastic_policy(seed=seed)
    return algorithm.stochastic_policy()  # a plugin written before the seed parameter


def _play(restored: Restored, episodes: int, seed: int | None, *, n_envs: int, render_mode: str | None = None,
          video: str | Path | None = None, on_episode: Any = None, stochastic: bool = False) -> dict[str, Any]:
    """The checkpoint's evaluation policy (``stochastic``: its exploring one, seeded as the envs
    are) for ``episodes`` episodes on evaluation envs seeded as the run seeds its evaluations
    (unless ``seed``)."""
    from toolkit.evaluation import evaluate
    from toolkit.vec_env import make_vec_env
    from toolkit.video import video_fps

    p = restored.plan
    if p.algo_class.loop != "env":
        raise ToolkitError(f"'{p.algo}' is a generative trainer; evaluation needs an env-loop algorithm "
                           "(use `toolkit sample`)")
    seed = p.run.seed + EVAL_SEED_OFFSET if seed is None else seed
    policy = stochastic_policy(restored.algorithm, p.algo, seed) if stochastic else restored.algorithm.policy()
    envs = make_vec_env(p.env, n_envs, seed, training=False, max_episode_steps=p.run.max_episode_steps,
                        render_mode=render_mode)
    try:
        result = evaluate(policy, envs, episodes, video_path=video, fps=video_fps(p.env.family, envs.metadata),
                          video_episodes=episodes, on_episode=on_episode)
    finally:
        envs.close()
    return {"checkpoint": str(restored.path), "algorithm": p.algo, "env": p.env.id, "step": restored.state["step"],
            "policy": "stochastic" if stochastic else "deterministic", **result}


def check_display() -> None:
    """A window needs a display: refuse at once where there is none (a server, CI)."""
    from toolkit.vec_env import has_display

    if not has_display():
        raise ToolkitError("--render opens a window and there is no display here (DISPLAY is not set); "
                           "write the episodes to a file with --video out.mp4 instead")


def load_generative(path: str | Path | Restored) -> Any:
    """The data-loop algorithm of a generative run's checkpoint (best.pt, else the latest), on the CPU."""
    restored = restored_from(path, device="cpu")
    if restored.plan.algo_class.loop != "data":
        raise ToolkitError(f"'{restored.plan.algo}' is not a generative trainer; use `toolkit eval` for env-loop "
                           "algorithms")
    return restored.algorithm


def sample_checkpoint(path: str | Path | Restored, n: int, out: str | Path, seed: int = 0) -> Path:
    """``toolkit sample``: ``n`` samples of a generative run's checkpoint, saved as a PNG."""
    import torch

    from toolkit.evaluation import save_samples

    algorithm = load_generative(path)
    torch.manual_seed(seed)
    return save_samples(algorithm.sample(n), Path(out))
