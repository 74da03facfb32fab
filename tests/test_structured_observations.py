"""Dict and Tuple observations: every algorithm trains on them flattened into one vector
(Box entries as they are, Discrete ones one-hot), and a loaded agent takes them as the env
gives them."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import toolkit
from toolkit.run import plan

pytest.importorskip("toolkit_ppo")  # the bundled plugins: `make test` installs them all


class StructuredIdentity(gym.Env):
    """Identity (repeat the shown symbol of 3) with the symbol in a Dict (or Tuple) entry next
    to a Discrete entry that carries nothing."""

    def __init__(self, as_tuple: bool = False) -> None:
        self.as_tuple = as_tuple
        entries = (spaces.Box(0.0, 1.0, (3,), np.float32), spaces.Discrete(2))
        self.observation_space = spaces.Tuple(entries) if as_tuple else spaces.Dict(dict(zip("ab", entries)))
        self.action_space = spaces.Discrete(3)

    def _obs(self):
        symbol = np.eye(3, dtype=np.float32)[self.symbol]
        return (symbol, 1) if self.as_tuple else {"a": symbol, "b": 1}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.symbol = int(self.np_random.integers(3))
        return self._obs(), {}

    def step(self, action):
        reward = float(int(action) == self.symbol)
        self.symbol = int(self.np_random.integers(3))
        return self._obs(), reward, False, False, {}


gym.register("test/DictIdentity-v0", entry_point=StructuredIdentity, max_episode_steps=16)
gym.register("test/TupleIdentity-v0", entry_point=StructuredIdentity, kwargs={"as_tuple": True},
             max_episode_steps=16)


@pytest.mark.parametrize("env, kind", [("test/DictIdentity-v0", "Dict"), ("test/TupleIdentity-v0", "Tuple")])
def test_the_plan_sees_a_flat_vector(env, kind):
    spec = plan("dqn", {"env": env}).spec
    assert spec.observation_space.shape == (3 + 2,)
    assert type(spec.structured_observation_space).__name__ == kind
    assert f"{kind} observations flattened to vectors of 5" in spec.protocol


@pytest.mark.parametrize("algo, options", [
    ("ppo", {"n_envs": 4, "n_steps": 64, "batch_size": 64, "learning_rate": 3e-3}),
    ("dqn", {"learning_starts": 500, "exploration_fraction": 0.3}),
])
def test_learns_from_dict_observations_and_predicts_from_them(tmp_path, algo, options):
    run_dir = toolkit.train(algo, env="test/DictIdentity-v0", steps=5_000, seed=0, eval_every=0, eval_episodes=5,
                            checkpoint_every=0, run_dir=str(tmp_path / "r"), progress=False, threads=1, **options)
    agent = toolkit.load(run_dir)
    assert agent.scores.last >= 15.0  # optimum 16
    env = gym.make("test/DictIdentity-v0")
    obs, _ = env.reset(seed=1)
    flat = spaces.flatten(env.observation_space, obs)
    assert agent.predict(obs) == agent.predict(flat) == int(np.argmax(obs["a"]))
    np.testing.assert_array_equal(agent.predict([obs, obs]), agent.predict(np.stack([flat, flat])))
