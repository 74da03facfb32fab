"""TRPO: toolkit against sb3-contrib with rl-zoo3's tuned configs, same env-step budgets.

    python benchmarks/trpo_vs_sb3_contrib.py [--envs CartPole-v1 Pendulum-v1 Hopper-v5] [--seeds 3] [--jobs 2]

Each (library, env, seed) runs in its own process with one torch thread. Both are scored
the same way: the deterministic policy's mean return over 20 evaluation episodes at the
end of the budget (100k steps for CartPole and Pendulum, 1M for Hopper). Prints final
returns (mean +/- std over seeds) and env steps/s with the toolkit / sb3-contrib ratio;
``--plot curves.png`` draws both libraries' training-episode returns.
sb3-contrib's Pendulum config uses gSDE, which toolkit's TRPO does not implement.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from common import monitor_curve, plot_curves, run_workers

BUDGET = {"CartPole-v1": 100_000, "Pendulum-v1": 100_000, "Hopper-v5": 1_000_000}
# rl-zoo3 hyperparams/trpo.yml
ZOO = {
    "CartPole-v1": dict(n_steps=512, batch_size=512, cg_damping=1e-3, gae_lambda=0.98, gamma=0.99,
                        learning_rate=1e-3, n_critic_updates=20),
    "Pendulum-v1": dict(n_steps=1024, gamma=0.9, n_critic_updates=15, use_sde=True, sde_sample_freq=4),
    "Hopper-v5": dict(batch_size=128, n_steps=1024, gamma=0.99, gae_lambda=0.95, sub_sampling_factor=1,
                      cg_max_steps=25, cg_damping=0.1, n_critic_updates=20, learning_rate=1e-3),
}


def run_sb3_contrib(env_id: str, seed: int) -> dict:
    import torch
    from sb3_contrib import TRPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecNormalize

    torch.set_num_threads(1)
    monitor_dir = tempfile.mkdtemp()
    env = make_vec_env(env_id, n_envs=2, seed=seed, monitor_dir=monitor_dir)
    mujoco = env_id == "Hopper-v5"
    if mujoco:
        env = VecNormalize(env, norm_reward=False)
    model = TRPO("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **ZOO[env_id])
    start = time.perf_counter()
    model.learn(BUDGET[env_id])
    seconds = time.perf_counter() - start
    eval_env = make_vec_env(env_id, n_envs=1, seed=seed + 100)
    if mujoco:
        eval_env = VecNormalize(eval_env, training=False, norm_reward=False)
        eval_env.obs_rms = env.obs_rms
    mean, std = evaluate_policy(model, eval_env, n_eval_episodes=20, deterministic=True)
    return {"final": float(mean), "std": float(std), "sps": BUDGET[env_id] / seconds,
            "curve": monitor_curve(Path(monitor_dir))}


def run_toolkit(env_id: str, seed: int) -> dict:
    import toolkit
    from common import training_rate

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = toolkit.train("trpo", env=env_id, seed=seed, steps=BUDGET[env_id], eval_every=0, eval_episodes=20,
                                checkpoint_every=0, progress=False, run_dir=str(Path(tmp) / "run"))
        records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        sps = training_rate(run_dir)
    final = [r for r in records if "eval/mean_return" in r][-1]
    curve = [(r["step"], r["train/episode_return"]) for r in records if "train/episode_return" in r]
    return {"final": final["eval/mean_return"], "std": final["eval/std_return"], "sps": sps, "curve": curve}


def speed_only(envs: list[str], libs: list[str], steps: int) -> None:
    """Env steps/s of each library over ``steps`` steps, one run at a time so the two never
    share the cores (the full runs go two at a time and each also waits on the other)."""
    jobs = [(lib, env, 0) for env in envs for lib in libs]
    results = run_workers(__file__, jobs, 1, extra_args=["--budget", str(steps)])
    for env in envs:
        rates = {lib: results[(lib, env, 0)]["sps"] for lib in libs}
        print(f"{env}, {steps:,} steps each, one at a time: " + ", ".join(f"{lib} {rate:.0f} steps/s" for lib, rate in rates.items())
              + (f", ratio {rates['toolkit'] / rates['sb3-contrib']:.2f}" if len(rates) == 2 else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=list(BUDGET))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed .. first-seed + seeds - 1")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--plot", type=Path, help="write the learning curves to this PNG")
    parser.add_argument("--libs", nargs="+", default=["toolkit", "sb3-contrib"])
    parser.add_argument("--speed-steps", type=int, default=0,
                        help="only time this many training steps per library, one run at a time (no learning scores)")
    parser.add_argument("--worker", nargs=3, metavar=("LIB", "ENV", "SEED"), help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.budget:
        BUDGET.update({env: args.budget for env in BUDGET})
    if args.worker:
        import torch

        torch.set_num_threads(1)
        lib, env_id, seed = args.worker
        print(json.dumps((run_toolkit if lib == "toolkit" else run_sb3_contrib)(env_id, int(seed))))
        return
    libs = args.libs
    if args.speed_steps:
        speed_only(args.envs, libs, args.speed_steps)
        return
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = [(lib, env, seed) for env in args.envs for seed in seeds for lib in libs]

    results = run_workers(__file__, jobs, args.jobs)
    print("\n| env | library | final eval return (mean ± std over seeds) | env steps/s |")
    print("|---|---|---|---|")
    for env in args.envs:
        rates = {}
        for lib in libs:
            finals = [results[(lib, env, s)]["final"] for s in seeds]
            rates[lib] = statistics.mean(results[(lib, env, s)]["sps"] for s in seeds)
            print(f"| {env} | {lib} | {statistics.mean(finals):.1f} ± {statistics.pstdev(finals):.1f} "
                  f"({', '.join(f'{f:.0f}' for f in finals)}) | {rates[lib]:.0f} |")
        if len(rates) == 2:
            print(f"| {env} | speed ratio toolkit / sb3-contrib | | {rates['toolkit'] / rates['sb3-contrib']:.2f} |")
    if args.plot:
        panels = {f"TRPO on {env} ({len(seeds)} seeds)": {lib: [results[(lib, env, s)]["curve"] for s in seeds] for lib in libs}
                  for env in args.envs}
        plot_curves(panels, args.plot, "training episode return", smoothing=20)


if __name__ == "__main__":
    main()
