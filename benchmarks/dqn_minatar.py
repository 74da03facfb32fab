"""DQN on MinAtar (Young & Tian 2019): toolkit's ``minatar`` preset against SB3's DQN with the
same network and settings, and against the paper's DQN curves at the same frame counts.

    python benchmarks/dqn_minatar.py [--games Breakout SpaceInvaders] [--version v0] [--steps 1000000]
        [--seeds 3] [--sb3-seeds 1] [--jobs 2] [--results benchmarks/results/dqn_minatar.jsonl] [--plot minatar.png]
        [--work-dir runs/dqn_minatar] [--checkpoint-every 100000] [--learning-rate LR]

Both libraries: MinAtar's reference settings (examples/dqn.py): one conv layer of 16 3x3
filters and 128 hidden units, centred RMSProp (decay 0.95, eps 0.01), batch 32, replay
100k, one update per frame from 5k frames on, the target network copied every 1k frames,
epsilon 1 -> 0.1 over 100k frames, Huber loss, no gradient clipping. ``v0`` ids have all six
actions, as in the paper. Each run is a process with one torch thread (``--jobs`` at a
time); finished runs are kept in ``--results`` and not run again, and an unfinished one keeps
checkpoints (its replay included) in ``--work-dir`` every ``--checkpoint-every`` frames, from
which the same command continues it (see ``common.sb3_learn_resumably``). toolkit runs with
``--compile-optimizer`` (the same centred RMSProp update, compiled into one loop per parameter).

The step size is the preset's for each game: the one of the paper's learning curves, each
game's best from a sweep (its sensitivity plots: DQN on Breakout best at 2^-9, on Space
Invaders at 2^-12, about the reference's 2.5e-4). ``--learning-rate`` runs both libraries at
another step size, kept under its own key and work dir.

Scored as the paper scores: the mean return of the last 100 training episodes (epsilon 0.1),
and also the greedy policy's mean return over 10 evaluation episodes at the end. Env steps/s
are training's alone: toolkit's from its ``perf/sps`` lines, SB3's over the seconds in
``learn`` (start-up and evaluations excluded on both sides). ``--plot``
draws the 100-episode moving average against frames next to the paper's DQN curve.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np

from common import run_workers, sb3_learn_resumably, toolkit_learn_resumably
from toolkit_dqn.dqn import PRESETS

# The paper's DQN curve (mean of 30 runs of the 100-episode moving average of training returns),
# read off the MinAtar README's learning_curves.gif at these frame counts (about +-0.5 on Breakout,
# +-2 on Space Invaders); each game at the best step size of the paper's sweep.
PAPER_DQN = {
    "Breakout": {250_000: 7.5, 500_000: 8.5, 1_000_000: 9.2, 2_000_000: 9.8, 5_000_000: 10.0},
    "SpaceInvaders": {250_000: 21.0, 500_000: 25.0, 1_000_000: 32.0, 2_000_000: 41.0, 5_000_000: 43.0},
}
CURVE_POINTS = 50


def preset_step_size(env_id: str) -> float:
    """The ``minatar`` preset's step size for this game: what a run without ``--learning-rate`` uses."""
    return PRESETS["minatar"].values_for({env_id})["learning_rate"]


def moving_average_curve(steps: np.ndarray, returns: np.ndarray, budget: int) -> list[tuple[int, float]]:
    """The mean return of the last 100 episodes finished by each of CURVE_POINTS frame counts."""
    curve = []
    for frame in np.linspace(budget / CURVE_POINTS, budget, CURVE_POINTS).astype(int):
        done = returns[steps <= frame][-100:]
        if len(done):
            curve.append((int(frame), float(done.mean())))
    return curve


def settings(steps: int, learning_rate: float) -> dict:
    return dict(learning_rate=learning_rate, buffer_size=100_000, learning_starts=5_000, batch_size=32, gamma=0.99,
                train_freq=1, gradient_steps=1, target_update_interval=1_000,
                exploration_fraction=100_000 / steps, exploration_initial_eps=1.0, exploration_final_eps=0.1)


