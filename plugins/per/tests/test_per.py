import numpy as np
import pytest
from scipy import stats

from toolkit.errors import ToolkitError
from toolkit.replay import make_sampler
from toolkit.testing import check_algorithm
from toolkit_per.per import ProportionalSampler, RankSampler, SumTree, importance_weights

N = 200
DRAWS = 100_032  # a multiple of the batch size


def fill(sampler, priorities):
    sampler.add(np.arange(len(priorities)))
    sampler.update_priorities(np.arange(len(priorities)), priorities)


def draw_counts(sampler, batch=32, draws=DRAWS, seed=0):
    rng = np.random.default_rng(seed)
    counts = np.zeros(N)
    for _ in range(draws // batch):
        indices, _ = sampler.sample(batch, rng, 0.0)
        np.add.at(counts, indices, 1)
    return counts


def chi_square_p_value(counts, probabilities):
    expected = probabilities * counts.sum()
    return stats.chisquare(counts, expected).pvalue


@pytest.fixture
def td_errors():
    return np.random.default_rng(1).exponential(1.0, N)


def test_proportional_frequencies_match_p(td_errors):
    sampler = ProportionalSampler(N, alpha=0.6)
    fill(sampler, td_errors)
    p = (np.abs(td_errors) + sampler.eps) ** 0.6
    assert chi_square_p_value(draw_counts(sampler), p / p.sum()) > 0.01


def test_rank_frequencies_match_p(td_errors):
    sampler = RankSampler(N, alpha=0.7)
    fill(sampler, td_errors)
    ranks = np.empty(N)
    ranks[np.argsort(-td_errors)] = np.arange(1, N + 1)
    p = ranks ** -0.7
    assert chi_square_p_value(draw_counts(sampler), p / p.sum()) > 0.01


@pytest.mark.parametrize("make", [lambda: ProportionalSampler(N, alpha=0.0), lambda: RankSampler(N, alpha=0.0)])
def test_alpha_zero_is_uniform(make, td_errors):
    sampler = make()
    fill(sampler, td_errors)
    assert chi_square_p_value(draw_counts(sampler), np.full(N, 1 / N)) > 0.01


def test_a_wrong_distribution_is_detected(td_errors):
    """The chi-square check above has teeth: alpha 0.6 sampling is not alpha 0.3."""
    sampler = ProportionalSampler(N, alpha=0.6)
    fill(sampler, td_errors)
    p = (td_errors + 1e-6) ** 0.3
    assert chi_square_p_value(draw_counts(sampler), p / p.sum()) < 1e-6


def test_importance_weights_equal_the_formula(td_errors):
    sampler = ProportionalSampler(N, alpha=0.6, beta0=0.4)
    fill(sampler, td_errors)
    indices, weights = sampler.sample(32, np.random.default_rng(0), progress=0.5)
    p = (td_errors + 1e-6) ** 0.6
    probabilities = p[indices] / p.sum()
    beta = 0.4 + 0.6 * 0.5
    expected = (N * probabilities) ** -beta
    np.testing.assert_allclose(weights, expected / expected.max(), rtol=1e-5)
    _, final = sampler.sample(32, np.random.default_rng(0), progress=1.0)
    assert final.max() == pytest.approx(1.0)
    np.testing.assert_allclose(importance_weights(np.array([0.5, 0.25]), 4, 1.0), [0.5, 1.0])


def test_rank_weights_use_rank_probabilities(td_errors):
    sampler = RankSampler(N, alpha=0.7, beta0=0.5)
    fill(sampler, td_errors)
    indices, weights = sampler.sample(16, np.random.default_rng(0), progress=0.0)
    ranks = np.empty(N)
    ranks[np.argsort(-td_errors)] = np.arange(1, N + 1)
    p = ranks ** -0.7
    expected = (N * p[indices] / p.sum()) ** -0.5
    np.testing.assert_allclose(weights, expected / expected.max(), rtol=1e-5)


def _check_tree(tree: SumTree) -> None:
    assert len(tree.levels) > 2  # the test exercises several levels
    for lower, upper in zip(tree.levels, tree.levels[1:]):
        np.testing.assert_allclose(upper[: len(lower) // tree.branching], lower.reshape(-1, tree.branching).sum(1))
    assert tree.total == pytest.approx(tree.levels[0].sum())


def test_repeated_indices_leave_a_consistent_tree():
    tree = SumTree(5000, branching=8, search_width=64)
    rng = np.random.default_rng(0)
    for _ in range(50):
        indices = rng.integers(0, 5000, 64)
        indices[:10] = indices[0]  # the same slot ten times in one batch
        values = rng.random(64)
        tree.update(indices, values)
        assert tree.levels[0][indices[0]] == values[9]  # the last write wins
        _check_tree(tree)


@pytest.mark.parametrize("search_width", [4096, 8])  # one global search / a search plus 3 descents
def test_find_returns_the_leaf_whose_interval_holds_the_prefix(search_width):
    tree = SumTree(100, branching=4, search_width=search_width)
    values = np.random.default_rng(0).random(100)
    values[::7] = 0.0
    tree.update(np.arange(100), values)
    edges = np.cumsum(values)
    prefixes = np.random.default_rng(1).random(1000) * tree.total
    np.testing.assert_array_equal(tree.find(prefixes), np.searchsorted(edges, prefixes, side="right"))
    assert values[tree.find(np.array([tree.total]))][0] > 0  # the very end lands on a real leaf


def test_new_transitions_enter_with_the_maximum_priority():
    sampler = ProportionalSampler(10, alpha=1.0)
    sampler.add(np.arange(5))
    sampler.update_priorities(np.arange(5), np.array([0.1, 0.2, 7.0, 0.3, 0.1]))
    sampler.add(np.array([5]))
    assert sampler.tree.leaves[5] == pytest.approx(7.0 + 1e-6)
    sampler.remove(np.array([2]))
    assert sampler.tree.leaves[2] == 0 and sampler.count == 5


@pytest.mark.parametrize("cls", [ProportionalSampler, RankSampler])
def test_state_round_trip(cls, td_errors):
    first, second = cls(N), cls(N)
    fill(first, td_errors)
    second.load_state_dict(first.state_dict())
    a = first.sample(32, np.random.default_rng(5), 0.3)
    b = second.sample(32, np.random.default_rng(5), 0.3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1])


def test_removed_slots_are_never_drawn():
    for sampler in (ProportionalSampler(N), RankSampler(N)):
        sampler.add(np.arange(N))
        sampler.remove(np.arange(0, N, 2))
        indices, _ = sampler.sample(4096, np.random.default_rng(0), 0.0)
        assert (indices % 2 == 1).all()


def test_sampler_options_and_their_errors():
    assert make_sampler("prioritized:alpha=0.5,beta0=0.3", 8).alpha == 0.5
    with pytest.raises(ToolkitError, match="unknown option of sampler 'rank' 'alpa'; did you mean: alpha"):
        make_sampler("rank:alpa=0.5", 8)
    with pytest.raises(ToolkitError, match="must lie in"):
        make_sampler("prioritized:alpha=2", 8)


@pytest.mark.parametrize("replay", ["prioritized", "rank"])
def test_dqn_with_prioritized_replay_on_frame_stacks_and_several_envs(replay):
    check_algorithm("dqn", env="toolkit/Frames-v0", n_envs=3,
                    overrides={"learning_starts": 30, "network": "mlp", "hidden": (8,), "replay": replay})


def test_initial_priorities_set_p_as_update_priorities_would():
    """Ape-X's actors send |delta| with new transitions: the proportional sampler stores
    (|delta| + eps)^alpha, exactly what update_priorities stores, and raises the maximum."""
    deltas = np.array([0.5, -2.0, 0.0, 3.5])
    given, updated = ProportionalSampler(8), ProportionalSampler(8)
    given.add(np.arange(4), deltas)
    updated.add(np.arange(4))
    updated.update_priorities(np.arange(4), deltas)
    np.testing.assert_allclose(given.tree.leaves, updated.tree.leaves)
    assert given.max_priority == updated.max_priority == pytest.approx(3.5 + 1e-6) and given.count == 4
    given.add(np.array([4]))  # no priority given: the largest so far
    assert given.tree.leaves[4] == pytest.approx((3.5 + 1e-6) ** 0.6)

    rank = RankSampler(8)
    rank.add(np.arange(4), deltas)
    np.testing.assert_array_equal(rank.priority[:4], np.abs(deltas))
    rank._resort()  # the next sort ranks them by the given priorities
    np.testing.assert_array_equal(rank.order, [3, 1, 0, 2])


def test_a_fragment_reaches_the_sum_tree_as_its_steps_one_by_one_would():
    from gymnasium import spaces

    from toolkit.replay import ReplayBuffer, make_fragment

    rng = np.random.default_rng(0)
    T, rings = 12, np.array([2, 0])
    obs = rng.random((T, 2, 3)).astype(np.float32)
    next_obs = rng.random((T, 2, 3)).astype(np.float32)
    next_obs[:-1] = obs[1:]
    terminated = np.zeros((T, 2), bool)
    terminated[5, 1] = True
    next_obs[5, 1] = rng.random(3)  # the final observation of the episode that ended
    action, reward = rng.integers(0, 2, (T, 2)), rng.random((T, 2)).astype(np.float32)
    priorities = rng.random((T, 2)).astype(np.float32) * 3
    buffers = [ReplayBuffer(120, spaces.Box(0, 1, (3,)), spaces.Discrete(2), n_envs=3, sampler="prioritized")
               for _ in range(2)]
    for t in range(T):
        buffers[0].add(obs[t], action[t], reward[t], next_obs[t], terminated[t], np.zeros(2, bool), envs=rings,
                       priorities=priorities[t])
    buffers[1].add_fragment(make_fragment(rings, obs, action, reward, next_obs, terminated, np.zeros((T, 2), bool),
                                          priorities=priorities))
    np.testing.assert_array_equal(buffers[0].sampler.tree.leaves, buffers[1].sampler.tree.leaves)
    assert np.count_nonzero(buffers[1].sampler.tree.leaves) == 2 * T
    np.testing.assert_allclose(np.sort(buffers[1].sampler.tree.leaves[buffers[1].sampler.tree.leaves > 0]),
                               np.sort((priorities.ravel() + 1e-6) ** 0.6), rtol=1e-6)


@pytest.mark.parametrize("sampler", ["prioritized", "rank"])
def test_fragments_that_wrap_the_rings_leave_the_sampler_as_steps_one_by_one_would(sampler):
    """Five fragments of 12 steps through rings of 40 slots: old transitions are forgotten and
    new ones enter with their initial priorities, and the rank sampler's not-yet-sorted newcomers
    keep the order they came in, as when the steps are added one at a time."""
    from gymnasium import spaces

    from toolkit.replay import ReplayBuffer, make_fragment

    rng = np.random.default_rng(1)
    T, rings = 60, np.array([2, 0])
    obs = rng.random((T + 1, 2, 3)).astype(np.float32)
    next_obs = obs[1:].copy()
    terminated = rng.random((T, 2)) < [0.05, 0.3]  # the rings drift apart: steps' slots interleave
    next_obs[terminated] = rng.random((int(terminated.sum()), 3))  # final observations
    action, reward = rng.integers(0, 2, (T, 2)), rng.random((T, 2)).astype(np.float32)
    priorities = rng.random((T, 2)).astype(np.float32) * 3
    truncated = np.zeros((T, 2), bool)
    buffers = [ReplayBuffer(120, spaces.Box(0, 1, (3,)), spaces.Discrete(2), n_envs=3, sampler=sampler)
               for _ in range(2)]
    for t in range(T):
        buffers[0].add(obs[t], action[t], reward[t], next_obs[t], terminated[t], truncated[t], envs=rings,
                       priorities=priorities[t])
    for start in range(0, T, 12):
        part = slice(start, start + 12)
        buffers[1].add_fragment(make_fragment(rings, obs[part], action[part], reward[part], next_obs[part],
                                              terminated[part], truncated[part], priorities=priorities[part]))
    one_by_one, by_fragment = (buffer.sampler.state_dict() for buffer in buffers)
    assert one_by_one.keys() == by_fragment.keys()
    for key in one_by_one:
        np.testing.assert_array_equal(one_by_one[key], by_fragment[key], err_msg=key)
    assert buffers[1].added == 2 * T and len(buffers[1]) < 2 * T  # the rings wrapped
