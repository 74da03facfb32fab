"""WGAN-GP's Figure 1 (Gulrajani et al. 2017): what weight clipping does to a critic, against
the gradient penalty, with toolkit's own WGAN update (``toolkit_gan.wgan.WGAN.update``).

    python benchmarks/wgan_gp_critics.py surfaces [--steps 3000] [--plot plugins/gan/wgan_critic_surfaces.png]
    python benchmarks/wgan_gp_critics.py gradients [--steps 1000] [--plot plugins/gan/wgan_critic_gradients.png]

``surfaces`` (Figure 1a: "critics trained with weight clipping fail to capture higher moments of
the data distribution"): on 8 Gaussians, 25 Gaussians and the Swiss roll at gan_toy.py's scales,
the "generator" held at the real data plus unit-variance Gaussian noise (gan_toy.py's
FIXED_GENERATOR, "as in the plots in the paper"), a critic trained for ``--steps`` updates with
weight clipping (c = 0.01, RMSProp 5e-5) and one with the gradient penalty (lambda 0.1, Adam 1e-4
(0.5, 0.9)); both the toy code's 3 x 512 ReLU critic and initialisation. Prints, per critic, how
much of the data's fine structure its value surface has: how often it ranks a data point above
the same point moved by N(0, 0.15^2 I) (an AUC: 0.5 for a smooth bowl or slope), and on the
mixtures the fraction of modes that are peaks of the surface (the critic is higher at the mode
than halfway to each neighbouring mode); draws the surfaces over [-3, 3]^2.

``gradients`` (Figure 1b: "gradient norms of deep WGAN critics during training on the Swiss Roll
dataset either explode or vanish when using weight clipping, but not when using a gradient
penalty"): 12-layer ReLU MLPs (11 hidden layers of 512 and the output; generator and critic),
no normalisation, WGAN training on the Swiss roll with clipping c = 0.1, 0.01, 0.001 and with the
gradient penalty; after ``--steps`` critic updates, the norm of the critic loss's gradient with
respect to each hidden layer's activations (mean over 20 batches). Prints them and the ratio of
the first layer's to the last's.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from toolkit.datasets import MIXTURES
from toolkit.interfaces import DataContext
from toolkit_gan.losses import wasserstein_critic_loss
from toolkit_gan.wgan import WGAN, WGANConfig

TOY_SCALE = {"8 Gaussians": 1 / 1.414, "25 Gaussians": 1 / 2.828}
"""gan_toy.py's divisions of the mixtures (our ring8 and grid25 are its data before them)."""
CLIPPING = {"clip": 0.01, "optimizer": "rmsprop", "learning_rate": 5e-5}
PENALTY = {"clip": 0.0, "gradient_penalty": 0.1, "optimizer": "adam", "learning_rate": 1e-4, "betas": (0.5, 0.9)}
TOY_CRITIC = {"hidden": (512, 512, 512), "latent_dim": 2, "batch_size": 256, "norm": "none",
              "critic_activation": "relu", "init": "he"}
RANGE = 3.0


