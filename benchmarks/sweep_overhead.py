"""What `toolkit sweep` costs over running the same trials yourself, on this machine.

    python benchmarks/sweep_overhead.py [--seeds 4] [--steps 3000] [--repeat 2]

Runs the same seeds of a small DQN CartPole config three ways, one torch thread per run:
plain `toolkit train` processes one after another; `toolkit sweep --concurrency 1`; and
`toolkit sweep --concurrency 2`. Prints the per-trial overhead of the sweep (Ray start-up,
Tune's bookkeeping, the trial's own process start) over the sequential runs, and the
wall-clock of the concurrent sweep over the sequential time (the goals: at most 3 s per trial,
at most 0.6 on an idle 2-core machine). Each way runs ``--repeat`` times, interleaved, and the
fastest time counts (timings on a shared machine vary by tens of percent between runs).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOOLKIT = [sys.executable, "-m", "toolkit.cli"]


def config(steps: int) -> list[str]:
    return ["--env", "CartPole-v1", "--steps", str(steps), "--learning-starts", "500", "--eval-every", "0",
            "--eval-episodes", "5", "--threads", "1"]


def timed(command: list[str]) -> float:
    began = time.monotonic()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    sequential, sweeps = float("inf"), {1: float("inf"), 2: float("inf")}
    for attempt in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            sequential = min(sequential, sum(timed([*TOOLKIT, "train", "dqn", *config(args.steps), "--seed", str(seed),
                                                    "--run-dir", str(root / f"plain{seed}"), "--no-progress"])
                                             for seed in range(args.seeds)))
            for k in sweeps:
                sweeps[k] = min(sweeps[k], timed([*TOOLKIT, "sweep", "dqn", *config(args.steps), "--seeds",
                                                  str(args.seeds), "--concurrency", str(k), "--sweep-dir",
                                                  str(root / f"sweep{k}")]))
    overhead = (sweeps[1] - sequential) / args.seeds
    print(f"{args.seeds} seeds of dqn on CartPole-v1, {args.steps} steps each, 1 thread per run, "
          f"fastest of {args.repeat}")
    print(f"  sequential `toolkit train`:      {sequential:6.1f} s")
    print(f"  toolkit sweep --concurrency 1:   {sweeps[1]:6.1f} s   overhead {overhead:+.2f} s per trial (goal <= 3)")
    print(f"  toolkit sweep --concurrency 2:   {sweeps[2]:6.1f} s   {sweeps[2] / sequential:.2f} of sequential "
          "(goal <= 0.6)")


if __name__ == "__main__":
    main()
