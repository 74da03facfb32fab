"""The math of the GAN family as small plain functions (logits in, scalar losses out).

Each cites its paper (../shared/seeds/DIGEST.md §2); the trainers in this package only
combine them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, real_label: float = 1.0) -> torch.Tensor:
    """Goodfellow et al. (2014), eq. 1, the discriminator's side: maximise
    log D(x) + log(1 - D(G(z))), i.e. minimise the binary cross-entropy with D = sigmoid(logit).
    ``real_label`` < 1 is one-sided label smoothing (Salimans et al. 2016, §3.4): only the
    real targets are smoothed, the fake ones stay 0."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_label))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def generator_loss(fake_logits: torch.Tensor, saturating: bool = False) -> torch.Tensor:
    """The generator's side. Minimax (``saturating``): minimise log(1 - D(G(z))) =
    -softplus(logit), which has vanishing gradients while D rejects the samples; the
    non-saturating alternative from the same paper maximises log D(G(z)), i.e. minimises
    softplus(-logit)."""
    if saturating:
        return -F.softplus(fake_logits).mean()
    return F.softplus(-fake_logits).mean()


def feature_matching_loss(real_features: torch.Tensor, fake_features: torch.Tensor) -> torch.Tensor:
    """Salimans et al. (2016), §3.1: || E_x f(x) - E_z f(G(z)) ||_2^2 over the
    discriminator's intermediate features f, the generator's objective instead of fooling D."""
    return (real_features.mean(0) - fake_features.mean(0)).pow(2).sum()


def historical_average_penalty(parameters: Sequence[torch.Tensor], averages: Sequence[torch.Tensor]) -> torch.Tensor:
    """Salimans et al. (2016), §3.3: || theta - (1/t) sum_i theta[i] ||^2, summed over a player's parameters."""
    return sum((p - a).pow(2).sum() for p, a in zip(parameters, averages))


def wasserstein_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Arjovsky et al. (2017), Algorithm 1: the critic maximises E[f(x)] - E[f(G(z))], an
    estimate of the Wasserstein-1 distance when f is 1-Lipschitz; this is its negative."""
    return fake_scores.mean() - real_scores.mean()


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Gulrajani et al. (2017), eq. 3: E[(||grad_x f(x_hat)||_2 - 1)^2] at x_hat = e x + (1 - e) x~,
    e ~ U[0, 1] per sample: the soft 1-Lipschitz constraint of WGAN-GP."""
    shape = (len(real),) + (1,) * (real.dim() - 1)
    epsilon = torch.rand(shape, generator=generator, device=real.device)
    mixed = (epsilon * real + (1 - epsilon) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


def autoencoder_loss(inputs: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
    """BEGAN (Berthelot et al. 2017), eq. 1 with eta = 1: L(v) = |v - D(v)|, the mean absolute
    reconstruction error of the autoencoder discriminator."""
    return (inputs - reconstructions).abs().mean()


def began_k_update(k: float, real_loss: float, fake_loss: float, gamma: float, lambda_k: float) -> float:
    """BEGAN eq. 4: k_{t+1} = k_t + lambda_k (gamma L(x) - L(G(z_G))), kept in [0, 1]; the
    proportional control that holds E[L(G(z))] = gamma E[L(x)] (gamma, the diversity ratio)."""
    return min(max(k + lambda_k * (gamma * real_loss - fake_loss), 0.0), 1.0)


def began_convergence(real_loss: float, fake_loss: float, gamma: float) -> float:
    """BEGAN §3.4.1: M_global = L(x) + |gamma L(x) - L(G(z_G))|, which falls as training converges."""
    return real_loss + abs(gamma * real_loss - fake_loss)


def mixture_rbf_kernel(x: torch.Tensor, y: torch.Tensor, bandwidths: Sequence[float]) -> torch.Tensor:
    """k(x, y) = sum_sigma exp(-||x - y||^2 / (2 sigma^2)), the mixture of Gaussian kernels of
    GMMN (Li et al. 2015, §3), for every pair of rows of x and y."""
    distances = torch.cdist(x.flatten(1), y.flatten(1)).pow(2)
    return sum(torch.exp(-distances / (2 * sigma**2)) for sigma in bandwidths)


def mmd2(x: torch.Tensor, y: torch.Tensor, bandwidths: Sequence[float]) -> torch.Tensor:
    """Li et al. (2015), eq. 1 squared: the (biased, V-statistic) squared maximum mean
    discrepancy E k(x, x') - 2 E k(x, y) + E k(y, y'); exactly 0 for identical sets."""
    return (mixture_rbf_kernel(x, x, bandwidths).mean() - 2 * mixture_rbf_kernel(x, y, bandwidths).mean()
            + mixture_rbf_kernel(y, y, bandwidths).mean())


def info_loss(category_logits: torch.Tensor, categories: torch.Tensor, continuous_mean: torch.Tensor,
              continuous_codes: torch.Tensor, continuous_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """InfoGAN (Chen et al. 2016), eq. 5: the variational lower bound of the mutual
    information L_I = E[log Q(c | G(z, c))] + H(c), with Q a categorical for the discrete code
    and a factored unit-variance Gaussian for the continuous codes (as the paper does).

    Returns the loss to minimise, -E log Q(c_cat|x) - ``continuous_weight`` * E log Q(c_cont|x)
    (constants dropped), and the categorical lower bound H(c_cat) - CE in nats (at most log K)."""
    cross_entropy = F.cross_entropy(category_logits, categories)
    gaussian_nll = 0.5 * (continuous_codes - continuous_mean).pow(2).sum(1).mean() if continuous_codes.numel() else 0.0
    bound = torch.log(torch.tensor(float(category_logits.shape[1]))) - cross_entropy.detach()
    return cross_entropy + continuous_weight * gaussian_nll, bound
