"""h-DQN against flat DQN on the goal environments, same budgets and observations.

    python benchmarks/hdqn_vs_dqn.py [--envs toolkit/StochasticChain-v0 toolkit/KeyDoor-v0 toolkit/KeyDoorLarge-v0]
        [--seeds 5] [--algos hdqn dqn] [--dqn-gamma 0.9] [--jobs 2] [--sweeps DIR] [--plot hdqn_curves.png]

Each (algorithm, env) is a toolkit sweep over the seeds (``toolkit sweep ALGO --seed-list ...``,
toolkit-ray), ``--jobs`` runs at once with one torch thread each, kept in ``--sweeps``: run the
same command again after an interruption and it continues where it stopped. h-DQN uses the
env's preset; flat DQN gets the same budget, replay size, target interval and exploration
length (epsilon 1 -> 0.1) on the same observations, with toolkit's DQN defaults otherwise.
Reported: the average extrinsic reward per training episode over the last 20% of the budget
(the paper's measure), the final evaluation return, each as mean ± std over seeds, and on
the gridworlds the step by which each seed solved the room (the end of its first run of
SOLVED_RUN successful training episodes in a row).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from common import as_flags, plot_curves, read_metrics, sweep_runs

ENVS = ("toolkit/StochasticChain-v0", "toolkit/KeyDoor-v0")
GRIDWORLDS = ("toolkit/KeyDoor-v0", "toolkit/KeyDoorLarge-v0")  # episodes either reach the exit (1) or not (0)
SOLVED_RUN = 10  # successful training episodes in a row (at epsilon 0.1) that count as solving a gridworld


def solved_at(episodes: list[tuple[int, float]]) -> int | None:
    """The step that ends the first SOLVED_RUN successful episodes in a row, or None."""
    streak = 0
    for step, episode_return in episodes:
        streak = streak + 1 if episode_return > 0 else 0
        if streak == SOLVED_RUN:
            return step
    return None


def run_sweep(algo: str, env_id: str, seeds: list[int], sweeps: Path, jobs: int, steps: int = 0,
              dqn_gamma: float = 0.0) -> dict[tuple, dict]:
    from toolkit_hdqn.hdqn import PRESETS

    preset = next(p for p in PRESETS.values() if env_id in p.envs).values
    steps = steps or preset["steps"]
    common = {"steps": steps, "eval_every": min(preset["eval_every"], steps), "eval_episodes": preset["eval_episodes"],
              "threads": 1, "checkpoint_every": 0}
    if algo == "dqn":
        overrides = {"buffer_size": preset["controller_buffer_size"], "learning_starts": preset["learning_starts"],
                     "target_update_interval": preset["target_update_interval"], "train_frequency": 1,
                     "exploration_steps": preset["controller_exploration_steps"], "exploration_final": 0.1,
                     "hidden": preset.get("hidden", (64, 64)), "learning_rate": 1e-3,
                     "eval_epsilon": preset.get("eval_epsilon", 0.0)}
        if dqn_gamma:
            overrides["gamma"] = dqn_gamma
    else:
        overrides = {}
    name = f"{algo}_{env_id.replace('/', '-')}_{steps}{f'_gamma{dqn_gamma:g}' if algo == 'dqn' and dqn_gamma else ''}" \
           f"_seeds{seeds[0]}-{seeds[-1]}"
    runs = sweep_runs(algo, ["--env", env_id, *as_flags({**common, **overrides})], seeds, sweeps / name, jobs)
    results = {}
    for (seed,), run_dir in runs.items():
        records = read_metrics(run_dir)
        episodes = [(r["step"], r["train/episode_return"]) for r in records if "train/episode_return" in r]
        evals = [(r["step"], r["eval/mean_return"]) for r in records if "eval/mean_return" in r]
        late = [ret for step, ret in episodes if step > 0.8 * steps]
        results[(algo, env_id, seed)] = {"final": evals[-1][1], "late_train": statistics.mean(late) if late else float("nan"),
                                         "evals": evals, "episodes": episodes}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=list(ENVS))
    parser.add_argument("--algos", nargs="+", default=["hdqn", "dqn"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2, help="runs at once")
    parser.add_argument("--sweeps", type=Path, default=Path("sweeps/hdqn_vs_dqn"),
                        help="where the sweeps' run directories are kept (and continued from)")
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--steps", type=int, default=0, help="env steps per run (default: the h-DQN preset's)")
    parser.add_argument("--dqn-gamma", type=float, default=0.0,
                        help="flat DQN's discount (default: DQN's 0.99), e.g. the h-DQN controller's 0.9 on the gridworld")
    args = parser.parse_args()
    seeds = range(args.seeds)
    results = {}
    for env in args.envs:
        for algo in args.algos:
            results.update(run_sweep(algo, env, list(seeds), args.sweeps, args.jobs, args.steps, args.dqn_gamma))
    print("\n| env | algorithm | extrinsic reward per training episode, last 20% (mean ± std) | final eval return "
          f"(mean ± std) | solved at step ({SOLVED_RUN} successes in a row; gridworlds) |")
    print("|---|---|---|---|---|")
    for env in args.envs:
        for algo in args.algos:
            late = [results[(algo, env, s)]["late_train"] for s in seeds]
            final = [results[(algo, env, s)]["final"] for s in seeds]
            solved = [solved_at(results[(algo, env, s)]["episodes"]) for s in seeds]
            solved_text = "-" if env not in GRIDWORLDS else ", ".join("never" if v is None else f"{v:,}" for v in solved)
            print(f"| {env} | {algo} | {statistics.mean(late):.3f} ± {statistics.pstdev(late):.3f} "
                  f"({', '.join(f'{v:.2f}' for v in late)}) | {statistics.mean(final):.3f} ± {statistics.pstdev(final):.3f} "
                  f"| {solved_text} |")
    if args.plot:
        panels = {f"{env} ({len(seeds)} seeds)": {algo: [results[(algo, env, s)]["episodes"] for s in seeds] for algo in args.algos}
                  for env in args.envs}
        plot_curves(panels, args.plot, "extrinsic reward per training episode", smoothing=200)


if __name__ == "__main__":
    main()
