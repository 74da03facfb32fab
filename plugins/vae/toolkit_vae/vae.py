"""Variational autoencoders: VAE (Kingma & Welling 2014), the convolutional VAE,
normalizing-flow posteriors (Rezende & Mohamed 2015), IWAE (Burda et al. 2016), with
beta-VAE weighting, KL annealing (Bowman et al. 2016) and free bits (Kingma et al. 2016).

The model: p(z) = N(0, I); p(x | z) Bernoulli (binary pixels; the data are binarised,
by default afresh for every batch) or Gaussian with a learned per-pixel variance. The
encoder gives q_0(z | x) = N(mean(x), diag sigma^2(x)) and, with ``--flow planar|radial
--flow-length K``, the parameters of K maps that carry z_0 to z_K (toolkit_vae.flows).

Training maximises, per batch,
* k = 1, no flow: E_q[log p(x|z)] - w KL(q || p) with the analytic KL (Kingma & Welling's
  estimator B), w the beta / annealing weight; with free bits, the KL term is
  sum_j max(lambda, KL_j);
* with a flow: E_q0[log p(x|z_K) - w (log q_K(z_K) - log p(z_K))], a one-sample estimate,
  log q_K(z_K) = log q_0(z_0) - sum_k log|det J_k| (Rezende & Mohamed eq. 15);
* k > 1 (``iwae``): the importance-weighted bound L_k = E log (1/k) sum_i w_i (Burda et al. eq. 8).

Evaluation on the held-out split: the negative log-likelihood -log p(x) estimated by
importance sampling with ``--eval-importance-samples`` samples from q (1,000 by default;
the papers use 5,000), in nats per example; the ELBO with its reconstruction and KL parts;
reconstruction grids; for 2-D latents, a traversal of the latent space.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from scipy.stats import norm as standard_normal
from torch import nn

from toolkit.config import Preset, bounded
from toolkit.errors import ToolkitError
from toolkit.interfaces import DataContext
from toolkit.nn import mlp

from toolkit_vae.bounds import (
    analytic_kl,
    bernoulli_log_likelihood,
    free_bits_kl,
    gaussian_log_density,
    iwae_bound,
    kl_weight,
    standard_normal_log_density,
)
from toolkit_vae.flows import FLOWS, apply_flow

EVAL_CHUNK = 100
"""Importance samples decoded at once per held-out batch during the NLL estimate."""


@dataclass(frozen=True)
class VAEConfig:
    """VAE hyperparameters; the defaults are the IWAE paper's one-stochastic-layer MNIST model."""

    batch_size: int = bounded(100, at_least=1)
    """Examples per update."""
    latent_dim: int = bounded(50, at_least=1)
    """Dimension of z."""
    architecture: Literal["mlp", "conv"] = "mlp"
    """``mlp`` (any data) or ``conv`` (images whose side is divisible by 4)."""
    hidden: tuple[int, ...] = bounded((200, 200), at_least=1)
    """Hidden widths of the MLP encoder and decoder (tanh in the paper; ReLU here)."""
    width: int = bounded(32, at_least=1)
    """Channels of the first convolution (conv architecture)."""
    likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"
    """p(x | z): Bernoulli for binary pixels, Gaussian with a learned per-dimension variance."""
    binarize: Literal["stochastic", "threshold", "none"] = "stochastic"
    """How data become binary for the Bernoulli likelihood: sampled afresh each batch (the held-out
    split once, with a fixed seed), thresholded at 0.5, or left alone."""
    learning_rate: float = bounded(1e-3, above=0)
    """Adam step size."""
    beta: float = bounded(1.0, at_least=0)
    """Weight of the KL term (beta-VAE; 1 = the ELBO)."""
    kl_anneal_updates: int = bounded(0, at_least=0)
    """Ramp the KL weight linearly from 0 to beta over this many updates; 0 = off."""
    free_bits: float = bounded(0.0, at_least=0)
    """lambda of free bits, in nats per latent dimension (per latent space with a flow); 0 = off."""
    flow: Literal["none", "planar", "radial"] = "none"
    """Normalizing flow on the posterior; pair it with ``--kl-anneal-updates`` as the paper does
    (its one-sample KL estimate lets training settle in posterior collapse otherwise)."""
    flow_length: int = bounded(10, at_least=1)
    """Number of flow maps K."""
    importance_samples: int = bounded(1, at_least=1)
    """k of the training bound; k > 1 trains on the IWAE bound."""
    eval_importance_samples: int = bounded(1000, at_least=1)
    """Samples of the held-out NLL estimate (5,000 matches the papers)."""
    eval_examples: int = bounded(1000, at_least=0)
    """Held-out examples in each evaluation (0 = all)."""


