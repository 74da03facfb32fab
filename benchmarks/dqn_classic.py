"""DQN on classic control: toolkit's default presets against SB3 with rl-zoo3's tuned
configs, same env-step budgets, several seeds, one script.

    python benchmarks/dqn_classic.py [--envs CartPole-v1 Acrobot-v1 LunarLander-v3] [--seeds 5] [--first-seed 0] [--jobs 2]

Each (library, env, seed) runs in its own process with one torch thread (``--jobs`` at a
time). Both are scored the same way: the deterministic policy's mean return over 20
evaluation episodes at the end of the budget. Prints a table of mean +/- std over seeds,
the number of seeds that reach the env's "solved" score, and env steps/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from common import run_workers

# rl-zoo3 hyperparams/dqn.yml (n_timesteps is the shared budget)
ZOO = {
    "CartPole-v1": dict(n_timesteps=50_000, learning_rate=2.3e-3, batch_size=64, buffer_size=100_000,
                        learning_starts=1000, gamma=0.99, target_update_interval=10, train_freq=256,
                        gradient_steps=128, exploration_fraction=0.16, exploration_final_eps=0.04),
    "Acrobot-v1": dict(n_timesteps=100_000, learning_rate=6.3e-4, batch_size=128, buffer_size=50_000,
                       learning_starts=0, gamma=0.99, target_update_interval=250, train_freq=4, gradient_steps=-1,
                       exploration_fraction=0.12, exploration_final_eps=0.1),
    "LunarLander-v3": dict(n_timesteps=100_000, learning_rate=6.3e-4, batch_size=128, buffer_size=50_000,
                           learning_starts=0, gamma=0.99, target_update_interval=250, train_freq=4,
                           gradient_steps=-1, exploration_fraction=0.12, exploration_final_eps=0.1),
    "MountainCar-v0": dict(n_timesteps=120_000, learning_rate=4e-3, batch_size=128, buffer_size=10_000,
                           learning_starts=1000, gamma=0.98, target_update_interval=600, train_freq=16,
                           gradient_steps=8, exploration_fraction=0.2, exploration_final_eps=0.07),
}
SOLVED = {"CartPole-v1": 475, "Acrobot-v1": -100, "LunarLander-v3": 200, "MountainCar-v0": -110}


def run_sb3(env_id: str, seed: int) -> dict:
    import gymnasium as gym
    import torch
    from stable_baselines3 import DQN
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    torch.set_num_threads(1)
    config = dict(ZOO[env_id])
    steps = config.pop("n_timesteps")
    model = DQN("MlpPolicy", gym.make(env_id), policy_kwargs=dict(net_arch=[256, 256]), seed=seed, device="cpu",
                verbose=0, **config)
    start = time.perf_counter()
    model.learn(steps)
    seconds = time.perf_counter() - start
    mean, std = evaluate_policy(model, Monitor(gym.make(env_id)), n_eval_episodes=20, deterministic=True)
    return {"final": float(mean), "std": float(std), "sps": steps / seconds}


def run_toolkit(env_id: str, seed: int) -> dict:
    import toolkit

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_dir = toolkit.train("dqn", env=env_id, seed=seed, threads=1, eval_every=0, eval_episodes=20,
                                checkpoint_every=0, progress=False, run_dir=str(Path(tmp) / "run"))
        seconds = time.perf_counter() - start
        records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    final = [r for r in records if "eval/mean_return" in r][-1]
    steps = final["step"]
    return {"final": final["eval/mean_return"], "std": final["eval/std_return"], "sps": steps / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=["CartPole-v1", "Acrobot-v1", "LunarLander-v3"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed .. first-seed + seeds - 1")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--libs", nargs="+", default=["toolkit", "sb3"])
    parser.add_argument("--worker", nargs=3, metavar=("LIB", "ENV", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        lib, env_id, seed = args.worker
        result = (run_toolkit if lib == "toolkit" else run_sb3)(env_id, int(seed))
        print(json.dumps(result))
        return

    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = [(lib, env, seed) for env in args.envs for seed in seeds for lib in args.libs]

    results = run_workers(__file__, jobs, args.jobs)
    print("\n| env | library | final eval return (mean ± std over seeds) | seeds solved | env steps/s |")
    print("|---|---|---|---|---|")
    for env in args.envs:
        for lib in args.libs:
            finals = [results[(lib, env, s)]["final"] for s in seeds]
            sps = statistics.mean(results[(lib, env, s)]["sps"] for s in seeds)
            solved = sum(f >= SOLVED[env] for f in finals)
            spread = statistics.pstdev(finals) if len(finals) > 1 else 0.0
            print(f"| {env} | {lib} | {statistics.mean(finals):.1f} ± {spread:.1f} "
                  f"({', '.join(f'{f:.0f}' for f in finals)}) | {solved}/{args.seeds} (≥ {SOLVED[env]}) | {sps:.0f} |")


if __name__ == "__main__":
    main()
