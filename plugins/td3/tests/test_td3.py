import json

import numpy as np
import pytest
import torch
from gymnasium import spaces

import toolkit
from toolkit.errors import ToolkitError
from toolkit.interfaces import EnvContext, EnvSpec, Transition
from toolkit.run import plan
from toolkit.testing import check_algorithm
from toolkit_td3.td3 import OU_DT, OU_THETA, TD3, TD3Config, ornstein_uhlenbeck_step, smoothed_target_action


def test_target_smoothing_noise_is_clipped_and_the_action_stays_in_range():
    target = torch.tensor([[0.0, 0.95, -0.95]]).repeat(10_000, 1)
    smoothed = smoothed_target_action(target, noise_std=0.2, noise_clip=0.5, generator=torch.Generator().manual_seed(0))
    noise = smoothed[:, 0]
    assert noise.abs().max() <= 0.5 and noise.abs().max() > 0.45  # clipped at c, and reaching it
    assert noise.std().item() == pytest.approx(0.2, rel=0.1)
    assert smoothed.max() <= 1.0 and smoothed.min() >= -1.0
    torch.testing.assert_close(smoothed_target_action(target, 0.0, 0.5), target)


def test_ornstein_uhlenbeck_noise_is_correlated_and_settles_to_its_std():
    rng, sigma = np.random.default_rng(0), 0.5
    chains = np.zeros(4000)  # independent processes, each started at 0
    history = []
    for _ in range(4000):  # six time constants 1 / (theta dt)
        chains = ornstein_uhlenbeck_step(chains, sigma, rng.standard_normal(chains.shape))
        history.append(chains)
    settled = np.array(history[-300:])
    decay = 1 - OU_THETA * OU_DT
    assert settled[-1].std() == pytest.approx(sigma * np.sqrt(OU_DT / (1 - decay**2)), rel=0.05)  # about 0.91
    lag = 100
    correlation = np.corrcoef(settled[0], settled[lag])[0, 1]
    assert correlation == pytest.approx(decay**lag, abs=0.03)  # about 0.86: the noise keeps its direction
    assert np.all(ornstein_uhlenbeck_step(np.ones(3), 0.0, np.zeros(3)) == 1 - OU_THETA * OU_DT)


def test_ornstein_uhlenbeck_exploration_restarts_each_episode_and_is_checkpointed():
    context = EnvContext(spaces.Box(-1, 1, (3,), np.float32), spaces.Box(-2, 2, (2,), np.float32), 2, 0, 1000, 0,
                         "cpu")
    algo = TD3(TD3Config(learning_starts=0, hidden=(8,), exploration_noise_type="ornstein-uhlenbeck",
                         exploration_noise=0.5), context)
    obs = np.zeros((2, 3), np.float32)
    steps = [algo.act(obs, t) for t in range(3)]
    assert not np.array_equal(steps[1], steps[2]) and np.all(algo.ou_noise != 0)
    algo.observe(Transition(obs, steps[-1], np.zeros(2, np.float32), obs, np.array([True, False]),
                            np.zeros(2, bool)))
    assert np.all(algo.ou_noise[0] == 0) and np.all(algo.ou_noise[1] != 0)  # env 0's episode ended
    restored = TD3(algo.config, context)
    restored.load_state_dict(algo.state_dict())
    np.testing.assert_array_equal(restored.ou_noise, algo.ou_noise)
    np.testing.assert_array_equal(restored.act(obs, 3), algo.act(obs, 3))


def test_mountaincar_preset_explores_with_ornstein_uhlenbeck_noise():
    p = plan("td3", {"env": "MountainCarContinuous-v0"})
    assert p.preset == "mountaincar"
    assert (p.algo_config.exploration_noise_type, p.algo_config.exploration_noise, p.run.steps) == (
        "ornstein-uhlenbeck", 0.5, 300_000)


def _context():
    return EnvContext(spaces.Box(-1, 1, (3,), np.float32), spaces.Box(-2, 2, (2,), np.float32), 1, 0, 1000, 0, "cpu")


def _filled(config):
    algo = TD3(config, _context())
    rng = np.random.default_rng(0)
    for t in range(64):
        obs = rng.normal(size=(1, 3)).astype(np.float32)
        action = algo.act(obs, t)
        assert np.all(np.abs(action) <= 2.0)
        algo.observe(Transition(obs, action, rng.normal(size=1).astype(np.float32),
                                rng.normal(size=(1, 3)).astype(np.float32), np.zeros(1, bool), np.zeros(1, bool)))
    return algo


