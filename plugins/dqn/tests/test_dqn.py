import json

import numpy as np
import pytest
import torch
from gymnasium import spaces

import toolkit
from toolkit.errors import ToolkitError
from toolkit.interfaces import EnvContext, EnvSpec
from toolkit.replay import ReplayBuffer, UniformSampler
from toolkit.run import plan
from toolkit.testing import check_algorithm
from toolkit_dqn.dqn import (DQN, DQNConfig, build_q_network, memory_format_for, dueling_aggregate, epsilon, td_loss,
                             td_target)


def test_td_target_bootstraps_on_truncation_but_not_on_termination():
    buffer = ReplayBuffer(16, spaces.Box(-1, 1, (1,)), spaces.Discrete(2), sampler=UniformSampler(16))
    one = lambda x: np.array([x])
    buffer.add(one([0.0]), one(0), one(1.0), one([0.5]), one(True), one(False))   # terminated
    buffer.add(one([0.1]), one(1), one(2.0), one([0.7]), one(False), one(True))   # truncated
    batch = buffer.sample(64, gamma=0.9)
    next_q = torch.tensor([[3.0, 5.0]]).repeat(64, 1)
    y = td_target(torch.from_numpy(batch.reward), torch.from_numpy(batch.discount), next_q)
    for obs, value in zip(batch.obs[:, 0], y.numpy()):
        expected = 1.0 if obs == 0.0 else 2.0 + 0.9 * 5.0
        assert value == pytest.approx(expected)


def test_double_dqn_target_uses_online_argmax_and_target_value():
    reward, discount = torch.tensor([1.0, 0.0]), torch.tensor([0.5, 0.5])
    next_q_target = torch.tensor([[10.0, 2.0, 3.0], [1.0, 7.0, 0.0]])
    next_q_online = torch.tensor([[0.0, 9.0, 1.0], [5.0, 0.0, 1.0]])  # picks 1 and 0
    y = td_target(reward, discount, next_q_target, next_q_online)
    assert torch.allclose(y, torch.tensor([1.0 + 0.5 * 2.0, 0.0 + 0.5 * 1.0]))
    plain = td_target(reward, discount, next_q_target)
    assert torch.allclose(plain, torch.tensor([1.0 + 0.5 * 10.0, 0.5 * 7.0]))


def test_n_step_target_stops_at_the_episode_end():
    buffer = ReplayBuffer(16, spaces.Box(-10, 10, (1,)), spaces.Discrete(2), sampler=UniformSampler(16))
    for k, (r, done) in enumerate([(1.0, False), (2.0, False), (4.0, True), (8.0, False)]):
        buffer.add(np.array([[k]]), np.array([0]), np.array([r]), np.array([[k + 1]]), np.array([done]), np.array([False]))
    batch = buffer.sample(200, gamma=0.5, n_step=3)
    next_q = torch.ones(200, 2) * 100.0
    y = td_target(torch.from_numpy(batch.reward), torch.from_numpy(batch.discount), next_q).numpy()
    by_obs = dict(zip(batch.obs[:, 0].tolist(), y.tolist()))
    assert by_obs[0.0] == pytest.approx(1 + 0.5 * 2 + 0.25 * 4)  # hits the terminal: no bootstrap
    assert by_obs[1.0] == pytest.approx(2 + 0.5 * 4)
    assert by_obs[3.0] == pytest.approx(8 + 0.5 * 100)  # newest transition: one step, bootstrapped


def test_epsilon_schedule():
    config = DQNConfig(exploration_initial=1.0, exploration_final=0.1, exploration_fraction=0.5)
    assert [round(epsilon(config, s, 1000), 6) for s in (0, 250, 500, 900)] == [1.0, 0.55, 0.1, 0.1]
    by_steps = DQNConfig(exploration_final=0.1, exploration_steps=100)
    assert epsilon(by_steps, 50, 10**9) == pytest.approx(0.55)


def test_dueling_aggregation_subtracts_the_mean_advantage():
    value = torch.tensor([[2.0], [-1.0]])
    advantage = torch.tensor([[1.0, 2.0, 6.0], [0.0, 0.0, 3.0]])
    q = dueling_aggregate(value, advantage)
    assert torch.allclose(q.mean(dim=1, keepdim=True), value)
    assert torch.allclose(q - value, advantage - advantage.mean(dim=1, keepdim=True))


def test_importance_weights_scale_the_loss():
    q, target = torch.tensor([0.0, 0.0]), torch.tensor([0.5, 3.0])
    assert td_loss(q, target, torch.tensor([1.0, 0.0]), "mse") == pytest.approx(0.25 / 2)
    assert td_loss(q, target, torch.tensor([0.0, 2.0]), "huber") == pytest.approx(2 * 2.5 / 2)


