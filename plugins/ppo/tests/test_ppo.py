import json
import warnings

import numpy as np
import pytest
import torch
from gymnasium import spaces

import toolkit
from toolkit.errors import ToolkitError
from toolkit.interfaces import EnvContext, EnvSpec, Transition
from toolkit.run import plan
from toolkit.testing import check_algorithm
from toolkit_ppo.ppo import (PPO, PPOConfig, approximate_kl, clipped_surrogate, clipped_value_loss,
                             explained_variance)


def test_clipped_surrogate_takes_the_pessimistic_term():
    # ratios 0.5, 1.0, 1.5 against positive and negative advantages, epsilon 0.2
    ratio = torch.tensor([0.5, 1.0, 1.5, 0.5, 1.0, 1.5])
    advantages = torch.tensor([1.0, 1.0, 1.0, -1.0, -1.0, -1.0])
    log_prob = torch.log(ratio).requires_grad_(True)
    loss, clip_fraction = clipped_surrogate(log_prob, torch.zeros(6), advantages, 0.2)
    # min(r A, clip(r) A): A > 0 -> 0.5, 1.0, 1.2; A < 0 -> -0.8, -1.0, -1.5
    assert loss.item() == pytest.approx(-(0.5 + 1.0 + 1.2 - 0.8 - 1.0 - 1.5) / 6)
    assert clip_fraction.item() == pytest.approx(4 / 6)
    loss.backward()
    # no gradient where the clipped term is the minimum (it is constant in theta there)
    moving = log_prob.grad != 0
    assert moving.tolist() == [True, True, False, False, True, True]


def test_value_loss_without_clipping_is_the_squared_error():
    values, returns = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 4.0])
    assert clipped_value_loss(values, torch.zeros(2), returns, 0.0).item() == pytest.approx((1 + 4) / 2)


def test_value_clipping_keeps_the_larger_error():
    old, returns = torch.tensor([0.0, 0.0]), torch.tensor([1.0, -1.0])
    values = torch.tensor([0.9, 0.5], requires_grad=True)
    loss = clipped_value_loss(values, old, returns, 0.2)
    # first: clipped to 0.2, error 0.64 > unclipped 0.01; second: unclipped 2.25 > clipped 1.44
    assert loss.item() == pytest.approx((0.64 + 2.25) / 2)
    loss.backward()
    assert values.grad[0] == 0 and values.grad[1] != 0


def test_approximate_kl_is_unbiased_and_never_negative():
    torch.manual_seed(0)
    old = torch.distributions.Categorical(logits=torch.randn(5))
    new = torch.distributions.Categorical(logits=torch.randn(5) * 0.5)
    actions = old.sample((200_000,))
    estimate = approximate_kl(new.log_prob(actions), old.log_prob(actions))
    exact = torch.distributions.kl_divergence(old, new)
    assert estimate.item() == pytest.approx(exact.item(), rel=0.05)
    assert approximate_kl(torch.randn(100), torch.randn(100)).item() >= 0


def test_explained_variance():
    target = np.array([1.0, 2.0, 3.0, 4.0])
    assert explained_variance(target, target) == 1.0
    assert explained_variance(np.full(4, 2.5), target) == pytest.approx(0.0)


def _context(obs_space, action_space, n_envs=2, total_steps=1000):
    return EnvContext(obs_space, action_space, n_envs, 0, total_steps, 0, "cpu")


def _fill_rollout(algo, obs_space, n_envs, rng):
    for t in range(algo.config.n_steps):
        obs = np.stack([obs_space.sample() for _ in range(n_envs)])
        action = algo.act(obs, t)
        ended = np.array([t % 5 == 4] + [False] * (n_envs - 1))
        algo.observe(Transition(obs, action, rng.normal(size=n_envs).astype(np.float32),
                                np.stack([obs_space.sample() for _ in range(n_envs)]), ended, np.zeros(n_envs, bool)))


