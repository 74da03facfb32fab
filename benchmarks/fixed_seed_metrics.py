"""Fixed-seed runs whose metrics must not move when the runtime is restructured.

    python benchmarks/fixed_seed_metrics.py record --out before/     # before a change (or --toolkit
                                                                      # OTHER_VENV/bin/toolkit)
    python benchmarks/fixed_seed_metrics.py record --out after/      # after it
    python benchmarks/fixed_seed_metrics.py compare before/ after/   # every line equal, perf/* aside

Each run is a real ``toolkit train`` (a subprocess, as a user would start it); ``compare``
prints the first differing line of each run, or "identical", and exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

RUNS = {
    "dqn-cartpole": ["dqn", "--env", "CartPole-v1", "--steps", "20000", "--seed", "3", "--eval-every", "5000",
                     "--eval-episodes", "5", "--threads", "1"],
    "hdqn-chain": ["hdqn", "--env", "toolkit/StochasticChain-v0", "--steps", "15000", "--seed", "3",
                   "--eval-every", "5000", "--eval-episodes", "20", "--threads", "1"],
    "per-prioritized": ["dqn", "--env", "CartPole-v1", "--replay", "prioritized", "--steps", "10000", "--seed", "3",
                        "--eval-every", "5000", "--eval-episodes", "5"],
    "per-rank": ["dqn", "--env", "CartPole-v1", "--replay", "rank", "--steps", "10000", "--seed", "3",
                 "--eval-every", "5000", "--eval-episodes", "5"],
    "trpo-cartpole": ["trpo", "--env", "CartPole-v1", "--steps", "8192", "--seed", "3", "--eval-every", "4096",
                      "--eval-episodes", "5"],
    "svg1-pendulum": ["svg1", "--env", "Pendulum-v1", "--steps", "2000", "--seed", "3", "--learning-starts", "500",
                      "--eval-every", "1000", "--eval-episodes", "2"],
    "ppo-cartpole": ["ppo", "--env", "CartPole-v1", "--steps", "8192", "--seed", "3", "--eval-every", "4096",
                     "--eval-episodes", "5"],
    "sac-pendulum": ["sac", "--env", "Pendulum-v1", "--steps", "1500", "--seed", "3", "--learning-starts", "500",
                     "--eval-every", "750", "--eval-episodes", "2"],
    "td3-pendulum": ["td3", "--env", "Pendulum-v1", "--steps", "1500", "--seed", "3", "--learning-starts", "500",
                     "--eval-every", "750", "--eval-episodes", "2"],
    "gan-ring8": ["gan", "--data", "ring8", "--steps", "300", "--seed", "3", "--eval-every", "150"],
    "vae-digits": ["vae", "--data", "digits", "--steps", "300", "--seed", "3", "--eval-every", "150"],
}


def record(out: Path, names: list[str], toolkit: str) -> None:
    for name in names:
        run_dir = out / name
        if run_dir.exists():
            print(f"{run_dir} exists; skipped")
            continue
        command = [toolkit, "train", *RUNS[name], "--run-dir", str(run_dir), "--no-progress"]
        print("toolkit " + " ".join(command[1:]), flush=True)
        # one thread everywhere (matmul reductions may round differently with more)
        subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


def stable_lines(path: Path) -> list[dict]:
    """The metric lines without throughput, media paths relative to the run directory."""
    lines = []
    prefix = str(path.parent) + "/"
    for line in path.read_text().splitlines():
        record = {k: v.removeprefix(prefix) if isinstance(v, str) else v
                  for k, v in json.loads(line).items() if not k.startswith("perf/")}
        if len(record) > 1:  # a line of throughput only
            lines.append(record)
    return lines


def compare(before: Path, after: Path) -> int:
    differ = 0
    for name in RUNS:
        a_path, b_path = before / name / "metrics.jsonl", after / name / "metrics.jsonl"
        if not (a_path.exists() and b_path.exists()):
            print(f"{name}: missing in one of the two")
            differ += 1
            continue
        a, b = stable_lines(a_path), stable_lines(b_path)
        first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
        if first is None and len(a) == len(b):
            print(f"{name}: identical ({len(a)} lines, perf/* aside)")
            continue
        differ += 1
        if first is None:
            print(f"{name}: {len(a)} lines before, {len(b)} after")
        else:
            print(f"{name}: line {first + 1} differs:\n  before {a[first]}\n  after  {b[first]}")
    return 1 if differ else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("--out", type=Path, required=True)
    rec.add_argument("--runs", nargs="*", default=list(RUNS), choices=list(RUNS))
    rec.add_argument("--toolkit", default=str(Path(sys.executable).parent / "toolkit"),
                     help="the toolkit command to run (another checkout's venv, for the 'before')")
    cmp = sub.add_parser("compare")
    cmp.add_argument("before", type=Path)
    cmp.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.command == "record":
        record(args.out, args.runs, args.toolkit)
        return 0
    return compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
