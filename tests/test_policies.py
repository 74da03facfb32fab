"""The shared policy pieces (toolkit.policies): the tanh change of variables, the Gaussian
densities, the categorical policies, orthogonal initialisation, the running normalisers."""

import math

import numpy as np
import pytest
import torch
from gymnasium import spaces

from toolkit.policies import (CategoricalPolicy, GaussianPolicy, MultiCategorical, MultiCategoricalPolicy,
                              ReturnNormalizer, RunningNormalizer, SquashedGaussianPolicy, StateDependentNoisePolicy,
                              TwinQ, category_sizes, first_action, gaussian_log_prob, gsde_noise_due, kl_divergence,
                              orthogonal_init, polyak_update, sample_afresh, scale_to_box,
                              squashed_gaussian_log_prob, tanh_log_det_jacobian)


def _gsde(n_envs: int, seed: int = 2) -> StateDependentNoisePolicy:
    policy = StateDependentNoisePolicy(torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh()),
                                       torch.nn.Linear(8, 2), -0.5, n_envs)
    policy.resample_noise(torch.Generator().manual_seed(seed))
    return policy


def test_tanh_log_det_jacobian_equals_autograd():
    u = torch.randn(3, dtype=torch.float64) * 2
    jacobian = torch.autograd.functional.jacobian(torch.tanh, u)
    expected = torch.logdet(jacobian)
    assert tanh_log_det_jacobian(u).item() == pytest.approx(expected.item(), rel=1e-10)


def test_tanh_log_det_jacobian_stays_finite_where_the_naive_form_fails():
    u = torch.tensor([[12.0, -15.0]])
    naive = torch.log(1 - torch.tanh(u).square()).sum(-1)
    assert not torch.isfinite(naive).all()
    stable = tanh_log_det_jacobian(u)
    # log(1 - tanh(u)^2) ~ log 4 - 2|u| for large |u|
    assert stable.item() == pytest.approx(2 * math.log(4) - 2 * 27, abs=1e-4)


def test_squashed_log_prob_is_the_density_of_tanh_of_a_gaussian():
    torch.manual_seed(0)
    mean, log_std = torch.randn(5, 2, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64) * 0.3
    u = mean + log_std.exp() * torch.randn(5, 2, dtype=torch.float64)
    normal = torch.distributions.Independent(torch.distributions.Normal(mean, log_std.exp()), 1)
    squashed = torch.distributions.TransformedDistribution(normal, [torch.distributions.TanhTransform()])
    torch.testing.assert_close(squashed_gaussian_log_prob(u, mean, log_std), squashed.log_prob(torch.tanh(u)))
    torch.testing.assert_close(gaussian_log_prob(u, mean, log_std), normal.log_prob(u))


def test_squashed_policy_samples_inside_the_box_with_their_log_density():
    torch.manual_seed(0)
    policy = SquashedGaussianPolicy(3, spaces.Box(-2.0, 2.0, (2,), np.float32), (16,), (-20.0, 2.0))
    obs = torch.randn(256, 3)
    unit_action, log_prob = policy.sample_unit(obs, torch.Generator().manual_seed(0))
    assert unit_action.abs().max() < 1 and log_prob.shape == (256,)
    assert torch.all(policy.squash(torch.full((1, 2), 50.0)) <= 2.0)
    torch.testing.assert_close(scale_to_box(torch.tensor([-1.0, 0.0, 1.0]), torch.tensor(-2.0), torch.tensor(4.0)),
                               torch.tensor([-2.0, 1.0, 4.0]))


@pytest.mark.parametrize("make", [lambda: CategoricalPolicy(torch.nn.Linear(3, 4)),
                                  lambda: MultiCategoricalPolicy(torch.nn.Linear(3, 5), (2, 3)),
                                  lambda: GaussianPolicy(torch.nn.Linear(3, 2), 2, -0.5),
                                  lambda: _gsde(n_envs=64), lambda: _gsde(n_envs=1)])
def test_sampled_log_prob_equals_the_distributions(make):
    torch.manual_seed(0)
    policy = make()
    obs = torch.randn(64, 3)
    action, log_prob = policy.sample(obs, torch.Generator().manual_seed(1))
    torch.testing.assert_close(log_prob, policy.distribution(obs).log_prob(action), rtol=1e-5, atol=1e-5)


