"""Rezende & Mohamed 2015, Figure 3: planar flows of length 2, 8 and 32 fitted to the four
unnormalised 2-D densities U1-U4 by reverse KL (``toolkit_vae.energies``).

    python benchmarks/flow_density_matching.py [--lengths 2 8 32] [--steps 30000] [--seeds 3]
        [--plot plugins/vae/flow_densities.png]

Prints KL(q_K || p) in nats per energy and flow length (mean over seeds, and each seed's; 0 is
a perfect fit; log Z comes from a grid), which is the free-energy bound's gap to -log Z, so
the bound improves exactly when this falls. ``--plot`` draws the paper's figure: each target
exp(-U) / Z beside the densities of the fitted flows (histograms of their samples, seed 0).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from toolkit_vae.energies import ENERGIES, PLOT_EXTENT, Fit, fit_flows, flow_density, target_density


def plot(fits: dict[int, list[Fit]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lengths = sorted(fits)
    names = list(ENERGIES)
    fig, axes = plt.subplots(len(names), len(lengths) + 1, figsize=(2.2 * (len(lengths) + 1), 2.2 * len(names)))
    window = [-PLOT_EXTENT, PLOT_EXTENT, -PLOT_EXTENT, PLOT_EXTENT]
    for row, name in enumerate(names):
        panels = [("exp(-U) / Z", target_density(name))]
        for length in lengths:
            fit = next(f for f in fits[length] if f.energy == name)
            panels.append((f"K = {length}: KL {fit.kl:.2f}", flow_density(fit.params, "planar", length)))
        for column, (title, density) in enumerate(panels):
            ax = axes[row, column]
            ax.imshow(density, origin="lower", extent=window, cmap="viridis")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(title, fontsize=8)
        axes[row, 0].set_ylabel(name)
    fig.suptitle("Planar flows fitted to U1-U4 by reverse KL (Rezende & Mohamed 2015, Fig. 3)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", nargs="+", type=int, default=[2, 8, 32])
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()

    names = list(ENERGIES)
    kl: dict[tuple[str, int], list[float]] = {}
    first_seed: dict[int, list[Fit]] = {}
    for length in args.lengths:
        for seed in range(args.seeds):
            began = time.monotonic()
            fits = fit_flows(names, length, steps=args.steps, learning_rate=args.learning_rate, seed=seed)
            for fit in fits:
                kl.setdefault((fit.energy, length), []).append(fit.kl)
            first_seed.setdefault(length, fits)
            print(f"  K={length} seed {seed}: " + ", ".join(f"{f.energy} {f.kl:.3f}" for f in fits)
                  + f" ({time.monotonic() - began:.0f} s)", flush=True)
    print(f"\nKL(q_K || p) in nats, mean over {args.seeds} seeds (each seed), {args.steps:,} Adam steps")
    print("| energy | " + " | ".join(f"K = {k}" for k in args.lengths) + " |")
    print("|---|" + "---|" * len(args.lengths))
    for name in names:
        cells = [f"{statistics.mean(kl[(name, k)]):.3f} ({', '.join(f'{v:.2f}' for v in kl[(name, k)])})"
                 for k in args.lengths]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.plot:
        plot(first_seed, args.plot)


if __name__ == "__main__":
    main()
