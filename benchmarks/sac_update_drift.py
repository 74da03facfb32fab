"""How far toolkit's SAC update drifts from SB3's over many gradient steps on a real run's replay.

``tests/test_sb3_parity.py`` checks a few gradient steps on made-up batches. This script takes a
toolkit SAC checkpoint that holds its replay (a run's ``best.pt`` or a step checkpoint with
``--save-replay``), loads the same weights into SB3's SAC, and trains both on the same batches
with the same Gaussian draws for ``--steps`` gradient steps. Beside them it trains a second copy of
toolkit's SAC whose first weight is moved by one float32 ulp: how fast that twin parts from toolkit
is the float chaos any two runs share; toolkit parting from SB3 faster than that is a systematic
difference in the update. ``--log-det sb3`` puts SB3's tanh log-determinant,
log(1 - tanh(u)^2 + 1e-6), in place of toolkit's exact one (the only difference known). First it
prints what that difference weighs: the actor's gradient under each form, averaged over
``--gradient-batches`` batches of the replay (the bias of the expected gradient, which steers a
long run, rather than one step's difference, which Adam magnifies in small coordinates), and
the mean difference in log pi (what the temperature's gradient and the soft target see).

    python benchmarks/sac_update_drift.py runs/ppo_sac_td3/toolkit-sac-Hopper-v5-seed1-300000/best.pt --steps 300

Both optimisers start fresh (SB3 has no way to take toolkit's Adam moments), as does the temperature's.
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
import torch

REPORT_AT = (1, 2, 5, 10, 20, 50, 100, 200, 300, 500, 1000, 2000, 5000)


def sb3s_tanh_log_det(u: torch.Tensor) -> torch.Tensor:
    return torch.log(1 - torch.tanh(u) ** 2 + 1e-6).sum(-1)


def restore(path: str):
    """Toolkit's SAC at the checkpoint, its replay loaded, its optimisers fresh."""
    from toolkit.offline import restore_algorithm

    restored = restore_algorithm(path, device="cpu")
    sac = restored.algorithm
    if "replay" not in restored.state:
        raise SystemExit(f"{path} holds no replay: take a run's best.pt or a checkpoint saved with --save-replay")
    sac.replay.load_state_dict(restored.state["replay"]["replay"])
    learning_rate = sac.config.learning_rate
    sac.actor_optimizer = torch.optim.Adam(sac.actor.parameters(), lr=learning_rate)
    sac.critic_optimizer = torch.optim.Adam(sac.critic.parameters(), lr=learning_rate)
    sac.alpha_optimizer = torch.optim.Adam([sac.log_alpha], lr=learning_rate)
    return restored


def sb3_copy(sac, env_id: str):
    """SB3's SAC with toolkit's weights (its actor's mean and log-std heads are toolkit's stacked head, split)."""
    import gymnasium
    from stable_baselines3 import SAC as SB3SAC
    from stable_baselines3.common.logger import Logger

    c = sac.config
    sb3 = SB3SAC("MlpPolicy", gymnasium.make(env_id), learning_rate=c.learning_rate, batch_size=c.batch_size, tau=c.tau,
                 gamma=c.gamma, learning_starts=0, policy_kwargs={"net_arch": list(c.hidden)}, device="cpu")
    with torch.no_grad():
        for ours, theirs in ((sac.critic, sb3.critic), (sac.critic_target, sb3.critic_target)):
            for mine, reference in zip(ours.parameters(), theirs.parameters(), strict=True):
                reference.copy_(mine)
        for mine, reference in zip(list(sac.actor.body.parameters())[:-2], sb3.actor.latent_pi.parameters(), strict=True):
            reference.copy_(mine)
        head, n = sac.actor.body[-1], sac.action_dim
        sb3.actor.mu.weight.copy_(head.weight[:n])
        sb3.actor.log_std.weight.copy_(head.weight[n:])
        sb3.actor.mu.bias.copy_(head.bias[:n])
        sb3.actor.log_std.bias.copy_(head.bias[n:])
        sb3.log_ent_coef.copy_(sac.log_alpha.reshape(sb3.log_ent_coef.shape))
    sb3.set_logger(Logger(None, []))
    return sb3


def log_det_difference(sac, batches: int, seed: int) -> dict[str, float]:
    """What the exact log-determinant changes against SB3's on ``batches`` replayed batches,
    each form with the same noise: ``bias``, |E[g_exact] - E[g_sb3]| / |E[g_exact]| for the
    actor's gradient of J_pi; ``per_batch``, the mean of |g_exact - g_sb3| / |g_exact|;
    ``entropy``, E[log pi_exact - log pi_sb3] in nats (what alpha's gradient and the soft
    target's -alpha log pi see; the target entropy is -|A|)."""
    import toolkit.policies

    exact = toolkit.policies.tanh_log_det_jacobian
    alpha = sac.log_alpha.detach().exp()

    def actor_gradient(obs: torch.Tensor, form, noise_seed: int) -> tuple[torch.Tensor, float]:
        toolkit.policies.tanh_log_det_jacobian = form
        sac.actor.zero_grad(set_to_none=True)
        action, log_prob = sac.actor.sample_unit(obs, torch.Generator().manual_seed(noise_seed))
        (alpha * log_prob - sac.critic.min(obs, action)).mean().backward()
        return torch.cat([p.grad.flatten() for p in sac.actor.parameters()]), float(log_prob.detach().mean())

    sac.critic.requires_grad_(False)
    replay_rng, sac.replay.rng = sac.replay.rng, np.random.default_rng(seed)
    try:
        pairs = []
        for k in range(batches):
            obs = torch.as_tensor(sac.replay.sample(sac.config.batch_size).obs, dtype=torch.float32)
            pairs.append((actor_gradient(obs, exact, k), actor_gradient(obs, sb3s_tanh_log_det, k)))
    finally:
        toolkit.policies.tanh_log_det_jacobian = exact
        sac.replay.rng = replay_rng
        sac.critic.requires_grad_(True)
        sac.actor.zero_grad(set_to_none=True)
    exact_g = torch.stack([g for (g, _), _ in pairs])
    gap = exact_g - torch.stack([g for _, (g, _) in pairs])
    return {"bias": float(gap.mean(0).norm() / exact_g.mean(0).norm()),
            "per_batch": float((gap.norm(dim=1) / exact_g.norm(dim=1)).mean()),
            "entropy": float(np.mean([mine - theirs for (_, mine), (_, theirs) in pairs]))}