def test_bootstrap_values_equal_the_critic_on_every_successor():
    """next_values() runs the critic only where an episode ended and after the last step; everywhere
    else the next step's stored value must be the same number."""
    obs_space = spaces.Box(-1, 1, (3,), np.float32)
    algo = PPO(PPOConfig(n_steps=12), _context(obs_space, spaces.Discrete(2)))
    rng = np.random.default_rng(0)
    next_obs = rng.normal(size=(2, 3)).astype(np.float32)
    for t in range(12):
        obs = next_obs
        next_obs = rng.normal(size=(2, 3)).astype(np.float32)
        action = algo.act(obs, t)
        ended = np.array([t % 5 == 4, t == 7])
        algo.observe(Transition(obs, action, np.ones(2, np.float32), next_obs, ended, np.zeros(2, bool)))
        if ended.any():  # the loop's autoreset: a new episode starts from a fresh observation
            next_obs = np.where(ended[:, None], rng.normal(size=(2, 3)).astype(np.float32), next_obs)
    with torch.no_grad():
        everywhere = algo.net.value(torch.as_tensor(algo.rollout.next_obs.reshape(24, 3))).numpy().reshape(12, 2)
    np.testing.assert_allclose(algo.next_values(), everywhere, rtol=1e-5, atol=1e-6)


def test_target_kl_stops_the_epochs_early():
    obs_space = spaces.Box(-1, 1, (3,), np.float32)
    rng = np.random.default_rng(0)
    epochs = {}
    for target_kl in (0.0, 1e-7):
        algo = PPO(PPOConfig(n_steps=64, batch_size=16, n_epochs=4, learning_rate=1e-2, target_kl=target_kl),
                   _context(obs_space, spaces.Discrete(3)))
        _fill_rollout(algo, obs_space, 2, rng)
        epochs[target_kl] = algo.update(64)["train/epochs"]
    assert epochs == {0.0: 4.0, 1e-7: 0.0}


def test_linear_schedules_anneal_step_size_and_clip_range():
    algo = PPO(PPOConfig(learning_rate=1e-3, learning_rate_schedule="linear", clip_range=0.2,
                         clip_range_schedule="linear"),
               _context(spaces.Box(-1, 1, (3,), np.float32), spaces.Discrete(2), total_steps=1000))
    assert algo.schedule(0) == pytest.approx((1e-3, 0.2))
    assert algo.schedule(750) == pytest.approx((2.5e-4, 0.05))


def test_atari_frames_go_through_one_shared_nature_cnn():
    frames = spaces.Box(0, 255, (4, 84, 84), np.uint8)
    algo = PPO(PPOConfig(n_steps=8, batch_size=8, n_epochs=1), _context(frames, spaces.Discrete(6)))
    assert type(algo.net.torso).__name__ == "NatureCNN"
    _fill_rollout(algo, frames, 2, np.random.default_rng(0))
    metrics = algo.update(16)
    assert np.isfinite(metrics["loss/policy"]) and "perf/approx_kl" in metrics
    obs = np.stack([frames.sample() for _ in range(3)])
    with torch.no_grad():
        np.testing.assert_array_equal(algo.policy_module()(torch.as_tensor(obs)).numpy(), algo.policy()(obs))


def test_exported_module_is_the_evaluation_policy_with_normalisation():
    obs_space, action_space = spaces.Box(-5, 5, (3,), np.float32), spaces.Box(-1, 1, (2,), np.float32)
    algo = PPO(PPOConfig(n_steps=16, normalize_obs=True, normalize_reward=True), _context(obs_space, action_space))
    _fill_rollout(algo, obs_space, 2, np.random.default_rng(0))
    obs = np.stack([obs_space.sample() for _ in range(5)])
    with torch.no_grad():
        exported = algo.policy_module()(torch.as_tensor(obs)).numpy()
    np.testing.assert_allclose(exported, algo.policy()(obs), atol=1e-6)


