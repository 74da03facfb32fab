import numpy as np

from toolkit.rollout import RolloutStorage, gae


def test_gae_matches_hand_computation_with_truncation_and_termination():
    gamma, lam = 0.9, 0.5
    # One env, 4 steps: step 1 is truncated (bootstrap from V(final obs) = 10), step 3 terminates.
    rewards = np.array([[1.0], [2.0], [3.0], [4.0]])
    values = np.array([[0.5], [1.0], [1.5], [2.0]])
    next_values = np.array([[1.0], [10.0], [2.0], [7.0]])  # V of the true successor
    terminated = np.array([[False], [False], [False], [True]])
    episode_end = np.array([[False], [True], [False], [True]])
    adv = gae(rewards, values, next_values, terminated, episode_end, gamma, lam)
    d3 = 4.0 + 0.0 - 2.0                      # terminated: no bootstrap
    d2 = 3.0 + gamma * 2.0 - 1.5
    d1 = 2.0 + gamma * 10.0 - 1.0             # truncated: bootstrap from the final observation
    d0 = 1.0 + gamma * 1.0 - 0.5
    a3 = d3
    a2 = d2 + gamma * lam * a3
    a1 = d1                                    # the trace does not cross the episode end
    a0 = d0 + gamma * lam * a1
    np.testing.assert_allclose(adv[:, 0], [a0, a1, a2, a3], rtol=1e-6)


def test_gae_with_lambda_one_is_discounted_return_minus_value():
    rng = np.random.default_rng(0)
    rewards, values = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    next_values = np.vstack([values[1:], np.zeros((1, 3))])
    terminated = np.zeros((5, 3), bool)
    terminated[-1] = True
    adv = gae(rewards, values, next_values, terminated, terminated, 0.99, 1.0)
    returns = np.zeros(3)
    expected = np.zeros((5, 3))
    for t in range(4, -1, -1):
        returns = rewards[t] + 0.99 * returns
        expected[t] = returns - values[t]
    np.testing.assert_allclose(adv, expected, rtol=1e-5, atol=1e-6)


def test_rollout_storage_returns_are_advantages_plus_values():
    from gymnasium import spaces

    storage = RolloutStorage(3, 2, spaces.Box(-1, 1, (2,)), spaces.Discrete(2))
    for t in range(3):
        storage.add(np.zeros((2, 2)), np.array([0, 1]), np.array([1.0, 0.0]), np.zeros((2, 2)),
                    np.array([False, t == 2]), np.array([False, False]), np.array([0.5, 0.2]), np.zeros(2))
    assert storage.full
    storage.compute_advantages(np.ones((3, 2)), 0.9, 0.95)
    np.testing.assert_allclose(storage.returns, storage.advantages + storage.values, rtol=1e-6)
    assert storage.advantages[2, 1] == np.float32(0.0 - 0.2)  # terminated: r - V
