import numpy as np
import pytest

from toolkit.loops import Periodic, data_loop, env_loop, iterate_batches
from toolkit.vec_env import make_vec_env


class Recorder:
    """An algorithm that remembers every transition it is shown."""

    def __init__(self, n_envs, continuous=False):
        self.n_envs, self.continuous = n_envs, continuous
        self.transitions = []
        self.update_steps = []

    def act(self, obs, step):
        if self.continuous:
            return np.zeros((len(obs), 2), dtype=np.float32)
        return np.ones(len(obs), dtype=np.int64)  # always "right" in the corridor

    def observe(self, transition):
        self.transitions.append(transition)

    def update(self, step):
        self.update_steps.append(step)
        return {"loss/constant": 1.0}


class Collect:
    def __init__(self):
        self.episodes, self.logged, self.progress_calls = [], [], 0

    def episode(self, step, episode_return, length):
        self.episodes.append((step, episode_return, length))

    def metrics(self, step, metrics):
        self.logged.append((step, metrics))

    def progress(self, step):
        self.progress_calls += 1


def test_truncation_hands_over_the_true_final_observation():
    # IdentityContinuous-v0 is cut by a 16-step time limit: episodes end truncated, never
    # terminated, and every observation is a fresh random point, so final != reset obs.
    envs = make_vec_env("toolkit/IdentityContinuous-v0", 2, 0)
    obs, _ = envs.reset(seed=0)
    algo, report = Recorder(2, continuous=True), Collect()
    step, _ = env_loop(algo, envs, obs, step=0, total_steps=70, report=report)
    assert step == 70 and algo.update_steps == list(range(2, 72, 2))  # env steps counted across envs
    ends = [(i, t) for i, t in enumerate(algo.transitions) if t.truncated.any()]
    assert len(ends) == 2 and all(not t.terminated.any() for t in algo.transitions)
    for i, t in ends:
        following = algo.transitions[i + 1]
        # the loop's next obs must be the final obs, not the first obs of the next episode
        assert not np.isin(t.next_obs, following.obs).any() and not np.isin(t.next_obs, t.obs).any()
    for earlier, later in zip(algo.transitions, algo.transitions[1:]):
        if not earlier.truncated.any():
            np.testing.assert_array_equal(earlier.next_obs, later.obs)
    assert [(e[0], e[2]) for e in report.episodes] == [(32, 16), (32, 16), (64, 16), (64, 16)]
    envs.close()


def test_final_obs_is_the_terminal_cell_when_an_episode_terminates():
    envs = make_vec_env("toolkit/Corridor-v0", 1, 0)
    obs, _ = envs.reset(seed=0)
    algo, report = Recorder(1), Collect()
    env_loop(algo, envs, obs, step=0, total_steps=8, report=report)
    terminal = [t for t in algo.transitions if t.terminated.any()]
    assert len(terminal) == 2
    for t in terminal:
        assert t.next_obs[0].argmax() == 4 and t.reward[0] == 1.0
    assert report.episodes == [(4, 1.0, 4), (8, 1.0, 4)]
    envs.close()


def test_periodic_callbacks_fire_on_crossing_multiples_with_several_envs():
    envs = make_vec_env("toolkit/Identity-v0", 3, 0)
    obs, _ = envs.reset(seed=0)
    fired = []
    env_loop(Recorder(3), envs, obs, step=0, total_steps=30, report=Collect(),
             periodic=[Periodic(10, fired.append), Periodic(0, lambda s: fired.append(-1))])
    assert fired == [12, 21, 30]
    envs.close()


def test_stop_ends_the_loop_within_a_fraction_of_a_second():
    import time

    envs = make_vec_env("toolkit/Identity-v0", 1, 0)
    obs, _ = envs.reset(seed=0)
    algo = Recorder(1)
    asked = []

    def stop():
        if len(algo.transitions) >= 5 and not asked:
            asked.append(time.monotonic())
        return bool(asked)

    step, _ = env_loop(algo, envs, obs, step=0, total_steps=10**9, report=Collect(), stop=stop)
    assert 5 <= step < 10**9 and time.monotonic() - asked[0] < 0.5
    assert not env_loop(algo, envs, obs, step=0, total_steps=10**9, report=Collect(), stop=lambda: True)[0]
    envs.close()


def test_data_loop_updates_on_every_batch_of_each_epoch():
    data = np.arange(10, dtype=np.float32).reshape(10, 1)
    seen = []

    class Trainer:
        def update(self, batch):
            seen.append(batch[:, 0].copy())
            return {"loss/x": float(batch.mean())}

    report = Collect()
    step = data_loop(Trainer(), iterate_batches(data, 4, seed=0), step=0, total_steps=4, report=report)
    assert step == 4 and len(report.logged) == 4
    first_epoch = np.concatenate(seen[:2])
    assert len(set(first_epoch.tolist())) == 8  # no sample repeats within an epoch


def test_batches_resume_exactly_where_they_stopped():
    data = np.arange(50, dtype=np.float32).reshape(50, 1)
    straight = iterate_batches(data, 8, seed=3)
    expected = [next(straight) for _ in range(20)]
    resumed = iterate_batches(data, 8, seed=3, start=13)
    for batch in expected[13:]:
        np.testing.assert_array_equal(next(resumed), batch)


def test_final_step_info_still_works_with_a_deprecation_warning():
    from toolkit.interfaces import Transition, final_step_info

    flags = np.array([False, True])
    infos = {"k": np.array([1, 9]), "final_info": {"k": np.array([0, 5])}, "_final_info": flags}
    t = Transition(np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2, bool), flags, infos)
    with pytest.warns(DeprecationWarning, match="toolkit.loops.step_info"):
        np.testing.assert_array_equal(final_step_info(t, "k"), [1, 5])
