"""Loop overhead: env steps/s of `toolkit train random --env CartPole-v1` against stepping
the same vector env in a bare loop, in one process.

    python benchmarks/loop_overhead.py [--steps 200000] [--repeats 3] [--n-envs 1]

Prints both rates and their ratio (toolkit / bare; 1.0 means no overhead). toolkit's rate
is the training loop's own (from perf/sps in metrics.jsonl), without start-up and final
evaluation, as the bare loop's is. The bare loop draws each action inline with the same
numpy expression the random agent uses, so the ratio isolates the cost of toolkit's loop
(act / observe / update calls, transition records, episode logging, schedules).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from common import training_rate
from toolkit import train
from toolkit.vec_env import make_vec_env


def bare_loop(env: str, steps: int, n_envs: int) -> float:
    envs = make_vec_env(env, n_envs, seed=0)
    rng = np.random.default_rng(0)
    n_actions = int(envs.single_action_space.n)
    envs.reset(seed=0)
    start = time.perf_counter()
    for _ in range(steps // n_envs):
        envs.step((rng.random(n_envs) * n_actions).astype(np.int64))
    elapsed = time.perf_counter() - start
    envs.close()
    return steps / elapsed


def toolkit_loop(env: str, steps: int, n_envs: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        train("random", env=env, steps=steps, n_envs=n_envs, run_dir=str(run_dir), eval_every=0,
              eval_episodes=1, checkpoint_every=0, progress=False, log_every=10_000)
        return training_rate(run_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-envs", type=int, default=1)
    args = parser.parse_args()
    bare, ours = [], []
    for _ in range(args.repeats):  # interleaved, so drifting machine load hits both alike
        bare.append(bare_loop(args.env, args.steps, args.n_envs))
        ours.append(toolkit_loop(args.env, args.steps, args.n_envs))
    b, t = statistics.median(bare), statistics.median(ours)
    print(f"env {args.env}, n_envs {args.n_envs}, {args.steps:,} steps x {args.repeats} repeats (medians)")
    print(f"bare vector-env loop : {b:>10,.0f} steps/s")
    print(f"toolkit train random : {t:>10,.0f} steps/s")
    print(f"ratio toolkit / bare : {t / b:.3f}")


if __name__ == "__main__":
    main()
