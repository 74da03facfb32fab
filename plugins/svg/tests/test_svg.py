import math

import numpy as np
import pytest
import torch
from gymnasium import spaces

import toolkit
from toolkit.errors import ToolkitError
from toolkit.interfaces import EnvContext
from toolkit.testing import check_algorithm
from toolkit_svg.svg import (SVG1, DynamicsModel, GaussianPolicy, SVGConfig, gaussian_log_prob, infer_noise,
                             svg_infinity_gradient, truncated_importance_weight)


def test_svg_infinity_recursion_equals_the_analytic_gradient_for_linear_quadratic_control():
    """s' = A s + B a + sigma_f xi, a = k s + sigma eta, r = -(s^2 + a^2), scalar, horizon 3,
    undiscounted. Along fixed noise the return is a polynomial in k; its derivative by hand
    must equal V_theta from the backward recursion."""
    A, B, sigma, sigma_f, gamma = 0.9, 0.5, 0.3, 0.1, 1.0
    eta, xi = [0.4, -1.2, 0.7], [0.5, -0.3, 0.2]
    s0, k0 = 1.5, -0.6

    def rollout(k):  # states and the return along the fixed noise
        states, total, s = [], 0.0, s0
        for t in range(3):
            a = k * s + sigma * eta[t]
            states.append(s)
            total += -(s * s + a * a)
            s = A * s + B * a + sigma_f * xi[t]
        return states, total

    # d/dk by forward sensitivities: ds_{t+1}/dk = (A + B k) ds_t/dk + B s_t
    states, _ = rollout(k0)
    ds, analytic = 0.0, 0.0
    for t in range(3):
        s = states[t]
        a = k0 * s + sigma * eta[t]
        da = k0 * ds + s
        analytic += -(2 * s * ds + 2 * a * da)
        ds = (A + B * k0) * ds + B * s

    k = torch.tensor([k0], dtype=torch.float64, requires_grad=True)

    def step(s, t):
        a = k * s + sigma * eta[t]
        return -(s * s + a * a), A * s + B * a + sigma_f * xi[t]

    value_theta, _ = svg_infinity_gradient(torch.tensor(states, dtype=torch.float64).unsqueeze(1), step, [k], gamma)
    assert value_theta[0].item() == pytest.approx(analytic, rel=1e-10)
    # and it is what back-propagation through the whole unrolled episode gives
    _, total = rollout(k)
    (autograd_grad,) = torch.autograd.grad(total, k)
    assert value_theta[0].item() == pytest.approx(autograd_grad.item(), rel=1e-10)


def test_svg_infinity_value_gradient_wrt_the_state():
    """V_s at the first state, from the recursion, equals d(return)/d(s0) (one-step check: r = -s^2 - a^2)."""
    k, sigma, eta = 0.5, 0.2, 0.3

    def step(s, t):
        a = k * s + sigma * eta
        return -(s * s + a * a), 2.0 * s

    _, value_s = svg_infinity_gradient(torch.tensor([[1.0]], dtype=torch.float64), step, [], 0.9)
    s0 = 1.0
    assert value_s.item() == pytest.approx(-(2 * s0 + 2 * (k * s0 + sigma * eta) * k))


def test_inferred_noise_reproduces_the_observed_transition_and_action():
    torch.manual_seed(0)
    model = DynamicsModel(3, 1, (16,), 0.0, torch.Generator().manual_seed(0))
    obs, action, next_obs = torch.randn(32, 3), torch.randn(32, 1), torch.randn(32, 3)
    xi = infer_noise(next_obs, model.mean(obs, action), model.std())
    torch.testing.assert_close(model.mean(obs, action) + model.std() * xi, next_obs, rtol=0, atol=1e-6)

    policy = GaussianPolicy(3, spaces.Box(-2, 2, (1,), np.float32), (16,), (-5.0, 1.0))
    mean, log_std = policy(obs)
    u = torch.randn(32, 1) * 3
    eta = infer_noise(u, mean, log_std.exp())
    torch.testing.assert_close(mean + log_std.exp() * eta, u, rtol=0, atol=1e-6)
    assert not eta.requires_grad


def test_truncated_importance_weight():
    log_prob = torch.log(torch.tensor([0.1, 0.5, 2.0]))
    old = torch.log(torch.tensor([0.2, 0.05, 0.1]))
    torch.testing.assert_close(truncated_importance_weight(log_prob, old, 5.0), torch.tensor([0.5, 5.0, 5.0]))
    torch.testing.assert_close(truncated_importance_weight(log_prob, old, 20.0), torch.tensor([0.5, 10.0, 20.0]))


