"""GAN (Goodfellow et al. 2014) and DCGAN (Radford et al. 2016), with the options of
"Improved Techniques for Training GANs" (Salimans et al. 2016).

One update: a discriminator step on a real batch and a generated batch (eq. 1, the
binary cross-entropy), then a generator step, either the minimax loss log(1 - D(G(z)))
(``--saturating``) or the paper's non-saturating alternative -log D(G(z)) (the default).
Options: ``--feature-matching`` (the generator matches the mean discriminator features of
real data instead of fooling D), ``--minibatch-kernels B`` (minibatch discrimination),
``--real-label 0.9`` (one-sided label smoothing), ``--historical-averaging LAMBDA``, and
``--norm weight`` (weight normalisation instead of batch norm).

``gan`` is the MLP version (any data); ``dcgan`` the convolutional one with DCGAN's
guidelines: strided convolutions, batch norm, ReLU / LeakyReLU(0.2), Adam 2e-4 with beta1 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch

from toolkit.config import Preset, bounded
from toolkit.interfaces import DataContext

from toolkit_gan.common import MIXTURE_DATASETS, MIXTURE_NETWORKS, GenerativeTrainer, GeneratorConfig
from toolkit_gan.losses import (
    discriminator_loss,
    feature_matching_loss,
    generator_loss,
    historical_average_penalty,
)
from toolkit_gan.networks import Norm, discriminator, generator


@dataclass(frozen=True)
class GANConfig(GeneratorConfig):
    """GAN hyperparameters and the improved-training options."""

    saturating: bool = False
    """Train G on the minimax loss log(1 - D(G(z))) instead of the non-saturating -log D(G(z))."""
    feature_matching: bool = False
    """Generator objective ||E f(x) - E f(G(z))||^2 on D's last hidden features (Salimans et al. §3.1)."""
    minibatch_kernels: int = bounded(0, at_least=0)
    """Kernels B of minibatch discrimination before D's last layer; 0 = off (Salimans et al. §3.2)."""
    real_label: float = bounded(1.0, above=0, at_most=1)
    """Target for real samples in D's loss; 0.9 is one-sided label smoothing (Salimans et al. §3.4)."""
    historical_averaging: float = bounded(0.0, at_least=0)
    """Weight of ||theta - mean of past theta||^2 in both players' losses; 0 = off (Salimans et al. §3.3)."""


@dataclass(frozen=True)
class DCGANConfig(GANConfig):
    """DCGAN: the GAN options with the convolutional architecture and batch norm."""

    architecture: Literal["mlp", "conv"] = "conv"
    """``conv``: DCGAN's strided-convolution stacks."""
    norm: Norm = "batch"
    """Batch norm in every layer but G's output and D's input (DCGAN's guideline); ``weight`` for weight normalisation."""


class HistoricalAverage:
    """The running mean (1/t) sum_i theta[i] of a module's parameters, updated after each step."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.parameters = list(module.parameters())
        self.averages = [p.detach().clone() for p in self.parameters]
        self.count = 1

    def penalty(self) -> torch.Tensor:
        return historical_average_penalty(self.parameters, self.averages)

    def update(self) -> None:
        self.count += 1
        with torch.no_grad():
            for p, a in zip(self.parameters, self.averages):
                a += (p - a) / self.count


class GAN(GenerativeTrainer):
    """Goodfellow et al. (2014) with an MLP generator and discriminator."""

    Config: ClassVar[type] = GANConfig
    presets: ClassVar[dict[str, Preset]] = {
        "mixtures": Preset({**MIXTURE_NETWORKS, "steps": 2_500, "eval_every": 500}, envs=MIXTURE_DATASETS,
                           description="WGAN-GP's toy networks (3 x 256, 2-D noise, batch 256), 2,500 updates"),
        # without batch norm the MLP GAN put every sample on one digit (IS-digits 1.0 in 3 of 3
        # seeds at 3,000 updates); with it IS-digits 6.3 (plugins/gan/README.md)
        "digits": Preset({"norm": "batch", "steps": 3_000, "eval_every": 1_000}, envs=("digits",),
                         description="batch norm in both networks (DCGAN's remedy for collapse), 3,000 updates"),
    }

    def __init__(self, config: GANConfig, context: DataContext) -> None:
        super().__init__(config, context)
        c = config
        self.generator = generator(c.latent_dim, self.shape, c.architecture, c.hidden, c.width, c.norm).to(self.device)
        self.discriminator = discriminator(self.shape, c.architecture, c.hidden, c.width, c.norm,
                                           minibatch_kernels=c.minibatch_kernels).to(self.device)
        self.d_optimizer = self.adam([self.discriminator], c.learning_rate)
        self.g_optimizer = self.adam([self.generator], self.generator_lr)
        self.averages = ({"generator": HistoricalAverage(self.generator),
                          "discriminator": HistoricalAverage(self.discriminator)} if c.historical_averaging else {})

    def parts(self) -> dict[str, Any]:
        return {"generator": self.generator, "discriminator": self.discriminator,
                "g_optimizer": self.g_optimizer, "d_optimizer": self.d_optimizer}

    def update(self, batch: Any) -> dict[str, float]:
        c = self.config
        real = self.batch(batch)
        fake = self.generator(self.noise(len(real), self.rng))

        real_features = self.discriminator.features(real)
        real_logits = self.discriminator.score(real_features)
        fake_logits = self.discriminator(fake.detach())
        d_loss = discriminator_loss(real_logits, fake_logits, c.real_label)
        if self.averages:
            d_loss = d_loss + c.historical_averaging * self.averages["discriminator"].penalty()
        self.step(self.d_optimizer, d_loss)

        fake_features = self.discriminator.features(fake)
        if c.feature_matching:
            g_loss = feature_matching_loss(real_features.detach(), fake_features)
        else:
            g_loss = generator_loss(self.discriminator.score(fake_features), c.saturating)
        if self.averages:
            g_loss = g_loss + c.historical_averaging * self.averages["generator"].penalty()
        self.step(self.g_optimizer, g_loss)
        for average in self.averages.values():
            average.update()
        self.updates += 1
        return {"loss/discriminator": d_loss.item(), "loss/generator": g_loss.item(),
                "gan/d_real": torch.sigmoid(real_logits).mean().item(),
                "gan/d_fake": torch.sigmoid(fake_logits).mean().item()}

    def extra_state(self) -> dict[str, Any]:
        return {"historical_averages": {name: {"averages": a.averages, "count": a.count}
                                        for name, a in self.averages.items()}}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        for name, saved in state["historical_averages"].items():
            average = self.averages[name]
            average.count = int(saved["count"])
            with torch.no_grad():
                for a, s in zip(average.averages, saved["averages"]):
                    a.copy_(s)


class DCGAN(GAN):
    """Radford et al. (2016): the GAN update with DCGAN's convolutional architecture."""

    Config: ClassVar[type] = DCGANConfig
    # its own presets, not the MLP GAN's; convolutions need images, so none for the 2-D mixtures
    presets: ClassVar[dict[str, Preset]] = {
        "digits": Preset({"steps": 3_000, "eval_every": 1_000}, envs=("digits",),
                         description="DCGAN's defaults for 3,000 updates (IS-digits 7.5)"),
    }
