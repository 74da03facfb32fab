"""VAE math against closed forms (a linear-Gaussian model, flow Jacobians, the Gaussian KL),
the trainers' conformance, and a learning test on digits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from toolkit.datasets import load_dataset
from toolkit.errors import ToolkitError
from toolkit.interfaces import DataContext
from toolkit.testing import check_algorithm
from toolkit_vae.bounds import analytic_kl, free_bits_kl, gaussian_log_density, iwae_bound, kl_weight
from toolkit_vae.flows import apply_flow, planar, radial
from toolkit_vae.vae import VAE, VAEConfig

# -- a linear-Gaussian model: p(z) = N(0, I), p(x | z) = N(W z + b, s2 I) ---------------------

W = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])  # orthogonal columns: a diagonal posterior
B = torch.tensor([0.1, -0.2, 0.3])
S2 = 0.5
POSTERIOR_VAR = torch.linalg.inv(torch.eye(2) + W.T @ W / S2).diagonal()  # (1/3, 1/9)
X = torch.tensor([[0.5, 1.0, -0.2], [-1.0, 0.3, 0.4], [2.0, -2.0, 0.0]])


def log_evidence(x: torch.Tensor) -> torch.Tensor:
    """log p(x) = log N(x; b, W W^T + s2 I), in closed form."""
    return torch.distributions.MultivariateNormal(B, W @ W.T + S2 * torch.eye(3)).log_prob(x)


def linear_gaussian_vae(mean_shift: float = 0.0, log_var_shift: float = 0.0) -> VAE:
    """A VAE whose linear decoder is the model above and whose linear encoder outputs the
    exact posterior N(A (x - b), diag POSTERIOR_VAR), shifted by the given amounts."""
    config = VAEConfig(latent_dim=2, hidden=(), likelihood="gaussian", binarize="none")
    vae = VAE(config, DataContext((3,), 3, 1, 0, "cpu"))
    encoder, decoder = vae.encoder[1][0], vae.decoder[0]
    a = POSTERIOR_VAR[:, None] * W.T / S2
    with torch.no_grad():
        decoder.weight.copy_(W)
        decoder.bias.copy_(B)
        vae.networks["log_variance"].value.fill_(math.log(S2))
        encoder.weight.zero_()
        encoder.weight[:2] = a
        encoder.bias[:2] = -a @ B + mean_shift
        encoder.bias[2:] = POSTERIOR_VAR.log() + log_var_shift
    return vae


def kl_to_posterior(vae: VAE, x: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || p(z|x)) between the encoder's diagonal Gaussian and the true posterior."""
    mean, log_var, _ = vae.encode(x)
    post_mean = (POSTERIOR_VAR[:, None] * W.T / S2 @ (x - B).T).T
    var = log_var.exp()
    return 0.5 * ((var + (mean - post_mean) ** 2) / POSTERIOR_VAR - 1 - log_var + POSTERIOR_VAR.log()).sum(-1)


def test_with_the_exact_posterior_every_importance_weight_is_the_evidence():
    vae = linear_gaussian_vae()
    with torch.no_grad():
        log_w = vae.log_weights(X, 50, torch.Generator().manual_seed(0))
    assert torch.allclose(log_w, log_evidence(X).expand(50, -1), atol=1e-4)  # ELBO = log p(x), zero variance


def test_elbo_is_the_evidence_minus_the_kl_to_the_posterior():
    vae = linear_gaussian_vae(mean_shift=0.5, log_var_shift=0.4)
    gap = kl_to_posterior(vae, X)
    assert (gap > 0.1).all()
    with torch.no_grad():
        generator = torch.Generator().manual_seed(0)
        monte_carlo = vae.log_weights(X, 200_000, generator).mean(0)
        reconstruction = torch.stack([vae.elbo_parts(X, generator)[0] for _ in range(20_000)]).mean(0)
        _, analytic = vae.elbo_parts(X, generator)
    expected = log_evidence(X) - gap
    assert torch.allclose(monte_carlo, expected, atol=0.02)
    assert torch.allclose(reconstruction - analytic, expected, atol=0.03)  # the analytic-KL form of the same bound


def test_importance_sampled_likelihood_converges_to_the_evidence():
    vae = linear_gaussian_vae(mean_shift=0.5, log_var_shift=0.4)
    errors = []
    with torch.no_grad():
        for k in (1, 100, 100_000):
            estimate = -vae.negative_log_likelihood(X, k, torch.Generator().manual_seed(1))
            errors.append((estimate - log_evidence(X)).abs().max().item())
    assert errors[0] > 0.1 and errors[2] < 0.02 and errors[2] < errors[1] < errors[0]


def test_iwae_bound_is_the_log_mean_of_the_weights():
    log_w = torch.log(torch.tensor([[1.0], [2.0], [6.0]]))
    assert iwae_bound(log_w).item() == pytest.approx(math.log(3.0))
    assert iwae_bound(log_w[:1]).item() == pytest.approx(0.0)  # k = 1: the ELBO's sample


# -- flows and the KL ---------------------------------------------------------------------


@pytest.mark.parametrize("transform,count", [(planar, 7), (radial, 5)])
def test_flow_log_determinant_matches_autograd(transform, count):
    torch.manual_seed(0)
    for _ in range(5):
        params, z = torch.randn(count), torch.randn(3)
        jacobian = torch.autograd.functional.jacobian(lambda v: transform(v, params)[0], z)
        _, log_det = transform(z, params)
        assert log_det.item() == pytest.approx(torch.linalg.slogdet(jacobian)[1].item(), abs=1e-5)


