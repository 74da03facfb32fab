"""InfoGAN's categorical code against the digit labels, at the `digits` preset.

    python benchmarks/infogan_codes.py [--seeds 1 2 3] [--runs-dir runs/infogan_codes] [--plot plugins/gan/infogan_codes.png]

Each seed is ``toolkit train infogan --data digits --seed S`` with nothing else (the
`digits` preset: convolutional networks with batch norm, 16 noise dimensions, 12,000
updates, an evaluation every 1,000), one at a time, in ``RUNS_DIR/seed-S``; a finished run
there is reused, so the script resumes. ``eval/code_accuracy`` is the fraction of held-out
digits whose inferred category, under the best one-to-one matching of the 10 category values
to the 10 labels, is their label (the paper's measure; 0.95 on MNIST). Prints the accuracy
at every evaluation and the final IS-/FD-digits; ``--plot`` draws the accuracy curves and the
first seed's latent traversal (one row per category value, the first continuous code varying
along the row).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from common import read_metrics


def train(seed: int, run_dir: Path, budget: int) -> None:
    """Train, or continue a run that stopped early or has a smaller budget (checkpoints resume
    exactly and the preset has no schedule tied to the budget, so this is the run a fresh
    ``toolkit train`` would give)."""
    status = run_dir / "status.json"
    state = json.loads(status.read_text()) if status.exists() else None
    if state and state["status"] == "finished" and state["step"] >= budget:
        print(f"seed {seed}: reusing {run_dir}")
        return
    command = [sys.executable, "-m", "toolkit.cli", "train", "infogan", "--data", "digits", "--seed", str(seed),
               "--run-dir", str(run_dir), "--no-progress"]
    if run_dir.exists():
        command = [sys.executable, "-m", "toolkit.cli", "resume", str(run_dir), "--steps", str(budget)]
    print(" ".join(command[2:]), flush=True)
    subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/infogan_codes"))
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    from toolkit.planning import plan

    budget = plan("infogan", {"data": "digits"}).run.steps
    runs = {seed: args.runs_dir / f"seed-{seed}" for seed in args.seeds}
    for seed, run_dir in runs.items():
        train(seed, run_dir, budget)
    curves = {seed: [(r["step"], r["eval/code_accuracy"]) for r in read_metrics(run_dir) if "eval/code_accuracy" in r]
              for seed, run_dir in runs.items()}
    finals = {seed: {k[5:]: v for r in read_metrics(run_dir) for k, v in r.items() if k.startswith("eval/")}
              for seed, run_dir in runs.items()}
    steps = [step for step, _ in curves[args.seeds[0]]]
    print("\n| seed | " + " | ".join(f"{s:,}" for s in steps) + " | IS-digits | FD-digits |")
    print("|---|" + "---|" * (len(steps) + 2))
    for seed in args.seeds:
        print(f"| {seed} | " + " | ".join(f"{a:.3f}" for _, a in curves[seed])
              + f" | {finals[seed]['IS-digits']:.2f} | {finals[seed]['FD-digits']:.2f} |")
    last = [curves[s][-1][1] for s in args.seeds]
    print(f"\nfinal code_accuracy {statistics.mean(last):.3f} ± {statistics.pstdev(last):.3f} "
          f"(min {min(last):.3f}) over {len(last)} seeds")
    if args.plot:
        plot(curves, runs[args.seeds[0]], args.seeds[0], args.plot)


def plot(curves: dict, run_dir: Path, seed: int, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [1.2, 1]})
    for s, curve in curves.items():
        left.plot(*zip(*curve), marker="o", label=f"seed {s}")
    left.axhline(0.8, color="0.5", linestyle="--", linewidth=1, label="0.8 (acceptance)")
    left.set_xlabel("generator updates")
    left.set_ylabel("eval/code_accuracy (held-out digits)")
    left.set_title("InfoGAN digits preset: categorical code vs labels")
    left.legend()
    traversal = sorted((run_dir / "samples").glob("traversal_step_*.png"))[-1]
    right.imshow(mpimg.imread(traversal), cmap="gray")
    right.set_title(f"seed {seed}: one row per category value")
    right.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
