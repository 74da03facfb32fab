import json

import numpy as np
import pytest
import torch
from gymnasium import spaces

import toolkit
from toolkit.interfaces import EnvContext, Transition
from toolkit.testing import check_algorithm
from toolkit_hdqn.envs import KeyDoorEnv, StochasticChainEnv, goal_names_of
from toolkit_hdqn.hdqn import HDQN, HDQNConfig, option_discount


def test_stochastic_chain_dynamics_and_rewards():
    env = StochasticChainEnv()
    obs, info = env.reset(seed=0)
    assert obs.argmax() == 1 and info["achieved_goals"].tolist() == [False, True, False, False, False, False]
    # "left" always moves left; from s2 that ends the episode with the small reward
    _, reward, terminated, _, info = env.step(StochasticChainEnv.LEFT)
    assert terminated and reward == pytest.approx(0.01) and info["achieved_goals"][0]
    # "right" moves right half of the time
    moves = []
    for _ in range(2000):
        env.reset()
        obs, *_ = env.step(StochasticChainEnv.RIGHT)
        moves.append(obs.argmax() == 2)
    assert np.mean(moves) == pytest.approx(0.5, abs=0.04)
    # visiting s6 first makes s1 pay 1
    env.reset()
    env._state = 4
    while env._state != 5:
        env.step(StochasticChainEnv.RIGHT)
    rewards = [env.step(StochasticChainEnv.LEFT)[1] for _ in range(5)]
    assert rewards == [0.0, 0.0, 0.0, 0.0, 1.0]


def test_key_door_needs_the_key_before_the_door():
    env = KeyDoorEnv(size=5)
    env.reset(seed=0)
    env._agent = (2, 1)  # left of the door at (2, 2)
    _, _, _, _, info = env.step(3)  # right: blocked without the key
    assert env._agent == (2, 1) and not info["achieved_goals"][1]
    env._has_key = True
    _, _, _, _, info = env.step(3)
    assert env._agent == (2, 2) and info["achieved_goals"].tolist() == [False, True, False]
    env._agent = (4, 3)
    _, reward, terminated, _, info = env.step(3)
    assert (reward, terminated) == (1.0, True) and info["achieved_goals"][2]


@pytest.mark.parametrize("env_id, size", [("toolkit/KeyDoor-v0", 9), ("toolkit/KeyDoorLarge-v0", 15)])
def test_key_door_rooms_end_after_200_steps(env_id, size):
    from toolkit_hdqn.envs import resolve

    env = resolve(env_id).make()
    obs, _ = env.reset(seed=0)
    assert obs.shape == (size * size + 2,) and env.unwrapped.size == size
    truncated = [env.step(2)[3] for _ in range(200)]  # walking into the left wall
    assert truncated == [False] * 199 + [True]


def test_goal_interface_is_required():
    import gymnasium as gym

    with pytest.raises(ValueError, match="needs a goal environment"):
        goal_names_of(gym.make("CartPole-v1"))


def test_option_discount_is_gamma_to_the_option_length():
    np.testing.assert_allclose(option_discount(np.array([0.9, 0.0, 0.9]), np.array([3.0, 2.0, 1.0]), 0.9),
                               [0.9**3, 0.0, 0.9])


def _chain_agent(n_envs: int = 1) -> HDQN:
    context = EnvContext(spaces.Box(0, 1, (6,), np.float32), spaces.Discrete(2), n_envs=n_envs, frame_stack=0,
                         total_steps=1000, seed=0, device="cpu", env_id="toolkit/StochasticChain-v0")
    return HDQN(HDQNConfig(controller_buffer_size=100, meta_buffer_size=100, hidden=(8,)), context)


def _one_hot(state: int) -> np.ndarray:
    obs = np.zeros((1, 6), dtype=np.float32)
    obs[0, state] = 1
    return obs


def _step(agent: HDQN, state: int, next_state: int, reward: float, terminated: bool = False) -> None:
    obs, next_obs = _one_hot(state), _one_hot(next_state)
    action = agent.act(obs, 0)
    infos = {"achieved_goals": next_obs.astype(bool), "_achieved_goals": np.array([True])}
    agent.observe(Transition(obs, action, np.array([reward]), next_obs, np.array([terminated]), np.array([False]), infos))