def run_sb3(env_id: str, seed: int, steps: int, work_dir: Path | None, checkpoint_every: int,
            learning_rate: float) -> dict:
    import torch
    from stable_baselines3 import DQN
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
    from stable_baselines3.common.vec_env import DummyVecEnv
    from torch import nn

    from toolkit.vec_env import resolve_env

    class MinAtarExtractor(BaseFeaturesExtractor):
        """The MinAtar network's body: 16 3x3 convolutions, then 128 units."""

        def __init__(self, observation_space, features_dim: int = 128) -> None:
            super().__init__(observation_space, features_dim)
            channels, height, width = observation_space.shape
            self.body = nn.Sequential(nn.Conv2d(channels, 16, 3), nn.ReLU(), nn.Flatten(),
                                      nn.Linear(16 * (height - 2) * (width - 2), features_dim), nn.ReLU())

        def forward(self, observations):
            return self.body(observations.float())

    def make_env(env_seed: int, monitor: Path):
        monitor.mkdir(parents=True, exist_ok=True)
        env = DummyVecEnv([lambda: Monitor(resolved.make(), str(monitor / "0"))])
        env.seed(env_seed)
        return env

    def make_model(env):
        policy_kwargs = dict(features_extractor_class=MinAtarExtractor, net_arch=[], normalize_images=False,
                             optimizer_class=torch.optim.RMSprop,
                             optimizer_kwargs=dict(alpha=0.95, eps=0.01, centered=True))
        return DQN("CnnPolicy", env, policy_kwargs=policy_kwargs, max_grad_norm=1e10, seed=seed, device="cpu",
                   verbose=0, **settings(steps, learning_rate))

    torch.set_num_threads(1)
    resolved = resolve_env(env_id)
    model, _, seconds, episodes = sb3_learn_resumably(DQN, make_env, make_model, seed, steps, work_dir, checkpoint_every)
    ends, returns = (np.array(column, dtype=float) for column in zip(*episodes))
    greedy, _ = evaluate_policy(model, Monitor(resolved.make(training=False)), n_eval_episodes=10, deterministic=True)
    return {"final": float(returns[-100:].mean()), "greedy": float(greedy), "sps": steps / seconds,
            "curve": moving_average_curve(ends, returns, steps)}


def run_toolkit(env_id: str, seed: int, steps: int, work_dir: Path | None, checkpoint_every: int,
                learning_rate: float) -> dict:
    records, sps = toolkit_learn_resumably("dqn", work_dir, checkpoint_every, env=env_id, seed=seed, steps=steps,
                                           threads=1, eval_every=0, compile_optimizer=True, eval_episodes=10,
                                           progress=False, learning_rate=learning_rate)
    episodes = [(r["step"], r["train/episode_return"]) for r in records if "train/episode_return" in r]
    steps_at, returns = (np.array(column, dtype=float) for column in zip(*episodes))
    greedy = [r["eval/mean_return"] for r in records if "eval/mean_return" in r][-1]
    return {"final": float(returns[-100:].mean()), "greedy": float(greedy), "sps": sps,
            "curve": moving_average_curve(steps_at, returns, steps)}


