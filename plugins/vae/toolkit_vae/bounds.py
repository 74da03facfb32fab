"""The math of variational autoencoders as small plain functions: densities, the analytic
KL, the ELBO and its importance-weighted generalisation, and the schedules of the KL term.
Equations from ../shared/seeds/DIGEST.md §2 (Kingma & Welling 2014; Burda et al. 2016;
Bowman et al. 2016; Kingma et al. 2016 for free bits).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2 * math.pi)


def gaussian_log_density(x: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, diag(exp(log_var))), summed over the last dimension."""
    return -0.5 * (LOG_2PI + log_var + (x - mean).pow(2) / log_var.exp()).sum(-1)


def standard_normal_log_density(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), summed over the last dimension."""
    return -0.5 * (LOG_2PI + z.pow(2)).sum(-1)


def bernoulli_log_likelihood(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log Bernoulli(x; sigmoid(logits)) summed over all but the leading dimensions of ``logits``
    minus the data's: -BCE, computed from logits for stability."""
    per_pixel = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")
    return per_pixel.flatten(logits.dim() - x.dim() + 1).sum(-1)


def analytic_kl(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, diag sigma^2) || N(0, I)) per latent dimension (Kingma & Welling, Appendix B):
    -1/2 (1 + log sigma^2 - mean^2 - sigma^2); sum over the last dimension for the total."""
    return -0.5 * (1 + log_var - mean.pow(2) - log_var.exp())


def elbo(log_likelihood: torch.Tensor, kl: torch.Tensor) -> torch.Tensor:
    """The evidence lower bound L(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z)) <= log p(x)
    (Kingma & Welling eq. 3), from its two parts."""
    return log_likelihood - kl


def iwae_bound(log_weights: torch.Tensor) -> torch.Tensor:
    """Burda et al. (2016), eq. 8: L_k = log (1/k) sum_i w_i with w_i = p(x, z_i) / q(z_i | x),
    from log weights shaped (k, batch). L_1 is the ELBO; L_k rises to log p(x) as k grows, so
    with k = 1000 or 5000 it is the importance-sampled log-likelihood estimate of the papers."""
    return torch.logsumexp(log_weights, dim=0) - math.log(log_weights.shape[0])


def kl_weight(update: int, beta: float, anneal_updates: int) -> float:
    """The weight of the KL term: beta (beta-VAE), ramped up linearly from 0 over the first
    ``anneal_updates`` updates (Bowman et al. 2016's KL annealing; 0 = no annealing)."""
    if anneal_updates <= 0:
        return beta
    return beta * min(1.0, update / anneal_updates)


def free_bits_kl(kl_per_dimension: torch.Tensor, free_bits: float) -> torch.Tensor:
    """Kingma et al. (2016), eq. 15: sum_j max(lambda, E_batch KL_j), so no latent dimension is
    pushed below lambda nats (the optimiser gains nothing by collapsing it further). Takes
    (batch, d) per-dimension KLs; returns the batch-mean objective term."""
    return torch.clamp(kl_per_dimension.mean(0), min=free_bits).sum()