def test_multi_categorical_is_independent_categoricals_one_per_dimension():
    torch.manual_seed(0)
    policy = MultiCategoricalPolicy(torch.nn.Linear(3, 2 + 3), (2, 3))
    obs = torch.randn(64, 3)
    logits = policy.logits(obs)
    first, second = (torch.distributions.Categorical(logits=part) for part in (logits[:, :2], logits[:, 2:]))
    action, log_prob = policy.sample(obs, torch.Generator().manual_seed(1))
    assert action.shape == (64, 2) and action.dtype == torch.int64
    assert action[:, 0].max() <= 1 and action[:, 1].max() <= 2
    expected = first.log_prob(action[:, 0]) + second.log_prob(action[:, 1])
    torch.testing.assert_close(log_prob, expected)
    torch.testing.assert_close(policy.distribution(obs).log_prob(action), expected)
    torch.testing.assert_close(policy.distribution(obs).entropy(), first.entropy() + second.entropy())
    assert torch.equal(policy.mode(obs), torch.stack([first.probs.argmax(1), second.probs.argmax(1)], 1))


def test_kl_of_multi_categoricals_is_the_sum_over_dimensions():
    torch.manual_seed(0)
    p_logits, q_logits = torch.randn(8, 5), torch.randn(8, 5)
    p, q = MultiCategorical(p_logits, (2, 3)), MultiCategorical(q_logits, (2, 3))
    expected = sum(torch.distributions.kl_divergence(torch.distributions.Categorical(logits=a[:, s]),
                                                     torch.distributions.Categorical(logits=b[:, s]))
                   for a, b, s in [(p_logits, q_logits, slice(0, 2)), (p_logits, q_logits, slice(2, 5))])
    torch.testing.assert_close(kl_divergence(p, q), expected)
    assert torch.all(kl_divergence(p, p).abs() < 1e-6)


def test_multi_categorical_samples_each_dimension_with_its_probabilities():
    logits = torch.log(torch.tensor([[0.2, 0.8, 0.5, 0.3, 0.2]]))
    policy = MultiCategoricalPolicy(torch.nn.Identity(), (2, 3))
    actions, _ = policy.sample(logits.expand(40_000, 5), torch.Generator().manual_seed(0))
    np.testing.assert_allclose(torch.bincount(actions[:, 0], minlength=2).numpy() / 40_000, [0.2, 0.8], atol=0.01)
    np.testing.assert_allclose(torch.bincount(actions[:, 1], minlength=3).numpy() / 40_000, [0.5, 0.3, 0.2],
                               atol=0.01)


def test_category_sizes_and_first_action_of_discrete_spaces():
    assert category_sizes(spaces.Discrete(4)) == (4,)
    assert category_sizes(spaces.MultiDiscrete([2, 5])) == (2, 5)
    assert category_sizes(spaces.MultiBinary(3)) == (2, 2, 2)
    assert category_sizes(spaces.Box(-1, 1, (2,))) is None
    assert category_sizes(spaces.MultiDiscrete([[2, 3], [4, 5]])) is None  # no 2-D layouts
    assert first_action(spaces.Discrete(4, start=1)) == 1
    np.testing.assert_array_equal(first_action(spaces.MultiDiscrete([2, 5], start=[1, -2])), [1, -2])
    assert first_action(spaces.MultiBinary(3)) == 0


def test_state_dependent_noise_is_the_features_times_a_matrix_held_until_redrawn():
    torch.manual_seed(0)
    policy = _gsde(n_envs=2)
    obs = torch.randn(2, 3)
    features = policy.body(obs)
    action, _ = policy.sample(obs)
    noise = torch.stack([features[i] @ policy.exploration[i] for i in range(2)])  # each env its own matrix
    torch.testing.assert_close(action, policy.head(features) + noise)
    torch.testing.assert_close(policy.sample(obs)[0], action)  # the same state, the same noise
    one, _ = policy.sample(obs[:1])  # a batch of another size: the first env's matrix
    torch.testing.assert_close(one, policy.head(features[:1]) + features[:1] @ policy.exploration[0])
    policy.resample_noise(torch.Generator().manual_seed(3))
    assert not torch.allclose(policy.sample(obs)[0], action)
    wide = StateDependentNoisePolicy(torch.nn.Identity(), torch.nn.Linear(64, 64), math.log(0.3), 16)
    wide.resample_noise(torch.Generator().manual_seed(0))
    assert wide.exploration.std().item() == pytest.approx(0.3, rel=0.02)  # entries ~ N(0, sigma^2)


