"""The Blind Cliffwalk experiment (Schaul et al. 2016, Figure 1): the memory, the true values,
and the mechanism at a small size (prioritized replay needs fewer updates, the oracle fewest)."""

import statistics

import numpy as np

from toolkit_per.cliffwalk import cliffwalk_memory, td_errors, true_q, updates_to_learn


def test_the_memory_holds_what_2_to_the_n_random_episodes_give():
    n = 6
    memory = cliffwalk_memory(n)
    assert len(memory) == 2 ** (n + 1) - 2
    assert memory.reward.sum() == 1 and memory.reward[memory.terminated].sum() == 1  # one success
    wrong = memory.action != memory.right_actions[memory.state]
    # 2^(n-k) episodes fail at step k, in state k - 1
    for state in range(n):
        assert np.count_nonzero(wrong & (memory.state == state)) == 2 ** (n - state - 1)
    assert np.all(memory.terminated[wrong])
    np.testing.assert_array_equal(memory.next_state[~memory.terminated], memory.state[~memory.terminated] + 1)


def test_the_true_values_have_zero_td_error_on_every_transition():
    n = 7
    memory = cliffwalk_memory(n)
    gamma = 1 - 1 / n
    q = true_q(n, memory.right_actions, gamma)
    np.testing.assert_allclose(td_errors(q, memory, np.arange(len(memory)), gamma), 0.0, atol=1e-12)
    assert q[0, memory.right_actions[0]] == gamma ** (n - 1)


def test_prioritized_replay_learns_in_fewer_updates_than_uniform_and_the_oracle_in_fewest():
    n, seeds = 8, range(5)
    median = {replay: statistics.median(updates_to_learn(n, replay, seed) for seed in seeds)
              for replay in ("uniform", "prioritized", "rank")}
    oracle = updates_to_learn(n, "oracle", 0)
    assert median["prioritized"] * 3 < median["uniform"]
    assert median["rank"] * 2 < median["uniform"]
    assert oracle < min(median.values())
    assert updates_to_learn(n, "uniform", 0, max_updates=100) is None  # the cap is reported, not hidden
    # entering at |delta| (Ape-X's initial priorities) instead of the largest priority also learns
    assert updates_to_learn(n, "prioritized", 0, initial="td") < median["uniform"] / 3
