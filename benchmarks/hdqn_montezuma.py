"""h-DQN on Montezuma's Revenge: does the controller learn to reach its goals, and does the
meta-controller then learn to string them together for extrinsic reward?

    python benchmarks/hdqn_montezuma.py [--steps 150000] [--meta-steps 0] [--flat-dqn]
        [--controller-gamma 0.95] [--run-dir runs/hdqn-montezuma] [--plot montezuma_goals.png]

Phase one, shortened for a CPU (``--steps``): the meta-controller picks goals at random and
only the controller learns (``pretrain_steps`` = ``--steps``), from the ``montezuma`` preset
with a replay, exploration and target interval scaled to the budget, and a controller
discount of 0.95 rather than 0.99: on the key-door gridworld 0.99 left neighbouring states'
values within the fit's noise. The critic is the RAM oracle of ``MontezumaRevenge-goals``; the
measure is ``train/goal_success/<goal>``, the fraction of the last ~100 options with that goal
(that began away from it) that reached it. The first options run with epsilon 1, so the start
of each curve is the success rate of random play, the baseline the controller has to beat.

Phase two (``--meta-steps N``): the same run goes on for N more env steps in which the
meta-controller learns from the extrinsic reward (its epsilon annealed over the first half
of them) while the controller keeps learning. ``--flat-dqn`` trains DQN (the Nature network,
the same replay size, learning start, target interval, learning rate and loss) on
``MontezumaRevengeNoFrameskip-v4`` for the same total budget, and the extrinsic score
(``train/episode_return``, one point per game) of both is printed and plotted next to
``--plot`` as ``<name>_score.png``.

The runs keep checkpoints (with their replays) every tenth of the budget: run the same
command again after an interruption and they resume. Prints the success rate per goal at the
start, the middle and the end, and plots the curves.

Then goal trials, the cleanest measure: from the start of a fresh game, the trained
controller (epsilon 0.05) pursues each goal for up to --trial-steps steps, --trials times,
and so does random play (epsilon 1); a trial fails when a life is lost or time runs out.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import plot_curves, read_metrics

GOAL_ENV = "MontezumaRevenge-goals"
FLAT_ENV = "MontezumaRevengeNoFrameskip-v4"


def train(steps: int, meta_steps: int, run_dir: Path, seed: int, controller_gamma: float) -> Path:
    import toolkit

    total = steps + meta_steps
    if (kept := existing_run(run_dir, total)) is not None:
        return kept
    return toolkit.train("hdqn", env=GOAL_ENV, seed=seed, steps=total, pretrain_steps=steps,
                         meta_exploration_steps=max(meta_steps // 2, 1), **scaled_to(total),
                         controller_buffer_size=min(total, 200_000), controller_gamma=controller_gamma,
                         controller_exploration_steps=steps // 3, save_replay=True, threads=1, run_dir=str(run_dir))


def train_flat_dqn(steps: int, run_dir: Path, seed: int) -> Path:
    """DQN on the plain game, with h-DQN's replay size, learning start, target interval and
    exploration floor, epsilon annealed over the first half of the budget."""
    import toolkit

    if (kept := existing_run(run_dir, steps)) is not None:
        return kept
    return toolkit.train("dqn", env=FLAT_ENV, seed=seed, steps=steps, **scaled_to(steps),
                         buffer_size=min(steps, 200_000), exploration_final=0.1, exploration_steps=steps // 2,
                         learning_rate=2.5e-4, save_replay=True, threads=1, run_dir=str(run_dir))


def existing_run(run_dir: Path, steps: int) -> Path | None:
    """The run kept in ``run_dir``: as it is when it has reached ``steps``, resumed to ``steps``
    when it was interrupted; None when there is none."""
    import toolkit
    from toolkit import checkpoint

    latest = checkpoint.latest(run_dir) if run_dir.is_dir() else None
    if latest is None:
        return None
    return run_dir if checkpoint.step_of(latest) >= steps else toolkit.resume(run_dir, steps=steps)


def scaled_to(total: int) -> dict:
    """The settings both runs share, scaled to a CPU budget."""
    return dict(learning_starts=min(10_000, total // 10), target_update_interval=min(10_000, total // 10),
                # the final evaluation is one capped episode: a greedy policy can stand still for hours
                eval_every=0, eval_episodes=1, max_episode_steps=5_000, checkpoint_every=total // 10)


def scores(run_dir: Path) -> list[tuple[int, float]]:
    """(env step, extrinsic return) of every finished game of a run."""
    return [(r["step"], r["train/episode_return"]) for r in read_metrics(run_dir) if "train/episode_return" in r]


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
    parser.add_argument("--steps", type=int, default=150_000, help="phase one: only the controller learns")
    parser.add_argument("--meta-steps", type=int, default=0, help="phase two: the meta-controller learns too")
    parser.add_argument("--flat-dqn", action="store_true", help="also train flat DQN for the same total budget")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--controller-gamma", type=float, default=0.95,
                        help="the controller's discount (the montezuma preset's is 0.99, the meta-controller's)")
    parser.add_argument("--run-dir", type=Path, default=Path("runs/hdqn-montezuma"))
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--trials", type=int, default=20, help="goal trials per goal and policy after training")
    parser.add_argument("--trial-steps", type=int, default=300, help="steps a goal trial may take")
    args = parser.parse_args()

    total = args.steps + args.meta_steps
    run_dir = train(args.steps, args.meta_steps, args.run_dir, args.seed, args.controller_gamma)
    curves: dict[str, list[tuple[int, float]]] = {}
    for record in read_metrics(run_dir):
        for key, value in record.items():
            if key.startswith("train/goal_success/"):
                curves.setdefault(key.removeprefix("train/goal_success/"), []).append((record["step"], value))
    marks = [("half of phase one", args.steps / 2), ("end of phase one", args.steps)]
    if args.meta_steps:
        marks.append(("end of phase two", total))
    print("\n| goal | success, first logged | " + " | ".join(name for name, _ in marks) + " |")
    print("|---|---|" + "---|" * len(marks))
    for goal, curve in curves.items():
        at = [min(curve, key=lambda point: abs(point[0] - step))[1] for _, step in marks]
        print(f"| {goal} | {curve[0][1]:.2f} (step {curve[0][0]:,}) | " + " | ".join(f"{v:.2f}" for v in at) + " |")
    if args.plot:
        plot_curves({f"h-DQN controller on Montezuma's Revenge (seed {args.seed})": {g: [c] for g, c in curves.items()}},
                    args.plot, "goal reached (last ~100 options)")

    games = {"h-DQN": scores(run_dir)}
    if args.flat_dqn:
        games["flat DQN"] = scores(train_flat_dqn(total, args.run_dir.with_name(args.run_dir.name + "-flat-dqn"),
                                                  args.seed))
    print("\n| agent | games | games with a score | best game | mean score, phase one | mean score, phase two |")
    print("|---|---|---|---|---|---|")
    for agent, points in games.items():
        returns = [r for _, r in points]
        phases = [[r for t, r in points if t <= args.steps], [r for t, r in points if t > args.steps]]
        means = [f"{np.mean(p):.1f} ({len(p)} games)" if p else "-" for p in phases]
        print(f"| {agent} | {len(returns)} | {sum(r > 0 for r in returns)} | {max(returns, default=0):.0f} | "
              f"{means[0]} | {means[1]} |")
    if args.plot and all(games.values()):
        plot_curves({f"Montezuma's Revenge, extrinsic score (seed {args.seed})": {a: [p] for a, p in games.items()}},
                    args.plot.with_name(args.plot.stem + "_score.png"), "game score (moving average of 20 games)",
                    smoothing=20)

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
