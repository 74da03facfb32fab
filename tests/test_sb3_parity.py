"""The updates against SB3's, the reference our benchmarks compare with: from the same
weights, on the same data (replayed batches for DQN, TD3 and SAC, with the same Gaussian draws
for SAC; one rollout for PPO), toolkit's gradient steps leave the parameters SB3's ``train``
leaves. A difference in a benchmark is then the seed's, not the update rule's."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
import torch
from stable_baselines3 import SAC as SB3SAC
from stable_baselines3 import TD3 as SB3TD3
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from toolkit.interfaces import Batch, EnvContext
from toolkit_sac.sac import SAC, SACConfig
from toolkit_td3.td3 import TD3, TD3Config

BATCH, STEPS, GAMMA = 32, 4, 0.99


def random_batches(env: gymnasium.Env, seed: int) -> list[Batch]:
    """STEPS batches of made-up transitions, a quarter of them terminal."""
    rng = np.random.default_rng(seed)
    obs_dim = env.observation_space.shape[0]
    batches = []
    for _ in range(STEPS):
        terminal = rng.random(BATCH) < 0.25
        if isinstance(env.action_space, gymnasium.spaces.Discrete):
            action = rng.integers(env.action_space.n, size=BATCH)
        else:  # in [-1, 1], the units SAC and TD3 store
            action = rng.uniform(-1, 1, (BATCH, env.action_space.shape[0])).astype(np.float32)
        batches.append(Batch(obs=rng.normal(size=(BATCH, obs_dim)).astype(np.float32), action=action,
                             reward=rng.normal(size=BATCH).astype(np.float32),
                             next_obs=rng.normal(size=(BATCH, obs_dim)).astype(np.float32),
                             discount=np.where(terminal, 0.0, GAMMA).astype(np.float32),
                             indices=np.arange(BATCH), weights=np.ones(BATCH, np.float32)))
    return batches


def feed(ours, sb3, batches: list[Batch]) -> None:
    """Both replays hand out ``batches`` in order: ours as they are, SB3's as its samples."""
    def as_sb3(b: Batch) -> ReplayBufferSamples:
        done = (b.discount == 0).astype(np.float32)
        return ReplayBufferSamples(*(torch.as_tensor(x) for x in (
            b.obs, b.action.reshape(BATCH, -1), b.next_obs, done[:, None], b.reward[:, None])))

    theirs = iter([as_sb3(b) for b in batches])
    sb3.replay_buffer.sample = lambda *args, **kwargs: next(theirs)
    mine = iter(batches)
    ours.replay.sample = lambda *args, **kwargs: next(mine)
    sb3.set_logger(Logger(None, []))


def copy_parameters(pairs) -> None:
    with torch.no_grad():
        for ours, theirs in pairs:
            for mine, reference in zip(ours.parameters(), theirs.parameters(), strict=True):
                mine.copy_(reference)


def assert_same_parameters(pairs, **tolerance) -> None:
    for ours, theirs in pairs:
        for mine, reference in zip(ours.parameters(), theirs.parameters(), strict=True):
            torch.testing.assert_close(mine, reference, **tolerance)


@pytest.fixture
def env():
    env = gymnasium.make("Pendulum-v1")
    yield env
    env.close()


def test_td3_gradient_steps_equal_sb3s(env):
    """Four steps: two actor steps and two target updates (policy_delay 2). Target smoothing is
    off so that neither draws noise (its noise is tested in the plugin's tests)."""
    sb3 = SB3TD3("MlpPolicy", env, learning_rate=1e-3, batch_size=BATCH, tau=0.1, gamma=GAMMA, policy_delay=2,
                 target_policy_noise=0.0, policy_kwargs={"net_arch": [16, 16]}, seed=0, device="cpu")
    ours = TD3(TD3Config(learning_rate=1e-3, batch_size=BATCH, tau=0.1, gamma=GAMMA, policy_delay=2,
                         target_policy_noise=0.0, hidden=(16, 16), learning_starts=0),
               EnvContext(env.observation_space, env.action_space, 1, 0, 1000, 0, "cpu"))
    pairs = [(ours.actor, sb3.actor), (ours.actor_target, sb3.actor_target), (ours.critic, sb3.critic),
             (ours.critic_target, sb3.critic_target)]
    copy_parameters(pairs)
    feed(ours, sb3, random_batches(env, seed=0))

    sb3.train(gradient_steps=STEPS, batch_size=BATCH)
    for _ in range(STEPS):
        ours.train_step()
    assert ours.updates == sb3._n_updates == STEPS
    assert_same_parameters(pairs, rtol=1e-5, atol=1e-6)


