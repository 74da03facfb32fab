"""WGAN-GP's toy experiment at its preset: `toolkit train wgan --preset gp --data ring8|grid25`.

    python benchmarks/wgan_gp_toy.py [--datasets ring8 grid25] [--seeds 3] [--runs runs/wgan_gp_toy]
        [--jobs 2] [--plot plugins/gan/wgan_gp_toy.png]

Each run is exactly ``toolkit train wgan --preset gp --data D --seed S`` (the authors' gan_toy.py
settings: 3 x 512 ReLU networks with He-uniform init, 2-D noise, lambda 0.1, batch 256, Adam 1e-4
(0.5, 0.9), its data scales; here 20k critic updates on ring8 and 80k on grid25 with the step size
falling linearly to 0), kept in ``--runs`` and reused
when finished. Prints, per run, modes covered and the fraction of high-quality samples at
the end (2,500 samples; ``toolkit_gan.metrics``) and plots each run's samples over the data
with its high-quality fraction through training.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import read_metrics


def train(dataset: str, seed: int, run_dir: Path) -> None:
    from toolkit.rundir import read_status

    if read_status(run_dir).get("status") == "finished":
        return
    command = [sys.executable, "-m", "toolkit.cli", "train", "wgan", "--preset", "gp", "--data", dataset,
               "--seed", str(seed), "--threads", "1", "--no-progress", "--run-dir", str(run_dir)]
    if run_dir.exists():  # interrupted: carry on from its last checkpoint
        command = [sys.executable, "-m", "toolkit.cli", "resume", str(run_dir)]
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


def evaluations(run_dir: Path) -> list[dict]:
    return [r for r in read_metrics(run_dir) if "eval/modes_covered" in r]


def plot(runs: dict[tuple[str, int], Path], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    import toolkit
    from toolkit.datasets import load_dataset

    datasets = sorted({d for d, _ in runs}, key=["ring8", "grid25"].index)
    seeds = sorted({s for _, s in runs})
    fig, axes = plt.subplots(len(datasets), len(seeds) + 1, figsize=(3.2 * (len(seeds) + 1), 3.2 * len(datasets)),
                             squeeze=False)
    for row, dataset in enumerate(datasets):
        reference = load_dataset(dataset, "test")[0]
        for col, seed in enumerate(seeds):
            run_dir = runs[(dataset, seed)]
            torch.manual_seed(0)
            samples = toolkit.load(run_dir).sample(2500)
            last = evaluations(run_dir)[-1]
            ax = axes[row][col]
            ax.scatter(reference[:, 0], reference[:, 1], s=1, color="0.75")
            ax.scatter(samples[:, 0], samples[:, 1], s=1, color="tab:blue", alpha=0.4)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{dataset} seed {seed}: {last['eval/modes_covered']:.0f} modes, "
                         f"{last['eval/high_quality']:.0%} HQ", fontsize=8)
        ax = axes[row][-1]
        for seed in seeds:
            evals = evaluations(runs[(dataset, seed)])
            ax.plot([e["step"] for e in evals], [e["eval/high_quality"] for e in evals], label=f"seed {seed}")
        ax.axhline(0.5, color="0.5", linestyle="--", linewidth=0.8)
        ax.set_ylim(0, 1)
        ax.set_xlabel("critic updates", fontsize=8)
        ax.set_title(f"{dataset}: high-quality fraction", fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["ring8", "grid25"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--runs", type=Path, default=Path("runs/wgan_gp_toy"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()

    runs = {(d, s): args.runs / f"{d}-{s}" for d in args.datasets for s in range(args.seeds)}
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda item: train(item[0][0], item[0][1], item[1]), runs.items()))
    print("| dataset | modes covered (per seed) | high-quality fraction (per seed) | mean ± std |")
    print("|---|---|---|---|")
    for dataset in args.datasets:
        finals = [evaluations(runs[(dataset, s)])[-1] for s in range(args.seeds)]
        modes = [f["eval/modes_covered"] for f in finals]
        quality = [f["eval/high_quality"] for f in finals]
        print(f"| {dataset} | {', '.join(f'{m:.0f}' for m in modes)} | {', '.join(f'{q:.2f}' for q in quality)} | "
              f"{statistics.mean(quality):.2f} ± {statistics.stdev(quality) if len(quality) > 1 else 0:.2f} |")
    if args.plot:
        plot(runs, args.plot)


if __name__ == "__main__":
    main()