@pytest.mark.parametrize("kind,count", [("planar", 7), ("radial", 5)])
def test_a_chain_of_maps_adds_log_determinants(kind, count):
    torch.manual_seed(1)
    params, z = torch.randn(4 * count), torch.randn(3)
    jacobian = torch.autograd.functional.jacobian(lambda v: apply_flow(kind, v, params, 4)[0], z)
    assert apply_flow(kind, z, params, 4)[1].item() == pytest.approx(torch.linalg.slogdet(jacobian)[1].item(), abs=1e-4)


def test_planar_maps_stay_invertible():
    """u_hat keeps w^T u_hat >= -1, so 1 + u_hat^T psi(z) never changes sign."""
    torch.manual_seed(2)
    params = torch.randn(1000, 7) * 3
    _, log_det = planar(torch.randn(1000, 3) * 3, params)
    d = 3
    u, w = params[:, :d], params[:, d : 2 * d]
    wu = (w * u).sum(-1, keepdim=True)
    u_hat = u + (torch.nn.functional.softplus(wu) - 1 - wu) * w / w.pow(2).sum(-1, keepdim=True)
    assert ((w * u_hat).sum(-1) >= -1 - 1e-5).all() and torch.isfinite(log_det).all()


def test_analytic_kl_matches_its_monte_carlo_estimate():
    mean, log_var = torch.tensor([0.3, -1.0]), torch.tensor([0.2, -0.5])
    z = mean + (0.5 * log_var).exp() * torch.randn(400_000, 2, generator=torch.Generator().manual_seed(0))
    standard = gaussian_log_density(z, torch.zeros(2), torch.zeros(2))
    monte_carlo = (gaussian_log_density(z, mean, log_var) - standard).mean()
    assert analytic_kl(mean, log_var).sum().item() == pytest.approx(monte_carlo.item(), abs=0.01)


def test_kl_weight_schedule_and_free_bits():
    assert [kl_weight(t, 1.0, 100) for t in (0, 50, 100, 500)] == [0.0, 0.5, 1.0, 1.0]
    assert kl_weight(10, 4.0, 0) == 4.0  # beta-VAE without annealing
    per_dimension = torch.tensor([[0.1, 2.0], [0.3, 4.0]])
    assert free_bits_kl(per_dimension, 0.5).item() == pytest.approx(0.5 + 3.0)
    assert free_bits_kl(per_dimension, 0.0).item() == pytest.approx(0.2 + 3.0)


# -- the trainers -------------------------------------------------------------------------


@pytest.mark.parametrize("name,overrides", [
    ("vae", {}), ("convvae", {"width": 8}), ("iwae", {}), ("vae", {"flow": "planar", "flow_length": 3}),
    ("vae", {"flow": "radial", "flow_length": 3}), ("iwae", {"flow": "planar", "flow_length": 2}),
    ("vae", {"free_bits": 0.1, "kl_anneal_updates": 10, "beta": 2.0}),
    ("vae", {"likelihood": "gaussian", "binarize": "none", "latent_dim": 2}),
])
def test_check_algorithm(name, overrides):
    check_algorithm(name, overrides={"eval_importance_samples": 20, **overrides})


def test_gaussian_likelihood_refuses_binarised_data():
    with pytest.raises(ToolkitError, match="use --binarize none"):
        VAE(VAEConfig(likelihood="gaussian"), DataContext((1, 8, 8), 10, 1, 0, "cpu"))


def test_conv_needs_sides_divisible_by_four():
    with pytest.raises(ToolkitError, match="divisible by 4"):
        check_algorithm("convvae", data=np.zeros((64, 1, 6, 6), dtype=np.float32))


def test_evaluation_gives_nll_elbo_and_images():
    vae = VAE(VAEConfig(latent_dim=2, eval_importance_samples=50), DataContext((1, 8, 8), 100, 1, 0, "cpu"))
    held_out = load_dataset("digits", "test")[0]
    result = vae.evaluate(held_out)
    assert result["nll"] <= -result["elbo"] + 0.5  # the k-sample bound is tighter than the ELBO (up to noise)
    assert result["elbo"] == pytest.approx(result["reconstruction"] - result["kl"])
    assert result["reconstructions"].shape == (64, 1, 8, 8) and result["traversal"].shape == (225, 1, 8, 8)
    assert vae.evaluate(held_out)["nll"] == result["nll"]  # same data, same noise: a stable estimate


def test_vae_learns_digits():
    train = load_dataset("digits", "train")[0]
    held_out = load_dataset("digits", "test")[0]
    vae = VAE(VAEConfig(latent_dim=10, eval_importance_samples=100), DataContext((1, 8, 8), len(train), 1, 0, "cpu"))
    before = vae.evaluate(held_out)["nll"]
    rng = np.random.default_rng(0)
    for _ in range(600):
        vae.update(train[rng.integers(len(train), size=100)])
    after = vae.evaluate(held_out)
    assert after["nll"] < before - 5 and after["kl"] > 1  # it learned, and uses its latents


def test_eval_examples_zero_scores_every_held_out_example():
    from toolkit.run import plan

    assert plan("vae", {"data": "digits", "eval_examples": 0}).algo_config.eval_examples == 0  # not refused
    held_out = load_dataset("digits", "test")[0][:150]

    def nll(eval_examples: int) -> float:
        config = VAEConfig(latent_dim=2, eval_importance_samples=10, eval_examples=eval_examples)
        return VAE(config, DataContext((1, 8, 8), 100, 1, 0, "cpu")).evaluate(held_out)["nll"]

    assert nll(0) == nll(150) != nll(100)
