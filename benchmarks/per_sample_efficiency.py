"""Prioritized replay against uniform replay: DQN's sample efficiency, same budgets.

    python benchmarks/per_sample_efficiency.py [--envs CartPole-v1 Acrobot-v1 LunarLander-v3]
        [--samplers uniform prioritized rank] [--seeds 5] [--jobs 2] [--sweeps DIR] [--plot per_curves.png]

Every run is DQN with the env's default preset (the same one benchmarks/dqn_classic.py
compares with SB3); only ``--replay`` differs, with the paper's alpha and beta0 for each
sampler and the preset's learning rate, so only the sampler changes; ``--per-lr-scale 0.25``
adds runs of the prioritized samplers with the learning rate divided by 4, the paper's
advice (prioritized replay makes larger updates on the high-error transitions it replays
most). Each run (one torch thread) evaluates the deterministic policy every tenth of its
budget over 10 episodes. The runs are toolkit sweeps (``toolkit sweep dqn --grid
replay=... --seed-list ...``, toolkit-ray), ``--jobs`` at once, kept in ``--sweeps``: run the
same command again after an interruption and it continues where it stopped.

Reported per (env, sampler), over seeds: the final evaluation return and the area under
the evaluation curve (the mean of the ten evaluations, so it is in return units), each as
the mean with a 95% Student-t interval. ``--plot`` draws the mean curves.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from common import plot_curves, read_metrics, sweep_runs, training_rate, versus

BUDGET = {"CartPole-v1": 50_000, "Acrobot-v1": 100_000, "LunarLander-v3": 100_000}


def run_sweeps(env_id: str, labels: list[str], seeds: list[int], sweeps: Path, jobs: int,
               steps: int = 0) -> dict[tuple, dict]:
    """Every (label, seed) on one env; a label is a sampler name, optionally with ``:lr<scale>``
    (the preset's learning rate times scale). One sweep per learning rate, the samplers its grid."""
    from toolkit.run import plan

    budget = steps or BUDGET[env_id]
    base = ["--env", env_id, "--steps", str(budget), "--eval-every", str(budget // 10), "--eval-episodes", "10",
            "--checkpoint-every", "0", "--threads", "1"]
    by_scale: dict[str, list[str]] = {}
    for label in labels:
        sampler, _, scale = label.partition(":lr")
        by_scale.setdefault(scale, []).append(sampler)
    results = {}
    for scale, samplers in by_scale.items():
        args = list(base)
        if scale:
            args += ["--learning-rate", repr(plan("dqn", {"env": env_id}).algo_config.learning_rate * float(scale))]
        name = (f"{env_id.replace('/', '-')}_{budget}{'_lr' + scale if scale else ''}_{'-'.join(samplers)}"
                f"_seeds{seeds[0]}-{seeds[-1]}")
        runs = sweep_runs("dqn", args, seeds, sweeps / name, jobs, grid={"replay": samplers})
        for (sampler, seed), run_dir in runs.items():
            records = read_metrics(run_dir)
            curve = [(r["step"], r["eval/mean_return"]) for r in records if "eval/mean_return" in r]
            results[(sampler + (f":lr{scale}" if scale else ""), env_id, seed)] = {
                "final": curve[-1][1], "auc": statistics.mean(v for _, v in curve), "curve": curve,
                "sps": training_rate(run_dir)}
    return results


def t_interval(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% Student-t interval."""
    from scipy import stats

    mean = statistics.mean(values)
    if len(values) < 2:
        return mean, float("nan")
    return mean, stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=list(BUDGET))
    parser.add_argument("--samplers", nargs="+", default=["uniform", "prioritized", "rank"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2, help="runs at once")
    parser.add_argument("--steps", type=int, default=0, help="env steps per run (default: BUDGET's, per env)")
    parser.add_argument("--sweeps", type=Path, default=Path("sweeps/per_sample_efficiency"),
                        help="where the sweeps' run directories are kept (and continued from)")
    parser.add_argument("--plot", type=Path, help="write the mean learning curves to this PNG")
    parser.add_argument("--per-lr-scale", type=float, default=0.0,
                        help="also run the prioritized samplers with the preset's learning rate times this "
                             "(0.25: the paper's advice), labelled SAMPLER:lrSCALE")
    args = parser.parse_args()

    if args.per_lr_scale:
        args.samplers += [f"{s}:lr{args.per_lr_scale:g}" for s in args.samplers if s != "uniform"]
    results = {}
    for env in args.envs:
        results.update(run_sweeps(env, args.samplers, list(range(args.seeds)), args.sweeps, args.jobs, args.steps))
    compare = "uniform" in args.samplers
    print("\n| env | replay | final eval return (mean, 95% CI) | area under the eval curve (mean, 95% CI) | per seed (final) |"
          + (" vs uniform: final, AUC (Welch p) |" if compare else ""))
    print("|---|---|---|---|---|" + ("---|" if compare else ""))
    for env in args.envs:
        uniform = [results[("uniform", env, s)] for s in range(args.seeds)] if compare else []
        for sampler in args.samplers:
            runs = [results[(sampler, env, s)] for s in range(args.seeds)]
            finals = [r["final"] for r in runs]
            final, final_ci = t_interval(finals)
            auc, auc_ci = t_interval([r["auc"] for r in runs])
            row = f"| {env} | {sampler} | {final:.1f} ± {final_ci:.1f} | {auc:.1f} ± {auc_ci:.1f} | {', '.join(f'{f:.0f}' for f in finals)} |"
            if compare and sampler != "uniform":
                row += (f" {versus(finals, [r['final'] for r in uniform])}, "
                        f"{versus([r['auc'] for r in runs], [r['auc'] for r in uniform])} |")
            elif compare:
                row += " |"
            print(row)
    if args.plot:
        panels = {f"{env} (DQN, {args.seeds} seeds)": {sampler: [results[(sampler, env, s)]["curve"] for s in range(args.seeds)]
                                                       for sampler in args.samplers} for env in args.envs}
        plot_curves(panels, args.plot, "evaluation return")


if __name__ == "__main__":
    main()