# SB3 adds 1e-6 inside log(1 - tanh(u)^2); toolkit uses the exact form (the paper's, and its authors' code's).
# With SB3's form put in its place the updates are equal to float rounding; with the exact form they
# differ where |u| is large (a saturated action), which random batches from 16-unit networks seldom reach.
SAC_TOLERANCE = {"exact": {"rtol": 1e-4, "atol": 1e-5}, "sb3": {"rtol": 1e-5, "atol": 1e-6}}


def sb3s_tanh_log_det(u: torch.Tensor) -> torch.Tensor:
    return torch.log(1 - torch.tanh(u) ** 2 + 1e-6).sum(-1)


@pytest.fixture(params=["exact", "sb3"])
def log_det(request, monkeypatch) -> str:
    """Which tanh log-determinant toolkit's SAC uses: its own, or SB3's log(1 - tanh(u)^2 + 1e-6)."""
    if request.param == "sb3":
        import toolkit.policies
        import toolkit_sac.sac

        monkeypatch.setattr(toolkit.policies, "tanh_log_det_jacobian", sb3s_tanh_log_det)
        monkeypatch.setattr(toolkit_sac.sac, "tanh_log_det_jacobian", sb3s_tanh_log_det)
    return request.param


def train_sac_alike(ours: SAC, sb3: SB3SAC, seed: int) -> None:
    """STEPS gradient steps of each, their noise from generators seeded alike (SB3 draws from
    torch's global one, toolkit from its own)."""
    torch.manual_seed(seed)
    sb3.train(gradient_steps=STEPS, batch_size=BATCH)
    ours.generator.manual_seed(seed)
    for _ in range(STEPS):
        ours.train_step()


