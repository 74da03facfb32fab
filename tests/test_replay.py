import numpy as np
import pytest
from gymnasium import spaces

from toolkit.replay import ReplayBuffer, UniformSampler, replay_slot_bytes
from toolkit.vec_env import make_vec_env, resolve_env


def fill_from_env(env_name, buffer, steps, seed=0, **env_options):
    """Step a real vector env with random actions into ``buffer``; return what each slot
    should hold: flat index -> (obs, action, reward, true next obs, terminated)."""
    envs = make_vec_env(env_name, buffer.n_envs, seed, **env_options)
    rng = np.random.default_rng(seed)
    obs, _ = envs.reset(seed=seed)
    expected = {}
    boundaries = 0
    for _ in range(steps):
        action = rng.integers(envs.single_action_space.n, size=buffer.n_envs)
        next_obs, reward, terminated, truncated, infos = envs.step(action)
        true_next = next_obs.copy()
        if "final_obs" in infos:
            for i in np.flatnonzero(infos["_final_obs"]):
                true_next[i] = infos["final_obs"][i]
                boundaries += 1
        written = buffer.add(obs, action, reward, true_next, terminated, truncated)
        for i, index in enumerate(written):
            expected[int(index)] = (obs[i].copy(), action[i], reward[i], true_next[i].copy(), terminated[i])
        obs = next_obs
    envs.close()
    return expected, boundaries


def check_samples(buffer, expected, n_batches=50, batch_size=64):
    for _ in range(n_batches):
        batch = buffer.sample(batch_size, gamma=0.5)
        for j, index in enumerate(batch.indices):
            obs, action, reward, next_obs, terminated = expected[int(index)]
            np.testing.assert_array_equal(batch.obs[j], obs)
            np.testing.assert_array_equal(batch.next_obs[j], next_obs)
            assert batch.action[j] == action and batch.reward[j] == np.float32(reward)
            assert batch.discount[j] == (0.0 if terminated else 0.5)
        np.testing.assert_array_equal(batch.weights, np.ones(batch_size, np.float32))


@pytest.mark.parametrize("n_envs", [1, 3])
def test_frame_stacks_are_rebuilt_exactly_across_episode_boundaries_and_wraparound(n_envs):
    resolved = resolve_env("toolkit/Frames-v0")
    envs = make_vec_env(resolved, n_envs)
    buffer = ReplayBuffer(150 * n_envs, envs.single_observation_space, envs.single_action_space,
                          n_envs=n_envs, frame_stack=resolved.frame_stack, sampler=UniformSampler(150 * n_envs))
    envs.close()
    assert buffer.frames.shape == (150, n_envs, 8, 8)  # one frame per slot, not four
    expected, boundaries = fill_from_env(resolved, buffer, 400)
    assert boundaries > 50  # many terminations and truncations, and the ring wrapped
    # only transitions still fully stored may be sampled
    live = {i for i in expected if buffer.has_transition.reshape(-1)[i]}
    assert 0.8 * buffer.slots * n_envs < len(buffer) == len(live)
    check_samples(buffer, {i: expected[i] for i in live})


def test_sampled_atari_stacks_equal_the_env_stacks():
    resolved = resolve_env("Pong")
    envs = make_vec_env(resolved, 2, max_episode_steps=40)
    buffer = ReplayBuffer(400, envs.single_observation_space, envs.single_action_space, n_envs=2,
                          frame_stack=resolved.frame_stack, sampler=UniformSampler(400))
    envs.close()
    expected, boundaries = fill_from_env(resolved, buffer, 300, max_episode_steps=40)
    assert boundaries >= 10
    live = {i for i in expected if buffer.has_transition.reshape(-1)[i]}
    check_samples(buffer, {i: expected[i] for i in live}, n_batches=20)


