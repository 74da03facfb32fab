import numpy as np
import pytest

from toolkit.errors import ToolkitError
from toolkit.vec_env import make_vec_env, resolve_env


@pytest.mark.parametrize("name", ["Pong", "pong", "PongNoFrameskip-v4"])
def test_atari_names_resolve_to_noframeskip_v4(name):
    resolved = resolve_env(name)
    assert resolved.id == "PongNoFrameskip-v4" and resolved.family == "atari" and resolved.frame_stack == 4
    assert "NoFrameskip-v4" in resolved.protocol


def test_ale_v5_names_keep_sticky_actions():
    resolved = resolve_env("ALE/Breakout-v5")
    assert resolved.id == "ALE/Breakout-v5" and "sticky" in resolved.protocol
    env = resolved.make(training=False)
    assert env.unwrapped._frameskip == 1  # the preprocessing skips frames, not ALE
    assert env.unwrapped.ale.getFloat("repeat_action_probability") == 0.25
    env.close()


def test_atari_preprocessing_training_vs_evaluation():
    train_env = resolve_env("Breakout").make(training=True)
    eval_env = resolve_env("Breakout").make(training=False)
    obs, _ = train_env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    wrappers = lambda env: [type(w).__name__ for w in _chain(env)]
    assert {"EpisodicLifeEnv", "ClipRewardEnv", "FireResetEnv"} <= set(wrappers(train_env))
    assert "EpisodicLifeEnv" not in wrappers(eval_env) and "ClipRewardEnv" not in wrappers(eval_env)
    assert "FireResetEnv" in wrappers(eval_env)
    # the score is recorded below clipping and life loss
    chain = wrappers(train_env)
    assert chain.index("RecordEpisodeStatistics") > chain.index("ClipRewardEnv")
    train_env.close(), eval_env.close()


def _chain(env):
    while env is not None:
        yield env
        env = getattr(env, "env", None)


def test_pong_has_no_fire_reset_and_steps_in_a_vector_env():
    envs = make_vec_env("Pong", 2, 0)
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (2, 4, 84, 84)
    obs, reward, *_ = envs.step(np.zeros(2, dtype=np.int64))
    assert reward.shape == (2,)
    envs.close()


def test_gymnasium_ids_pass_through_unchanged():
    resolved = resolve_env("CartPole-v1")
    assert resolved.id == "CartPole-v1" and resolved.family == "gymnasium" and resolved.frame_stack == 0


@pytest.mark.parametrize("name, hint", [("Pongg", "Pong"), ("CartPol-v1", "CartPole-v1"),
                                         ("toolkit/Identty-v0", "toolkit/Identity-v0")])
def test_unknown_env_suggests_the_closest(name, hint):
    with pytest.raises(ToolkitError) as info:
        resolve_env(name)
    assert f"unknown env '{name}'" in str(info.value) and hint in str(info.value)


def test_seeded_vector_envs_are_reproducible():
    a, b = make_vec_env("CartPole-v1", 2, 7), make_vec_env("CartPole-v1", 2, 7)
    oa, _ = a.reset(seed=7)
    ob, _ = b.reset(seed=7)
    np.testing.assert_array_equal(oa, ob)
    a.close(), b.close()


def test_toy_identity_optimal_policy_gets_the_known_return():
    envs = make_vec_env("toolkit/Identity-v0", 1, 0)
    obs, _ = envs.reset(seed=0)
    total = 0.0
    for _ in range(16):
        obs, reward, terminated, truncated, _ = envs.step(obs.argmax(axis=1))
        total += reward[0]
    assert total == 16.0 and truncated[0]
    envs.close()


def test_a_time_limit_on_atari_still_reports_the_cut_episode():
    """Atari records its true score inside the preprocessing; an outer --max-episode-steps
    limit must still end episodes with their statistics, or evaluation never counts them."""
    from toolkit.evaluation import evaluate
    from toolkit.vec_env import make_vec_env

    envs = make_vec_env("Pong", 1, seed=0, training=False, max_episode_steps=25)
    result = evaluate(lambda obs: np.zeros(len(obs), dtype=np.int64), envs, episodes=2, seed=0)
    assert result["episodes"] == 2


