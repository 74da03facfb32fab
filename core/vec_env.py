"""Env-name resolution and vector-env construction: the one place envs are made.

``--env Pong`` asks every registered env family whether it owns the name (the Atari family
does, and answers with PongNoFrameskip-v4 and its preprocessing); a name no family owns is
looked up in gymnasium's registry unchanged.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from toolkit.errors import ToolkitError, unknown_name
from toolkit.interfaces import EnvSpec, GoalInterface, ResolvedEnv


def resolve_env(name: str, registry: Any = None) -> ResolvedEnv:
    """What ``name`` means, or a one-line error that lists the closest env names.

    ``module:EnvId`` (gymnasium's syntax for envs of any installed package) imports ``module``
    first, so that it registers its envs, then resolves ``EnvId`` as usual (an Atari id still
    gets the Atari preprocessing)."""
    import gymnasium as gym

    if registry is None:
        from toolkit.plugins import get_registry

        registry = get_registry()
    module, colon, env_name = name.rpartition(":")
    if colon:
        _import_env_module(module, name)
        name = env_name
    for family in registry.names("env"):
        resolved = registry.load("env", family)(name)
        if resolved is not None:
            return resolved
    if name in gym.registry:
        return registered_env(name)
    candidates = set(gym.registry)
    for family in registry.names("env"):
        names = registry.get("env", family).extra_value("names", ())
        candidates.update(names() if callable(names) else names)
    raise unknown_name("env", (module + colon if colon else "") + name, candidates)


def registered_env(name: str, capabilities: Mapping[str, Any] | None = None) -> ResolvedEnv:
    """``name`` as gymnasium registers it (the "gymnasium" family)."""
    import gymnasium as gym

    def make(training: bool = True, render_mode: str | None = None, **env_kwargs: Any) -> Any:
        return make_registered(name, render_mode, **env_kwargs)

    return ResolvedEnv(name, "gymnasium", make,
                       f"gymnasium {name} as registered (max_episode_steps={gym.registry[name].max_episode_steps})",
                       capabilities=dict(capabilities or {}))


def make_registered(env_id: str, render_mode: str | None = None, **env_kwargs: Any) -> Any:
    """``gym.make(env_id, **env_kwargs)``, passing ``render_mode`` only when one is asked for
    (envs of other packages need not accept the argument)."""
    import gymnasium as gym

    if "mujoco" in str(gym.spec(env_id).entry_point):
        route_mujoco_warnings()
    if render_mode:
        env_kwargs["render_mode"] = render_mode
    return gym.make(env_id, **env_kwargs)


# set by toolkit for each env it makes, so not an --env-kwargs key
RESERVED_ENV_KWARGS = {"training": "toolkit makes training and evaluation envs itself",
                       "render_mode": "toolkit asks for frames itself (--capture-video, toolkit enjoy)"}


# as TOML and the command line spell them elsewhere (--normalize-obs true)
LOWERCASE_LITERALS = {"true": "True", "false": "False", "none": "None"}


def parse_env_kwargs(items: Iterable[str]) -> dict[str, Any]:
    """``--env-kwargs`` items (KEY=VALUE) as a dict. A value is read as a Python literal
    (``ast.literal_eval``, which runs no code: 0.5, True, None, 'text', (1, 2); true, false
    and none in any case too), and anything that is not one stays the string it is (``mode=hard``)."""
    import ast

    kwargs: dict[str, Any] = {}
    for item in _rejoin_brackets(items):
        key, equals, text = item.partition("=")
        key = key.strip()
        if not equals or not key.isidentifier():
            raise ToolkitError(f"--env-kwargs {item!r}: expected KEY=VALUE, e.g. "
                               "--env-kwargs continuous=True,gravity=-9.0")
        if key in RESERVED_ENV_KWARGS:
            raise ToolkitError(f"--env-kwargs {key}: {RESERVED_ENV_KWARGS[key]}; drop it")
        if key in kwargs:
            raise ToolkitError(f"--env-kwargs {key}: given twice")
        text = text.strip()
        try:
            kwargs[key] = ast.literal_eval(LOWERCASE_LITERALS.get(text.lower(), text))
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            kwargs[key] = text
    return kwargs


def _rejoin_brackets(items: Iterable[str]) -> list[str]:
    """The option's comma-separated items with the commas inside brackets put back:
    ``sizes=(2`` and ``5)`` are one item, ``sizes=(2,5)``."""
    joined: list[str] = []
    for item in items:
        if joined and _open_brackets(joined[-1]) > 0:
            joined[-1] += "," + item
        else:
            joined.append(item)
    return joined


def _open_brackets(text: str) -> int:
    return sum(text.count(c) for c in "([{") - sum(text.count(c) for c in ")]}")


def constructor_arguments(env_id: str) -> list[str] | None:
    """The keyword arguments gymnasium's ``env_id`` takes (its creator's parameters), or None
    when they cannot be read or any name is taken (``**kwargs``)."""
    import inspect

    import gymnasium as gym
    from gymnasium.envs.registration import load_env_creator

    try:
        creator = gym.spec(env_id).entry_point
        parameters = inspect.signature(load_env_creator(creator) if isinstance(creator, str) else creator).parameters
    except Exception:
        return None
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return None
    return [name for name, p in parameters.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name not in RESERVED_ENV_KWARGS]


def with_env_kwargs(resolved: ResolvedEnv, env_kwargs: Mapping[str, Any]) -> ResolvedEnv:
    """``resolved`` made with the constructor arguments ``env_kwargs`` (``--env-kwargs``);
    refused for a family whose ``make`` takes none."""
    if not env_kwargs:
        return resolved
    import dataclasses
    import inspect

    try:
        inspect.signature(resolved.make).bind_partial(**env_kwargs)
    except TypeError:
        raise ToolkitError(f"--env-kwargs: {resolved.id} ({resolved.family} env family) takes no constructor "
                           f"arguments; --env-kwargs is for envs whose family passes them on (gymnasium-registered "
                           "and Atari envs)") from None
    except ValueError:
        pass  # no signature to read: gym.make reports an argument the env does not take
    shown = ", ".join(f"{key}={value!r}" for key, value in env_kwargs.items())
    return dataclasses.replace(resolved, make=functools.partial(resolved.make, **env_kwargs),
                               protocol=f"{resolved.protocol}, made with {shown}",
                               env_kwargs={**resolved.env_kwargs, **env_kwargs})


@functools.cache
def route_mujoco_warnings() -> None:
    """MuJoCo's own handler prints every warning and appends it to MUJOCO_LOG.TXT in the
    working directory, and gymnasium's HalfCheetah model trips MuJoCo 4's 'settotalmass'
    deprecation each time an env is made (the training env, every evaluation env). Print each
    distinct warning once, as toolkit's other warnings, and leave no file behind (installed
    once per process)."""
    import mujoco

    seen: set[str] = set()

    def warn(message: str) -> None:
        if message not in seen:
            seen.add(message)
            print(f"warning: MuJoCo: {message}", file=sys.stderr)

    mujoco.set_mju_user_warning(warn)


def _import_env_module(module: str, name: str) -> None:
    import importlib

    if not module:
        raise ToolkitError(f"--env {name}: expected module:EnvId, e.g. my_package:MyEnv-v0")
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ToolkitError(f"--env {name}: cannot import module '{module}' ({exc}); is its package installed?") from None
    except Exception as exc:
        raise ToolkitError(f"--env {name}: importing '{module}' failed: {type(exc).__name__}: {exc}") from None


def describe_env(resolved: ResolvedEnv, max_episode_steps: int = 0) -> EnvSpec:
    """Make one (training) instance of ``resolved`` and read what algorithms need to know: the
    spaces, the episode limit and the capabilities (a goal interface, a known reward)."""
    env = resolved.make(training=True, render_mode=None)
    own_observation_space = env.observation_space
    structured = _structured(own_observation_space)
    env = flatten_structured_observations(env)
    try:
        if max_episode_steps:
            env = time_limit(env, max_episode_steps)
        capabilities = {key: _imported(value) for key, value in resolved.capabilities.items()}
        for layer in _layers(env):
            for attribute in ("goal_names", "goal_masks", "reward_function"):
                value = getattr(layer, attribute, None)
                if value is not None:
                    capabilities.setdefault(attribute, value)
        goals = capabilities.get("goals")
        if goals is None and capabilities.get("goal_names"):
            goals = GoalInterface(tuple(capabilities["goal_names"]), capabilities.get("goal_masks"))
        limit = max_episode_steps or (env.spec.max_episode_steps if env.spec is not None else None)
        protocol = resolved.protocol
        if structured:
            protocol += f", {structured} observations flattened to vectors of {env.observation_space.shape[0]}"
        return EnvSpec(resolved.id, resolved.family, env.observation_space, env.action_space, resolved.frame_stack,
                       limit or _time_limit_of(env), protocol, goals, capabilities.get("reward_function"),
                       dict(resolved.env_kwargs), own_observation_space if structured else None)
    finally:
        env.close()


def flatten_structured_observations(env: Any) -> Any:
    """``env`` with Dict or Tuple observations flattened into one vector (gymnasium's
    FlattenObservation: Box entries as they are, Discrete ones one-hot, in the space's key
    order), which is what SB3's MultiInputPolicy feeds its MLP for vector entries; any other
    env unchanged."""
    import gymnasium as gym

    return gym.wrappers.FlattenObservation(env) if _structured(env.observation_space) else env


def _structured(space: Any) -> str:
    """"Dict" or "Tuple" for a structured observation space, else ""."""
    from gymnasium import spaces

    return type(space).__name__ if isinstance(space, (spaces.Dict, spaces.Tuple)) else ""


def _imported(value: Any) -> Any:
    if isinstance(value, str) and ":" in value:
        import importlib

        module, _, attr = value.partition(":")
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj
    return value


def _layers(env: Any):
    """The env and every wrapper under it, outermost first."""
    while env is not None:
        yield env
        env = getattr(env, "env", None)


def _time_limit_of(env: Any) -> int | None:
    import gymnasium as gym

    limit = _find_wrapper(env, gym.wrappers.TimeLimit)
    return int(limit._max_episode_steps) if limit is not None else None


def make_vec_env(
    name: str | ResolvedEnv,
    n_envs: int = 1,
    seed: int | None = None,
    *,
    training: bool = True,
    vec_env: str = "sync",
    max_episode_steps: int = 0,
    render_mode: str | None = None,
    registry: Any = None,
    env_kwargs: Mapping[str, Any] | None = None,
):
    """A gymnasium vector env of ``n_envs`` copies of ``name``.

    Autoreset is SAME_STEP: when an env's episode ends, ``step`` already returns the first
    observation of the next episode and puts the true final observation in
    ``infos["final_obs"]``. ``training=False`` builds evaluation envs (for Atari: no episodic
    life, no reward clipping). With ``seed``, the envs are reset once with seeds seed..seed+n-1
    and the action space is seeded. ``env_kwargs`` go to each env's constructor (``--env-kwargs``).
    """
    import gymnasium as gym
    from gymnasium.vector import AutoresetMode

    resolved = name if isinstance(name, ResolvedEnv) else resolve_env(name, registry)
    resolved = with_env_kwargs(resolved, env_kwargs or {})

    def make_one():
        return make_env(resolved, training=training, max_episode_steps=max_episode_steps, render_mode=render_mode)

    fns = [make_one] * n_envs
    if vec_env == "async":
        envs = gym.vector.AsyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
    else:
        envs = gym.vector.SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
    if seed is not None:
        envs.reset(seed=seed)
        envs.action_space.seed(seed)
    return envs


def make_env(resolved: ResolvedEnv, *, training: bool = True, max_episode_steps: int = 0,
             render_mode: str | None = None) -> Any:
    """One env of ``resolved`` as every vector env holds it: the family's wrappers, the time
    limit, and episode statistics of the true (unclipped) return."""
    import gymnasium as gym

    if render_mode == "rgb_array" and not has_display():
        # pygame-drawn envs (classic control, Box2D) would otherwise look for a display and
        # print "error: XDG_RUNTIME_DIR is invalid"; off-screen drawing needs none
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    env = flatten_structured_observations(resolved.make(training=training, render_mode=render_mode))
    if max_episode_steps:
        env = time_limit(env, max_episode_steps)
    if not _has_wrapper(env, gym.wrappers.RecordEpisodeStatistics):
        # Families that change rewards (Atari clipping) record the true score themselves.
        env = gym.wrappers.RecordEpisodeStatistics(env)
    return env


def has_display() -> bool:
    """Whether a window could open here (on Linux: an X or Wayland display is set)."""
    return not sys.platform.startswith("linux") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def time_limit(env: Any, max_episode_steps: int) -> Any:
    """``TimeLimit(env, max_episode_steps)``. Where the env records its episode statistics
    further in (Atari records the true score before clipping), an episode cut by the limit
    still reports them: the recorder's running return and length go into ``info["episode"]``,
    which evaluation and training curves count episodes by."""
    import gymnasium as gym

    from toolkit.wrappers import TimeLimitWithEpisodeStatistics

    recorder = _find_wrapper(env, gym.wrappers.RecordEpisodeStatistics)
    if recorder is None:
        return gym.wrappers.TimeLimit(env, max_episode_steps)
    return TimeLimitWithEpisodeStatistics(env, max_episode_steps, recorder)


def _find_wrapper(env: Any, wrapper_class: type) -> Any:
    return next((layer for layer in _layers(env) if isinstance(layer, wrapper_class)), None)


def _has_wrapper(env: Any, wrapper_class: type) -> bool:
    return _find_wrapper(env, wrapper_class) is not None


def spec_of(context: Any) -> EnvSpec:
    """``context.spec``; for a context built by hand without one (older code and tests), the
    described env its ``env_id`` names, else a spec of the context's spaces alone."""
    if context.spec is not None:
        return context.spec
    try:
        return describe_env(resolve_env(context.env_id))
    except ToolkitError:
        return EnvSpec(context.env_id, "", context.observation_space, context.action_space, context.frame_stack)