class PixelLogVariance(nn.Module):
    """The Gaussian decoder's learned log sigma^2, one per data dimension (not a function of z)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.zeros(size))


class VAE:
    """Encoder q(z | x) (with optional flow), decoder p(x | z), and the training bound."""

    Config: ClassVar[type] = VAEConfig
    loop: ClassVar[str] = "data"
    presets: ClassVar[dict[str, Preset]] = {}

    def __init__(self, config: VAEConfig, context: DataContext) -> None:
        self.config, self.context = config, context
        self.shape = tuple(context.sample_shape)
        self.pixels = math.prod(self.shape)
        self.device = torch.device(context.device)
        c = config
        if c.likelihood == "gaussian" and c.binarize != "none":
            raise ToolkitError("--likelihood gaussian models real values; use --binarize none with it")
        if c.importance_samples < 1 or c.eval_importance_samples < 1:
            raise ToolkitError("--importance-samples and --eval-importance-samples must be at least 1")
        torch.manual_seed(context.seed)
        self.flow_parameters = FLOWS[c.flow][1](c.latent_dim) * c.flow_length if c.flow != "none" else 0
        encoder_out = 2 * c.latent_dim + self.flow_parameters
        if c.architecture == "conv":
            encoder, decoder = conv_encoder_decoder(self.shape, c.width, c.latent_dim, encoder_out)
        else:
            encoder = nn.Sequential(nn.Flatten(), mlp(self.pixels, c.hidden, encoder_out))
            decoder = mlp(c.latent_dim, tuple(reversed(c.hidden)), self.pixels)
        self.networks = nn.ModuleDict({"encoder": encoder, "decoder": decoder})
        if c.likelihood == "gaussian":
            self.networks["log_variance"] = PixelLogVariance(self.pixels)
        self.networks.to(self.device)
        self.encoder, self.decoder = self.networks["encoder"], self.networks["decoder"]
        self.optimizer = torch.optim.Adam(self.networks.parameters(), lr=c.learning_rate)
        self.rng = torch.Generator(self.device).manual_seed(context.seed)
        self.updates = 0
        self._held_out: tuple[int, torch.Tensor] | None = None

    # -- the model ------------------------------------------------------------------------

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """mean, log sigma^2 of q_0(z | x) and the flow's parameters, each (batch, .)."""
        out = self.encoder(x)
        d = self.config.latent_dim
        return out[:, :d], out[:, d : 2 * d], out[:, 2 * d :]

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x | z) for z shaped (k, batch, d); returns (k, batch)."""
        out = self.decoder(z.reshape(-1, z.shape[-1])).view(*z.shape[:-1], self.pixels)
        flat = x.reshape(len(x), self.pixels)
        if self.config.likelihood == "bernoulli":
            return bernoulli_log_likelihood(flat, out)
        return gaussian_log_density(flat, out, self.networks["log_variance"].value)

    def posterior_sample(self, x: torch.Tensor, k: int, generator: torch.Generator | None):
        """k samples z_K of q(z | x) with log q(z_K | x), and q_0's mean and log variance."""
        mean, log_var, flow_params = self.encode(x)
        eps = torch.randn(k, *mean.shape, generator=generator, device=mean.device)
        z = mean + (0.5 * log_var).exp() * eps
        log_q = gaussian_log_density(z, mean, log_var)
        if self.config.flow != "none":
            z, log_det = apply_flow(self.config.flow, z, flow_params, self.config.flow_length)
            log_q = log_q - log_det
        return z, log_q, mean, log_var

    def log_weights(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None,
                    kl_scale: float = 1.0) -> torch.Tensor:
        """log w_i = log p(x | z_i) + s (log p(z_i) - log q(z_i | x)) for k samples, shaped (k, batch);
        s = 1 gives the importance weights whose log-mean-exp is the IWAE bound."""
        z, log_q, _, _ = self.posterior_sample(x, k, generator)
        return self.log_likelihood(x, z) + kl_scale * (standard_normal_log_density(z) - log_q)

    def elbo_parts(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One-sample E_q[log p(x|z)] and KL(q || p) per example: the KL analytic without a flow,
        else its one-sample estimate log q_K(z_K) - log p(z_K)."""
        z, log_q, mean, log_var = self.posterior_sample(x, 1, generator)
        reconstruction = self.log_likelihood(x, z)[0]
        if self.config.flow == "none":
            return reconstruction, analytic_kl(mean, log_var).sum(-1)
        return reconstruction, (log_q - standard_normal_log_density(z))[0]

    # -- training -------------------------------------------------------------------------

    def prepare(self, batch: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(batch, device=self.device)
        if self.config.binarize == "stochastic":
            return torch.bernoulli(x.clamp(0, 1), generator=self.rng)
        if self.config.binarize == "threshold":
            return (x > 0.5).float()
        return x

    def update(self, batch: np.ndarray) -> dict[str, float]:
        c = self.config
        x = self.prepare(batch)
        weight = kl_weight(self.updates, c.beta, c.kl_anneal_updates)
        metrics = {"elbo/kl_weight": weight}
        if c.importance_samples > 1:
            bound = iwae_bound(self.log_weights(x, c.importance_samples, self.rng, kl_scale=weight)).mean()
            loss = -bound
            metrics["loss/negative_iwae_bound"] = loss.item()
        else:
            z, log_q, mean, log_var = self.posterior_sample(x, 1, self.rng)
            reconstruction = self.log_likelihood(x, z)[0]
            if c.flow == "none":
                per_dimension = analytic_kl(mean, log_var)
                kl = per_dimension.sum(-1).mean()
                kl_term = free_bits_kl(per_dimension, c.free_bits) if c.free_bits else kl
            else:
                kl = (log_q - standard_normal_log_density(z))[0].mean()
                kl_term = kl.clamp_min(c.free_bits * c.latent_dim) if c.free_bits else kl
            loss = -reconstruction.mean() + weight * kl_term
            metrics |= {"loss/negative_elbo": (kl - reconstruction.mean()).item(),
                        "elbo/reconstruction": reconstruction.mean().item(), "elbo/kl": kl.item()}
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.updates += 1
        return metrics

    # -- evaluation and sampling ----------------------------------------------------------

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        out = self.decoder(z).view(len(z), *self.shape)
        if self.config.likelihood == "bernoulli":
            return torch.sigmoid(out)
        return out.clamp(0, 1) if len(self.shape) == 3 else out

    def sample(self, n: int) -> np.ndarray:
        """Decoder means (pixel probabilities for the Bernoulli model) at z ~ N(0, I)."""
        with torch.no_grad():
            return self.decode_mean(torch.randn(n, self.config.latent_dim, device=self.device)).cpu().numpy()

    def held_out_batch(self, held_out: np.ndarray) -> torch.Tensor:
        """The evaluation examples, binarised once with a fixed seed so every evaluation scores the same data."""
        c = self.config
        n = len(held_out) if c.eval_examples <= 0 else min(c.eval_examples, len(held_out))
        if self._held_out is None or self._held_out[0] != n:
            x = torch.as_tensor(held_out[:n], device=self.device)
            if c.binarize == "stochastic":
                x = torch.bernoulli(x.clamp(0, 1), generator=torch.Generator(self.device).manual_seed(0))
            elif c.binarize == "threshold":
                x = (x > 0.5).float()
            self._held_out = (n, x)
        return self._held_out[1]

    def negative_log_likelihood(self, x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
        """-log p(x) per example by importance sampling with k samples of q: -L_k (Burda et al. eq. 8)."""
        chunks = [self.log_weights(x, min(EVAL_CHUNK, k - start), generator) for start in range(0, k, EVAL_CHUNK)]
        return -iwae_bound(torch.cat(chunks))

    def evaluate(self, held_out: np.ndarray) -> dict[str, Any]:
        c = self.config
        x = self.held_out_batch(held_out)
        generator = torch.Generator(self.device).manual_seed(self.context.seed)
        nll, reconstruction, kl = [], [], []
        with torch.no_grad():
            for batch in x.split(EVAL_CHUNK):
                nll.append(self.negative_log_likelihood(batch, c.eval_importance_samples, generator))
                r, k = self.elbo_parts(batch, generator)
                reconstruction.append(r)
                kl.append(k)
            reconstruction_mean, kl_mean = torch.cat(reconstruction).mean().item(), torch.cat(kl).mean().item()
            result: dict[str, Any] = {"nll": torch.cat(nll).mean().item(), "elbo": reconstruction_mean - kl_mean,
                                      "reconstruction": reconstruction_mean, "kl": kl_mean}
            if len(self.shape) == 3:
                originals = x[:32]
                mean, _, _ = self.encode(originals)
                pairs = torch.stack([originals, self.decode_mean(mean)], dim=1)  # original, then its reconstruction
                result["reconstructions"] = pairs.reshape(-1, *self.shape).cpu().numpy()
                if c.latent_dim == 2:
                    result["traversal"] = self.traversal()
        return result

    def traversal(self, steps: int = 15) -> np.ndarray:
        """Decoded means on a steps x steps grid of 2-D latents at the normal's quantiles 0.05..0.95."""
        quantiles = torch.tensor(standard_normal.ppf(np.linspace(0.05, 0.95, steps)), dtype=torch.float32)
        grid = torch.stack(torch.meshgrid(quantiles, quantiles, indexing="ij"), -1).reshape(-1, 2).to(self.device)
        return self.decode_mean(grid).cpu().numpy()

    # -- checkpoints ----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"networks": self.networks.state_dict(), "optimizer": self.optimizer.state_dict(),
                "rng": self.rng.get_state(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.networks.load_state_dict(state["networks"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.set_state(state["rng"])
        self.updates = int(state["updates"])


@dataclass(frozen=True)
class ConvVAEConfig(VAEConfig):
    """The convolutional VAE: two stride-2 convolutions in the encoder, mirrored in the decoder."""

    architecture: Literal["mlp", "conv"] = "conv"
    """``conv``."""


class ConvVAE(VAE):
    """VAE with a convolutional encoder and decoder."""

    Config: ClassVar[type] = ConvVAEConfig


@dataclass(frozen=True)
class IWAEConfig(VAEConfig):
    """IWAE: the VAE trained on the k-sample importance-weighted bound."""

    importance_samples: int = bounded(5, at_least=1)
    """k of the training bound (Burda et al. report k = 5 and 50)."""


class IWAE(VAE):
    """Importance-weighted autoencoder (Burda et al. 2016)."""

    Config: ClassVar[type] = IWAEConfig


def conv_encoder_decoder(shape: tuple[int, ...], width: int, latent: int, encoder_out: int) -> tuple[nn.Module, nn.Module]:
    """Encoder: two 4x4 stride-2 convolutions (width, 2 width), ReLU, then a linear layer;
    decoder: a linear layer to the 4x-smaller map, then two 4x4 stride-2 transposed convolutions."""
    if len(shape) != 3 or shape[1] % 4 or shape[2] % 4:
        raise ToolkitError(f"--architecture conv needs images whose sides are divisible by 4, got samples of shape {shape}; "
                           "use --architecture mlp")
    channels, height, width_px = shape
    small = (height // 4, width_px // 4)
    encoder = nn.Sequential(
        nn.Conv2d(channels, width, 4, 2, 1), nn.ReLU(), nn.Conv2d(width, 2 * width, 4, 2, 1), nn.ReLU(),
        nn.Flatten(), nn.Linear(2 * width * small[0] * small[1], encoder_out))
    decoder = nn.Sequential(
        nn.Linear(latent, 2 * width * small[0] * small[1]), nn.ReLU(), nn.Unflatten(1, (2 * width, *small)),
        nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(width, channels, 4, 2, 1),
        nn.Flatten())
    return encoder, decoder
