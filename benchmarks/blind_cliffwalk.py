"""Prioritized replay's mechanism on the Blind Cliffwalk (Schaul et al. 2016, Figure 1): the
number of Q-learning updates from a memory of all transitions until the values are learned,
uniform replay against proportional and rank-based prioritization and the oracle, as the chain
grows (the experiment itself: ``toolkit_per.cliffwalk``).

    python benchmarks/blind_cliffwalk.py [--n 2 4 6 8 10 12] [--seeds 10] [--plot plugins/per/blind_cliffwalk.png]
        [--results benchmarks/results/blind_cliffwalk.jsonl]

Prints the median (min-max) updates over seeds per replay and n, and how many times more
updates uniform replay needs; ``--plot`` draws the growth curves against the memory size on
log-log axes, the medians as lines and the min-max as bands, as the paper's figure does.
Every finished count goes to ``--results`` (JSON lines) and is not computed again, so larger n
can be added later.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from toolkit_per.cliffwalk import REPLAYS, updates_to_learn

LABELS = {"uniform": "uniform", "prioritized": "proportional", "rank": "rank-based", "oracle": "oracle"}


def plot(memory_sizes: list[int], results: dict[str, list[list[int]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for replay, runs in results.items():
        line, = ax.plot(memory_sizes, [statistics.median(r) for r in runs], marker="o", label=LABELS[replay])
        ax.fill_between(memory_sizes, [min(r) for r in runs], [max(r) for r in runs], color=line.get_color(), alpha=0.2)
    ax.set(xscale="log", yscale="log", xlabel="transitions in the replay memory (2^(n+1) - 2)",
           ylabel="updates until the values are learned", title="Blind Cliffwalk: median over seeds, min-max")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", nargs="+", type=int, default=[2, 4, 6, 8, 10, 12], help="chain lengths")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--replays", nargs="+", default=list(REPLAYS), choices=REPLAYS)
    parser.add_argument("--max-updates", type=int, default=10_000_000)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results" / "blind_cliffwalk.jsonl")
    args = parser.parse_args()

    done: dict[tuple, int] = {}
    if args.results.exists():
        for line in args.results.read_text().splitlines():
            record = json.loads(line)
            done[(record["n"], record["replay"], record["seed"], record["max_updates"])] = record["updates"]
    args.results.parent.mkdir(parents=True, exist_ok=True)

    def updates(n: int, replay: str, seed: int) -> int:
        key = (n, replay, seed, args.max_updates)
        if key not in done:
            done[key] = updates_to_learn(n, replay, seed, max_updates=args.max_updates)
            with open(args.results, "a") as f:
                f.write(json.dumps(dict(zip(("n", "replay", "seed", "max_updates"), key), updates=done[key])) + "\n")
        if done[key] is None:
            raise SystemExit(f"{replay} at n={n}: not learned within --max-updates {args.max_updates}")
        return done[key]

    results: dict[str, list[list[int]]] = {replay: [] for replay in args.replays}
    for n in args.n:
        began = time.monotonic()
        for replay in args.replays:
            results[replay].append([updates(n, replay, seed) for seed in range(args.seeds)])
        print(f"  n={n}: {time.monotonic() - began:.0f} s", flush=True)

    memory_sizes = [2 ** (n + 1) - 2 for n in args.n]
    print(f"\nmedian (min-max) updates over {args.seeds} seeds")
    print("| n | transitions | " + " | ".join(LABELS[r] for r in args.replays) + " | uniform / proportional "
          "| uniform / rank-based |")
    print("|---|---|" + "---|" * (len(args.replays) + 2))
    for i, n in enumerate(args.n):
        medians = {r: statistics.median(results[r][i]) for r in args.replays}
        cells = [f"{medians[r]:,.0f} ({min(results[r][i]):,}-{max(results[r][i]):,})" for r in args.replays]
        ratios = [f"{medians['uniform'] / medians[r]:.1f}x" if {"uniform", r} <= set(medians) else ""
                  for r in ("prioritized", "rank")]
        print(f"| {n} | {memory_sizes[i]:,} | " + " | ".join(cells + ratios) + " |")
    if args.plot:
        plot(memory_sizes, results, args.plot)


if __name__ == "__main__":
    main()