class FixedWeights(UniformSampler):
    """Uniform draws with given importance weights; records the priorities it is sent."""

    weight = 0.0

    def sample(self, batch_size, rng, progress=0.0):
        indices, _ = super().sample(batch_size, rng, progress)
        return indices, np.full(batch_size, self.weight, dtype=np.float32)

    def update_priorities(self, indices, priorities):
        self.sent = (indices.copy(), priorities.copy())


def _dqn_on_identity(**overrides):
    from toolkit.vec_env import make_vec_env

    envs = make_vec_env("toolkit/Identity-v0", 1, 0)
    context = EnvContext(envs.single_observation_space, envs.single_action_space, 1, 0, 1000, 0, "cpu")
    config = DQNConfig(learning_starts=0, batch_size=8, buffer_size=100, hidden=(16,), **overrides)
    return DQN(config, context), envs


def test_zero_importance_weights_leave_the_network_unchanged_and_priorities_flow_back():
    algo, envs = _dqn_on_identity()
    sampler = FixedWeights(100)
    algo.replay.sampler = sampler
    obs, _ = envs.reset(seed=0)
    for _ in range(20):
        action = algo.act(obs, 0)
        next_obs, reward, terminated, truncated, _ = envs.step(action)
        algo.replay.add(obs, action, reward, next_obs, terminated, truncated)
        obs = next_obs
    before = [p.clone() for p in algo.q.parameters()]
    algo.train_step()
    assert all(torch.equal(a, b) for a, b in zip(before, algo.q.parameters()))
    indices, priorities = sampler.sent
    assert len(indices) == 8 and (priorities >= 0).all() and priorities.max() > 0
    sampler.weight = 1.0
    algo.train_step()
    assert not all(torch.equal(a, b) for a, b in zip(before, algo.q.parameters()))
    envs.close()


def test_networks_for_images_and_vectors():
    atari = spaces.Box(0, 255, (4, 84, 84), dtype=np.uint8)
    for network, dueling in (("nature", False), ("nips2013", True)):
        net = build_q_network(DQNConfig(network=network, dueling=dueling), atari, 6)
        assert net(torch.zeros(2, 4, 84, 84, dtype=torch.uint8)).shape == (2, 6)
    assert build_q_network(DQNConfig(), atari, 6).torso.__class__.__name__ == "NatureCNN"
    assert build_q_network(DQNConfig(), spaces.Box(-1, 1, (4,)), 2).torso.__class__.__name__ == "MLPTorso"
    minatar = spaces.Box(0, 1, (4, 10, 10), dtype=np.uint8)  # too small for the Nature CNN's 8x8/4 + 4x4/2 + 3x3/1
    net = build_q_network(DQNConfig(), minatar, 3)
    assert net.torso.__class__.__name__ == "MinAtarCNN"
    assert net(torch.ones(2, 4, 10, 10, dtype=torch.uint8)).shape == (2, 3)


def test_channels_last_images_go_to_the_nature_cnn_and_too_small_ones_are_refused():
    """CarRacing's (96, 96, 3) frames (``--env-kwargs continuous=false``) used to reach the
    Nature CNN as 96 channels of 96x3 and stop the run with a convolution error."""
    car_racing = spaces.Box(0, 255, (96, 96, 3), dtype=np.uint8)
    net = build_q_network(DQNConfig(), car_racing, 5)
    assert net.torso.__class__.__name__ == "NatureCNN" and net.torso.channels_last_input
    assert net(torch.zeros(2, 96, 96, 3, dtype=torch.uint8)).shape == (2, 5)
    spec = EnvSpec("some/Env-v0", "gymnasium", spaces.Box(0, 255, (30, 30, 3), np.uint8), spaces.Discrete(2))
    with pytest.raises(ToolkitError, match="the Nature CNN needs images of at least 36x36 pixels"):
        DQN.check(DQNConfig(), spec)
    with pytest.raises(ToolkitError, match="--network nips2013 is the 2013 CNN for \\(C, 84, 84\\) frame stacks"):
        DQN.check(DQNConfig(network="nips2013"), EnvSpec("CarRacing-v3", "gymnasium", car_racing, spaces.Discrete(5)))


def test_learns_from_channels_last_images(tmp_path):
    run_dir = toolkit.train("dqn", env="toolkit/ImageIdentity-v0", steps=2_000, seed=0, learning_starts=200,
                            exploration_fraction=0.3, target_update_interval=100, eval_every=0, eval_episodes=5,
                            checkpoint_every=0, run_dir=str(tmp_path / "r"), progress=False, threads=1)
    evals = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
             if "eval/mean_return" in line]
    assert evals[-1]["eval/mean_return"] >= 15.0  # optimum 16


def test_channels_last_only_for_the_atari_cnns():
    atari = spaces.Box(0, 255, (4, 84, 84), dtype=np.uint8)
    minatar = spaces.Box(0, 1, (4, 10, 10), dtype=np.uint8)
    assert memory_format_for(DQNConfig(), atari) == torch.channels_last
    assert memory_format_for(DQNConfig(network="nips2013"), atari) == torch.channels_last
    assert memory_format_for(DQNConfig(channels_last=False), atari) == torch.contiguous_format
    assert memory_format_for(DQNConfig(), minatar) == torch.contiguous_format  # its 3x3 conv is faster contiguous
    assert memory_format_for(DQNConfig(), spaces.Box(-1, 1, (4,))) == torch.contiguous_format


