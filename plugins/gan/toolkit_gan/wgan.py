"""WGAN (Arjovsky, Chintala & Bottou 2017) and WGAN-GP (Gulrajani et al. 2017).

The critic f maximises E[f(x)] - E[f(G(z))], an estimate of the Wasserstein-1 distance
when f is 1-Lipschitz, and the generator minimises -E[f(G(z))]. One ``update`` is one
critic step on one real batch; the generator steps after every ``n_critic``-th (5 in both
papers), so ``--steps`` counts critic iterations. The Lipschitz constraint is either
weight clipping to [-c, c] after each critic step with RMSProp 5e-5 (WGAN, Algorithm 1) or,
with ``--preset gp``, the gradient penalty lambda E[(||grad f(x_hat)||_2 - 1)^2] with
lambda = 10, Adam 1e-4, betas (0, 0.9) and layer norm instead of batch norm in the critic
(WGAN-GP, Algorithm 1; batch norm would couple the samples the penalty treats one by one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch

from toolkit.config import Preset, bounded
from toolkit.errors import ToolkitError
from toolkit.interfaces import DataContext

from toolkit_gan.common import MIXTURE_DATASETS, MIXTURE_NETWORKS, GenerativeTrainer, GeneratorConfig
from toolkit_gan.losses import gradient_penalty, wasserstein_critic_loss
from toolkit_gan.networks import discriminator, generator, he_uniform_init


@dataclass(frozen=True)
class WGANConfig(GeneratorConfig):
    """WGAN's defaults (Arjovsky et al., Algorithm 1); ``--preset gp`` gives WGAN-GP's."""

    learning_rate: float = 5e-5
    """Step size of the critic (and the generator unless ``--generator-learning-rate``)."""
    optimizer: Literal["rmsprop", "adam"] = "rmsprop"
    """RMSProp as in WGAN (momentum-based steps destabilised clipped critics there); Adam for WGAN-GP."""
    betas: tuple[float, float] = bounded((0.0, 0.9), at_least=0, below=1)
    """Adam's (beta1, beta2) when ``--optimizer adam`` (WGAN-GP's values)."""
    n_critic: int = bounded(5, at_least=1)
    """Critic updates per generator update."""
    clip: float = bounded(0.01, at_least=0)
    """Clip every critic weight to [-clip, clip] after each step; 0 = no clipping."""
    gradient_penalty: float = bounded(0.0, at_least=0)
    """lambda of WGAN-GP's gradient penalty; 0 = off (10 in the paper)."""
    critic_activation: Literal["leaky_relu", "relu"] = "leaky_relu"
    """Nonlinearity of the MLP critic: LeakyReLU(0.2) (DCGAN's), or ReLU (WGAN-GP's toy code)."""
    init: Literal["torch", "he"] = "torch"
    """Initial weights of the MLP networks: torch's default, or ``he`` as WGAN-GP's toy code
    (He-uniform hidden layers, Glorot-uniform output layer, zero biases)."""