def toy_data(name: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    """(points, mode centres or None) at gan_toy.py's scale."""
    if name == "Swiss roll":
        from sklearn.datasets import make_swiss_roll

        points = make_swiss_roll(n_samples=n, noise=0.25, random_state=int(rng.integers(2**31)))[0][:, [0, 2]] / 7.5
        return points.astype(np.float32), None
    centres, std = MIXTURES["ring8" if name == "8 Gaussians" else "grid25"]
    points = centres[rng.integers(len(centres), size=n)] + std * rng.standard_normal((n, 2))
    scale = TOY_SCALE[name]
    return (points * scale).astype(np.float32), centres * scale


class DataPlusNoise(nn.Module):
    """The fixed 'generator' of Figure 1a: fresh data points plus unit-variance Gaussian noise."""

    def __init__(self, name: str, seed: int) -> None:
        super().__init__()
        self.name, self.rng = name, np.random.default_rng(seed)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        points, _ = toy_data(self.name, len(z), self.rng)
        return torch.as_tensor(points) + torch.randn(len(z), 2)


def trainer(config: dict, steps: int, seed: int) -> WGAN:
    torch.manual_seed(seed)
    return WGAN(WGANConfig(**config), DataContext((2,), 100_000, steps, seed, "cpu", "toy"))


def grid_points(n: int = 128) -> np.ndarray:
    axis = np.linspace(-RANGE, RANGE, n)
    return np.stack(np.meshgrid(axis, axis, indexing="xy"), -1).reshape(-1, 2).astype(np.float32)


def local_auc(critic: nn.Module, data: np.ndarray, rng: np.random.Generator, offset: float = 0.15) -> float:
    """How often the critic ranks a data point above the same point moved by N(0, offset^2 I):
    the area under the ROC curve of its values, data against near misses. A surface that follows
    the data's fine structure is near 1; a smooth bowl or slope over the data is near 0.5."""
    near_misses = data + offset * rng.standard_normal(data.shape).astype(np.float32)
    with torch.no_grad():
        on, off = (critic(torch.as_tensor(x)).numpy() for x in (data, near_misses))
    ranks = np.argsort(np.argsort(np.concatenate([on, off]))) + 1  # Mann-Whitney U through ranks
    return float((ranks[: len(on)].sum() - len(on) * (len(on) + 1) / 2) / (len(on) * len(off)))


def peak_fraction(critic: nn.Module, centres: np.ndarray) -> float:
    """Fraction of modes where the critic is higher than halfway to every nearest neighbouring mode."""
    distances = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    peaks = 0
    with torch.no_grad():
        for i, centre in enumerate(centres):
            neighbours = centres[np.isclose(distances[i], distances[i].min(), rtol=1e-3)]
            halfway = (centre + neighbours) / 2
            at_mode = critic(torch.as_tensor(centre[None], dtype=torch.float32)).item()
            between = critic(torch.as_tensor(halfway, dtype=torch.float32))
            peaks += bool((at_mode > between).all())
    return peaks / len(centres)


def surfaces(steps: int, seed: int, plot: Path | None) -> None:
    names = ["8 Gaussians", "25 Gaussians", "Swiss roll"]
    rng = np.random.default_rng(seed)
    grid = grid_points()
    results = {}
    print("| data | critic | data ranked above near misses (AUC) | modes that are peaks |")
    print("|---|---|---|---|")
    for name in names:
        for label, constraint in (("weight clipping", CLIPPING), ("gradient penalty", PENALTY)):
            # the generator never steps: its n_critic is beyond the run, and it is the fixed noisy data
            wgan = trainer({**TOY_CRITIC, **constraint, "n_critic": steps + 1}, steps, seed)
            wgan.generator = DataPlusNoise(name, seed)
            for _ in range(steps):
                wgan.update(toy_data(name, 256, rng)[0])
            with torch.no_grad():
                values = wgan.critic(torch.as_tensor(grid)).numpy()
            centres = toy_data(name, 1, rng)[1]
            peaks = "" if centres is None else f"{peak_fraction(wgan.critic, centres):.2f}"
            results[(name, label)] = values
            auc = local_auc(wgan.critic, toy_data(name, 2000, rng)[0], rng)
            print(f"| {name} | {label} | {auc:.3f} | {peaks} |", flush=True)
    if plot:
        draw_surfaces(results, names, grid, rng, plot)


def draw_surfaces(results: dict, names: list[str], grid: np.ndarray, rng: np.random.Generator, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ["weight clipping", "gradient penalty"]
    fig, axes = plt.subplots(2, len(names), figsize=(3.4 * len(names), 6.6))
    side = int(math.sqrt(len(grid)))
    axis = np.linspace(-RANGE, RANGE, side)
    for col, name in enumerate(names):
        data = toy_data(name, 1000, rng)[0]
        for row, label in enumerate(labels):
            ax = axes[row, col]
            ax.contourf(axis, axis, results[(name, label)].reshape(side, side), levels=20, cmap="viridis")
            ax.scatter(data[:, 0], data[:, 1], s=1, c="orange")
            ax.set(xticks=[], yticks=[], title=f"{name}\n{label}" if row == 0 else label)
    fig.suptitle("Critic value surfaces, generator held at data + N(0, 1) (WGAN-GP Fig. 1a)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


def activation_gradient_norms(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> list[float]:
    """||d loss / d h_l|| for the activations h_l after each hidden ReLU, loss = E f(fake) - E f(real)."""
    activations = []
    h = torch.cat([real, fake])
    for module in critic.body:
        h = module(h)
        if isinstance(module, nn.ReLU):
            h.retain_grad()
            activations.append(h)
    scores = critic.score(h)
    wasserstein_critic_loss(scores[: len(real)], scores[len(real):]).backward()
    return [a.grad.norm().item() for a in activations]


def gradients(steps: int, seed: int, plot: Path | None) -> None:
    rng = np.random.default_rng(seed)
    deep = {**TOY_CRITIC, "hidden": (512,) * 11}
    settings = {"clipping c = 0.1": {**CLIPPING, "clip": 0.1}, "clipping c = 0.01": CLIPPING,
                "clipping c = 0.001": {**CLIPPING, "clip": 0.001}, "gradient penalty": PENALTY}
    norms = {}
    for label, constraint in settings.items():
        wgan = trainer({**deep, **constraint}, steps, seed)
        for _ in range(steps):
            wgan.update(toy_data("Swiss roll", 256, rng)[0])
        per_batch = []
        for _ in range(20):
            real = torch.as_tensor(toy_data("Swiss roll", 256, rng)[0])
            with torch.no_grad():
                fake = wgan.generator(wgan.noise(256))
            wgan.critic.zero_grad()
            per_batch.append(activation_gradient_norms(wgan.critic, real, fake))
        norms[label] = np.mean(per_batch, axis=0)
        values = ", ".join(f"{v:.1e}" for v in norms[label])
        print(f"{label:20s} layers 1..{len(norms[label])}: {values}; first / last {norms[label][0] / norms[label][-1]:.1e}",
              flush=True)
    if plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.2, 3.8))
        for label, values in norms.items():
            ax.semilogy(range(1, len(values) + 1), values, marker="o", markersize=3, label=label)
        ax.set(xlabel="critic layer (input side first)", ylabel="gradient norm of the critic loss")
        ax.set_title(f"Swiss roll, 12-layer ReLU critic, {steps:,} critic updates (Fig. 1b)", fontsize=10)
        ax.legend()
        fig.tight_layout()
        fig.savefig(plot, dpi=110)
        print(f"wrote {plot}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["surfaces", "gradients"])
    parser.add_argument("--steps", type=int, help="critic updates (surfaces: 3000, gradients: 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.what == "surfaces":
        surfaces(args.steps or 3000, args.seed, args.plot)
    else:
        gradients(args.steps or 1000, args.seed, args.plot)


if __name__ == "__main__":
    main()
