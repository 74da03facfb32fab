"""SVG against SAC (toolkit's and SB3's), and SVG(1) against SVG(inf) under model error.

    python benchmarks/svg_vs_sac.py control [--envs Pendulum-v1 InvertedPendulum-v5] [--algos svg0 svg1 sac sb3-sac]
        [--seeds 3] [--steps 20000] [--jobs 2] [--plot svg_curves.png]
    python benchmarks/svg_vs_sac.py model-error [--errors 0 0.3] [--seeds 3] [--steps 20000] [--plot ...]

``control``: SVG(0), SVG(1), toolkit's SAC (``sac``) and SB3's (``sb3-sac``) at the same
env-step budget, each (algorithm, env, seed) in its own process with one torch thread. Both
SACs use rl-zoo3's Pendulum-v1 config
(learning rate 1e-3, otherwise SB3's defaults); on InvertedPendulum-v5 SB3's defaults with
learning_starts 1000 (the zoo's MuJoCo entries start learning at 10k steps, half this budget).
Every run is evaluated every tenth of its budget over 10 episodes (deterministic policy);
the table gives the final evaluation return and the wall-clock seconds of the run.

``model-error``: SVG(1) and SVG(inf) on Pendulum-v1 (a 200-step finite horizon) with the
learned model's mean perturbed by a fixed random linear map of relative size
``--errors`` (``--model-error``); the paper's claim is that SVG(1), which goes one step
through the model, suffers less from model error than SVG(inf), which goes through all of it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from common import plot_curves, run_workers

SAC_CONFIG = {"Pendulum-v1": dict(learning_rate=1e-3), "InvertedPendulum-v5": dict(learning_starts=1000)}


def run_sac(env_id: str, seed: int, steps: int) -> dict:
    import gymnasium as gym
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import EvalCallback
    from stable_baselines3.common.monitor import Monitor

    eval_env = Monitor(gym.make(env_id))
    eval_env.reset(seed=seed + 1000)
    # the callback keeps its evaluations only when it has a log_path
    callback = EvalCallback(eval_env, n_eval_episodes=10, eval_freq=steps // 10, deterministic=True, verbose=0,
                            log_path=tempfile.mkdtemp())
    model = SAC("MlpPolicy", gym.make(env_id), seed=seed, device="cpu", verbose=0, **SAC_CONFIG.get(env_id, {}))
    start = time.perf_counter()
    model.learn(steps, callback=callback)
    seconds = time.perf_counter() - start
    curve = [(int(t), statistics.mean(r)) for t, r in zip(callback.evaluations_timesteps, callback.evaluations_results)]
    return {"final": curve[-1][1], "curve": curve, "seconds": seconds, "sps": steps / seconds}


def run_toolkit(algo: str, env_id: str, seed: int, steps: int, model_error: float = 0.0) -> dict:
    import toolkit

    overrides = {"model_error": model_error} if model_error else {}
    if algo == "sac":
        overrides |= SAC_CONFIG.get(env_id, {})
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_dir = toolkit.train(algo, env=env_id, seed=seed, steps=steps, eval_every=steps // 10, eval_episodes=10,
                                checkpoint_every=0, progress=False, threads=1, run_dir=str(Path(tmp) / "run"),
                                **overrides)
        seconds = time.perf_counter() - start
        records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    curve = [(r["step"], r["eval/mean_return"]) for r in records if "eval/mean_return" in r]
    return {"final": curve[-1][1], "curve": curve, "seconds": seconds, "sps": steps / seconds}


def table(results: dict, keys: list[str], envs: list[str], seeds: range) -> None:
    print("\n| env | algorithm | final eval return (mean ± std over seeds) | wall-clock s (mean) | env steps/s |")
    print("|---|---|---|---|---|")
    for env in envs:
        for key in keys:
            runs = [results[(key, env, s)] for s in seeds]
            finals = [r["final"] for r in runs]
            spread = statistics.pstdev(finals) if len(finals) > 1 else 0.0
            print(f"| {env} | {key} | {statistics.mean(finals):.1f} ± {spread:.1f} ({', '.join(f'{f:.0f}' for f in finals)}) "
                  f"| {statistics.mean(r['seconds'] for r in runs):.0f} | {statistics.mean(r['sps'] for r in runs):.0f} |")


def welch_svg1_vs_svg0(results: dict, envs: list[str], seeds: range) -> None:
    """The paper's ordering, SVG(1)-ER at least as good as SVG(0): Welch's t-test per env (two-sided
    p; the sign of the difference says which way) of the final returns and of the mean of every
    evaluation of a run (the area under its learning curve, which also credits learning sooner)."""
    from scipy import stats

    measures = {"final return": lambda run: run["final"],
                "mean of the run's evaluations": lambda run: statistics.mean(value for _, value in run["curve"])}
    for env in envs:
        for name, measure in measures.items():
            svg1, svg0 = ([measure(results[(key, env, s)]) for s in seeds] for key in ("svg1", "svg0"))
            if len(set(svg1) | set(svg0)) == 1:  # no variance: the t statistic is undefined
                print(f"{env}, {name}: svg1 and svg0 both {svg1[0]:.1f} in every seed")
                continue
            p = stats.ttest_ind(svg1, svg0, equal_var=False).pvalue
            print(f"{env}, {name}: svg1 {statistics.mean(svg1):.1f}, svg0 {statistics.mean(svg0):.1f}, "
                  f"difference {statistics.mean(svg1) - statistics.mean(svg0):+.1f}, Welch p = {p:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["control", "model-error"], nargs="?", default="control")
    parser.add_argument("--envs", nargs="+", default=["Pendulum-v1", "InvertedPendulum-v5"])
    parser.add_argument("--algos", nargs="+", default=["svg0", "svg1", "sac", "sb3-sac"])
    parser.add_argument("--errors", nargs="+", type=float, default=[0.0, 0.3])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--results", type=Path,
                        help="JSON-lines file of finished runs: appended to, and runs already in it are reused")
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--worker", nargs=3, metavar=("ALGO", "ENV", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        import torch

        torch.set_num_threads(1)
        algo, env_id, seed = args.worker
        if algo == "sb3-sac":
            result = run_sac(env_id, int(seed), args.steps)
        else:  # "svg1" or "svg1@0.3": an algorithm with a model error
            name, _, error = algo.partition("@")
            result = run_toolkit(name, env_id, int(seed), args.steps, float(error or 0.0))
        print(json.dumps(result))
        return

    seeds = range(args.seeds)
    if args.what == "control":
        keys, envs = args.algos, args.envs
    else:
        keys = [f"{algo}@{error:g}" for error in args.errors for algo in ("svg1", "svginf")]
        envs = ["Pendulum-v1"]
    jobs = [(key, env, seed) for env in envs for seed in seeds for key in keys]
    results = run_workers(__file__, jobs, args.jobs, extra_args=["--steps", str(args.steps)], results_file=args.results)
    table(results, keys, envs, seeds)
    if {"svg0", "svg1"} <= set(keys) and len(seeds) > 1:
        welch_svg1_vs_svg0(results, envs, seeds)
    if args.plot:
        title = "SVG and SAC" if args.what == "control" else "model error"
        panels = {f"{title}: {env} ({len(seeds)} seeds)": {key: [results[(key, env, s)]["curve"] for s in seeds] for key in keys}
                  for env in envs}
        plot_curves(panels, args.plot, "evaluation return")


if __name__ == "__main__":
    main()
