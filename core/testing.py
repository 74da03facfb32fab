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
from toolkit.interfaces import BatchSizeConfig, ChecksSpec, DataContext, EvaluatesHeldOut, HasReplayBuffers, RunsOwnLoop

ENV_METHODS = ("act", "observe", "update", "policy", "state_dict", "load_state_dict")
OWN_LOOP_METHODS = ("run_loop", "close", "policy", "state_dict", "load_state_dict")
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
    env_kwargs: dict[str, Any] | None = None,
) -> None:
    """Raise ``ConformanceError`` naming the first broken promise; return None when all hold.
    ``env_kwargs``: constructor arguments of ``env``, as ``--env-kwargs`` gives them."""
    from toolkit.plugins import get_registry

    cls = get_registry().load("algorithm", algorithm) if isinstance(algorithm, str) else algorithm
    if getattr(cls, "loop", None) not in ("env", "data"):
        raise ConformanceError(f"{cls.__name__}.loop must be 'env' or 'data'")
    if not dataclasses.is_dataclass(getattr(cls, "Config", None)):
        raise ConformanceError(f"{cls.__name__}.Config must be a dataclass")
    config = cls.Config(**(overrides or {}))
    own_loop = cls.loop == "env" and issubclass(cls, RunsOwnLoop)
    methods = OWN_LOOP_METHODS if own_loop else ENV_METHODS if cls.loop == "env" else DATA_METHODS
    missing = [m for m in methods if not callable(getattr(cls, m, None))]
    if missing:
        raise ConformanceError(f"{cls.__name__} lacks {', '.join(missing)}")
    if cls.loop == "env":
        _check_env_algorithm(cls, config, env, steps, n_envs, seed, env_kwargs or {})
    else:
        if data is None:
            data = np.random.default_rng(seed).random((256, 1, 8, 8), dtype=np.float32)
        _check_data_algorithm(cls, config, data, steps, seed)