def plot(results_file: Path, games: list[str], version: str, steps: int, path: Path) -> None:
    """Every run of ``results_file`` at this budget: one line (mean) and band (min-max) per
    library and step size, next to the paper's curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[tuple, list[np.ndarray]] = {}
    for line in results_file.read_text().splitlines():
        record = json.loads(line)
        lib, env_id, _, _, budget, *step_size = json.loads(record["key"])
        if int(budget) == steps:
            series.setdefault((env_id, lib, float(step_size[1]) if step_size else preset_step_size(env_id)), []).append(
                np.array(record["result"]["curve"]))
    fig, axes = plt.subplots(1, len(games), figsize=(5.5 * len(games), 3.8), squeeze=False)
    for ax, game in zip(axes[0], games):
        env_id = f"MinAtar/{game}-{version}"
        for (env, lib, learning_rate), curves in sorted(series.items(), key=lambda item: (item[0][1] != "toolkit", item[0])):
            if env != env_id:
                continue
            frames = curves[0][:, 0]
            values = np.stack([c[:, 1] for c in curves])
            exponent = np.log2(learning_rate)
            step_size = f"2^{exponent:.0f}" if exponent == round(exponent) else f"{learning_rate:g}"
            label = f"{lib}, step size {step_size} ({len(curves)} seed{'s' if len(curves) > 1 else ''})"
            drawn, = ax.plot(frames, values.mean(0), label=label)
            ax.fill_between(frames, values.min(0), values.max(0), color=drawn.get_color(), alpha=0.2)
        paper = PAPER_DQN[game]
        ax.plot(list(paper), list(paper.values()), "k--o", markersize=3, label="paper's DQN (30 runs, best step size)")
        ax.set(title=f"MinAtar {game}", xlabel="frames", ylabel="return, 100-episode moving average", xlim=(0, steps))
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", nargs="+", default=["Breakout", "SpaceInvaders"], choices=list(PAPER_DQN))
    parser.add_argument("--version", default="v0", choices=["v0", "v1"])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sb3-seeds", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results" / "dqn_minatar.jsonl")
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--work-dir", type=lambda text: Path(text) if text else None, default=Path("runs/dqn_minatar"),
                        help="where unfinished runs keep their checkpoints (run the command again to continue them)")
    parser.add_argument("--checkpoint-every", type=int, default=100_000, help="env steps between those checkpoints")
    parser.add_argument("--learning-rate", type=float,
                        help="the RMSProp step size of both libraries (default: the preset's for each game, "
                             "2^-9 on Breakout, 2.5e-4 on Space Invaders)")
    parser.add_argument("--worker", nargs=3, metavar=("LIB", "ENV", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        lib, env_id, seed = args.worker
        step_size = args.learning_rate or preset_step_size(env_id)
        # the work dir names the step size trained at, so a checkpoint is never continued at another
        name = f"{lib}-{env_id.replace('/', '_')}-seed{seed}-{args.steps}-lr{step_size:g}"
        work_dir = args.work_dir / name if args.work_dir else None
        run_one = run_toolkit if lib == "toolkit" else run_sb3
        print(json.dumps(run_one(env_id, int(seed), args.steps, work_dir, args.checkpoint_every, step_size)))
        return

    libs = {"toolkit": range(args.seeds), "sb3": range(args.sb3_seeds)}
    jobs = [(lib, f"MinAtar/{game}-{args.version}", seed) for game in args.games for lib, seeds in libs.items()
            for seed in seeds]
    args.results.parent.mkdir(parents=True, exist_ok=True)
    step_size = ["--learning-rate", repr(args.learning_rate)] if args.learning_rate else []  # default runs keep their keys
    results = run_workers(__file__, jobs, args.jobs, ["--steps", str(args.steps), *step_size], args.results,
                          placement_args=["--work-dir", str(args.work_dir or ""), "--checkpoint-every", str(args.checkpoint_every)])
    print(f"\n| game | library | last-100-episode return at {args.steps:,} frames (mean, per seed) | "
          "greedy evaluation | paper's DQN there | env steps/s |")
    print("|---|---|---|---|---|---|")
    for game in args.games:
        env_id = f"MinAtar/{game}-{args.version}"
        paper = PAPER_DQN[game].get(args.steps, "")
        for lib, seeds in libs.items():
            if not seeds:
                continue
            runs = [results[(lib, env_id, s)] for s in seeds]
            finals = [r["final"] for r in runs]
            print(f"| {game} | {lib} | {statistics.mean(finals):.1f} ({', '.join(f'{v:.1f}' for v in finals)}) | "
                  f"{statistics.mean(r['greedy'] for r in runs):.1f} | {paper} | "
                  f"{statistics.mean(r['sps'] for r in runs):.0f} |")
    if args.plot:
        plot(args.results, args.games, args.version, args.steps, args.plot)


if __name__ == "__main__":
    main()