def test_slow_cartpole_is_cartpole_whose_step_waits():
    import time

    import gymnasium as gym

    slow, plain = gym.make("toolkit/SlowCartPole-v0"), gym.make("CartPole-v1")
    assert slow.spec.max_episode_steps == plain.spec.max_episode_steps == 500
    np.testing.assert_array_equal(slow.reset(seed=3)[0], plain.reset(seed=3)[0])
    began = time.perf_counter()
    for _ in range(5):
        a, b = slow.step(1), plain.step(1)
        np.testing.assert_array_equal(a[0], b[0])
    assert time.perf_counter() - began >= 5 * 0.002  # sleep waits at least this long


def test_blind_cliffwalk_rewards_only_the_right_action_in_every_state():
    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env

    import toolkit.envs  # noqa: F401  (registers the toy envs with gymnasium)

    env = gym.make("toolkit/BlindCliffwalk-v0", n=5).unwrapped
    check_env(env, skip_render_check=True)
    right = env.right_actions
    assert 0 < right.sum() < 5  # the right action changes along the chain (layout seed 0)
    obs, _ = env.reset()
    for state in range(5):
        np.testing.assert_array_equal(obs, np.eye(5, dtype=np.float32)[state])  # one-hot
        obs, reward, terminated, truncated, _ = env.step(right[state])
        assert (reward, terminated) == ((1.0, True) if state == 4 else (0.0, False))
    for state in range(5):  # the wrong action ends the episode unrewarded wherever it is taken
        env.reset()
        for s in range(state):
            env.step(right[s])
        assert env.step(1 - right[state])[1:3] == (0.0, True)
    # a random policy is rewarded with probability 2^-n
    rng = np.random.default_rng(0)
    wins = 0
    for _ in range(4000):
        env.reset()
        terminated, reward = False, 0.0
        while not terminated:
            _, reward, terminated, _, _ = env.step(int(rng.integers(2)))
        wins += reward
    assert abs(wins / 4000 - 1 / 32) < 4 * np.sqrt(1 / 32 * 31 / 32 / 4000)


def test_minatar_games_resolve_to_channels_first_grids():
    from toolkit.vec_env import resolve_env

    resolved = resolve_env("minatar/breakout-v1")
    assert (resolved.id, resolved.family, resolved.frame_stack) == ("MinAtar/Breakout-v1", "minatar", 0)
    env = resolved.make()
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 10, 10) and obs.dtype == np.uint8 and set(np.unique(obs)) <= {0, 1}
    assert env.observation_space.contains(obs) and env.action_space.n == 3  # v1: the minimal action set
    assert resolve_env("MinAtar/Breakout-v0").make().action_space.n == 6  # v0: all six, as in the paper
    with pytest.raises(ToolkitError, match="MinAtar/Breakout-v1"):
        resolve_env("MinAtar/Breakout-v2")


def test_mujoco_warnings_are_printed_once_and_leave_no_log_file(tmp_path, monkeypatch, capfd):
    """MuJoCo's own handler would print every warning and append it to MUJOCO_LOG.TXT in the
    working directory; toolkit prints each distinct one once."""
    import mujoco

    from toolkit.vec_env import route_mujoco_warnings

    monkeypatch.chdir(tmp_path)
    route_mujoco_warnings()
    resolve_env("HalfCheetah-v5").make(training=False).close()  # routes too (the model may warn)
    model = mujoco.MjModel.from_xml_string("<mujoco><worldbody><body><freejoint/><geom size='0.1'/></body></worldbody></mujoco>")
    for _ in range(3):  # an unstable simulation: MuJoCo warns at every new MjData
        data = mujoco.MjData(model)
        data.qpos[0] = np.nan
        mujoco.mj_step(model, data)
    lines = [line for line in capfd.readouterr().err.splitlines() if "QPOS" in line]
    assert lines == ["warning: MuJoCo: Nan, Inf or huge value in QPOS at DOF 0. The simulation is unstable. Time = 0.0000."]
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()