def test_svg1_sigma_floor_keeps_replayed_actions_weighted():
    """Why SVG(1) has its own floor under sigma: an action drawn by the old policy, replayed after
    the mean moved by 0.1, keeps a usable weight at SVG(1)'s floor and none at the shared one."""
    eta = torch.randn(10_000, 1, generator=torch.Generator().manual_seed(0))

    def mean_weight(log_sigma: float) -> float:
        log_std = torch.full_like(eta, log_sigma)
        u = log_std.exp() * eta  # sampled around the old mean 0
        old, new = gaussian_log_prob(u, torch.zeros_like(u), log_std), gaussian_log_prob(u, torch.full_like(u, 0.1), log_std)
        return truncated_importance_weight(new, old, 5.0).mean().item()

    assert mean_weight(SVG1.Config().log_std_bounds[0]) > 0.5
    assert mean_weight(SVGConfig().log_std_bounds[0]) < 0.01  # SVG(0) and SVG(inf) keep it


@pytest.mark.parametrize("mean_penalty", [0.0, 1e-2])
def test_mean_penalty_pulls_a_saturated_policy_out_of_tanh_tails(mean_penalty):
    """With a zero value objective (the flat tails of the tanh give no value gradient), only
    the penalty on the pre-tanh mean moves the policy: back towards 0 when it is on, not at all
    when it is off."""
    context = EnvContext(spaces.Box(-np.inf, np.inf, (1,), np.float32), spaces.Box(-1, 1, (1,), np.float32),
                         n_envs=1, frame_stack=0, total_steps=100, seed=0, device="cpu", env_id="x")
    algo = SVG1(SVG1.Config(hidden=(4,), learning_rate=1e-2, mean_penalty=mean_penalty), context)
    with torch.no_grad():
        algo.policy_net.body[-1].bias[0] = 6.0  # tanh(6) = 0.99999: saturated
    obs = torch.randn(64, 1, generator=torch.Generator().manual_seed(0))
    before = algo.policy_net(obs)[0].abs().mean().item()
    for _ in range(50):
        mean, log_std = algo.policy_net(obs)
        algo._policy_step(torch.zeros(64), algo._policy_regulariser(mean, log_std))
    after = algo.policy_net(obs)[0].abs().mean().item()
    if mean_penalty:
        assert after < before - 0.3
    else:
        assert after == pytest.approx(before, abs=1e-6)


def test_gaussian_log_prob_matches_torch():
    mean, log_std, u = torch.randn(8, 2), torch.randn(8, 2) * 0.3, torch.randn(8, 2)
    expected = torch.distributions.Normal(mean, log_std.exp()).log_prob(u).sum(-1)
    torch.testing.assert_close(gaussian_log_prob(u, mean, log_std), expected)


def test_the_model_fits_a_linear_system():
    """Maximum likelihood on s' = A s + B a + 0.05 xi recovers the dynamics to low error."""
    rng = np.random.default_rng(0)
    A = np.array([[0.9, 0.2], [-0.1, 0.8]])
    B = np.array([[0.0], [0.5]])
    s = rng.normal(size=(4096, 2))
    a = rng.uniform(-1, 1, size=(4096, 1))
    s_next = s @ A.T + a @ B.T + 0.05 * rng.normal(size=(4096, 2))
    s, a, s_next = (torch.as_tensor(x, dtype=torch.float32) for x in (s, a, s_next))
    torch.manual_seed(0)
    model = DynamicsModel(2, 1, (64,), 0.0, torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(1500):
        batch = torch.randint(0, 4096, (256,))
        loss = model.negative_log_likelihood(s[batch], a[batch], s_next[batch]).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        test_s, test_a = torch.randn(512, 2), torch.rand(512, 1) * 2 - 1
        truth = test_s @ torch.as_tensor(A.T, dtype=torch.float32) + test_a @ torch.as_tensor(B.T, dtype=torch.float32)
        error = (model.mean(test_s, test_a) - truth).square().mean().sqrt().item()
        assert error < 0.03  # the noise itself is 0.05
        assert model.std().numpy() == pytest.approx([0.05, 0.05], rel=0.2)


def test_model_error_perturbs_only_the_mean_used_for_gradients():
    generator = torch.Generator().manual_seed(0)
    exact = DynamicsModel(3, 1, (8,), 0.0, generator)
    perturbed = DynamicsModel(3, 1, (8,), 0.5, torch.Generator().manual_seed(0))
    perturbed.delta.load_state_dict(exact.delta.state_dict())
    s, a, s_next = torch.randn(4, 3), torch.randn(4, 1), torch.randn(4, 3)
    assert not torch.allclose(exact.mean(s, a), perturbed.mean(s, a))
    torch.testing.assert_close(exact.negative_log_likelihood(s, a, s_next), perturbed.negative_log_likelihood(s, a, s_next))


def test_pendulum_reward_matches_the_env():
    import gymnasium as gym

    from toolkit.vec_env import describe_env, resolve_env

    pendulum_reward = describe_env(resolve_env("Pendulum-v1")).reward_function  # the env's capability
    env = gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=0)
    for _ in range(20):
        action = env.action_space.sample()
        next_obs, reward, *_ = env.step(action)
        assert pendulum_reward(torch.as_tensor(obs), torch.as_tensor(action)).item() == pytest.approx(reward, abs=1e-5)
        obs = next_obs


