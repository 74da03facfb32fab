"""Env-name resolution and vector-env construction: the one place envs are made.

``--env Pong`` asks every registered env family whether it owns the name (the Atari family
does, and answers with PongNoFrameskip-v4 and its preprocessing); a name no family owns is
looked up in gymnasium's registry unchanged.
"""

from __future__ import annotations

from typing import Any

from toolkit.errors import unknown_name
from toolkit.interfaces import ResolvedEnv


def resolve_env(name: str, registry: Any = None) -> ResolvedEnv:
    """What ``name`` means, or a one-line error that lists the closest env names."""
    import gymnasium as gym

    if registry is None:
        from toolkit.plugins import get_registry

        registry = get_registry()
    for family in registry.names("env"):
        resolved = registry.load("env", family)(name)
        if resolved is not None:
            return resolved
    if name in gym.registry:
        spec = gym.registry[name]
        return ResolvedEnv(
            id=name,
            family="gymnasium",
            make=lambda training=True, render_mode=None: gym.make(name, render_mode=render_mode),
            protocol=f"gymnasium {name} as registered (max_episode_steps={spec.max_episode_steps})",
        )
    candidates = set(gym.registry)
    for family in registry.names("env"):
        names = registry.get("env", family).extra_value("names", ())
        candidates.update(names() if callable(names) else names)
    raise unknown_name("env", name, candidates)


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
):
    """A gymnasium vector env of ``n_envs`` copies of ``name``.

    Autoreset is SAME_STEP: when an env's episode ends, ``step`` already returns the first
    observation of the next episode and puts the true final observation in
    ``infos["final_obs"]``. ``training=False`` builds evaluation envs (for Atari: no episodic
    life, no reward clipping). With ``seed``, the envs are reset once with seeds seed..seed+n-1
    and the action space is seeded.
    """
    import gymnasium as gym
    from gymnasium.vector import AutoresetMode

    resolved = name if isinstance(name, ResolvedEnv) else resolve_env(name, registry)

    def make_one():
        env = resolved.make(training=training, render_mode=render_mode)
        if max_episode_steps:
            env = time_limit(env, max_episode_steps)
        if not _has_wrapper(env, gym.wrappers.RecordEpisodeStatistics):
            # Families that change rewards (Atari clipping) record the true score themselves.
            env = gym.wrappers.RecordEpisodeStatistics(env)
        return env

    fns = [make_one] * n_envs
    if vec_env == "async":
        envs = gym.vector.AsyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
    else:
        envs = gym.vector.SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
    if seed is not None:
        envs.reset(seed=seed)
        envs.action_space.seed(seed)
    return envs


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
    while env is not None:
        if isinstance(env, wrapper_class):
            return env
        env = getattr(env, "env", None)
    return None


def _has_wrapper(env: Any, wrapper_class: type) -> bool:
    return _find_wrapper(env, wrapper_class) is not None
