"""Snapshots of running envs, so a resumed run continues the very episodes it was in.

gymnasium has no state API, so a snapshot walks an env's wrapper chain and keeps each
layer's plain attributes: numbers, strings, numpy arrays, lists / tuples / deques / dicts of
them, and numpy generators (by their bit-generator state). Two simulators are handled
explicitly: the Arcade Learning Environment (``ALEInterface.cloneState(include_rng=True)``)
and MuJoCo (the integration state of ``MjData``, warm-start included, so the solver
continues bit for bit). Spaces, specs, enums, renderers and
models are configuration, not state, and are skipped.

Anything else (a Box2D world, say) cannot be captured: ``snapshot`` names it, and the run
resumes from fresh episodes instead, saying so.
"""

from __future__ import annotations

import enum
from collections import deque
from typing import Any

import numpy as np

# Attributes that hold configuration or links, never episode state.
_SKIP = {
    "env", "_env", "_saved_kwargs", "_ezpickle_args", "_ezpickle_kwargs", "spec", "_cached_spec", "_metadata",
    "metadata", "observation_space", "action_space", "_observation_space", "_action_space",
    "single_observation_space", "single_action_space", "render_mode", "model", "fullpath", "frame_skip_",
}
_PLAIN = (bool, int, float, str, bytes, type(None), np.generic)


def _is_static(value: Any) -> bool:
    """Objects that configure an env rather than hold its state."""
    import gymnasium as gym

    module = type(value).__module__ or ""
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, enum.Enum) for v in value):
        return True  # e.g. ALE's action set
    return (
        isinstance(value, (gym.Space, gym.envs.registration.EnvSpec, enum.Enum, type))
        or callable(value) and not hasattr(value, "__dict__")
        or "render" in module
        or type(value).__name__ in ("MjModel", "Action", "Surface", "Clock")
    )


def _encode(value: Any, where: str, missing: list[str]) -> tuple[bool, Any]:
    """(ok, encoded value) for one attribute value."""
    if isinstance(value, _PLAIN):
        return True, value
    if isinstance(value, np.ndarray):
        return (True, value.copy()) if value.dtype != object else (False, None)
    if isinstance(value, np.random.Generator):
        return True, {"__generator__": value.bit_generator.state}
    if isinstance(value, (list, tuple, deque)):
        items = []
        for i, item in enumerate(value):
            ok, encoded = _encode(item, f"{where}[{i}]", missing)
            if not ok:
                return False, None
            items.append(encoded)
        if isinstance(value, deque):
            return True, {"__deque__": items, "maxlen": value.maxlen}
        return True, {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        out = {}
        for key, item in value.items():
            ok, encoded = _encode(item, f"{where}.{key}", missing)
            if not ok:
                return False, None
            out[key] = encoded
        return True, out
    if type(value).__name__ == "ALEInterface":
        serialized = value.cloneState(include_rng=True).serialize()
        return True, {"__ale__": np.frombuffer(serialized, dtype=np.uint8).copy()}
    if type(value).__name__ == "MjData":
        return True, {"__mujoco__": _mujoco_state(value)}
    return False, None


def _mujoco_state(data: Any) -> np.ndarray:
    import mujoco

    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    state = np.empty(mujoco.mj_stateSize(data.model, spec))
    mujoco.mj_getState(data.model, data, state, spec)
    return state


def snapshot(env: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """The state of every layer of ``env``'s wrapper chain, and the names of the attributes
    that could not be captured (empty when the snapshot is complete)."""
    layers: list[dict[str, Any]] = []
    missing: list[str] = []
    layer = env
    while layer is not None:
        state = {}
        for name, value in vars(layer).items():
            if name in _SKIP or _is_static(value):
                continue
            ok, encoded = _encode(value, name, missing)
            if ok:
                state[name] = encoded
            else:
                missing.append(f"{type(layer).__name__}.{name} ({type(value).__name__})")
        layers.append(state)
        layer = getattr(layer, "env", None)
    return layers, missing


def _decode(encoded: Any, current: Any) -> Any:
    if isinstance(encoded, dict):
        if "__generator__" in encoded:
            generator = current if isinstance(current, np.random.Generator) else np.random.default_rng()
            generator.bit_generator.state = encoded["__generator__"]
            return generator
        if "__deque__" in encoded:
            return deque([_decode(v, None) for v in encoded["__deque__"]], maxlen=encoded["maxlen"])
        if "__tuple__" in encoded:
            return tuple(_decode(v, None) for v in encoded["__tuple__"])
        if "__ale__" in encoded:
            import ale_py

            current.restoreState(ale_py.ALEState(np.asarray(encoded["__ale__"], dtype=np.uint8).tobytes()))
            return current
        if "__mujoco__" in encoded:
            import mujoco

            mujoco.mj_setState(current.model, current, np.asarray(encoded["__mujoco__"]),
                               mujoco.mjtState.mjSTATE_INTEGRATION)
            return current
        return {k: _decode(v, (current or {}).get(k) if isinstance(current, dict) else None) for k, v in encoded.items()}
    if isinstance(encoded, list):
        return [_decode(v, None) for v in encoded]
    if isinstance(encoded, np.ndarray) and isinstance(current, np.ndarray) and current.shape == encoded.shape \
            and current.dtype == encoded.dtype:
        current[...] = encoded  # keep the array object: other code may hold a reference to it
        return current
    return encoded


def restore(env: Any, layers: list[dict[str, Any]]) -> None:
    """Put a snapshot back into an env with the same wrapper chain."""
    layer, depth = env, 0
    while layer is not None:
        if depth >= len(layers):
            raise ValueError("the env has more wrapper layers than the snapshot")
        for name, encoded in layers[depth].items():
            setattr(layer, name, _decode(encoded, getattr(layer, name, None)))
        layer, depth = getattr(layer, "env", None), depth + 1
    if depth != len(layers):
        raise ValueError("the env has fewer wrapper layers than the snapshot")


def snapshot_vector_env(envs: Any, obs: np.ndarray) -> dict[str, Any]:
    """Every env of an in-process vector env, with the current observations; or what could not be saved."""
    if not hasattr(envs, "envs"):
        return {"missing": ["envs run in subprocesses (--vec-env async)"]}
    layers, missing = [], []
    for env in envs.envs:
        env_layers, env_missing = snapshot(env)
        layers.append(env_layers)
        missing += env_missing
    return {"missing": sorted(set(missing))} if missing else {"obs": obs, "layers": layers}


def restore_vector_env(envs: Any, saved: dict[str, Any], seed: int) -> np.ndarray:
    """Put ``snapshot_vector_env``'s envs back; returns the observations to continue from."""
    envs.reset(seed=seed)
    for env, layers in zip(envs.envs, saved["layers"]):
        restore(env, layers)
    return saved["obs"]