def test_svg1_policy_gradient_is_the_one_step_value_gradient():
    """With a known linear model s' = s + a + sigma_f xi, reward r = -a^2 and value V(s') = -s'^2
    put in place of the learned ones, the gradient of SVG(1)'s objective with respect to the
    policy's mean equals d/d(mean) [ r(s, a) + gamma V(s') ] by hand, and at the current
    parameters the model step reproduces the observed s'."""
    context = EnvContext(spaces.Box(-np.inf, np.inf, (1,), np.float32), spaces.Box(-5, 5, (1,), np.float32),
                         n_envs=1, frame_stack=0, total_steps=100, seed=0, device="cpu", env_id="x")
    algo = SVG1(SVGConfig(hidden=(4,), learning_starts=0, batch_size=1), context)
    algo.model.delta = torch.nn.Linear(2, 1)
    with torch.no_grad():
        algo.model.delta.weight[:] = torch.tensor([[0.0, 1.0]])
        algo.model.delta.bias.zero_()
    algo.reward_model = lambda obs_action: -(obs_action[:, 1:] ** 2)
    algo.critic = lambda state: -(state**2)
    obs, u, next_obs, gamma = torch.tensor([[0.7]]), torch.tensor([[0.2]]), torch.tensor([[1.9]]), 0.9
    objective, _ = algo.one_step_value(obs, u, next_obs, torch.tensor([gamma]))
    a = 5 * math.tanh(0.2)
    assert objective.item() == pytest.approx(-(a**2) - gamma * 1.9**2, rel=1e-5)  # s'(theta) is the observed 1.9
    # the output bias of the mean moves the mean one for one, so its gradient is d/d(mean);
    # d a / d mean at fixed eta is 5 * (1 - tanh(u)^2), and d s' / d a = 1
    (grad,) = torch.autograd.grad(objective.sum(), algo.policy_net.body[-1].bias)
    expected = (-2 * a - gamma * 2 * 1.9) * 5 * (1 - math.tanh(0.2) ** 2)
    assert grad[0].item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("algorithm", ["svg0", "svg1", "svginf"])
def test_conformance(algorithm):
    check_algorithm(algorithm, env="toolkit/IdentityContinuous-v0",
                    overrides={"learning_starts": 50, "batch_size": 16, "hidden": (16,)}, steps=200)


def test_svg1_with_prioritized_replay_conforms():
    pytest.importorskip("toolkit_per")
    check_algorithm("svg1", env="toolkit/IdentityContinuous-v0",
                    overrides={"learning_starts": 50, "batch_size": 16, "hidden": (16,), "replay": "prioritized"},
                    steps=150)


def test_known_reward_needs_an_env_that_has_one():
    context = EnvContext(spaces.Box(-1, 1, (2,), np.float32), spaces.Box(-1, 1, (1,), np.float32), n_envs=1,
                         frame_stack=0, total_steps=10, seed=0, device="cpu", env_id="toolkit/IdentityContinuous-v0")
    with pytest.raises(ToolkitError, match="no known differentiable reward"):
        SVG1(SVGConfig(reward="known"), context)


@pytest.mark.parametrize("algorithm", ["svg0", "svg1"])
def test_learns_the_continuous_identity_task(tmp_path, algorithm):
    run_dir = toolkit.train(algorithm, env="toolkit/IdentityContinuous-v0", seed=0, steps=1500, learning_starts=200,
                            hidden=(32, 32), batch_size=64, eval_every=0, eval_episodes=5, checkpoint_every=0,
                            progress=False, threads=1, run_dir=str(tmp_path / "run"))
    import json

    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    final = [r for r in records if "eval/mean_return" in r][-1]["eval/mean_return"]
    assert final > -1.0
    # both model-based and model-free variants report how much of the policy sits in tanh's tails
    saturated = [r["train/saturated_fraction"] for r in records if "train/saturated_fraction" in r]
    assert saturated and all(0.0 <= value <= 1.0 for value in saturated)
