"""``check_algorithm``: the conformance check every plugin's tests call.

    from toolkit.testing import check_algorithm

    def test_conformance():
        check_algorithm("dqn", env="CartPole-v1", overrides={"learning_starts": 50})

It checks what the runtime relies on: the protocol's methods exist; the same seed gives the
same parameters and the same actions; a few hundred steps of real training run without
error and return finite, namespaced metrics; and the state survives a checkpoint round trip
through the safe loader (same state, same greedy actions, same exploration afterwards).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from toolkit import checkpoint
from toolkit.interfaces import DataContext, EnvContext

ENV_METHODS = ("act", "observe", "update", "policy", "state_dict", "load_state_dict")
DATA_METHODS = ("update", "sample", "state_dict", "load_state_dict")


class ConformanceError(AssertionError):
    """An algorithm breaks the contract the runtime relies on."""


def check_algorithm(
    algorithm: str | type,
    *,
    env: str = "toolkit/Identity-v0",
    data: np.ndarray | None = None,
    overrides: dict[str, Any] | None = None,
    steps: int = 300,
    n_envs: int = 2,
    seed: int = 0,
) -> None:
    """Raise ``ConformanceError`` naming the first broken promise; return None when all hold."""
    from toolkit.plugins import get_registry

    cls = get_registry().load("algorithm", algorithm) if isinstance(algorithm, str) else algorithm
    if getattr(cls, "loop", None) not in ("env", "data"):
        raise ConformanceError(f"{cls.__name__}.loop must be 'env' or 'data'")
    if not dataclasses.is_dataclass(getattr(cls, "Config", None)):
        raise ConformanceError(f"{cls.__name__}.Config must be a dataclass")
    config = cls.Config(**(overrides or {}))
    methods = ENV_METHODS if cls.loop == "env" else DATA_METHODS
    missing = [m for m in methods if not callable(getattr(cls, m, None))]
    if missing:
        raise ConformanceError(f"{cls.__name__} lacks {', '.join(missing)}")
    if cls.loop == "env":
        _check_env_algorithm(cls, config, env, steps, n_envs, seed)
    else:
        if data is None:
            data = np.random.default_rng(seed).random((256, 1, 8, 8), dtype=np.float32)
        _check_data_algorithm(cls, config, data, steps, seed)


def _check_env_algorithm(cls: type, config: Any, env: str, steps: int, n_envs: int, seed: int) -> None:
    from toolkit.loops import env_loop
    from toolkit.vec_env import make_vec_env, resolve_env

    resolved = resolve_env(env)
    envs = make_vec_env(resolved, n_envs, seed)
    try:
        context = EnvContext(envs.single_observation_space, envs.single_action_space, n_envs,
                             resolved.frame_stack, steps, seed, "cpu", resolved.id)
        first, second = cls(config, context), cls(config, context)
        _same_state(first.state_dict(), second.state_dict(), "two instances built with the same seed")
        obs, _ = envs.reset(seed=seed)
        for step in range(3):
            if not np.array_equal(first.act(obs, step), second.act(obs, step)):
                raise ConformanceError("the same seed gave different actions")
        if not np.array_equal(first.policy()(obs), second.policy()(obs)):
            raise ConformanceError("the same seed gave different greedy actions")

        reporter = _Collect()
        _, obs = env_loop(first, envs, obs, step=0, total_steps=steps, report=reporter)
        _check_metrics(reporter.seen)

        restored = cls(config, context)
        restored.load_state_dict(_round_trip(first.state_dict()))
        _same_state(first.state_dict(), restored.state_dict(), "state after a checkpoint round trip")
        if not np.array_equal(first.policy()(obs), restored.policy()(obs)):
            raise ConformanceError("greedy actions differ after a checkpoint round trip")
        if not np.array_equal(first.act(obs, steps), restored.act(obs, steps)):
            raise ConformanceError("exploration differs after a checkpoint round trip (is the RNG state saved?)")
    finally:
        envs.close()


def _check_metrics(seen: dict[str, float]) -> None:
    for key, value in seen.items():
        if "/" not in key:
            raise ConformanceError(f"metric '{key}' is not namespaced (use e.g. 'loss/{key}')")
        if not np.isfinite(value):
            raise ConformanceError(f"metric '{key}' is not finite: {value}")


def _check_data_algorithm(cls: type, config: Any, data: np.ndarray, steps: int, seed: int) -> None:
    from toolkit.loops import data_loop, iterate_batches

    context = DataContext(tuple(data.shape[1:]), len(data), steps, seed, "cpu", "check")
    first, second = cls(config, context), cls(config, context)
    _same_state(first.state_dict(), second.state_dict(), "two instances built with the same seed")
    batch_size = min(getattr(config, "batch_size", 32), len(data))
    batches = iterate_batches(data, batch_size, seed)
    collected = _Collect()
    data_loop(first, batches, step=0, total_steps=min(steps, 20), report=collected)
    _check_metrics(collected.seen)
    try:
        _same_state(first.state_dict(), second.state_dict(), "")
    except ConformanceError:
        pass
    else:
        raise ConformanceError("20 updates left the state unchanged")
    samples = first.sample(4)
    if samples.shape != (4, *data.shape[1:]):
        raise ConformanceError(f"sample(4) has shape {samples.shape}, expected {(4, *data.shape[1:])}")
    if not np.isfinite(samples).all():
        raise ConformanceError("sample(4) has non-finite values")
    if hasattr(first, "evaluate"):
        for name, value in first.evaluate(data[: max(8, len(data) // 4)]).items():
            if not isinstance(value, np.ndarray) and not np.isfinite(float(value)):
                raise ConformanceError(f"evaluate() gave a non-finite {name}: {value}")
    restored = cls(config, context)
    restored.load_state_dict(_round_trip(first.state_dict()))
    _same_state(first.state_dict(), restored.state_dict(), "state after a checkpoint round trip")


class _Collect:
    def __init__(self) -> None:
        self.seen: dict[str, float] = {}

    def episode(self, step: int, episode_return: float, length: int) -> None:
        pass

    def metrics(self, step: int, metrics: dict[str, float]) -> None:
        self.seen.update({k: float(v) for k, v in metrics.items()})

    def progress(self, step: int) -> None:
        pass


def _round_trip(state: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = checkpoint.save({"format": checkpoint.FORMAT_VERSION, "state": state}, Path(tmp) / "check.pt")
        return checkpoint.load(path)["state"]


def _same_state(a: Any, b: Any, what: str, path: str = "state") -> None:
    import torch

    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            raise ConformanceError(f"{what}: keys of {path} differ: {sorted(set(a) ^ set(b))}")
        for key in a:
            _same_state(a[key], b[key], what, f"{path}.{key}")
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            raise ConformanceError(f"{what}: {path} has different lengths")
        for i, (x, y) in enumerate(zip(a, b)):
            _same_state(x, y, what, f"{path}[{i}]")
    elif isinstance(a, (torch.Tensor, np.ndarray)) or isinstance(b, (torch.Tensor, np.ndarray)):
        x = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
        y = b.detach().cpu().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
        if x.shape != y.shape or not np.array_equal(x, y, equal_nan=True):
            raise ConformanceError(f"{what}: {path} differs")
    elif a != b:
        raise ConformanceError(f"{what}: {path} differs ({a!r} != {b!r})")