def test_actor_and_targets_move_only_every_policy_delay_critic_updates():
    algo = _filled(TD3Config(learning_starts=0, batch_size=16, hidden=(8,), policy_delay=3))
    moved = []
    for _ in range(6):
        actor, critic = algo.actor.body[0].weight.clone(), algo.critic.q1[0].weight.clone()
        targets = algo.actor_target.body[0].weight.clone(), algo.critic_target.q1[0].weight.clone()
        metrics = algo.train_step()
        assert not torch.equal(critic, algo.critic.q1[0].weight)  # the critics learn every step
        moved.append((not torch.equal(actor, algo.actor.body[0].weight),
                      not torch.equal(targets[0], algo.actor_target.body[0].weight),
                      not torch.equal(targets[1], algo.critic_target.q1[0].weight), "loss/actor" in metrics))
    assert moved == [(False,) * 4, (False,) * 4, (True,) * 4] * 2


def test_exported_module_is_the_evaluation_policy():
    algo = TD3(TD3Config(hidden=(8,)), _context())
    obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(algo.policy_module()(torch.as_tensor(obs)).numpy(), algo.policy()(obs), atol=1e-6)


@pytest.mark.parametrize("overrides", [{}, {"gradient_steps": -1, "train_frequency": 4, "policy_delay": 1},
                                       {"exploration_noise_type": "ornstein-uhlenbeck", "exploration_noise": 0.5}])
def test_conformance(overrides):
    check_algorithm("td3", env="toolkit/IdentityContinuous-v0", steps=200,
                    overrides={"learning_starts": 50, "batch_size": 16, "hidden": (16,), **overrides})


def test_conformance_with_prioritized_replay():
    pytest.importorskip("toolkit_per")
    check_algorithm("td3", env="toolkit/IdentityContinuous-v0", steps=150,
                    overrides={"learning_starts": 50, "batch_size": 16, "hidden": (16,), "replay": "prioritized"})


def test_mujoco_preset_takes_rl_zoo3s_per_env_changes():
    hopper, swimmer, humanoid = (plan("td3", {"env": env}) for env in ("Hopper-v5", "Swimmer-v5", "Humanoid-v5"))
    assert hopper.preset == swimmer.preset == humanoid.preset == "mujoco"
    assert (hopper.algo_config.gamma, hopper.algo_config.learning_starts, hopper.run.steps) == (0.99, 10_000, 1_000_000)
    assert (swimmer.algo_config.gamma, swimmer.run.steps) == (0.9999, 1_000_000)
    assert (humanoid.algo_config.gamma, humanoid.run.steps) == (0.99, 2_000_000)
    lander, walker = (plan("td3", {"env": env}) for env in ("LunarLanderContinuous-v3", "BipedalWalker-v3"))
    assert lander.preset == walker.preset == "box2d"
    assert (lander.algo_config.gamma, lander.algo_config.buffer_size, lander.run.steps) == (0.98, 200_000, 300_000)
    assert (walker.algo_config.gamma, walker.run.steps) == (0.98, 1_000_000)


def test_refuses_discrete_actions():
    with pytest.raises(ToolkitError, match="td3 needs a continuous"):
        TD3.check(TD3Config(), EnvSpec("e", "gymnasium", spaces.Box(-1, 1, (3,), np.float32), spaces.Discrete(2)))


def test_learns_the_continuous_identity_task_with_several_envs(tmp_path):
    run_dir = toolkit.train("td3", env="toolkit/IdentityContinuous-v0", seed=0, steps=1500, learning_starts=200,
                            hidden=(32, 32), batch_size=64, n_envs=2, learning_rate=3e-3, eval_every=0, eval_episodes=5,
                            checkpoint_every=0, progress=False, threads=1, run_dir=str(tmp_path / "run"))
    evals = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
             if "eval/mean_return" in line]
    assert evals[-1]["eval/mean_return"] > -0.5  # optimum 0; always answering 0 scores about -11


class _Silent:
    def episode(self, *args):
        pass

    def metrics(self, step, metrics):
        pass

    def progress(self, step):
        pass


