"""The tests a third-party plugin ships: the conformance check, the math, a learning test."""

import json

import numpy as np
import pytest
from gymnasium import spaces

import toolkit
from toolkit.interfaces import EnvContext
from toolkit.plugins import get_registry
from toolkit.testing import check_algorithm
from toolkit_tabular_algo import RecentSampler, TabularQ, TabularQConfig


@pytest.fixture
def registered():
    """What the entry point does once the package is pip-installed."""
    import toolkit_tabular

    get_registry().add_plugin("tabular", toolkit_tabular, "0.1.0", builtin=False)


def test_conformance(registered):
    check_algorithm("tabular-q", env="toolkit/Corridor-v0", overrides={"batch_size": 8})


def test_conformance_with_its_own_sampler(registered):
    check_algorithm("tabular-q", env="toolkit/Corridor-v0", overrides={"batch_size": 8, "replay": "recent"})


def test_recent_sampler_draws_only_the_newest_slots():
    sampler = RecentSampler(capacity=100, window=10)
    sampler.add(np.arange(50))
    indices, weights = sampler.sample(1000, np.random.default_rng(0))
    assert set(indices) == set(range(40, 50)) and np.all(weights == 1)
    sampler.remove(np.arange(45, 50))
    assert set(sampler.sample(1000, np.random.default_rng(0))[0]) == set(range(40, 45))


def test_update_moves_q_toward_the_td_target():
    obs_space = spaces.Box(0.0, 1.0, (3,), np.float32)
    context = EnvContext(obs_space, spaces.Discrete(2), n_envs=1, frame_stack=0, total_steps=100, seed=0, device="cpu")
    agent = TabularQ(TabularQConfig(learning_rate=0.5, gamma=0.9, batch_size=1), context)
    agent.q[1] = [0.0, 2.0]  # the successor's best value
    one_hot = np.eye(3, dtype=np.float32)
    agent.replay.add(one_hot[[0]], np.array([1]), np.array([1.0]), one_hot[[1]], np.array([False]), np.array([False]))
    agent.update(step=1)
    assert agent.q[0, 1] == pytest.approx(0.5 * (1.0 + 0.9 * 2.0))  # lr * (target - 0)


def test_learns_the_corridor(registered, tmp_path):
    run_dir = toolkit.train("tabular-q", env="toolkit/Corridor-v0", steps=3000, eval_every=0, eval_episodes=3,
                            run_dir=str(tmp_path / "run"), progress=False)
    last = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["eval/mean_return"] == 1.0