def test_critic_rewards_the_controller_only_when_its_goal_is_reached_and_ends_the_option():
    agent = _chain_agent()
    agent.act(_one_hot(1), 0)
    agent.goals[:] = 3  # pursue s4
    agent.needs_goal[:] = False
    _step(agent, 1, 2, 0.0)  # s3: not the goal
    assert not agent.needs_goal[0] and len(agent.meta_replay) == 0
    _step(agent, 2, 3, 0.0)  # s4: reached
    assert agent.needs_goal[0]
    stored = agent.controller_replay.rewards[:2, 0]
    np.testing.assert_array_equal(stored, [0.0, 1.0])
    np.testing.assert_array_equal(agent.controller_replay.extras["goal"][:2, 0], [3, 3])
    np.testing.assert_array_equal(agent.controller_replay.extras["reached"][:2, 0], [0, 1])
    # the meta-controller got one transition: from s2, goal s4, N = 2 steps
    assert len(agent.meta_replay) == 1
    assert agent.meta_replay.actions[0, 0] == 3 and agent.meta_replay.extras["option_length"][0, 0] == 2
    np.testing.assert_array_equal(agent.meta_replay.frames[0, 0], _one_hot(1)[0])
    np.testing.assert_array_equal(agent.meta_replay.frames[1, 0], _one_hot(3)[0])


def test_meta_transition_sums_the_extrinsic_reward_and_ends_with_the_episode():
    agent = _chain_agent()
    agent.act(_one_hot(1), 0)
    agent.goals[:] = 5  # pursue s6, never reached: the episode ends first
    agent.needs_goal[:] = False
    _step(agent, 1, 2, 0.5)
    _step(agent, 2, 1, 0.25)
    assert len(agent.meta_replay) == 0
    _step(agent, 1, 0, 0.01, terminated=True)
    assert len(agent.meta_replay) == 1 and agent.needs_goal[0]
    assert agent.meta_replay.rewards[0, 0] == pytest.approx(0.76)  # F: the extrinsic sum over the option
    assert agent.meta_replay.actions[0, 0] == 5 and agent.meta_replay.extras["option_length"][0, 0] == 3
    batch = agent.meta_replay.sample(4, gamma=0.9)
    np.testing.assert_array_equal(batch.discount, 0.0)  # the option ended with the episode: no bootstrap


def test_options_time_out_after_max_option_steps():
    agent = _chain_agent()
    agent.config = HDQNConfig(max_option_steps=2)
    agent.act(_one_hot(1), 0)
    agent.goals[:] = 5
    agent.needs_goal[:] = False
    _step(agent, 1, 2, 0.0)
    assert not agent.needs_goal[0]
    _step(agent, 2, 3, 0.0)
    assert agent.needs_goal[0] and len(agent.meta_replay) == 1
    assert agent.meta_replay.sample(1, gamma=0.9).discount[0] == pytest.approx(0.9)  # gamma, raised to N in training


def test_goal_success_rate_follows_recent_options():
    from toolkit_hdqn.hdqn import SUCCESS_WINDOW

    agent = _chain_agent()
    agent.act(_one_hot(1), 0)

    def option(reached: bool) -> None:  # one single-step option with goal s3 that reaches it or ends the episode
        agent.goals[:], agent.needs_goal[:] = 2, False
        _step(agent, 1, 2 if reached else 0, 0.0, terminated=not reached)

    for _ in range(3):
        option(False)
    option(True)
    assert agent.goal_options[2] == 4 and agent.goal_success_rate[2] == pytest.approx(0.25)  # a plain mean at first
    for _ in range(5 * SUCCESS_WINDOW):
        option(True)
    # after many more options the early failures are forgotten, unlike a lifetime success count
    assert agent.goal_success_rate[2] > 0.99
    start = agent.config.learning_starts
    agent.update(start - 1)  # before learning starts: nothing to report
    metrics = agent.update(start)  # one update
    assert metrics["train/goal_success/s3"] == pytest.approx(agent.goal_success_rate[2])
    assert "train/goal_success/s6" not in metrics  # no option has pursued s6 yet


def test_options_that_begin_on_their_goal_do_not_count_towards_its_success_rate():
    agent = _chain_agent()
    agent.config = HDQNConfig(max_option_steps=1)
    agent.choose_goals = lambda obs, epsilon, rng: np.array([2])  # always pursue s3
    _step(agent, 1, 2, 0.0)  # from s2 to s3: reached
    assert agent.goal_options[2] == 1 and agent.goal_success_rate[2] == 1.0
    _step(agent, 2, 3, 0.0)  # the next option for s3 began on s3; it times out in s4
    assert len(agent.meta_replay) == 2  # the meta-controller still learns from it
    assert agent.goal_options[2] == 1 and agent.goal_success_rate[2] == 1.0
    _step(agent, 3, 4, 0.0)  # began in s4, away from s3, and fails: counted
    assert agent.goal_options[2] == 2 and agent.goal_success_rate[2] == 0.5