class WGAN(GenerativeTrainer):
    """Wasserstein GAN with weight clipping or a gradient penalty."""

    Config: ClassVar[type] = WGANConfig
    presets: ClassVar[dict[str, Preset]] = {
        "mixtures": Preset({**MIXTURE_NETWORKS, "steps": 12_500, "eval_every": 2_500}, envs=MIXTURE_DATASETS,
                           description="weight clipping with the shared toy networks, 2,500 generator updates"),
        "gp": Preset({"gradient_penalty": 10.0, "clip": 0.0, "optimizer": "adam", "learning_rate": 1e-4,
                      "betas": (0.0, 0.9), "norm": "layer"},
                     description="WGAN-GP (Gulrajani et al. 2017): gradient penalty 10, Adam 1e-4 (0, 0.9), layer "
                                 "norm; on the 2-D mixtures the authors' toy settings (gan_toy.py)",
                     # the authors' toy experiment (improved_wgan_training/gan_toy.py): 3 hidden
                     # layers of 512 ReLU units in both networks with tflib's He-uniform init, 2-D
                     # noise, no normalisation, lambda 0.1, batch 256, Adam 1e-4 (0.5, 0.9), the data
                     # divided by 1.414 (ring) or 2.828 (grid). Their 100k generator iterations do not
                     # fit a CPU: 4,000 here on the ring (20k critic updates), 16,000 on the grid (80k),
                     # with the step size falling linearly to 0, as their CIFAR-10 code does; at a
                     # constant step size the samples kept drifting off the modes and back
                     # (high-quality fraction 0.71 then 0.37 a few thousand updates apart)
                     overrides={**{name: {"hidden": (512, 512, 512), "latent_dim": 2, "norm": "none",
                                          "gradient_penalty": 0.1, "batch_size": 256, "betas": (0.5, 0.9),
                                          "critic_activation": "relu", "init": "he", "data_scale": scale,
                                          "steps": steps, "eval_every": 2_000, "learning_rate_decay": "linear"}
                                   for name, scale, steps in (("ring8", 1 / 1.414, 20_000),
                                                              ("grid25", 1 / 2.828, 80_000))},
                                "digits": {"steps": 15_000, "eval_every": 5_000}}),
    }

    def __init__(self, config: WGANConfig, context: DataContext) -> None:
        super().__init__(config, context)
        c = config
        if c.gradient_penalty and c.norm == "batch":
            raise ToolkitError("the gradient penalty is per sample and batch norm couples samples; "
                               "use --norm layer (WGAN-GP's choice) or --norm none")
        if c.init == "he" and c.architecture != "mlp":
            raise ToolkitError("--init he is the MLP initialisation of WGAN-GP's toy code; use it with --architecture mlp")
        self.generator = generator(c.latent_dim, self.shape, c.architecture, c.hidden, c.width, c.norm).to(self.device)
        self.critic = discriminator(self.shape, c.architecture, c.hidden, c.width, c.norm,
                                    activation=c.critic_activation).to(self.device)
        if c.init == "he":
            he_uniform_init(self.generator)
            he_uniform_init(self.critic)
        self.c_optimizer = self.optimizer(self.critic, c.learning_rate)
        self.g_optimizer = self.optimizer(self.generator, self.generator_lr)

    def optimizer(self, module: torch.nn.Module, learning_rate: float) -> torch.optim.Optimizer:
        if self.config.optimizer == "rmsprop":
            return torch.optim.RMSprop(module.parameters(), lr=learning_rate)
        return self.adam([module], learning_rate)

    def parts(self) -> dict[str, Any]:
        return {"generator": self.generator, "critic": self.critic, "g_optimizer": self.g_optimizer,
                "c_optimizer": self.c_optimizer}

    def update(self, batch: Any) -> dict[str, float]:
        c = self.config
        real = self.batch(batch)
        with torch.no_grad():
            fake = self.generator(self.noise(len(real), self.rng))
        critic_loss = wasserstein_critic_loss(self.critic(real), self.critic(fake))
        metrics = {"wgan/distance": -critic_loss.item()}
        loss = critic_loss
        if c.gradient_penalty:
            penalty = gradient_penalty(self.critic, real, fake, self.rng)
            loss = loss + c.gradient_penalty * penalty
            metrics["wgan/gradient_penalty"] = penalty.item()
        self.step(self.c_optimizer, loss)
        if c.clip:
            with torch.no_grad():
                for p in self.critic.parameters():
                    p.clamp_(-c.clip, c.clip)
        metrics["loss/critic"] = loss.item()
        self.updates += 1
        if self.updates % c.n_critic == 0:
            g_loss = -self.critic(self.generator(self.noise(len(real), self.rng))).mean()
            self.step(self.g_optimizer, g_loss)
            metrics["loss/generator"] = g_loss.item()
        return metrics
