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

Then goal trials, the cleanest measure: from the start of a fresh game, the trained
controller (epsilon 0.05) pursues each goal for up to --trial-steps steps, --trials times,
and so does random play (epsilon 1); a trial fails when a life is lost or time runs out.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from common import plot_curves

GOAL_ENV = "MontezumaRevenge-goals"


def train(steps: int, run_dir: Path, seed: int, controller_gamma: float) -> Path:
    import toolkit
    from toolkit import checkpoint

    if run_dir.is_dir() and checkpoint.latest(run_dir) is not None:
        return toolkit.resume(run_dir, steps=steps)
    return toolkit.train("hdqn", env=GOAL_ENV, seed=seed, steps=steps, pretrain_steps=steps,
                         learning_starts=min(10_000, steps // 10), controller_buffer_size=min(steps, 200_000),
                         controller_gamma=controller_gamma,
                         controller_exploration_steps=steps // 3, target_update_interval=min(10_000, steps // 10),
                         # the final evaluation is one capped episode: a greedy policy can stand still for hours
                         eval_every=0, eval_episodes=1, max_episode_steps=5_000,
                         checkpoint_every=steps // 10, save_replay=True, threads=2, run_dir=str(run_dir))


def goal_trials(run_dir: Path, trials: int, max_steps: int, seed: int) -> dict[tuple[str, float], list[int | None]]:
    """(goal, epsilon) -> for each trial the steps the controller took to reach the goal from
    the start of a fresh game, or None where it lost a life or ran out of steps."""
    from toolkit import checkpoint
    from toolkit.interfaces import EnvContext
    from toolkit.run import find_checkpoint, plan
    from toolkit.vec_env import make_vec_env
    from toolkit_hdqn.envs import MontezumaGoals

    state = checkpoint.load(find_checkpoint(run_dir))
    p = plan(state["algorithm"], config_values=state["config"])
    results: dict[tuple[str, float], list[int | None]] = {}
    algorithm = None
    rng = np.random.default_rng(seed)
    for epsilon in (0.05, 1.0):
        for trial in range(trials):
            for goal_index, goal in enumerate(MontezumaGoals.goal_names):
                # a fresh game each time: an episodic-life env's reset only continues the game
                envs = make_vec_env(p.env, 1, seed + trial, training=True)
                if algorithm is None:
                    context = EnvContext(envs.single_observation_space, envs.single_action_space, 1,
                                         p.env.frame_stack, p.run.steps, p.run.seed, "cpu", p.env.id)
                    algorithm = p.algo_class(p.algo_config, context)
                    algorithm.load_state_dict(state["state"])
                obs, _ = envs.reset(seed=seed + trial)
                outcome = None
                for step in range(1, max_steps + 1):
                    action = algorithm.choose_actions(obs, np.array([goal_index]), epsilon, rng)
                    obs, _, terminated, truncated, infos = envs.step(action)
                    if infos["achieved_goals"][0][goal_index] and not terminated[0]:
                        outcome = step
                        break
                    if terminated[0] or truncated[0]:
                        break
                envs.close()
                results.setdefault((goal, epsilon), []).append(outcome)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--controller-gamma", type=float, default=0.95,
                        help="the controller's discount (the montezuma preset's is 0.99, the meta-controller's)")
    parser.add_argument("--run-dir", type=Path, default=Path("runs/hdqn-montezuma"))
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--trials", type=int, default=20, help="goal trials per goal and policy after training")
    parser.add_argument("--trial-steps", type=int, default=300, help="steps a goal trial may take")
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
    if args.trials:
        trials = goal_trials(run_dir, args.trials, args.trial_steps, args.seed + 10_000)
        print(f"\n| goal | trained controller (epsilon 0.05): reached | its median steps | random play: reached |")
        print("|---|---|---|---|")
        for goal in curves:
            trained, random_play = trials[(goal, 0.05)], trials[(goal, 1.0)]
            steps = [s for s in trained if s is not None]
            median = f"{int(np.median(steps))}" if steps else "-"
            print(f"| {goal} | {len(steps)}/{len(trained)} | {median} | "
                  f"{sum(s is not None for s in random_play)}/{len(random_play)} |")


if __name__ == "__main__":
    main()