def test_replay_holds_each_env_step_and_bootstraps_at_the_time_limit():
    """The data path that the parity test with SB3 (tests/test_sb3_parity.py) does not cover:
    through the core env loop, with two envs and episodes cut by a time limit (as every
    HalfCheetah episode is), each replayed transition is a step an env took: its observation,
    the action sent (in [-1, 1] units), its reward, the true next observation (the episode's
    last, not the reset's, where it was cut) and the discount gamma (a cut is bootstrapped)."""
    from toolkit.loops import env_loop
    from toolkit.vec_env import make_vec_env

    envs = make_vec_env("Pendulum-v1", 2, 0, max_episode_steps=30)
    context = EnvContext(envs.single_observation_space, envs.single_action_space, 2, 0, 400, 0, "cpu")
    algo = TD3(TD3Config(learning_starts=100, batch_size=16, hidden=(8,)), context)
    taken = {}
    observe = algo.observe

    def recording(t):
        for e in range(2):
            taken[t.obs[e].tobytes()] = (t.action[e], t.reward[e], t.next_obs[e], bool(t.truncated[e]))
        observe(t)

    algo.observe = recording
    obs, _ = envs.reset(seed=0)
    env_loop(algo, envs, obs, step=0, total_steps=400, report=_Silent())
    envs.close()
    assert len(taken) == 400 and sum(cut for *_, cut in taken.values()) == 12  # 200 steps per env, cut every 30

    batch = algo.replay.sample(3000, gamma=0.99)
    cuts = 0
    for i in range(len(batch.obs)):
        action, reward, next_obs, cut = taken[batch.obs[i].tobytes()]
        np.testing.assert_allclose(batch.action[i] * 2.0, action, atol=1e-6)  # Pendulum's box is [-2, 2]
        assert batch.reward[i] == np.float32(reward) and batch.discount[i] == np.float32(0.99)
        np.testing.assert_array_equal(batch.next_obs[i], next_obs)
        cuts += cut
    assert cuts > 0


# -- images: --network nature ----------------------------------------------------------------


def test_conformance_with_the_nature_cnn_on_images():
    check_algorithm("td3", env="toolkit/ImageIdentity-v0", env_kwargs={"continuous": True}, steps=100,
                    overrides={"learning_starts": 40, "batch_size": 8, "hidden": (16,), "buffer_size": 1000,
                               "network": "nature", "policy_delay": 1})


def test_the_cnn_keeps_images_uint8_in_replay_and_only_the_critic_loss_moves_the_critics_cnn():
    images = spaces.Box(0, 255, (3, 40, 40), np.uint8)
    context = EnvContext(images, spaces.Box(-2, 2, (2,), np.float32), 1, 0, 1000, 0, "cpu")
    algo = TD3(TD3Config(network="nature", hidden=(8,), batch_size=8, learning_starts=0, buffer_size=64,
                         policy_delay=2), context)
    assert algo.replay.frames.dtype == np.uint8 and algo.replay.frames.shape[2:] == (3, 40, 40)
    cnns = [algo.actor.body[0], algo.actor_target.body[0], algo.critic.encoder, algo.critic_target.encoder]
    assert len({id(cnn) for cnn in cnns}) == 4  # SB3's share_features_extractor=False; the targets have copies
    rng = np.random.default_rng(0)
    for t in range(16):
        obs = rng.integers(0, 256, (1, 3, 40, 40), dtype=np.uint8)
        algo.observe(Transition(obs, algo.act(obs, t), np.ones(1, np.float32),
                                rng.integers(0, 256, (1, 3, 40, 40), dtype=np.uint8), np.zeros(1, bool), np.zeros(1, bool)))
    weights = [cnn.convs[0].weight.clone() for cnn in cnns]
    algo.train_step()  # a critic step only (policy_delay 2)
    assert [not torch.equal(w, cnn.convs[0].weight) for w, cnn in zip(weights, cnns)] == [False, False, True, False]
    critic_after_its_step = algo.critic.encoder.convs[0].weight.clone()
    for group in algo.critic_optimizer.param_groups:  # keep the critic's own update out: what could move it now is
        group["lr"] = 0.0                                # the actor's loss, which must not
    algo.train_step()
    assert torch.equal(critic_after_its_step, algo.critic.encoder.convs[0].weight)
    assert not torch.equal(weights[0], algo.actor.body[0].convs[0].weight)
    with torch.no_grad():  # the exported module takes the env's uint8 frames
        np.testing.assert_allclose(algo.policy_module()(torch.as_tensor(obs)).numpy(), algo.policy()(obs), atol=1e-6)


def test_network_nature_needs_images():
    vectors = EnvSpec("e", "gymnasium", spaces.Box(-1, 1, (3,), np.float32), spaces.Box(-1, 1, (1,), np.float32))
    with pytest.raises(ToolkitError, match="--network nature needs images"):
        TD3.check(TD3Config(network="nature"), vectors)