def trained_sac_pair(env, mean_bias: float | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Toolkit's and SB3's SAC from the same weights (``mean_bias``: the actor's mean pushed
    there, deep into tanh's saturation), trained alike; returns (ours, SB3's) tensor pairs:
    critics, target critics, the actor's layers and log alpha."""
    sb3 = SB3SAC("MlpPolicy", env, learning_rate=1e-3, batch_size=BATCH, tau=0.1, gamma=GAMMA, ent_coef="auto",
                 policy_kwargs={"net_arch": [16, 16]}, seed=0, device="cpu")
    ours = SAC(SACConfig(learning_rate=1e-3, batch_size=BATCH, tau=0.1, gamma=GAMMA, hidden=(16, 16),
                         learning_starts=0),
               EnvContext(env.observation_space, env.action_space, 1, 0, 1000, 0, "cpu"))
    critics = [(ours.critic, sb3.critic), (ours.critic_target, sb3.critic_target)]
    copy_parameters(critics)
    # SB3's actor has separate mean and log-std heads; toolkit's last layer stacks the two
    sb3_actor = sb3.actor
    with torch.no_grad():
        if mean_bias is not None:
            sb3_actor.mu.bias.fill_(mean_bias)
        for mine, reference in zip(list(ours.actor.body.parameters())[:-2], sb3_actor.latent_pi.parameters(),
                                   strict=True):
            mine.copy_(reference)
        head = ours.actor.body[-1]
        head.weight.copy_(torch.cat([sb3_actor.mu.weight, sb3_actor.log_std.weight]))
        head.bias.copy_(torch.cat([sb3_actor.mu.bias, sb3_actor.log_std.bias]))
    feed(ours, sb3, random_batches(env, seed=1))

    train_sac_alike(ours, sb3, seed=7)
    pairs = [(mine, reference) for ours_net, sb3_net in critics
             for mine, reference in zip(ours_net.parameters(), sb3_net.parameters(), strict=True)]
    pairs += list(zip(list(ours.actor.body.parameters())[:-2], sb3_actor.latent_pi.parameters(), strict=True))
    pairs.append((ours.actor.body[-1].weight, torch.cat([sb3_actor.mu.weight, sb3_actor.log_std.weight])))
    pairs.append((ours.actor.body[-1].bias, torch.cat([sb3_actor.mu.bias, sb3_actor.log_std.bias])))
    pairs.append((ours.log_alpha.detach(), sb3.log_ent_coef.detach().reshape(())))
    return pairs


def test_sac_gradient_steps_equal_sb3s(env, log_det):
    """Temperature, critics, actor and targets, with the same reparameterisation noise: SB3 draws
    it from torch's global generator, toolkit from its own, both seeded alike."""
    for mine, reference in trained_sac_pair(env):
        torch.testing.assert_close(mine.detach(), reference.detach(), **SAC_TOLERANCE[log_det])


def test_sac_departs_from_sb3_only_in_the_tanh_log_det_of_saturated_actions(env, log_det):
    """With the actor's mean at 8 (tanh'(u) ~ 5e-7, below SB3's 1e-6): SB3's form in toolkit
    still gives SB3's parameters; the exact form keeps its gradient -2 tanh(u) there, which SB3's
    loses, so the actor (and through alpha, the critics) move differently."""
    pairs = trained_sac_pair(env, mean_bias=8.0)
    if log_det == "sb3":
        for mine, reference in pairs:
            torch.testing.assert_close(mine.detach(), reference.detach(), **SAC_TOLERANCE["sb3"])
    else:
        gap = max(float((mine.detach() - reference.detach()).abs().max()) for mine, reference in pairs)
        assert gap > 1e-3


def test_sac_with_gsde_gradient_steps_equal_sb3s(env, log_det):
    """gSDE (use_sde): each gradient step draws one noise matrix, reparameterised so the actor's
    loss moves log sigma through it too, and the features keep their gradient. SB3's
    ``reset_noise`` also draws per-env matrices that its update never uses; the test leaves that
    second draw out so both libraries read the same numbers from their generators."""
    from torch.distributions import Normal

    sb3 = SB3SAC("MlpPolicy", env, learning_rate=1e-3, batch_size=BATCH, tau=0.1, gamma=GAMMA, ent_coef="auto",
                 use_sde=True, policy_kwargs={"net_arch": [16, 16], "log_std_init": -2.0}, seed=0, device="cpu")
    ours = SAC(SACConfig(learning_rate=1e-3, batch_size=BATCH, tau=0.1, gamma=GAMMA, hidden=(16, 16),
                         learning_starts=0, use_sde=True, log_std_init=-2.0),
               EnvContext(env.observation_space, env.action_space, 1, 0, 1000, 0, "cpu"))
    sb3_actor, noise = sb3.actor, ours.actor.noise
    pairs = [(ours.critic, sb3.critic), (ours.critic_target, sb3.critic_target), (noise.body, sb3_actor.latent_pi),
             (noise.head, sb3_actor.mu[0])]
    copy_parameters(pairs)
    torch.testing.assert_close(noise.log_std.detach(), sb3_actor.log_std.detach())

    def reset_noise_without_the_unused_draw(batch_size: int = 1) -> None:
        distribution = sb3_actor.action_dist
        std = distribution.get_std(sb3_actor.log_std)
        distribution.weights_dist = Normal(torch.zeros_like(std), std)
        distribution.exploration_mat = distribution.weights_dist.rsample()
        distribution.exploration_matrices = distribution.exploration_mat[None]

    sb3_actor.reset_noise = reset_noise_without_the_unused_draw
    feed(ours, sb3, random_batches(env, seed=2))

    train_sac_alike(ours, sb3, seed=11)
    tolerance = SAC_TOLERANCE[log_det]
    assert_same_parameters(pairs, **tolerance)
    torch.testing.assert_close(noise.log_std.detach(), sb3_actor.log_std.detach(), **tolerance)
    assert not torch.equal(noise.log_std.detach(), torch.full_like(noise.log_std, -2.0))  # sigma learned
    torch.testing.assert_close(ours.log_alpha.detach(), sb3.log_ent_coef.detach().reshape(()), **tolerance)


@pytest.mark.parametrize("env_id, extra", [("Pendulum-v1", {}), ("CartPole-v1", {}),
                                           ("Pendulum-v1", {"use_sde": True, "sde_sample_freq": 4})],
                         ids=["gaussian", "categorical", "gsde"])
def test_ppo_update_equals_sb3s(env_id, extra):
    """A rollout collected by toolkit's PPO, then three epochs: toolkit's update against SB3's
    ``PPO.train`` on the same rollout, from the same weights. Each epoch is one minibatch of the
    whole rollout, so the two libraries' shuffles do not matter; what is compared is the
    advantages (GAE), their normalisation, the clipped surrogate, the (clipped) value loss,
    the entropy bonus, gradient clipping and Adam (and with gSDE, its scale). Value clipping is
    left out: toolkit takes baselines' larger-of-two error, SB3 the clipped error alone."""
    from stable_baselines3 import PPO as SB3PPO
    from torch import nn

    from toolkit.interfaces import Transition
    from toolkit_ppo.ppo import PPO, PPOConfig

    n_steps = 64
    settings = {"n_steps": n_steps, "batch_size": n_steps, "n_epochs": 3, "learning_rate": 3e-3, "gamma": GAMMA,
                "gae_lambda": 0.95, "clip_range": 0.2, "ent_coef": 0.01, "vf_coef": 0.5, "max_grad_norm": 0.5}
    env = gymnasium.make(env_id)
    sb3 = SB3PPO("MlpPolicy", env, **settings, use_sde=extra.get("use_sde", False),
                 sde_sample_freq=extra.get("sde_sample_freq", -1), seed=0, device="cpu",
                 policy_kwargs={"net_arch": {"pi": [16, 16], "vf": [16, 16]}, "activation_fn": nn.Tanh})
    sb3.set_logger(Logger(None, []))
    ours = PPO(PPOConfig(**settings, **extra, hidden=(16, 16)),
               EnvContext(env.observation_space, env.action_space, 1, 0, 10_000, 0, "cpu"))
    policy = sb3.policy
    actor_head, value_head = ours.net.actor, ours.net.critic
    if hasattr(actor_head, "exploration"):  # gSDE: the mean is the head on the noise's features
        mean = nn.Sequential(*actor_head.body, actor_head.head)
    else:
        mean = actor_head.mean if hasattr(actor_head, "mean") else actor_head.logits
    pairs = [(mean, nn.Sequential(*policy.mlp_extractor.policy_net, policy.action_net)),
             (value_head, nn.Sequential(*policy.mlp_extractor.value_net, policy.value_net))]
    copy_parameters(pairs)
    if hasattr(actor_head, "log_std"):
        with torch.no_grad():
            actor_head.log_std.copy_(policy.log_std)

    # toolkit collects the rollout; SB3's buffer gets the same steps, values and log-probs
    obs, _ = env.reset(seed=0)
    episode_start, episodes_ended = True, 0
    buffer = sb3.rollout_buffer
    buffer.reset()
    for step in range(n_steps):
        action = ours.act(obs[None], step)
        stored, raw_action, log_prob, value = ours._last
        next_obs, reward, terminated, truncated, _ = env.step(action[0])
        ours.observe(Transition(obs[None], action, np.array([reward], np.float32), next_obs[None],
                                np.array([terminated]), np.array([truncated]), [{}]))
        buffer.add(stored, raw_action.reshape(1, -1), np.array([reward]), np.array([episode_start]),
                   torch.as_tensor(value), torch.as_tensor(log_prob))
        assert not truncated  # SB3 folds a truncation's bootstrap into the reward; none here
        episode_start = terminated
        episodes_ended += int(terminated)
        obs = env.reset()[0] if terminated else next_obs
    with torch.no_grad():
        last_value = policy.predict_values(torch.as_tensor(obs[None], dtype=torch.float32))
    buffer.compute_returns_and_advantage(last_values=last_value, dones=np.array([episode_start]))

    assert episodes_ended > 0 or env_id == "Pendulum-v1"  # CartPole's GAE crosses episode ends
    ours.update(n_steps)
    sb3.train()
    np.testing.assert_allclose(ours.rollout.advantages.reshape(-1), buffer.advantages.reshape(-1), rtol=1e-5,
                               atol=1e-5)
    # they agree to about 1e-7 here; doubling ent_coef alone moves CartPole's weights by 5e-6
    assert_same_parameters(pairs, rtol=1e-5, atol=1e-6)
    if hasattr(actor_head, "log_std"):
        torch.testing.assert_close(actor_head.log_std, policy.log_std, rtol=1e-5, atol=1e-6)
    env.close()


def test_dqn_gradient_steps_equal_sb3s():
    """Four Huber-loss steps with gradient clipping and Adam, target network held (SB3 syncs it
    outside ``train``, toolkit outside ``train_step``)."""
    from stable_baselines3 import DQN as SB3DQN

    from toolkit_dqn.dqn import DQN, DQNConfig

    env = gymnasium.make("CartPole-v1")
    sb3 = SB3DQN("MlpPolicy", env, learning_rate=1e-3, batch_size=BATCH, gamma=GAMMA, max_grad_norm=10,
                 policy_kwargs={"net_arch": [16, 16]}, seed=0, device="cpu")
    ours = DQN(DQNConfig(learning_rate=1e-3, batch_size=BATCH, gamma=GAMMA, max_grad_norm=10, loss="huber",
                         hidden=(16, 16), network="mlp", learning_starts=0),
               EnvContext(env.observation_space, env.action_space, 1, 0, 1000, 0, "cpu"))
    pairs = [(ours.learner.q, sb3.q_net), (ours.learner.target, sb3.q_net_target)]
    copy_parameters(pairs)
    feed(ours, sb3, random_batches(env, seed=2))

    sb3.train(gradient_steps=STEPS, batch_size=BATCH)
    for _ in range(STEPS):
        ours.train_step()
    assert_same_parameters(pairs, rtol=1e-5, atol=1e-6)
    env.close()
