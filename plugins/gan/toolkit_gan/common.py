"""What every GAN-family trainer shares: the generator's config fields, seeding, the latent
noise, sampling, evaluation and checkpoint state. Each algorithm module (gan, wgan, began,
infogan, gmmn) adds its own config fields, networks and ``update``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

from toolkit.config import bounded
from toolkit.interfaces import DataContext

from toolkit_gan.metrics import sample_metrics
from toolkit_gan.networks import Norm

EVAL_SAMPLES = 2_500
"""Generated samples per evaluation (mode coverage, Frechet distance)."""

MIXTURE_DATASETS = ("ring8", "grid25")
MIXTURE_NETWORKS = {"hidden": (256, 256, 256), "latent_dim": 2, "batch_size": 256}
"""The networks of every trainer's ``mixtures`` preset: the shape of WGAN-GP's toy experiment
(three hidden layers, 2-D noise, batch 256; its 512 units are WGAN-GP's own preset's)."""


@dataclass(frozen=True)
class GeneratorConfig:
    """Fields every GAN-family trainer has."""

    batch_size: int = bounded(64, at_least=1)
    """Real samples per update."""
    latent_dim: int = bounded(64, at_least=1)
    """Dimension of the generator's Gaussian noise z."""
    architecture: Literal["mlp", "conv"] = "mlp"
    """``mlp`` (any data) or ``conv`` (DCGAN-style stacks; images only)."""
    hidden: tuple[int, ...] = bounded((256, 256), at_least=1)
    """Hidden widths of the MLP networks."""
    width: int = bounded(64, at_least=1)
    """Channels of the discriminator's first convolution (the generator mirrors it)."""
    norm: Norm = "none"
    """Normalisation of hidden layers: batch, weight (weight normalisation), layer, or none."""
    learning_rate: float = bounded(2e-4, above=0)
    """Adam step size of the discriminator (or critic)."""
    generator_learning_rate: float = bounded(0.0, at_least=0)
    """Adam step size of the generator; 0 = the same as ``learning_rate``."""
    betas: tuple[float, float] = (0.5, 0.999)
    """Adam's (beta1, beta2); DCGAN's beta1 = 0.5 steadies training."""
    learning_rate_decay: Literal["none", "linear"] = "none"
    """``linear``: every step size falls linearly to 0 over the run's updates (the WGAN-GP
    authors' CIFAR-10 code), so training ends on a settled generator instead of mid-oscillation."""
    data_scale: float = bounded(1.0, above=0)
    """The networks see the data multiplied by this, and samples are divided by it on the way
    out (metrics and saved samples stay in the data's units). WGAN-GP's ``gan_toy.py`` trains
    on its 25-Gaussian grid divided by 2.828 and its 8-Gaussian ring divided by 1.414."""


class GenerativeTrainer:
    """Plumbing shared by the trainers; subclasses build ``self.generator`` and their other
    networks in ``__init__`` and list everything with state in ``parts()``."""

    loop: ClassVar[str] = "data"

    def __init__(self, config: Any, context: DataContext) -> None:
        self.config, self.context = config, context
        self.device = torch.device(context.device)
        self.shape = tuple(context.sample_shape)
        if config.architecture == "conv" and len(self.shape) != 3:
            from toolkit.errors import ToolkitError

            raise ToolkitError(f"--architecture conv needs image data (C, H, W); '{context.dataset}' has samples "
                               f"of shape {self.shape}; use --architecture mlp")
        torch.manual_seed(context.seed)  # the same seed builds the same networks
        self.rng = torch.Generator(self.device).manual_seed(context.seed)  # training noise only
        self.updates = 0

    def adam(self, modules: list[nn.Module], learning_rate: float) -> torch.optim.Optimizer:
        parameters = [p for m in modules for p in m.parameters()]
        return torch.optim.Adam(parameters, lr=learning_rate, betas=tuple(self.config.betas))

    @property
    def generator_lr(self) -> float:
        return self.config.generator_learning_rate or self.config.learning_rate

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """The generator's input for ``n`` samples (InfoGAN appends its codes)."""
        return torch.randn(n, self.config.latent_dim, generator=generator, device=self.device)

    def batch(self, samples: np.ndarray) -> torch.Tensor:
        real = torch.as_tensor(samples, device=self.device)
        return real * self.config.data_scale if self.config.data_scale != 1.0 else real

    def step(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.learning_rate_decay == "linear":
            remaining = max(0.0, 1.0 - self.updates / max(self.context.total_steps, 1))
            for group in optimizer.param_groups:
                group["lr"] = group.setdefault("initial_lr", group["lr"]) * remaining
        optimizer.step()

    def generate(self, inputs: torch.Tensor) -> np.ndarray:
        """The generator's outputs for given inputs, in eval mode (batch-norm running statistics),
        in the data's units."""
        self.generator.eval()
        try:
            with torch.no_grad():
                return (self.generator(inputs) / self.config.data_scale).cpu().numpy()
        finally:
            self.generator.train()

    def sample(self, n: int) -> np.ndarray:
        """Samples drawn with torch's global RNG."""
        return self.generate(self.noise(n))

    def evaluate(self, held_out: np.ndarray) -> dict[str, Any]:
        """Mode coverage on the 2-D mixtures; FD- and IS-<dataset> on labelled image data."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.context.seed + self.updates)
            samples = self.sample(EVAL_SAMPLES)
        return sample_metrics(self.context.dataset, self.context.data_dir or None, samples, held_out)

    def parts(self) -> dict[str, Any]:
        """Networks and optimizers by name (their state_dicts are checkpointed)."""
        raise NotImplementedError

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        state = {name: part.state_dict() for name, part in self.parts().items()}
        return state | {"rng": self.rng.get_state(), "updates": self.updates} | self.extra_state()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, part in self.parts().items():
            part.load_state_dict(state[name])
        self.rng.set_state(state["rng"])
        self.updates = int(state["updates"])
        self.load_extra_state(state)