@pytest.mark.parametrize("env, overrides", [
    ("toolkit/Identity-v0", {}),
    ("toolkit/MultiIdentity-v0", {}),
    ("toolkit/BinaryIdentity-v0", {}),
    ("toolkit/ImageIdentity-v0", {"network": "nature"}),
    ("toolkit/IdentityContinuous-v0", {"normalize_obs": True, "normalize_reward": True}),
    ("toolkit/IdentityContinuous-v0", {"use_sde": True, "sde_sample_freq": 3}),
    ("CartPole-v1", {"clip_range_vf": 0.2, "target_kl": 0.01, "learning_rate_schedule": "linear",
                     "clip_range_schedule": "linear", "ent_coef": 0.01}),
])
def test_conformance(env, overrides):
    check_algorithm("ppo", env=env, steps=300, overrides={"n_steps": 32, "batch_size": 16, "n_epochs": 2, **overrides})


def test_learns_the_identity_task(tmp_path):
    run_dir = toolkit.train("ppo", env="toolkit/Identity-v0", steps=6_000, seed=0, n_envs=4, n_steps=64,
                            batch_size=64, n_epochs=4, learning_rate=3e-3, eval_every=0, eval_episodes=5,
                            checkpoint_every=0, run_dir=str(tmp_path / "r"), progress=False, threads=1)
    evals = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
             if "eval/mean_return" in line]
    assert evals[-1]["eval/mean_return"] >= 15.0  # optimum 16
    logged = json.loads([line for line in (run_dir / "metrics.jsonl").read_text().splitlines()
                         if "loss/clip_fraction" in line][-1])
    assert {"perf/approx_kl", "loss/clip_fraction", "train/explained_variance"} <= logged.keys()


def test_learns_from_channels_last_images_with_the_nature_cnn(tmp_path):
    """``--network nature`` on (H, W, C) images (CarRacing's layout): the CNN transposes them
    itself, learns the lit-band task (optimum 16), and the exported policy takes the env's frames."""
    run_dir = toolkit.train("ppo", env="toolkit/ImageIdentity-v0", network="nature", steps=1_024, seed=0, n_envs=4,
                            n_steps=32, batch_size=64, n_epochs=4, learning_rate=1e-3, eval_every=0,
                            eval_episodes=5, checkpoint_every=0, run_dir=str(tmp_path / "r"), progress=False,
                            threads=1)
    evals = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
             if "eval/mean_return" in line]
    assert evals[-1]["eval/mean_return"] >= 15.0
    agent = toolkit.load(run_dir)
    assert agent.algorithm.net.torso.channels_last_input
    frames = np.zeros((2, 40, 40, 3), np.uint8)
    frames[0, :20], frames[1, 20:] = 255, 255  # band 0 lit, band 1 lit
    np.testing.assert_array_equal(agent.predict(frames), [0, 1])


def test_auto_network_warns_that_it_reads_non_atari_images_with_mlps():
    images = spaces.Box(0, 255, (96, 96, 3), np.uint8)
    with pytest.warns(UserWarning, match="--network nature reads them with the Nature CNN"):
        PPO.check(PPOConfig(), EnvSpec("CarRacing-v3", "gymnasium", images, spaces.Box(-1, 1, (3,), np.float32)))
    atari = spaces.Box(0, 255, (4, 84, 84), np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        PPO.check(PPOConfig(), EnvSpec("Pong", "atari", atari, spaces.Discrete(6)))
        PPO.check(PPOConfig(network="nature"), EnvSpec("CarRacing-v3", "gymnasium", images, spaces.Discrete(5)))


@pytest.mark.parametrize("env, env_kwargs", [
    ("toolkit/MultiIdentity-v0", ("sizes=(2,5)", "start=1")),  # actions numbered from 1 in the env
    ("toolkit/BinaryIdentity-v0", ()),
])
def test_learns_multi_dimensional_discrete_actions(tmp_path, env, env_kwargs):
    """One categorical per action dimension (MultiDiscrete, MultiBinary): every dimension's
    symbol repeated, the optimum 16."""
    run_dir = toolkit.train("ppo", env=env, env_kwargs=env_kwargs, steps=12_000, seed=0, n_envs=4, n_steps=64,
                            batch_size=64, n_epochs=4, learning_rate=3e-3, eval_every=0, eval_episodes=5,
                            checkpoint_every=0, run_dir=str(tmp_path / "r"), progress=False, threads=1)
    evals = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
             if "eval/mean_return" in line]
    assert evals[-1]["eval/mean_return"] >= 15.0


