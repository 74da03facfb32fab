"""h-DQN's controller on Montezuma's Revenge: does it learn to reach its goals?

    python benchmarks/hdqn_montezuma.py [--steps 150000] [--controller-gamma 0.95] [--run-dir runs/hdqn-montezuma]
        [--plot montezuma_goals.png]

The paper's first phase, shortened for a CPU: the meta-controller picks goals at random and
only the controller learns (``pretrain_steps`` = the whole budget), from the ``montezuma``
preset with a replay, exploration and target interval scaled to the budget, and a controller
discount of 0.95 rather than 0.99: on the key-door gridworld 0.99 left neighbouring states'
values within the fit's noise. The critic is the RAM oracle of ``MontezumaRevenge-goals``; the
measure is ``train/goal_success/<goal>``, the fraction of the last ~100 options with that goal
(that began away from it) that reached it. The first options run with epsilon 1, so the start
of each curve is the success rate of random play, the baseline the controller has to beat.

The run keeps checkpoints (with its replay) every tenth of the budget: run the same command
again after an interruption and it resumes. Prints the success rate per goal at the start,
the middle and the end, and plots the curves.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import plot_curves


def train(steps: int, run_dir: Path, seed: int, controller_gamma: float) -> Path:
    import toolkit
    from toolkit import checkpoint

    if run_dir.is_dir() and checkpoint.latest(run_dir) is not None:
        return toolkit.resume(run_dir, steps=steps)
    return toolkit.train("hdqn", env="MontezumaRevenge-goals", seed=seed, steps=steps, pretrain_steps=steps,
                         learning_starts=min(10_000, steps // 10), controller_buffer_size=min(steps, 200_000),
                         controller_gamma=controller_gamma,
                         controller_exploration_steps=steps // 3, target_update_interval=min(10_000, steps // 10),
                         # the final evaluation is one capped episode: a greedy policy can stand still for hours
                         eval_every=0, eval_episodes=1, max_episode_steps=5_000,
                         checkpoint_every=steps // 10, save_replay=True, threads=2, run_dir=str(run_dir))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--controller-gamma", type=float, default=0.95,
                        help="the controller's discount (the montezuma preset's is 0.99, the meta-controller's)")
    parser.add_argument("--run-dir", type=Path, default=Path("runs/hdqn-montezuma"))
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()

    run_dir = train(args.steps, args.run_dir, args.seed, args.controller_gamma)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    curves: dict[str, list[tuple[int, float]]] = {}
    for record in records:
        for key, value in record.items():
            if key.startswith("train/goal_success/"):
                curves.setdefault(key.removeprefix("train/goal_success/"), []).append((record["step"], value))
    print("\n| goal | success, first logged | at half the budget | at the end |")
    print("|---|---|---|---|")
    for goal, curve in curves.items():
        middle = min(curve, key=lambda point: abs(point[0] - args.steps / 2))
        print(f"| {goal} | {curve[0][1]:.2f} (step {curve[0][0]:,}) | {middle[1]:.2f} | {curve[-1][1]:.2f} |")
    if args.plot:
        plot_curves({f"h-DQN controller on Montezuma's Revenge (seed {args.seed})": {g: [c] for g, c in curves.items()}},
                    args.plot, "goal reached (last ~100 options)")


if __name__ == "__main__":
    main()
