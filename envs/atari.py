"""The Atari family: "Pong" (any ALE game name) -> PongNoFrameskip-v4 with the standard DQN
preprocessing of Mnih et al. (2015), the protocol behind the published DQN numbers.

Training envs: up to 30 no-op resets, frame skip 4 with a max over the last two frames,
84x84 grayscale, fire on reset where the game needs it, a life loss ends the episode
(episodic life), rewards clipped to their sign, and a stack of the last 4 frames.
Evaluation envs (``training=False``) keep the same observations but the true game: no
episodic life and no clipping. Episode returns are always recorded before both, so
``train/episode_return`` is the game score.

``ALE/Pong-v5`` names resolve to the same preprocessing on ALE v5, which keeps its sticky
actions (repeat probability 0.25, Machado et al. 2018): the other common protocol.
"""

from __future__ import annotations

import functools

from toolkit.interfaces import ResolvedEnv

FRAME_STACK = 4


@functools.cache
def game_ids() -> dict[str, str]:
    """Lower-cased game name -> NoFrameskip-v4 id, for every ALE game."""
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    suffix = "NoFrameskip-v4"
    return {k[: -len(suffix)].lower(): k for k in gym.registry if k.endswith(suffix) and "-ram" not in k}


def game_names() -> list[str]:
    return [env_id[: -len("NoFrameskip-v4")] for env_id in game_ids().values()]


def resolve(name: str) -> ResolvedEnv | None:
    """The Atari env ``name`` stands for, or None when it is not an Atari name."""
    lowered = name.lower()
    if lowered.startswith("ale/") and lowered.endswith("-v5"):
        game = lowered[4:-3]
        if game in game_ids():
            protocol = "ALE v5 with sticky actions (p=0.25), DQN preprocessing"
            return ResolvedEnv(name, "atari", functools.partial(make, name, frameskip=1), protocol, FRAME_STACK)
        return None
    if lowered.endswith("noframeskip-v4"):
        lowered = lowered[: -len("noframeskip-v4")]
    env_id = game_ids().get(lowered) if lowered.isalnum() else None
    if env_id is None:
        return None
    protocol = ("NoFrameskip-v4 (no sticky actions), DQN preprocessing: 30 no-op resets, skip 4 with "
                "max-pool, 84x84 gray, 4-frame stack; episodic life and reward clipping in training only")
    return ResolvedEnv(env_id, "atari", functools.partial(make, env_id), protocol, FRAME_STACK)


def make(env_id: str, training: bool = True, render_mode: str | None = None, **make_kwargs):
    import ale_py
    import gymnasium as gym
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation, RecordEpisodeStatistics
    from stable_baselines3.common.atari_wrappers import ClipRewardEnv, EpisodicLifeEnv, FireResetEnv

    gym.register_envs(ale_py)
    env = gym.make(env_id, render_mode=render_mode, **make_kwargs)
    env = RecordEpisodeStatistics(env)  # the true game score, before life loss and clipping
    env = AtariPreprocessing(env, noop_max=30, frame_skip=4, screen_size=84, grayscale_obs=True)
    if training:
        env = EpisodicLifeEnv(env)
    if "FIRE" in env.unwrapped.get_action_meanings():
        env = FireResetEnv(env)
    if training:
        env = ClipRewardEnv(env)
    return FrameStackObservation(env, FRAME_STACK, padding_type="reset")
