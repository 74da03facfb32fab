"""Ape-X (``toolkit train apex``): how it scales with actors, what its learner keeps of its
speed, and its sample efficiency against single-process DQN with prioritized replay.

    python benchmarks/apex_scaling.py actors [--env CartPole-v1] [--actors 1 2 4 8] [--steps 60000] [--fragment 50] [--repeats 1]
    python benchmarks/apex_scaling.py actors --env toolkit/SlowCartPole-v0 [--steps 8000]
    python benchmarks/apex_scaling.py learner [--updates 3000]
    python benchmarks/apex_scaling.py efficiency [--envs CartPole-v1 LunarLander-v3] [--seeds 5] [--runs DIR] [--report]
    python benchmarks/apex_scaling.py pong [--steps 20000]

``actors``: env steps/s of the actors with 1, 2, 4, 8 actors (one env each), the learner
running but never holding them back (samples-per-insert 0.25). On CartPole the actors are
CPU-bound (2 cores here); ``toolkit/SlowCartPole-v0`` waits 2 ms in every step, a slow
simulator that stands in for more machines than we have (ideal: N times one actor's rate).

``learner``: updates/s of the learner alone (the same ``QLearner`` step on batches sampled
in-process from a filled replay) against the learner of a running Ape-X whose actors are
held back by the limiter (samples-per-insert 256), so updates are the bottleneck.

``efficiency``: ``apex --actors 2`` against ``dqn --replay prioritized``, both with the env's
preset (the same networks, optimizer, batch size and samples per insert: apex's presets
translate dqn's train_frequency / gradient_steps), the same env-step budget, ``--seeds``
seeds each, one run at a time (apex uses both cores, dqn one): final 20-episode evaluation,
Welch's test, and the wall-clock from the run's start (Ray's start-up included) until the
evaluation return first reached the env's threshold. Runs are kept in ``--runs`` and a run
found finished there is not run again.

``pong``: 2 actors on Pong for a short budget, end to end, with env steps/s against
single-process ``dqn`` on the same machine.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import read_metrics, seconds_to_step

from toolkit.rundir import read_status

TOOLKIT = [sys.executable, "-m", "toolkit.cli"]
THRESHOLD = {"CartPole-v1": 475.0, "LunarLander-v3": 200.0}


def train(algo: str, args: list[str], run_dir: Path) -> float:
    """A toolkit run as a user starts it; returns its wall-clock seconds."""
    began = time.monotonic()
    subprocess.run([*TOOLKIT, "train", algo, *args, "--run-dir", str(run_dir), "--no-progress"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - began


def mean_after_warmup(records: list[dict], key: str) -> float:
    """The mean of ``key`` over its logged values, the first quarter left out (start-up)."""
    values = [r[key] for r in records if key in r]
    return statistics.mean(values[len(values) // 4:]) if values else float("nan")


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine so far, from /proc/stat (Linux)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def actors(env: str, counts: list[int], steps: int, extra: list[str], repeats: int = 1) -> None:
    """Each actor count ``repeats`` times, the counts interleaved (1, 2, ..., 1, 2, ...) so a
    slow stretch of the machine falls on all of them; the median rate per count."""
    rates: dict[int, list[float]] = {n: [] for n in counts}
    busy: dict[int, list[float]] = {n: [] for n in counts}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(repeats):
            for n in counts:
                run_dir = Path(tmp) / f"actors{n}-{repeat}"
                before = cpu_ticks()
                train("apex", ["--env", env, "--actors", str(n), "--steps", str(steps), "--samples-per-insert", "0.25",
                               "--learning-starts", "500", "--eval-every", "0", "--eval-episodes", "1",
                               "--checkpoint-every", "0", "--log-every", "1000", *extra], run_dir)
                after = cpu_ticks()
                rates[n].append(mean_after_warmup(read_metrics(run_dir), "perf/env_sps"))
                busy[n].append((after[0] - before[0]) / max(after[1] - before[1], 1))  # start-up included
                print(f"  {n} actors: {rates[n][-1]:8.0f} env steps/s, the machine's CPUs {busy[n][-1]:.0%} busy",
                      flush=True)
    median = {n: statistics.median(rates[n]) for n in counts}
    one = median[counts[0]] / counts[0]  # per actor, with the fewest actors
    print(f"\n| actors | env steps/s on {env} (median of {repeats}; range) | speed-up | per-actor efficiency "
          "| CPUs busy (whole run) |")
    print("|---|---|---|---|---|")
    for n in counts:
        print(f"| {n} | {median[n]:.0f} ({min(rates[n]):.0f}-{max(rates[n]):.0f}) | {median[n] / one:.2f}x | "
              f"{median[n] / (n * one):.2f} | {statistics.median(busy[n]):.0%} |")


def learner(updates: int) -> None:
    import numpy as np
    import torch

    from toolkit.loops import successor_obs
    from toolkit.replay import ReplayBuffer
    from toolkit.vec_env import make_vec_env
    from toolkit_dqn.dqn import QLearner, TDUpdate, build_q_network, make_optimizer
    from toolkit_ray.apex import ApexConfig, PRESETS

    torch.set_num_threads(1)
    config = ApexConfig(**{k: v for k, v in PRESETS["cartpole"].values.items()
                           if k in ApexConfig.__dataclass_fields__})
    envs = make_vec_env("CartPole-v1", 1, 0)
    space, actions = envs.single_observation_space, envs.single_action_space
    replay = ReplayBuffer(config.buffer_size, space, actions, sampler=config.replay, seed=0)
    obs, _ = envs.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(20_000):
        action = rng.integers(2, size=1)
        next_obs, reward, terminated, truncated, infos = envs.step(action)
        replay.add(obs, action, reward, successor_obs(next_obs, infos), terminated, truncated)
        obs = next_obs
    q = QLearner(lambda: build_q_network(config, space, 2), lambda p: make_optimizer(config, p),
                 TDUpdate(config.loss, config.double, config.max_grad_norm), torch.device("cpu"))
    began = time.perf_counter()
    for _ in range(updates):
        batch = replay.sample(config.batch_size, gamma=config.gamma, n_step=config.n_step)
        t = {k: torch.from_numpy(np.asarray(getattr(batch, k))) for k in ("obs", "reward", "discount", "next_obs", "weights")}
        _, _, td = q.td_step(t["obs"], torch.from_numpy(batch.action).long(), t["reward"], t["discount"], t["next_obs"],
                             t["weights"])
        replay.update_priorities(batch.indices, td.abs().numpy())
    alone = updates / (time.perf_counter() - began)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "apex"
        train("apex", ["--env", "CartPole-v1", "--actors", "2", "--steps", str(updates * 64 // 256 + 2000),
                       "--samples-per-insert", "256", "--learning-starts", "1000", "--eval-every", "0",
                       "--eval-episodes", "1", "--checkpoint-every", "0", "--log-every", "200"], run_dir)
        running = mean_after_warmup(read_metrics(run_dir), "perf/updates_per_s")
    print(f"learner alone (cartpole preset, batch {config.batch_size}): {alone:.0f} updates/s")
    print(f"apex learner with 2 actors held back by the limiter: {running:.0f} updates/s "
          f"({running / alone:.0%} of alone; goal >= 80%)")


def efficiency(envs: list[str], seeds: int, runs: Path, report_only: bool = False) -> None:
    from scipy import stats

    rows: dict[tuple, dict] = {}
    for env in envs:
        for seed in range(seeds):
            for algo, extra in (("apex", ["--actors", "2"]), ("dqn", ["--replay", "prioritized"])):
                run_dir = runs / f"{env}-{algo}-{seed}"
                finished = read_status(run_dir).get("status") == "finished"
                if not finished and report_only:
                    continue
                if not finished:
                    shutil.rmtree(run_dir, ignore_errors=True)
                    train(algo, ["--env", env, "--seed", str(seed), "--threads", "1", *extra], run_dir)
                records = read_metrics(run_dir)
                evals = [(r["step"], r["eval/mean_return"]) for r in records if "eval/mean_return" in r]
                reached = next((s for s, v in evals if v >= THRESHOLD[env]), None)
                rows[(env, algo, seed)] = row = {
                    "final": evals[-1][1], "reached_step": reached,
                    "reached_seconds": seconds_to_step(records, reached) if reached is not None else None}
                print(f"  {env} {algo} seed {seed}: final {row['final']:.1f}, threshold at step {reached} "
                      f"({row['reached_seconds'] or 0:.0f} s){' (kept)' if finished else ''}", flush=True)
    print("\n| env | algorithm | final eval return (mean ± std) | per seed | seeds >= threshold at the end | "
          "wall-clock to threshold (median) | env steps to threshold (median) | Welch p vs dqn |")
    print("|---|---|---|---|---|---|---|---|")
    for env in envs:
        done = [s for s in range(seeds) if (env, "apex", s) in rows and (env, "dqn", s) in rows]
        if not done:
            continue
        finals = {algo: [rows[(env, algo, s)]["final"] for s in done] for algo in ("apex", "dqn")}
        for algo in ("apex", "dqn"):
            reached = [rows[(env, algo, s)] for s in done if rows[(env, algo, s)]["reached_step"] is not None]
            seconds = (f"{statistics.median(r['reached_seconds'] for r in reached):.0f} s ({len(reached)} seeds)"
                       if reached else "never")
            steps = f"{statistics.median(r['reached_step'] for r in reached):,.0f}" if reached else ""
            p = (f"{stats.ttest_ind(finals['apex'], finals['dqn'], equal_var=False).pvalue:.2f}"
                 if algo == "apex" and len(done) > 1 else "")
            print(f"| {env} | {algo} | {statistics.mean(finals[algo]):.1f} ± {statistics.pstdev(finals[algo]):.1f} | "
                  f"{', '.join(f'{v:.0f}' for v in finals[algo])} | "
                  f"{sum(v >= THRESHOLD[env] for v in finals[algo])}/{len(done)} | {seconds} | {steps} | {p} |")


def pong(steps: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rates = {}
        for algo, extra in (("apex", ["--actors", "2", "--learning-starts", "2000"]),
                            ("dqn", ["--learning-starts", "2000", "--threads", "1"])):
            run_dir = Path(tmp) / algo
            seconds = train(algo, ["--env", "Pong", "--steps", str(steps), "--eval-every", "0", "--eval-episodes", "1",
                                   "--checkpoint-every", "0", "--log-every", "1000", *extra], run_dir)
            records = read_metrics(run_dir)
            rates[algo] = mean_after_warmup(records, "perf/sps")
            print(f"  {algo}: {steps} Pong steps in {seconds:.0f} s, {rates[algo]:.0f} env steps/s while training")
    print(f"apex (2 actors) / dqn: {rates['apex'] / rates['dqn']:.2f}x env steps/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["actors", "learner", "efficiency", "pong"])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--envs", nargs="+", default=["CartPole-v1", "LunarLander-v3"])
    parser.add_argument("--actors", nargs="+", type=int, default=[1, 2, 4, 8])
    parser.add_argument("--steps", type=int, default=0)
    parser.add_argument("--updates", type=int, default=3000)
    parser.add_argument("--fragment", type=int, help="actors: --fragment for apex (default: the config's 50)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="actors: runs per actor count, interleaved; the table gives the median")
    parser.add_argument("--report", action="store_true",
                        help="efficiency: only the table of the seeds finished for both algorithms; run nothing")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--runs", type=Path, default=Path("runs/apex_efficiency"),
                        help="where efficiency keeps its runs (finished ones are reused)")
    args = parser.parse_args()
    if args.what == "actors":
        actors(args.env, args.actors, args.steps or (8000 if "Slow" in args.env else 60000),
               ["--fragment", str(args.fragment)] if args.fragment else [], args.repeats)
    elif args.what == "learner":
        learner(args.updates)
    elif args.what == "efficiency":
        efficiency(args.envs, args.seeds, args.runs, args.report)
    else:
        pong(args.steps or 20000)


if __name__ == "__main__":
    main()