@pytest.mark.parametrize("env, algo_values, run_values", [
    ("Hopper-v5", {"learning_rate": 9.80828e-05, "n_epochs": 5, "gamma": 0.999, "hidden": (256, 256),
                   "ortho_init": False, "log_std_init": -2.0}, {"n_envs": 1}),
    ("HalfCheetah-v5", {"learning_rate": 2.0633e-05, "n_epochs": 20, "clip_range": 0.1, "hidden": (256, 256)}, {}),
    ("Walker2d-v5", {"learning_rate": 5.05041e-05, "n_epochs": 20, "clip_range": 0.1, "max_grad_norm": 1.0,
                     "activation": "relu"}, {}),
    ("Humanoid-v5", {"gamma": 0.95, "batch_size": 256, "clip_range": 0.3}, {"steps": 10_000_000}),
    # rl-zoo3 leaves these two untuned: SB3's defaults (64-unit tanh MLPs), normalised; Swimmer's own gamma
    ("Ant-v5", {"n_steps": 2048, "batch_size": 64, "hidden": (64, 64), "ortho_init": True, "normalize_obs": True,
                "normalize_reward": True}, {"n_envs": 1}),
    ("Swimmer-v5", {"gamma": 0.9999, "n_steps": 1024, "batch_size": 256, "learning_rate": 6e-4,
                    "hidden": (64, 64)}, {"n_envs": 4}),
])
def test_mujoco_preset_gives_each_env_rl_zoo3s_own_settings(env, algo_values, run_values):
    p = plan("ppo", {"env": env})
    assert p.preset == "mujoco"
    assert {name: getattr(p.algo_config, name) for name in algo_values} == algo_values
    assert {name: getattr(p.run, name) for name in run_values} == run_values


def test_box2d_envs_get_rl_zoo3s_settings():
    discrete, continuous = (plan("ppo", {"env": env}) for env in ("LunarLander-v3", "LunarLanderContinuous-v3"))
    assert discrete.preset == continuous.preset == "lunarlander"
    assert (continuous.run.n_envs, continuous.algo_config.n_steps, continuous.algo_config.gamma) == (16, 1024, 0.999)
    walker = plan("ppo", {"env": "BipedalWalker-v3"})
    assert walker.preset == "bipedalwalker" and (walker.run.n_envs, walker.run.steps) == (32, 5_000_000)
    assert (walker.algo_config.clip_range, walker.algo_config.normalize_obs, walker.algo_config.normalize_reward) == (
        0.18, True, True)


def test_refuses_what_it_cannot_model():
    vectors = spaces.Box(-1, 1, (3,), np.float32)
    with pytest.raises(ToolkitError, match="ppo needs a Discrete, MultiDiscrete, MultiBinary"):
        PPO.check(PPOConfig(), EnvSpec("some/Env-v0", "gymnasium", vectors, spaces.MultiBinary((2, 3))))
    with pytest.raises(ToolkitError, match="--use-sde is exploration noise for continuous actions"):
        PPO.check(PPOConfig(use_sde=True), EnvSpec("some/Env-v0", "gymnasium", vectors, spaces.MultiDiscrete([2, 3])))
    with pytest.raises(ToolkitError, match="--network nature needs images \\(C, H, W\\) or \\(H, W, C\\) of at least 36x36"):
        PPO.check(PPOConfig(network="nature"), EnvSpec("some/Env-v0", "gymnasium", vectors, spaces.Discrete(2)))
    small = spaces.Box(0, 255, (32, 32, 3), np.uint8)
    with pytest.raises(ToolkitError, match="at least 36x36"):
        PPO.check(PPOConfig(network="nature"), EnvSpec("some/Env-v0", "gymnasium", small, spaces.Discrete(2)))
    frames = spaces.Box(0, 255, (4, 84, 84), np.uint8)
    with pytest.raises(ToolkitError, match="--normalize-obs is for vector observations"):
        PPO.check(PPOConfig(normalize_obs=True), EnvSpec("Pong", "atari", frames, spaces.Discrete(6)))