def _check_env_algorithm(cls: type, config: Any, env: str, steps: int, n_envs: int, seed: int,
                         env_kwargs: dict[str, Any]) -> None:
    from toolkit.loops import env_loop
    from toolkit.planning import context_for_spec
    from toolkit.vec_env import describe_env, make_vec_env, resolve_env, with_env_kwargs

    resolved = with_env_kwargs(resolve_env(env), env_kwargs)
    spec = describe_env(resolved)
    if isinstance(cls, ChecksSpec):
        cls.check(config, spec)  # a combination the algorithm itself refuses is the caller's mistake
    envs = make_vec_env(resolved, n_envs, seed)
    try:
        context = context_for_spec(spec, n_envs, steps, seed, "cpu")
        first, second = cls(config, context), cls(config, context)
        _same_state(first.state_dict(), second.state_dict(), "two instances built with the same seed")
        obs, _ = envs.reset(seed=seed)
        if isinstance(first, RunsOwnLoop):
            _check_own_loop(cls, config, context, first, second, obs, steps)
            return
        for step in range(3):
            if not np.array_equal(first.act(obs, step), second.act(obs, step)):
                raise ConformanceError("the same seed gave different actions")
        if not np.array_equal(first.policy()(obs), second.policy()(obs)):
            raise ConformanceError("the same seed gave different greedy actions")

        reporter = _Collect()
        # an odd number of vector steps, so the round trip falls inside a partly filled rollout
        first_phase = (steps // n_envs) // 2 * 2 * n_envs + n_envs
        step, obs = env_loop(first, envs, obs, step=0, total_steps=first_phase, report=reporter)
        _check_metrics(reporter.seen)

        restored = _restored(cls, config, context, first, obs)
        _twin_env_run(first, restored, envs, obs, step, steps, learns=bool(reporter.seen))
    finally:
        envs.close()


def _check_own_loop(cls: type, config: Any, context: Any, first: Any, second: Any, obs: np.ndarray, steps: int) -> None:
    """A ``RunsOwnLoop`` algorithm: its loop trains for ``steps`` env steps through a
    ``LoopControl`` and returns the count; then its state survives a checkpoint round trip
    (asynchronous loops are not replayed step by step, so no twin run); ``close`` ends it all."""
    from toolkit.loops import LoopControl

    if not np.array_equal(first.policy()(obs), second.policy()(obs)):
        raise ConformanceError("the same seed gave different greedy actions")
    second.close()  # never started: closing must still work
    reporter = _Collect()
    try:
        step = first.run_loop(LoopControl(0, steps, reporter))
        if not isinstance(step, int) or step < steps:
            raise ConformanceError(f"run_loop() returned {step!r}; it must train to the budget of {steps} env steps "
                                   "and return the count")
        _check_metrics(reporter.seen)
        if not reporter.seen:
            raise ConformanceError(f"no metrics in {steps} steps; pass overrides (learning_starts, ...) so that the "
                                   "algorithm learns within `steps`")
        _restored(cls, config, context, first, obs)
    finally:
        first.close()


def _restored(cls: type, config: Any, context: Any, first: Any, obs: np.ndarray) -> Any:
    """A new instance loaded with ``first``'s state through the safe checkpoint format (and its
    replay buffers, as a run with --save-replay resumes): same state, same greedy actions."""
    restored = cls(config, context)
    restored.load_state_dict(_round_trip(first.state_dict()))
    if isinstance(first, HasReplayBuffers):
        saved = {name: buffer.state_dict() for name, buffer in first.replay_buffers().items()}
        for name, buffer in restored.replay_buffers().items():
            buffer.load_state_dict(_round_trip(saved[name]))
    _same_state(first.state_dict(), restored.state_dict(), "state after a checkpoint round trip")
    if not np.array_equal(first.policy()(obs), restored.policy()(obs)):
        raise ConformanceError("greedy actions differ after a checkpoint round trip")
    return restored


def _paired(call: Any, first: Any, restored: Any) -> tuple[Any, Any]:
    """``call(first)`` and ``call(restored)`` from the same global RNG state, as a resumed run
    starts from the checkpoint's global RNG state (the runtime saves it)."""
    from toolkit.rng import restore_rng_states, rng_states

    before = rng_states()
    a = call(first)
    after = rng_states()
    restore_rng_states(before)
    b = call(restored)
    restore_rng_states(after)
    return a, b


def _twin_env_run(first: Any, restored: Any, envs: Any, obs: np.ndarray, step: int, steps: int, learns: bool) -> None:
    """The uninterrupted algorithm and its restored copy, fed the same transitions for
    ``steps`` more env steps: every action, every update's metrics and the final state must
    agree, so forgotten RNG, optimizer, schedule or rollout state shows."""
    from toolkit.interfaces import Transition
    from toolkit.loops import successor_obs

    end, updates = step + steps, 0
    while step < end:
        a, b = _paired(lambda algorithm: algorithm.act(obs, step), first, restored)
        if not np.array_equal(a, b):
            raise ConformanceError(f"act() at step {step} differs between the restored algorithm and its uninterrupted "
                                   "twin: is every RNG and schedule position in state_dict()?")
        next_obs, reward, terminated, truncated, infos = envs.step(a)
        transition = Transition(obs, a, reward, successor_obs(next_obs, infos), terminated, truncated, infos)
        _paired(lambda algorithm: algorithm.observe(transition), first, restored)
        obs, step = next_obs, step + envs.num_envs
        m1, m2 = _paired(lambda algorithm: algorithm.update(step), first, restored)
        _same_metrics(m1, m2, f"update() at step {step}")
        updates += bool(m1)
    _same_state(first.state_dict(), restored.state_dict(),
                f"after {steps} more steps, the restored algorithm and its uninterrupted twin")
    if learns and not updates:
        raise ConformanceError(f"no update in the {steps} steps after the checkpoint round trip; pass overrides "
                               "(learning_starts, n_steps, ...) so that the algorithm learns within `steps`")


def _same_metrics(a: dict[str, float] | None, b: dict[str, float] | None, where: str) -> None:
    a = {k: float(v) for k, v in (a or {}).items() if not k.startswith("perf/")}
    b = {k: float(v) for k, v in (b or {}).items() if not k.startswith("perf/")}
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if x is None or y is None or not (x == y or (np.isnan(x) and np.isnan(y))):
            raise ConformanceError(f"{where}: {key} is {y} for the restored algorithm but {x} for its uninterrupted "
                                   "twin: is the optimizer state (and any partly filled rollout) in state_dict()?")


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
    batch_size = min(config.batch_size if isinstance(config, BatchSizeConfig) else 32, len(data))
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
    if isinstance(first, EvaluatesHeldOut):
        for name, value in first.evaluate(data[: max(8, len(data) // 4)]).items():
            if not isinstance(value, np.ndarray) and not np.isfinite(float(value)):
                raise ConformanceError(f"evaluate() gave a non-finite {name}: {value}")
    restored = cls(config, context)
    restored.load_state_dict(_round_trip(first.state_dict()))
    _same_state(first.state_dict(), restored.state_dict(), "state after a checkpoint round trip")
    for i in range(10):
        batch = next(batches)
        m1, m2 = _paired(lambda algorithm: algorithm.update(batch), first, restored)
        _same_metrics(m1, m2, f"update {i + 1} after the round trip")
    _same_state(first.state_dict(), restored.state_dict(),
                "after 10 more updates, the restored algorithm and its uninterrupted twin")


class _Collect:
    def __init__(self) -> None:
        self.seen: dict[str, float] = {}

    def episode(self, step: int, episode_return: float, length: int) -> None:
        pass

    def metrics(self, step: int, metrics: dict[str, float]) -> None:
        self.seen.update({k: float(v) for k, v in metrics.items()})

    def progress(self, step: int) -> None:
        pass


SAFE_LEAVES = (bool, int, float, str, bytes, type(None))


def unsafe_values(value: Any, path: str = "state") -> list[str]:
    """``path (type)`` of each value in a state dict that the safe checkpoint loader rejects
    (anything but containers, numbers, strings, tensors and numeric numpy arrays)."""
    import torch

    if isinstance(value, dict):
        found = [f"{path} has a key of type {type(k).__name__}" for k in value if not isinstance(k, (str, int))]
        return found + [u for k, v in value.items() for u in unsafe_values(v, f"{path}.{k}")]
    if isinstance(value, (list, tuple)):
        return [u for i, v in enumerate(value) for u in unsafe_values(v, f"{path}[{i}]")]
    if isinstance(value, np.ndarray | np.generic):
        return [f"{path} (numpy {value.dtype})"] if value.dtype.kind in "OUSV" else []
    if isinstance(value, SAFE_LEAVES + (torch.Tensor, torch.dtype, torch.Size)):
        return []
    return [f"{path} ({type(value).__module__}.{type(value).__qualname__})"]


def _round_trip(state: dict[str, Any]) -> dict[str, Any]:
    unsafe = unsafe_values(state)
    if unsafe:
        raise ConformanceError("state_dict() holds values the safe checkpoint loader rejects (use tensors, numpy "
                               "arrays, numbers, strings): " + ", ".join(unsafe[:5]))
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