def test_n_step_returns_stop_at_episode_end_and_at_the_newest_transition():
    obs_space, act_space = spaces.Box(-10, 10, (1,)), spaces.Discrete(2)
    buffer = ReplayBuffer(32, obs_space, act_space, sampler=UniformSampler(32))
    # episode A: s0 -r1-> s1 -r2-> s2 -r3-> s3 (terminated); episode B: t0 -r10-> t1 -r20-> t2 (truncated)
    for k, (r, term, trunc) in enumerate([(1, 0, 0), (2, 0, 0), (3, 1, 0)]):
        buffer.add(np.array([[k]]), np.array([0]), np.array([r]), np.array([[k + 1]]), np.array([term]), np.array([trunc]))
    for k, (r, term, trunc) in enumerate([(10, 0, 0), (20, 0, 1)]):
        buffer.add(np.array([[100 + k]]), np.array([1]), np.array([r]), np.array([[101 + k]]), np.array([term]), np.array([trunc]))
    gamma = 0.5
    batch = buffer.sample(200, gamma=gamma, n_step=3)
    seen = {}
    for obs, reward, next_obs, discount in zip(batch.obs[:, 0], batch.reward, batch.next_obs[:, 0], batch.discount):
        seen[float(obs)] = (float(reward), float(next_obs), float(discount))
    assert seen[0.0] == (1 + 0.5 * 2 + 0.25 * 3, 3.0, 0.0)      # 3 steps, ends terminated
    assert seen[1.0] == (2 + 0.5 * 3, 3.0, 0.0)                 # cut at the terminal
    assert seen[2.0] == (3.0, 3.0, 0.0)
    assert seen[100.0] == (10 + 0.5 * 20, 102.0, 0.25)          # truncated: bootstrap with gamma^2
    assert seen[101.0] == (20.0, 102.0, 0.5)


def test_buffer_state_round_trip_continues_identically():
    resolved = resolve_env("toolkit/Frames-v0")
    envs = make_vec_env(resolved, 2)
    make = lambda: ReplayBuffer(100, envs.single_observation_space, envs.single_action_space, n_envs=2,
                                frame_stack=4, sampler=UniformSampler(100), seed=3)
    first = make()
    fill_from_env(resolved, first, 80)
    second = make()
    second.load_state_dict(first.state_dict())
    a, b = first.sample(16), second.sample(16)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.obs, b.obs)
    envs.close()


def test_uniform_sampler_is_uniform_over_valid_slots():
    sampler = UniformSampler(10)
    sampler.add(np.arange(10))
    sampler.remove(np.array([3, 7]))
    indices, weights = sampler.sample(80_000, np.random.default_rng(0))
    counts = np.bincount(indices, minlength=10)
    assert counts[3] == counts[7] == 0
    np.testing.assert_allclose(counts[counts > 0] / 80_000, 1 / 8, atol=0.006)
    assert sampler.count == 8


def test_update_priorities_reaches_the_sampler():
    class Recording(UniformSampler):
        def update_priorities(self, indices, priorities):
            self.got = (indices, priorities)

    sampler = Recording(8)
    buffer = ReplayBuffer(8, spaces.Box(0, 1, (2,)), spaces.Discrete(2), sampler=sampler)
    buffer.update_priorities(np.array([1, 2]), np.array([0.5, 0.25]))
    np.testing.assert_array_equal(sampler.got[0], [1, 2])


def test_extra_columns_are_stored_sampled_and_saved_with_frames_stored_once():
    from gymnasium import spaces

    from toolkit.replay import ReplayBuffer

    obs_space = spaces.Box(0, 255, (4, 8, 8), np.uint8)
    extras = {"goal": spaces.Discrete(5), "log_prob": spaces.Box(-np.inf, np.inf, (), np.float32)}
    buffer = ReplayBuffer(64, obs_space, spaces.Discrete(3), n_envs=2, frame_stack=4, seed=0, extras=extras)
    assert buffer.frames.shape == (32, 2, 8, 8)  # still one frame per slot
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 255, (2, 4, 8, 8), dtype=np.uint8)
    for step in range(20):
        next_obs = rng.integers(0, 255, (2, 4, 8, 8), dtype=np.uint8)
        buffer.add(obs, np.array([step % 3, 1]), np.array([step, -step], np.float32), next_obs, np.zeros(2, bool),
                   np.zeros(2, bool), extras={"goal": np.array([step % 5, 4]), "log_prob": np.array([-step, step], np.float32)})
        obs = next_obs
    batch = buffer.sample(16)
    assert batch.extras["goal"].dtype == np.int64 and batch.extras["log_prob"].dtype == np.float32
    # each sampled transition's extras are the ones stored with it
    env0 = batch.indices % 2 == 0
    np.testing.assert_array_equal(batch.extras["goal"][env0], (batch.reward[env0].astype(int)) % 5)
    np.testing.assert_array_equal(batch.extras["log_prob"], -batch.reward)
    assert set(batch.to_torch()) >= {"goal", "log_prob"}

    restored = ReplayBuffer(64, obs_space, spaces.Discrete(3), n_envs=2, frame_stack=4, seed=0, extras=extras)
    restored.load_state_dict(buffer.state_dict())
    again = restored.sample(16)
    np.testing.assert_array_equal(again.extras["goal"], buffer.sample(16).extras["goal"])

    with pytest.raises(ValueError, match="needs the extra columns"):
        buffer.add(obs, np.array([0, 0]), np.zeros(2, np.float32), obs, np.zeros(2, bool), np.zeros(2, bool))


