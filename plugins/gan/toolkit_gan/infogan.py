"""InfoGAN (Chen et al. 2016): a GAN whose generator also takes structured codes c, one
categorical (K values) and a few continuous ones (uniform on [-1, 1]), and maximises a
variational lower bound of the mutual information I(c; G(z, c)) (eq. 5-6):

    min_{G,Q} max_D  V(D, G) - lambda L_I(G, Q),   L_I = E[log Q(c | G(z, c))] + H(c)

Q shares the discriminator's body and adds one hidden layer with a categorical head and a
Gaussian-mean head (unit variance, as the paper treats continuous codes). The paper's
settings: lambda = 1 for the categorical code and a smaller weight for continuous codes
(``--continuous-weight``), Adam 2e-4 for D and 1e-3 for G. Evaluation adds a latent
traversal: one row per category, the first continuous code from -2 to 2 along each row,
the noise held fixed, and on labelled data ``eval/code_accuracy``: how well the categorical
code, read off real held-out images by Q, recovers their labels under the best one-to-one
matching of code values to labels (the paper's 5% error on MNIST, Section 7.2, measured so).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from toolkit.config import Preset, bounded
from toolkit.interfaces import DataContext

from toolkit_gan.common import GenerativeTrainer, GeneratorConfig
from toolkit_gan.losses import discriminator_loss, generator_loss, info_loss
from toolkit_gan.networks import discriminator, generator

TRAVERSAL_STEPS = 10


@dataclass(frozen=True)
class InfoGANConfig(GeneratorConfig):
    """InfoGAN's defaults for MNIST (Chen et al., Appendix C.1)."""

    latent_dim: int = 62
    """Dimension of the incompressible noise z."""
    categories: int = bounded(10, at_least=1)
    """Values K of the categorical code."""
    continuous_codes: int = bounded(2, at_least=0)
    """Number of continuous codes, each uniform on [-1, 1]."""
    info_weight: float = bounded(1.0, at_least=0)
    """lambda, the weight of the mutual-information bound in both players' losses."""
    continuous_weight: float = bounded(0.1, at_least=0)
    """Weight of the continuous codes' Gaussian log-likelihood relative to the categorical one."""
    generator_learning_rate: float = 1e-3
    """Adam step size of the generator (the paper's 1e-3)."""


