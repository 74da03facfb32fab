"""The off-policy updates against SB3's, the reference our benchmarks compare with: from the
same weights, on the same batches (and for SAC the same Gaussian draws), a few gradient steps
of toolkit's TD3 and SAC leave the parameters SB3's ``train`` leaves. A difference in a
benchmark is then the seed's, not the update rule's."""

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
    obs_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
    batches = []
    for _ in range(STEPS):
        terminal = rng.random(BATCH) < 0.25
        batches.append(Batch(obs=rng.normal(size=(BATCH, obs_dim)).astype(np.float32),
                             action=rng.uniform(-1, 1, (BATCH, action_dim)).astype(np.float32),
                             reward=rng.normal(size=BATCH).astype(np.float32),
                             next_obs=rng.normal(size=(BATCH, obs_dim)).astype(np.float32),
                             discount=np.where(terminal, 0.0, GAMMA).astype(np.float32),
                             indices=np.arange(BATCH), weights=np.ones(BATCH, np.float32)))
    return batches


def feed(ours, sb3, batches: list[Batch]) -> None:
    """Both replays hand out ``batches`` in order: ours as they are, SB3's as its samples."""
    theirs = iter([ReplayBufferSamples(*(torch.as_tensor(x) for x in (
        b.obs, b.action, b.next_obs, (b.discount == 0).astype(np.float32)[:, None], b.reward[:, None])))
        for b in batches])
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


def test_sac_gradient_steps_equal_sb3s(env):
    """Temperature, critics, actor and targets, with the same reparameterisation noise: SB3 draws
    it from torch's global generator, toolkit from its own, both seeded alike. The tolerance
    covers SB3's log(1 - tanh(u)^2 + 1e-6) against toolkit's exact form."""
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
        for mine, reference in zip(list(ours.actor.body.parameters())[:-2], sb3_actor.latent_pi.parameters(),
                                   strict=True):
            mine.copy_(reference)
        head = ours.actor.body[-1]
        head.weight.copy_(torch.cat([sb3_actor.mu.weight, sb3_actor.log_std.weight]))
        head.bias.copy_(torch.cat([sb3_actor.mu.bias, sb3_actor.log_std.bias]))
    feed(ours, sb3, random_batches(env, seed=1))

    torch.manual_seed(7)
    sb3.train(gradient_steps=STEPS, batch_size=BATCH)
    ours.generator.manual_seed(7)
    for _ in range(STEPS):
        ours.train_step()

    tolerance = {"rtol": 1e-4, "atol": 1e-5}
    assert_same_parameters(critics, **tolerance)
    latent = list(ours.actor.body.parameters())[:-2]
    for mine, reference in zip(latent, sb3_actor.latent_pi.parameters(), strict=True):
        torch.testing.assert_close(mine, reference, **tolerance)
    torch.testing.assert_close(ours.actor.body[-1].weight,
                               torch.cat([sb3_actor.mu.weight, sb3_actor.log_std.weight]), **tolerance)
    torch.testing.assert_close(ours.log_alpha.detach(), sb3.log_ent_coef.detach().reshape(()), **tolerance)