def env_steps(env_name, n_envs, steps, seed=0):
    """(obs, action, reward, true next obs, terminated, truncated), each (steps, n_envs, ...),
    from a real vector env with random actions."""
    from toolkit.loops import successor_obs

    envs = make_vec_env(env_name, n_envs, seed)
    rng = np.random.default_rng(seed)
    obs, _ = envs.reset(seed=seed)
    columns = []
    for _ in range(steps):
        action = rng.integers(envs.single_action_space.n, size=n_envs)
        next_obs, reward, terminated, truncated, infos = envs.step(action)
        columns.append((obs, action, reward, successor_obs(next_obs, infos), terminated, truncated))
        obs = next_obs
    envs.close()
    return [np.stack(column) for column in zip(*columns)]


class RecordingSampler(UniformSampler):
    """Remembers the initial priorities it was given, per slot."""

    def __init__(self, capacity):
        super().__init__(capacity)
        self.initial = np.full(capacity, np.nan)

    def add(self, indices, priorities=None):
        super().add(indices)
        if priorities is not None:
            self.initial[indices] = priorities


@pytest.mark.parametrize("slots, fragment_steps", [(100, 7), (23, 7), (23, 30)],
                         ids=["no-wrap", "rings-wrap", "fragment-longer-than-a-ring"])
def test_a_fragment_add_equals_the_same_steps_added_one_by_one(slots, fragment_steps):
    """An actor's fragment (each frame once, episodes ending inside it, a subset of the rings)
    stores exactly what adding its steps one at a time stores: frames, flags, the positions of
    every ring, and the initial priorities the sampler got; also when the rings wrap around
    (old transitions and the stacks reaching back to them are forgotten) and when a fragment is
    longer than a ring."""
    from toolkit.replay import make_fragment

    resolved = resolve_env("toolkit/Frames-v0")
    obs, action, reward, next_obs, terminated, truncated = env_steps(resolved, 2, 60)
    assert (terminated | truncated).sum() > 5  # episodes end inside fragments
    priorities = np.random.default_rng(1).random(reward.shape).astype(np.float32)
    rings = np.array([3, 1])
    space = make_vec_env(resolved, 1)
    one_by_one, by_fragment = (ReplayBuffer(slots * 4, space.single_observation_space, space.single_action_space,
                                            n_envs=4, frame_stack=resolved.frame_stack,
                                            sampler=RecordingSampler(slots * 4)) for _ in range(2))
    space.close()
    expected = {}
    for t in range(60):
        written = one_by_one.add(obs[t], action[t], reward[t], next_obs[t], terminated[t], truncated[t], envs=rings,
                                 priorities=priorities[t])
        for j, index in enumerate(written):
            expected[int(index)] = (obs[t, j], next_obs[t, j], priorities[t, j])
    for start in range(0, 60, fragment_steps):
        part = slice(start, start + fragment_steps)
        fragment = make_fragment(rings, obs[part], action[part], reward[part], next_obs[part], terminated[part],
                                 truncated[part], frame_stack=resolved.frame_stack, priorities=priorities[part])
        assert fragment.frames.shape[2:] == (8, 8)  # newest frames only
        by_fragment.add_fragment(fragment)
    for name in ReplayBuffer._ARRAYS + ("pos", "next_frames_before", "added", "filled"):
        np.testing.assert_array_equal(getattr(one_by_one, name), getattr(by_fragment, name), err_msg=name)
    for name in ("initial", "valid", "count", "high"):
        np.testing.assert_array_equal(getattr(one_by_one.sampler, name), getattr(by_fragment.sampler, name))
    assert not one_by_one.has_transition[:, [0, 2]].any()  # the other rings are untouched
    # what is sampled is what the env did: stacks rebuilt across the fragments' seams
    batch = by_fragment.sample(64)
    assert set((batch.indices % 4).tolist()) <= {1, 3}
    for j, index in enumerate(batch.indices):
        stack, successor, priority = expected[int(index)]
        np.testing.assert_array_equal(batch.obs[j], stack)
        np.testing.assert_array_equal(batch.next_obs[j], successor)
        assert by_fragment.sampler.initial[index] == priority


