"""GMMN: Generative Moment Matching Networks (Li, Swersky & Zemel 2015).

No discriminator: the generator minimises the maximum mean discrepancy between a generated
batch and a real batch under a mixture of Gaussian kernels,
sqrt(MMD^2) with MMD^2 = E k(x, x') - 2 E k(x, y) + E k(y, y') (eq. 1; the square root as
the paper trains it), k(x, y) = sum_sigma exp(-||x - y||^2 / (2 sigma^2)). The paper's
bandwidths for MNIST pixels are 2, 5, 10, 20, 40, 80; the 2-D mixtures get a preset with
bandwidths on their own scale. Large batches matter (the paper uses 1,000): the kernel
estimate of MMD is noisy on small ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from toolkit.config import Preset, bounded
from toolkit.interfaces import DataContext

from toolkit_gan.common import MIXTURE_DATASETS, MIXTURE_NETWORKS, GenerativeTrainer, GeneratorConfig
from toolkit_gan.losses import mmd2
from toolkit_gan.networks import generator


@dataclass(frozen=True)
class GMMNConfig(GeneratorConfig):
    """GMMN's settings (Li et al. §4)."""

    batch_size: int = 512
    """Real (and generated) samples per update."""
    learning_rate: float = 1e-3
    """Adam step size of the generator."""
    bandwidths: tuple[float, ...] = bounded((2.0, 5.0, 10.0, 20.0, 40.0, 80.0), above=0)
    """sigma of each Gaussian kernel in the mixture (the paper's MNIST values)."""


class GMMN(GenerativeTrainer):
    """A generator trained on the MMD with a mixture of RBF kernels."""

    Config: ClassVar[type] = GMMNConfig
    presets: ClassVar[dict[str, Preset]] = {
        "mixtures": Preset({"bandwidths": (0.05, 0.1, 0.2, 0.5, 1.0, 2.0), **MIXTURE_NETWORKS, "steps": 2_500,
                            "eval_every": 500}, envs=MIXTURE_DATASETS,
                           description="kernel bandwidths for the 2-D Gaussian mixtures, the shared toy networks"),
        "digits": Preset({"steps": 3_000, "eval_every": 1_000}, envs=("digits",),
                         description="GMMN's defaults for 3,000 updates (IS-digits 7.2)"),
    }

    def __init__(self, config: GMMNConfig, context: DataContext) -> None:
        super().__init__(config, context)
        c = config
        self.generator = generator(c.latent_dim, self.shape, c.architecture, c.hidden, c.width, c.norm).to(self.device)
        self.optimizer = self.adam([self.generator], c.learning_rate)

    def parts(self) -> dict[str, Any]:
        return {"generator": self.generator, "optimizer": self.optimizer}

    def update(self, batch: Any) -> dict[str, float]:
        real = self.batch(batch)
        fake = self.generator(self.noise(len(real), self.rng))
        discrepancy = mmd2(real, fake, self.config.bandwidths)
        loss = discrepancy.clamp_min(1e-12).sqrt()
        self.step(self.optimizer, loss)
        self.updates += 1
        return {"loss/mmd": loss.item(), "gmmn/mmd2": discrepancy.item()}