class InfoGAN(GenerativeTrainer):
    """A GAN with a categorical and continuous codes and the mutual-information bound."""

    Config: ClassVar[type] = InfoGANConfig
    presets: ClassVar[dict[str, Preset]] = {
        # the paper's MNIST networks are convolutional with batch norm (Appendix C.1); with the MLP
        # defaults one digits run reached IS-digits 2.5 at 3k updates, with these 7.4 (FD 4.9)
        "digits": Preset({"architecture": "conv", "norm": "batch", "steps": 4_000, "eval_every": 1_000},
                         envs=("digits", "mnist", "fashion-mnist"),
                         description="InfoGAN's convolutional networks with batch norm (Chen et al., Appendix C.1)",
                         # on 8x8 digits 16 noise dimensions instead of 62 leave the categorical code
                         # more of the digit's identity to carry (62: eval/code_accuracy 0.64 at 4,000
                         # updates; 16: 0.79-0.825 at 8,000, still rising; benchmarks/infogan_codes.py)
                         overrides={"digits": {"latent_dim": 16, "steps": 12_000}}),
    }

    def __init__(self, config: InfoGANConfig, context: DataContext) -> None:
        super().__init__(config, context)
        c = config
        if c.categories < 2:
            from toolkit.errors import ToolkitError

            raise ToolkitError(f"--categories must be at least 2, got {c.categories}")
        codes = c.latent_dim + c.categories + c.continuous_codes
        self.generator = generator(codes, self.shape, c.architecture, c.hidden, c.width, c.norm).to(self.device)
        self.discriminator = discriminator(self.shape, c.architecture, c.hidden, c.width, c.norm).to(self.device)
        self.q_head = nn.Sequential(nn.Linear(self.discriminator.feature_size, 128), nn.LeakyReLU(0.2),
                                    nn.Linear(128, c.categories + c.continuous_codes)).to(self.device)
        self.d_optimizer = self.adam([self.discriminator, self.q_head], c.learning_rate)
        self.g_optimizer = self.adam([self.generator], self.generator_lr)

    def parts(self) -> dict[str, Any]:
        return {"generator": self.generator, "discriminator": self.discriminator, "q_head": self.q_head,
                "g_optimizer": self.g_optimizer, "d_optimizer": self.d_optimizer}

    def codes(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        categories = torch.randint(self.config.categories, (n,), generator=generator, device=self.device)
        continuous = torch.rand(n, self.config.continuous_codes, generator=generator, device=self.device) * 2 - 1
        return categories, continuous

    def generator_input(self, z: torch.Tensor, categories: torch.Tensor, continuous: torch.Tensor) -> torch.Tensor:
        return torch.cat([z, F.one_hot(categories, self.config.categories).float(), continuous], dim=1)

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.generator_input(super().noise(n, generator), *self.codes(n, generator))

    def information(self, features: torch.Tensor, categories: torch.Tensor, continuous: torch.Tensor):
        q = self.q_head(features)
        return info_loss(q[:, : self.config.categories], categories, q[:, self.config.categories :], continuous,
                         self.config.continuous_weight)

    def update(self, batch: Any) -> dict[str, float]:
        c = self.config
        real = self.batch(batch)
        categories, continuous = self.codes(len(real), self.rng)
        fake = self.generator(self.generator_input(super().noise(len(real), self.rng), categories, continuous))

        fake_features = self.discriminator.features(fake.detach())
        real_logits = self.discriminator(real)
        fake_logits = self.discriminator.score(fake_features)
        d_info, _ = self.information(fake_features, categories, continuous)
        d_loss = discriminator_loss(real_logits, fake_logits) + c.info_weight * d_info
        self.step(self.d_optimizer, d_loss)

        features = self.discriminator.features(fake)
        g_info, bound = self.information(features, categories, continuous)
        g_loss = generator_loss(self.discriminator.score(features)) + c.info_weight * g_info
        self.step(self.g_optimizer, g_loss)
        self.updates += 1
        return {"loss/discriminator": d_loss.item(), "loss/generator": g_loss.item(),
                "infogan/mutual_info_bound": bound.item(), "gan/d_real": torch.sigmoid(real_logits).mean().item(),
                "gan/d_fake": torch.sigmoid(fake_logits).mean().item()}

    def traversal(self) -> np.ndarray:
        """Images: row k is category k, columns sweep the first continuous code over [-2, 2]."""
        c = self.config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.context.seed)
            z = torch.randn(1, c.latent_dim, device=self.device).expand(c.categories * TRAVERSAL_STEPS, -1)
        categories = torch.arange(c.categories, device=self.device).repeat_interleave(TRAVERSAL_STEPS)
        continuous = torch.zeros(len(z), c.continuous_codes, device=self.device)
        if c.continuous_codes:
            continuous[:, 0] = torch.linspace(-2, 2, TRAVERSAL_STEPS, device=self.device).repeat(c.categories)
        return self.generate(self.generator_input(z, categories, continuous))

    def inferred_categories(self, images: np.ndarray) -> np.ndarray:
        """argmax_k Q(c = k | x) for real images."""
        self.discriminator.eval()
        try:
            with torch.no_grad():
                q = self.q_head(self.discriminator.features(torch.as_tensor(images, device=self.device)))
        finally:
            self.discriminator.train()
        return q[:, : self.config.categories].argmax(dim=1).cpu().numpy()

    def evaluate(self, held_out: np.ndarray) -> dict[str, Any]:
        metrics = super().evaluate(held_out)
        if len(self.shape) == 3:
            metrics["traversal"] = self.traversal()
        labels = held_out_labels(self.context, held_out)
        if labels is not None:
            metrics["code_accuracy"] = matched_accuracy(self.inferred_categories(held_out), labels)
        return metrics


def matched_accuracy(codes: np.ndarray, labels: np.ndarray) -> float:
    """The fraction of samples whose code value maps to their label, under the one-to-one map of
    code values to labels that makes the most of them right (Hungarian matching of the
    contingency table, as unsupervised classification is scored)."""
    from scipy.optimize import linear_sum_assignment

    table = np.zeros((int(codes.max()) + 1, int(labels.max()) + 1), dtype=np.int64)
    np.add.at(table, (codes, labels), 1)
    rows, columns = linear_sum_assignment(table, maximize=True)
    return float(table[rows, columns].sum() / len(labels))


def held_out_labels(context: DataContext, held_out: np.ndarray) -> np.ndarray | None:
    """The labels of the run's held-out split (the runtime passes only its samples), or None for
    unlabelled data."""
    from toolkit.plugins import get_registry

    if context.dataset not in get_registry().names("dataset"):
        return None
    shape, labels = _test_split_labels(context.dataset, context.seed, context.data_dir)
    return labels if labels is not None and shape == held_out.shape else None


@functools.lru_cache(maxsize=4)
def _test_split_labels(dataset: str, seed: int, data_dir: str) -> tuple[tuple[int, ...], np.ndarray | None]:
    from toolkit.datasets import load_dataset

    samples, labels = load_dataset(dataset, "test", seed, data_dir or None)
    return samples.shape, labels