def test_montezuma_critic_counts_a_live_player_standing_in_a_region():
    from toolkit_hdqn.envs import DEAD_SPRITE, RAM_AIRBORNE, RAM_DYING, RAM_ROOM, RAM_SPRITE, RAM_X, RAM_Y, \
        montezuma_goals_reached

    ram = np.zeros(128, dtype=np.uint8)
    ram[RAM_ROOM], ram[RAM_X], ram[RAM_Y], ram[RAM_SPRITE] = 1, 30, 148, 6  # on the lower floor, left
    assert montezuma_goals_reached(ram).tolist() == [False, False, False, True, False]
    for byte, value in ((RAM_AIRBORNE, 41), (RAM_DYING, 12), (RAM_SPRITE, DEAD_SPRITE), (RAM_ROOM, 0)):
        other = ram.copy()
        other[byte] = value  # falling through, dying there, lying dead, or in another room
        assert not montezuma_goals_reached(other).any()


@pytest.mark.parametrize("controller_gamma, discount", [(0.0, 0.9), (0.5, 0.5)])
def test_controller_bootstraps_with_its_own_discount(controller_gamma, discount):
    agent = _chain_agent()
    agent.config = HDQNConfig(gamma=0.9, controller_gamma=controller_gamma, hidden=(8,))
    agent.act(_one_hot(1), 0)
    for _ in range(8):  # transitions that do not reach the goal s6 and do not end the episode
        agent.goals[:], agent.needs_goal[:] = 5, False
        _step(agent, 1, 2, 0.0)
    with torch.no_grad():  # the target network says Q' = 1 everywhere, the online one 0
        for network, value in ((agent.controller.target, 1.0), (agent.controller.q, 0.0)):
            last = [m for m in network.modules() if isinstance(m, torch.nn.Linear)][-1]
            last.weight.zero_()
            last.bias.fill_(value)
    # target = 0 + discount * max_a' Q'(s', a') = discount; squared error to 0
    assert agent.controller_step(0)["loss/controller"] == pytest.approx(discount**2)


def test_meta_controller_picks_random_goals_in_phase_one():
    agent = _chain_agent()
    agent.config = HDQNConfig(pretrain_steps=100, meta_exploration_steps=100, exploration_final=0.1)
    assert agent.epsilons(50)[1] == 1.0
    assert agent.epsilons(150)[1] == pytest.approx(0.55)
    assert agent.epsilons(1_000_000) == pytest.approx((0.1, 0.1))


@pytest.mark.parametrize("env", ["toolkit/StochasticChain-v0", "toolkit/KeyDoor-v0"])
def test_conformance(env):
    check_algorithm("hdqn", env=env, overrides={"learning_starts": 50, "hidden": (16,), "batch_size": 8,
                                                "controller_buffer_size": 500, "meta_buffer_size": 200})


def test_prioritized_replay_at_both_levels_conforms():
    pytest.importorskip("toolkit_per")
    check_algorithm("hdqn", env="toolkit/StochasticChain-v0",
                    overrides={"learning_starts": 50, "hidden": (16,), "batch_size": 8, "controller_replay": "prioritized",
                               "meta_replay": "rank", "controller_buffer_size": 500, "meta_buffer_size": 200})


def test_learns_to_visit_s6_first_on_the_stochastic_chain(tmp_path):
    """The flat optimum without memory is about 0.01-0.05; going to s6 first averages ~0.2."""
    run_dir = toolkit.train("hdqn", env="toolkit/StochasticChain-v0", seed=0, steps=12_000, pretrain_steps=2_000,
                            controller_exploration_steps=4_000, meta_exploration_steps=6_000, eval_every=0,
                            eval_episodes=200, checkpoint_every=0, progress=False, threads=1,
                            run_dir=str(tmp_path / "run"))
    evals = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if "eval/mean_return" in line]
    assert evals[-1]["eval/mean_return"] > 0.1


def test_montezuma_pipeline_runs_end_to_end(tmp_path):
    """The Atari pipeline: frame stacks with the goal mask channel for the controller, the RAM
    oracle as critic, both replays (the full run needs far more steps than a test can take)."""
    run_dir = toolkit.train("hdqn", env="MontezumaRevenge-goals", seed=0, steps=300, learning_starts=100,
                            train_frequency=4, controller_buffer_size=2_000, meta_buffer_size=500, pretrain_steps=200,
                            batch_size=8, eval_every=0, eval_episodes=1, max_episode_steps=200, checkpoint_every=0,
                            progress=False, threads=1, run_dir=str(tmp_path / "run"))
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any("loss/controller" in r for r in records)
    assert any("train/goal_success/middle ladder bottom" in r for r in records)