def toolkit_parameters(sac) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for net in (sac.actor, sac.critic) for p in net.parameters()])


def sb3_parameters(sb3) -> torch.Tensor:
    actor = sb3.actor
    tensors = [p.detach().flatten() for p in actor.latent_pi.parameters()]
    tensors += [torch.cat([actor.mu.weight, actor.log_std.weight]).detach().flatten(),
                torch.cat([actor.mu.bias, actor.log_std.bias]).detach()]
    return torch.cat(tensors + [p.detach().flatten() for p in sb3.critic.parameters()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a toolkit SAC checkpoint with its replay (a run's best.pt)")
    parser.add_argument("--steps", type=int, default=300, help="gradient steps of each")
    parser.add_argument("--log-det", choices=("exact", "sb3"), default="exact",
                        help="toolkit's tanh log-determinant: its own (exact) or SB3's log(1 - tanh(u)^2 + 1e-6)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the batches and the Gaussian draws")
    parser.add_argument("--gradient-batches", type=int, default=200,
                        help="batches over which the two log-determinants' actor gradients are averaged (0: skip)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    from stable_baselines3.common.type_aliases import ReplayBufferSamples

    restored = restore(args.checkpoint)
    if restored.plan.algo != "sac" or restored.algorithm.config.use_sde or restored.algorithm.layout.image:
        raise SystemExit("this compares SAC's plain Gaussian policy on vector observations")
    if args.gradient_batches:
        gap = log_det_difference(restored.algorithm, args.gradient_batches, args.seed)
        print(f"exact log-det against SB3's, over {args.gradient_batches} batches: the actor's gradient differs by "
              f"{gap['bias']:.2%} of the expected gradient ({gap['per_batch']:.2%} of a batch's); "
              f"log pi by {gap['entropy']:+.2e} nats")
    if args.log_det == "sb3":
        import toolkit.policies
        import toolkit_sac.sac

        toolkit.policies.tanh_log_det_jacobian = sb3s_tanh_log_det
        toolkit_sac.sac.tanh_log_det_jacobian = sb3s_tanh_log_det
    ours = restored.algorithm
    twin = copy.deepcopy(ours)
    sb3 = sb3_copy(ours, restored.plan.env.id)
    with torch.no_grad():  # one ulp on one weight
        weight = next(twin.actor.parameters())
        weight[0, 0] = torch.nextafter(weight[0, 0], torch.tensor(np.inf))

    ours.replay.rng = np.random.default_rng(args.seed)
    batches = [ours.replay.sample(ours.config.batch_size, gamma=ours.config.gamma) for _ in range(args.steps)]
    for sac in (ours, twin):
        handed_out = iter(batches)
        sac.replay.sample = lambda *args, handed_out=handed_out, **kwargs: next(handed_out)
        sac.generator.manual_seed(args.seed)
    theirs = iter([ReplayBufferSamples(
        torch.as_tensor(b.obs, dtype=torch.float32), torch.as_tensor(b.action, dtype=torch.float32),
        torch.as_tensor(b.next_obs, dtype=torch.float32), torch.as_tensor(b.discount == 0, dtype=torch.float32)[:, None],
        torch.as_tensor(b.reward, dtype=torch.float32)[:, None]) for b in batches])
    sb3.replay_buffer.sample = lambda *args, **kwargs: next(theirs)
    torch.manual_seed(args.seed)  # SB3 draws its Gaussian noise from torch's global generator

    start = toolkit_parameters(ours)
    print(f"{args.checkpoint}: step {restored.state['step']}, toolkit's log-det {args.log_det}, {args.steps} gradient steps")
    print(f"{'steps':>6} {'|toolkit moved|':>16} {'|toolkit - SB3|':>16} {'|toolkit - 1-ulp twin|':>23} {'alpha toolkit':>14} {'alpha SB3':>10}")
    for step in range(1, args.steps + 1):
        ours.train_step()
        twin.train_step()
        sb3.train(gradient_steps=1, batch_size=ours.config.batch_size)
        if step in REPORT_AT or step == args.steps:
            here = toolkit_parameters(ours)
            print(f"{step:>6} {float((here - start).norm()):>16.3e} {float((here - sb3_parameters(sb3)).norm()):>16.3e} "
                  f"{float((here - toolkit_parameters(twin)).norm()):>23.3e} {float(ours.log_alpha.detach().exp()):>14.5f} "
                  f"{float(sb3.log_ent_coef.detach().exp()):>10.5f}", flush=True)


if __name__ == "__main__":
    main()