def test_initial_priorities_reach_a_sampler_that_predates_them():
    """A third-party sampler whose add() takes only indices still gets the actor's priorities,
    through update_priorities right after the add."""

    class OldSampler(UniformSampler):
        def add(self, indices):
            super().add(indices)

        def update_priorities(self, indices, priorities):
            self.got = (indices.copy(), np.asarray(priorities).copy())

    buffer = ReplayBuffer(8, spaces.Box(0, 1, (2,)), spaces.Discrete(2), sampler=OldSampler(8))
    written = buffer.add(np.zeros((1, 2)), np.array([1]), np.array([1.0]), np.ones((1, 2)), np.array([False]),
                         np.array([False]), priorities=np.array([0.75]))
    np.testing.assert_array_equal(buffer.sampler.got[0], written)
    np.testing.assert_array_equal(buffer.sampler.got[1], [0.75])


def test_a_fragment_carries_extra_columns_and_a_missing_one_changes_nothing():
    from toolkit.replay import make_fragment

    rng = np.random.default_rng(2)
    T = 9
    obs = rng.random((T + 1, 2, 3)).astype(np.float32)
    terminated = np.zeros((T, 2), bool)
    terminated[4, 0] = True
    next_obs = obs[1:].copy()
    action, reward = rng.integers(0, 2, (T, 2)), rng.random((T, 2)).astype(np.float32)
    goal = rng.integers(0, 5, (T, 2))
    buffers = [ReplayBuffer(60, spaces.Box(0, 1, (3,)), spaces.Discrete(2), n_envs=2,
                            extras={"goal": spaces.Discrete(5)}) for _ in range(2)]
    for t in range(T):
        buffers[0].add(obs[t], action[t], reward[t], next_obs[t], terminated[t], np.zeros(2, bool),
                       extras={"goal": goal[t]})
    fragment = make_fragment(np.arange(2), obs[:T], action, reward, next_obs, terminated, np.zeros((T, 2), bool),
                             extras={"goal": goal})
    buffers[1].add_fragment(fragment)
    np.testing.assert_array_equal(buffers[0].extras["goal"], buffers[1].extras["goal"])
    before = {name: getattr(buffers[1], name).copy() for name in ReplayBuffer._ARRAYS}
    with pytest.raises(ValueError, match="needs the extra columns"):
        buffers[1].add_fragment(make_fragment(np.arange(2), obs[:T], action, reward, next_obs, terminated,
                                              np.zeros((T, 2), bool)))
    for name, array in before.items():
        np.testing.assert_array_equal(getattr(buffers[1], name), array, err_msg=name)


def test_the_memory_estimate_is_what_the_buffer_allocates():
    extras = {"goal": spaces.Discrete(5), "log_prob": spaces.Box(-np.inf, np.inf, (3,), np.float32)}
    buffer_args = spaces.Box(0, 255, (4, 8, 8), np.uint8), spaces.Box(-1, 1, (2,), np.float32)
    buffer = ReplayBuffer(64, *buffer_args, n_envs=2, frame_stack=4, extras=extras)
    arrays = [buffer.frames, buffer.actions, buffer.rewards, buffer.terminated, buffer.episode_end,
              buffer.has_transition, buffer.frames_before, buffer.sampler.valid, *buffer.extras.values()]
    assert sum(a.nbytes for a in arrays) == 64 * buffer.slot_bytes
    assert replay_slot_bytes(buffer_args[0], buffer_args[1], 4, extras) == buffer.slot_bytes  # without a buffer
    assert buffer.slot_bytes == 8 * 8 + 2 * 4 + 4 + 3 + 1 + 1 + 8 + 3 * 4


def test_a_buffer_beyond_all_memory_is_refused_and_one_beyond_free_memory_warned_of():
    from toolkit.errors import ToolkitError
    from toolkit.replay import check_replay_fits

    gb = 10**9
    check_replay_fits(1000, 10**6, "--buffer-size", (2 * gb, 4 * gb))  # 1 GB of 2 free: silent
    check_replay_fits(10**9, 10**9, "--buffer-size", None)  # memory unknown: nothing to say
    with pytest.warns(RuntimeWarning, match=r"takes 3\.0 GB \(1,000,000 bytes each\) when full, and 2\.0 GB is free "
                                            r"now: .* \(--buffer-size 1600 fits\)"):
        check_replay_fits(3000, 10**6, "--buffer-size", (2 * gb, 4 * gb))
    with pytest.raises(ToolkitError, match=r"more than this machine's 4\.0 GB of memory: pass --meta-buffer-size 1600 "
                                           r"or less"):
        check_replay_fits(5000, 10**6, "--meta-buffer-size", (2 * gb, 4 * gb))