def test_sample_afresh_draws_gsde_noise_from_the_generator_not_the_held_matrix():
    policy = _gsde(n_envs=1)
    obs = torch.randn(5, 3)
    held = policy.exploration.clone()
    first, log_prob = sample_afresh(policy, obs, torch.Generator().manual_seed(7))
    torch.testing.assert_close(sample_afresh(policy, obs, torch.Generator().manual_seed(7))[0], first)  # seeded
    assert not torch.allclose(sample_afresh(policy, obs, torch.Generator().manual_seed(8))[0], first)
    assert not torch.allclose(first, policy.sample(obs)[0])  # not the exploration noise training holds
    torch.testing.assert_close(policy.exploration, held)  # which it leaves as it was
    torch.testing.assert_close(log_prob, policy._normal(*policy._features_and_mean(obs)).log_prob(first).sum(1))
    gaussian = GaussianPolicy(torch.nn.Linear(3, 2), 2, log_std_init=0.0)
    torch.testing.assert_close(sample_afresh(gaussian, obs, torch.Generator().manual_seed(7))[0],
                               gaussian.sample(obs, torch.Generator().manual_seed(7))[0])


def test_gsde_noise_is_drawn_at_each_rollouts_start_and_every_sample_freq_steps():
    assert [t for t in range(10) if gsde_noise_due(t, 4)] == [0, 4, 8]
    assert [t for t in range(10) if gsde_noise_due(t, -1)] == [0]  # once per rollout
    assert [t for t in range(10) if gsde_noise_due(t, 0)] == [0]


def test_state_dependent_scale_is_set_by_the_features_and_trains_only_log_sigma():
    torch.manual_seed(0)
    policy = _gsde(n_envs=1)
    obs = torch.randn(5, 3)
    scale = policy.distribution(obs).base_dist.scale
    features = policy.body(obs)
    torch.testing.assert_close(scale, torch.sqrt(features.square() @ policy.log_std.exp().square() + 1e-6))
    scale.sum().backward()
    assert policy.log_std.grad is not None and policy.log_std.grad.abs().sum() > 0
    assert all(p.grad is None for p in policy.body.parameters())  # the features are not trained by the noise


def test_orthogonal_init_scales_orthonormal_rows_and_zeroes_biases():
    layer = orthogonal_init(torch.nn.Linear(8, 8), gain=math.sqrt(2))
    torch.testing.assert_close(layer.weight @ layer.weight.T, 2 * torch.eye(8), atol=1e-5, rtol=0)
    assert torch.count_nonzero(layer.bias) == 0


def test_twin_q_networks_are_independent_and_min_takes_the_smaller():
    torch.manual_seed(0)
    critic = TwinQ(3, 2, (8,))
    obs, action = torch.randn(10, 3), torch.randn(10, 2)
    q1, q2 = critic(obs, action)
    assert not torch.allclose(q1, q2)
    torch.testing.assert_close(critic.min(obs, action), torch.minimum(q1, q2))
    torch.testing.assert_close(critic.q1_value(obs, action), q1)
    target = TwinQ(3, 2, (8,))
    before = target.q1[0].weight.clone()
    polyak_update(target, critic, 0.25)
    torch.testing.assert_close(target.q1[0].weight, 0.75 * before + 0.25 * critic.q1[0].weight)


def test_running_normalizer_matches_the_statistics_of_all_batches():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(n, 4)) for n in (7, 50, 1, 20)]
    normalizer = RunningNormalizer((4,))
    for batch in batches:
        normalizer.update(batch)
    everything = np.concatenate(batches)
    np.testing.assert_allclose(normalizer.mean, everything.mean(0), rtol=1e-4)
    np.testing.assert_allclose(normalizer.var, everything.var(0), rtol=1e-4)
    restored = RunningNormalizer((4,))
    restored.load_state_dict(normalizer.state_dict())
    np.testing.assert_array_equal(restored(everything), normalizer(everything))


def test_return_normalizer_scales_rewards_to_unit_discounted_return_std():
    rng = np.random.default_rng(0)
    normalizer = ReturnNormalizer(n_envs=4, gamma=0.9)
    returns, scaled_returns = np.zeros(4), []
    for t in range(20_000):
        scaled = normalizer(rng.normal(5.0, 30.0, size=4), episode_end=np.full(4, t % 100 == 99))
        returns = returns * 0.9 + scaled
        scaled_returns.append(returns.copy())
        returns[t % 100 == 99] = 0.0
    # divided by the std of the discounted return, not centred: the mean reward keeps its sign
    assert np.std(scaled_returns[2000:]) == pytest.approx(1.0, rel=0.1)
    assert np.mean(scaled_returns[2000:]) > 0.3