def test_target_network_updates_on_schedule():
    algo, envs = _dqn_on_identity(target_update_interval=10, train_frequency=1)
    obs, _ = envs.reset(seed=0)
    for step in range(1, 10):
        action = algo.act(obs, step)
        next_obs, reward, terminated, truncated, _ = envs.step(action)
        algo.replay.add(obs, action, reward, next_obs, terminated, truncated)
        obs = next_obs
        algo.update(step)
    online, target = algo.q.head.weight, algo.target.head.weight
    assert not torch.equal(online, target)  # trained, target not yet synced
    algo.update(10)
    assert torch.equal(algo.q.head.weight, algo.target.head.weight) or algo.updates > 0
    snapshot = algo.target.head.weight.clone()
    algo.update(11)
    assert torch.equal(algo.target.head.weight, snapshot)  # no sync between multiples
    envs.close()


def test_presets_are_applied_automatically():
    assert plan("dqn", {"env": "Pong"}).preset == "nature2015"
    p = plan("dqn", {"env": "Pong"})
    assert (p.algo_config.optimizer, p.algo_config.learning_rate, p.algo_config.buffer_size) == ("rmsprop", 2.5e-4, 1_000_000)
    assert p.algo_config.target_update_interval == 40_000 and p.algo_config.eval_epsilon == 0.001
    assert plan("dqn", {"env": "CartPole-v1"}).preset == "cartpole"
    assert plan("dqn", {"env": "Pong"}, preset="nips2013").algo_config.target_update_interval == 0
    assert plan("dqn", {"env": "Pong", "learning_rate": 1e-4}).algo_config.learning_rate == 1e-4


@pytest.mark.parametrize("overrides", [{}, {"double": True, "dueling": True, "n_step": 3},
                                       {"target_update_interval": 0, "optimizer": "rmsprop"}])
def test_conformance(overrides):
    check_algorithm("dqn", overrides={"learning_starts": 50, "hidden": (16,), "batch_size": 8, **overrides})


def test_conformance_on_frame_stacks():
    check_algorithm("dqn", env="toolkit/Frames-v0", overrides={"learning_starts": 50, "network": "mlp", "hidden": (8,)})


def test_learns_the_identity_task(tmp_path):
    run_dir = toolkit.train("dqn", env="toolkit/Identity-v0", steps=4000, seed=0, learning_starts=200,
                            learning_rate=3e-3, hidden=(32,), exploration_fraction=0.3, target_update_interval=200,
                            train_frequency=1, eval_every=0, eval_episodes=5, run_dir=str(tmp_path / "r"),
                            progress=False)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    final = [r for r in records if "eval/mean_return" in r][-1]
    assert final["eval/mean_return"] >= 15.0  # the optimum is 16


def test_minatar_games_get_the_papers_settings_and_train(tmp_path):
    p = plan("dqn", {"env": "MinAtar/SpaceInvaders-v1"})
    c = p.algo_config
    assert p.preset == "minatar" and (c.network, c.train_frequency, c.target_update_interval, c.learning_rate) == (
        "minatar", 1, 1_000, 2.5e-4)
    # each game at the step size of the paper's learning curves, unless the user gives one
    assert plan("dqn", {"env": "minatar/breakout-v0"}).algo_config.learning_rate == 2**-9  # the id as typed
    assert plan("dqn", {"env": "MinAtar/Seaquest-v1"}).algo_config.learning_rate == 2**-13
    assert plan("dqn", {"env": "MinAtar/Breakout-v1", "learning_rate": 1e-3}).algo_config.learning_rate == 1e-3
    run_dir = toolkit.train("dqn", env="MinAtar/Breakout-v1", steps=600, learning_starts=100, eval_every=0,
                            eval_episodes=1, checkpoint_every=0, progress=False, run_dir=str(tmp_path / "minatar"))
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any("loss/td" in r for r in records) and "eval/mean_return" in records[-1]


def test_a_compiled_optimizer_step_trains_minatar_and_resumes(tmp_path):
    """--compile-optimizer (centred RMSProp under torch.compile) trains, checkpoints and resumes."""
    common = dict(env="MinAtar/Breakout-v1", learning_starts=100, eval_every=0, eval_episodes=1, progress=False,
                  threads=1, compile_optimizer=True)
    run_dir = toolkit.train("dqn", steps=300, checkpoint_every=300, run_dir=str(tmp_path / "run"), **common)
    losses = [json.loads(line)["loss/td"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()
              if "loss/td" in line]
    assert losses and np.isfinite(losses).all()
    toolkit.resume(run_dir, steps=500)
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert max(steps) == 500
