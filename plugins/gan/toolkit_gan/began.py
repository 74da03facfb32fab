"""BEGAN: Boundary Equilibrium GAN (Berthelot, Schumm & Metz 2017).

The discriminator is an autoencoder D, and L(v) = |v - D(v)| its reconstruction error
(eq. 1 with eta = 1). The players' losses (eq. 4):

    L_D = L(x) - k_t L(G(z_D))        L_G = L(G(z_G))
    k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z_G))), 0, 1)

The proportional control on k_t keeps E[L(G(z))] = gamma E[L(x)]: gamma, the diversity
ratio, trades sample diversity (high) against quality (low). The convergence measure
M_global = L(x) + |gamma L(x) - L(G(z_G))| is logged as ``began/convergence``. The paper's
networks use ELU and no batch norm; here the same builders as the other trainers (ReLU /
LeakyReLU, no norm by default), with z_D = z_G (one generated batch per update).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from toolkit.config import Preset, bounded
from toolkit.interfaces import DataContext

from toolkit_gan.common import GenerativeTrainer, GeneratorConfig
from toolkit_gan.losses import autoencoder_loss, began_convergence, began_k_update
from toolkit_gan.networks import discriminator, generator


@dataclass(frozen=True)
class BEGANConfig(GeneratorConfig):
    """BEGAN's defaults (Berthelot et al. §4: Adam 1e-4, gamma 0.5, lambda_k 0.001, k_0 = 0)."""

    learning_rate: float = 1e-4
    """Adam step size of both players."""
    gamma: float = bounded(0.5, above=0, at_most=1)
    """Diversity ratio gamma = E[L(G(z))] / E[L(x)] held by the control."""
    lambda_k: float = bounded(0.001, at_least=0)
    """Proportional gain lambda_k of the k_t update."""
    bottleneck: int = bounded(64, at_least=1)
    """Width n_h of the autoencoder's code."""


class BEGAN(GenerativeTrainer):
    """Boundary equilibrium GAN with an autoencoder discriminator."""

    Config: ClassVar[type] = BEGANConfig
    presets: ClassVar[dict[str, Preset]] = {}

    def __init__(self, config: BEGANConfig, context: DataContext) -> None:
        super().__init__(config, context)
        c = config
        self.generator = generator(c.latent_dim, self.shape, c.architecture, c.hidden, c.width, c.norm).to(self.device)
        self.encoder = discriminator(self.shape, c.architecture, c.hidden, c.width, c.norm, out=c.bottleneck).to(self.device)
        self.decoder = generator(c.bottleneck, self.shape, c.architecture, c.hidden, c.width, c.norm).to(self.device)
        self.d_optimizer = self.adam([self.encoder, self.decoder], c.learning_rate)
        self.g_optimizer = self.adam([self.generator], self.generator_lr)
        self.k = 0.0

    def parts(self) -> dict[str, Any]:
        return {"generator": self.generator, "encoder": self.encoder, "decoder": self.decoder,
                "g_optimizer": self.g_optimizer, "d_optimizer": self.d_optimizer}

    def reconstruction_error(self, v: torch.Tensor) -> torch.Tensor:
        """L(v) = |v - D(v)|, D the autoencoder."""
        code = self.encoder(v).reshape(len(v), -1)  # a 1-unit code comes back squeezed to (N,)
        return autoencoder_loss(v, self.decoder(code))

    def update(self, batch: Any) -> dict[str, float]:
        c = self.config
        real = self.batch(batch)
        fake = self.generator(self.noise(len(real), self.rng))
        real_error = self.reconstruction_error(real)
        d_loss = real_error - self.k * self.reconstruction_error(fake.detach())
        self.step(self.d_optimizer, d_loss)
        g_loss = self.reconstruction_error(fake)
        self.step(self.g_optimizer, g_loss)
        real_value, fake_value = real_error.item(), g_loss.item()
        self.k = began_k_update(self.k, real_value, fake_value, c.gamma, c.lambda_k)
        self.updates += 1
        return {"loss/discriminator": d_loss.item(), "loss/generator": fake_value, "began/k": self.k,
                "began/convergence": began_convergence(real_value, fake_value, c.gamma)}

    def extra_state(self) -> dict[str, Any]:
        return {"k": self.k}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.k = float(state["k"])
