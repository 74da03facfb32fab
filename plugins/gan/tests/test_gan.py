"""The GAN family: the losses' math, each trainer's update and conformance, the metrics,
and a learning test on toy data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import toolkit
from toolkit.errors import ToolkitError
from toolkit.interfaces import DataContext
from toolkit.testing import check_algorithm
from toolkit_gan.began import BEGAN, BEGANConfig
from toolkit_gan.gan import DCGAN, GAN, GANConfig
from toolkit_gan.gmmn import GMMN, GMMNConfig
from toolkit_gan.infogan import InfoGAN, InfoGANConfig
from toolkit_gan.losses import (
    began_convergence,
    began_k_update,
    discriminator_loss,
    feature_matching_loss,
    generator_loss,
    gradient_penalty,
    info_loss,
    mmd2,
)
from toolkit_gan.metrics import frechet_distance, inception_style_score, mode_coverage
from toolkit_gan.networks import MinibatchDiscrimination, conv_sizes, discriminator, generator, he_uniform_init
from toolkit_gan.wgan import WGAN, WGANConfig

IMAGES = np.random.default_rng(0).random((64, 1, 8, 8), dtype=np.float32)
POINTS = np.random.default_rng(0).normal(size=(256, 2)).astype(np.float32)


def context(data: np.ndarray, dataset: str = "check") -> DataContext:
    return DataContext(tuple(data.shape[1:]), len(data), 100, 0, "cpu", dataset)


# -- the math -----------------------------------------------------------------------------


def test_discriminator_and_generator_losses_match_eq_1():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    d = torch.sigmoid
    expected = -(torch.log(d(real)).mean() + torch.log(1 - d(fake)).mean())
    assert torch.allclose(discriminator_loss(real, fake), expected)
    smoothed = -(0.9 * torch.log(d(real)) + 0.1 * torch.log(1 - d(real))).mean() - torch.log(1 - d(fake)).mean()
    assert torch.allclose(discriminator_loss(real, fake, real_label=0.9), smoothed)  # fakes stay at 0
    assert torch.allclose(generator_loss(fake, saturating=True), torch.log(1 - d(fake)).mean())
    assert torch.allclose(generator_loss(fake), -torch.log(d(fake)).mean())


def test_non_saturating_loss_keeps_gradients_where_the_minimax_one_vanishes():
    logits = torch.tensor([-8.0], requires_grad=True)  # D confidently rejects the sample
    (minimax,) = torch.autograd.grad(generator_loss(logits, saturating=True), logits)
    (non_saturating,) = torch.autograd.grad(generator_loss(logits), logits)
    assert abs(minimax.item()) < 1e-3 < abs(non_saturating.item())


def test_feature_matching_is_the_squared_distance_of_the_means():
    real, fake = torch.ones(4, 3), torch.zeros(5, 3)
    assert feature_matching_loss(real, fake).item() == pytest.approx(3.0)
    assert feature_matching_loss(real, real).item() == 0.0


def test_mmd_is_zero_on_the_same_set_and_grows_with_a_shift():
    x = torch.randn(200, 2, generator=torch.Generator().manual_seed(0))
    bandwidths = (0.5, 1.0, 2.0)
    assert mmd2(x, x, bandwidths).item() == pytest.approx(0.0, abs=1e-6)
    values = [mmd2(x, x + shift, bandwidths).item() for shift in (0.1, 0.5, 1.0, 2.0)]
    assert all(a < b for a, b in zip(values, values[1:])) and values[0] > 0


def test_gradient_penalty_of_a_linear_critic():
    real, fake = torch.randn(16, 3), torch.randn(16, 3)
    for norm in (1.0, 2.0, 0.5):
        weight = torch.tensor([norm, 0.0, 0.0])
        penalty = gradient_penalty(lambda x: x @ weight, real, fake)
        assert penalty.item() == pytest.approx((norm - 1) ** 2, abs=1e-6)


def test_began_control_stays_in_the_unit_interval():
    assert began_k_update(0.0, real_loss=0.1, fake_loss=5.0, gamma=0.5, lambda_k=1.0) == 0.0
    assert began_k_update(0.99, real_loss=5.0, fake_loss=0.0, gamma=0.5, lambda_k=1.0) == 1.0
    assert began_k_update(0.2, real_loss=1.0, fake_loss=0.3, gamma=0.5, lambda_k=0.1) == pytest.approx(0.22)
    assert began_convergence(1.0, 0.3, 0.5) == pytest.approx(1.2)


def test_info_loss_and_its_bound():
    logits = torch.tensor([[10.0, -10.0], [-10.0, 10.0]])
    loss, bound = info_loss(logits, torch.tensor([0, 1]), torch.zeros(2, 1), torch.zeros(2, 1), 0.1)
    assert loss.item() == pytest.approx(0.0, abs=1e-6) and bound.item() == pytest.approx(math.log(2), abs=1e-6)
    loss, _ = info_loss(logits, torch.tensor([0, 1]), torch.zeros(2, 1), torch.ones(2, 1), 0.1)
    assert loss.item() == pytest.approx(0.1 * 0.5, abs=1e-6)  # unit-variance Gaussian NLL, constants dropped


def test_minibatch_discrimination_sees_the_rest_of_the_batch():
    layer = MinibatchDiscrimination(4, kernels=3)
    x = torch.randn(5, 4)
    out = layer(x)
    assert out.shape == (5, 4 + 3) and torch.equal(out[:, :4], x)
    alike = layer(torch.cat([x[:1]] * 5))  # a collapsed batch: every sample close to all others
    assert torch.allclose(alike[:, 4:], torch.full((5, 3), 4.0))
    changed = layer(torch.cat([x[:1], x[1:] + 10.0]))
    assert not torch.allclose(changed[0, 4:], out[0, 4:])  # sample 0's extra features depend on the others


@pytest.mark.parametrize("side,sizes", [(8, [4, 2]), (28, [14, 7]), (32, [16, 8, 4]), (64, [32, 16, 8, 4])])
def test_conv_networks_fit_the_image_size(side, sizes):
    assert conv_sizes(side) == sizes
    g = generator(10, (3, side, side), "conv", (), 8, "batch")
    d = discriminator((3, side, side), "conv", (), 8, "weight", minibatch_kernels=4)
    images = g(torch.randn(4, 10))
    assert images.shape == (4, 3, side, side) and 0 <= images.min() and images.max() <= 1
    assert d(images).shape == (4,)


# -- the trainers -------------------------------------------------------------------------


def parameters_of(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


@pytest.mark.parametrize("cls,config,networks", [
    (GAN, GANConfig(batch_size=32), ("generator", "discriminator")),
    (DCGAN, DCGAN.Config(batch_size=32, width=8), ("generator", "discriminator")),
    (WGAN, WGANConfig(batch_size=32, n_critic=1), ("generator", "critic")),
    (BEGAN, BEGANConfig(batch_size=32), ("generator", "encoder", "decoder")),
    (InfoGAN, InfoGANConfig(batch_size=32), ("generator", "discriminator", "q_head")),
    (GMMN, GMMNConfig(batch_size=32), ("generator",)),
])
def test_one_update_changes_every_network_and_gives_finite_losses(cls, config, networks):
    trainer = cls(config, context(IMAGES))
    before = {name: parameters_of(getattr(trainer, name)) for name in networks}
    metrics = trainer.update(IMAGES[:32])
    assert metrics and all(np.isfinite(v) for v in metrics.values())
    for name in networks:
        after = parameters_of(getattr(trainer, name))
        assert any(not torch.equal(a, b) for a, b in zip(before[name], after)), f"{name} did not change"
    samples = trainer.sample(5)
    assert samples.shape == (5, 1, 8, 8) and samples.min() >= 0 and samples.max() <= 1


@pytest.mark.parametrize("name,overrides", [
    ("gan", {}), ("dcgan", {"width": 8}), ("wgan", {}), ("wgan", {"gradient_penalty": 10.0, "norm": "layer"}),
    ("began", {}), ("infogan", {}), ("gmmn", {"batch_size": 64}),
    ("gan", {"feature_matching": True, "minibatch_kernels": 5, "real_label": 0.9, "historical_averaging": 1e-3,
             "norm": "weight"}),
    ("dcgan", {"width": 8, "norm": "weight", "minibatch_kernels": 4}),
])
def test_check_algorithm(name, overrides):
    check_algorithm(name, overrides=overrides)


@pytest.mark.parametrize("name", ["gan", "wgan", "began", "infogan", "gmmn"])
def test_mlp_trainers_on_points(name):
    check_algorithm(name, data=POINTS, overrides={"batch_size": 64})


def test_conv_architecture_on_points_is_a_clear_error():
    with pytest.raises(ToolkitError, match="--architecture conv needs image data"):
        DCGAN(DCGAN.Config(), context(POINTS))


def test_wgan_critic_weights_stay_within_the_clip():
    trainer = WGAN(WGANConfig(batch_size=32, clip=0.01, learning_rate=0.5), context(POINTS))
    for _ in range(5):
        trainer.update(POINTS[:32])
        weights = torch.cat([p.flatten() for p in trainer.critic.parameters()])
        assert weights.abs().max().item() <= 0.01 + 1e-7
    assert weights.abs().max().item() == pytest.approx(0.01)  # a large step pushed weights to the bound


def test_wgan_steps_the_generator_every_n_critic_updates():
    trainer = WGAN(WGANConfig(batch_size=32, n_critic=3), context(POINTS))
    steps = ["loss/generator" in trainer.update(POINTS[:32]) for _ in range(6)]
    assert steps == [False, False, True, False, False, True]


def test_linear_learning_rate_decay_reaches_zero_at_the_last_update():
    trainer = WGAN(WGANConfig(batch_size=32, n_critic=2, optimizer="adam", learning_rate=1e-3,
                              learning_rate_decay="linear"), context(POINTS))  # 100 updates in the run
    critic_lrs, generator_lrs = [], []
    for _ in range(100):
        trainer.update(POINTS[:32])
        critic_lrs.append(trainer.c_optimizer.param_groups[0]["lr"])
        generator_lrs.append(trainer.g_optimizer.param_groups[0]["lr"])
    # the k-th update (from 0) steps the critic with 1e-3 * (1 - k / 100); the generator steps
    # after every 2nd, when k + 1 updates are done
    assert critic_lrs[0] == pytest.approx(1e-3) and critic_lrs[50] == pytest.approx(0.5e-3)
    assert critic_lrs[-1] == pytest.approx(1e-5) and generator_lrs[1] == pytest.approx(0.98e-3)
    assert generator_lrs[-1] == 0.0
    assert all(a > b for a, b in zip(critic_lrs, critic_lrs[1:]))
    constant = WGAN(WGANConfig(batch_size=32, optimizer="adam", learning_rate=1e-3), context(POINTS))
    for _ in range(10):
        constant.update(POINTS[:32])
    assert constant.c_optimizer.param_groups[0]["lr"] == 1e-3


def test_data_scale_scales_what_the_networks_see_and_unscales_the_samples():
    scaled = WGAN(WGANConfig(batch_size=32, data_scale=0.25), context(POINTS))
    plain = WGAN(WGANConfig(batch_size=32), context(POINTS))  # the same seed: the same networks
    assert torch.equal(scaled.batch(POINTS[:4]), torch.as_tensor(POINTS[:4]) * 0.25)
    assert torch.equal(plain.batch(POINTS[:4]), torch.as_tensor(POINTS[:4]))
    z = torch.randn(8, scaled.config.latent_dim)
    np.testing.assert_allclose(scaled.generate(z), plain.generate(z) * 4, rtol=1e-6)


def test_he_uniform_init_is_the_wgan_gp_toy_codes():
    """tflib's 'he' init in the ReLU layers (uniform, std sqrt(2 / fan_in)), Glorot in the output
    layer, zero biases; and a ReLU critic is piecewise linear through 0 (no leak)."""
    torch.manual_seed(0)
    critic = he_uniform_init(discriminator((2,), "mlp", (512, 512, 512), 64, "none", activation="relu"))
    hidden = [m for m in critic.body if isinstance(m, torch.nn.Linear)]
    assert hidden[1].weight.std().item() == pytest.approx(math.sqrt(2 / 512), rel=0.02)
    assert critic.head.weight.std().item() == pytest.approx(math.sqrt(2 / (512 + 1)), rel=0.1)
    assert all(m.bias.abs().max().item() == 0 for m in (*hidden, critic.head))
    assert not any(isinstance(m, torch.nn.LeakyReLU) for m in critic.modules())
    default = discriminator((2,), "mlp", (512, 512, 512), 64, "none")
    assert [m for m in default.body if isinstance(m, torch.nn.Linear)][1].weight.std().item() < 0.5 * math.sqrt(2 / 512)


def test_he_init_needs_the_mlp_networks():
    with pytest.raises(ToolkitError, match="--init he"):
        WGAN(WGANConfig(init="he", architecture="conv"), context(IMAGES))


def test_wgan_gp_refuses_batch_norm():
    with pytest.raises(ToolkitError, match="batch norm couples samples"):
        WGAN(WGANConfig(gradient_penalty=10.0, norm="batch"), context(IMAGES))


def test_began_trains_with_a_one_unit_code():
    """A 1-D code (a ring is a 1-D manifold) once crashed: the encoder's single output was squeezed."""
    trainer = BEGAN(BEGANConfig(batch_size=32, bottleneck=1), context(POINTS))
    metrics = trainer.update(POINTS[:32])
    assert np.isfinite(metrics["loss/discriminator"]) and trainer.sample(4).shape == (4, 2)


def test_began_k_stays_in_the_unit_interval_during_training():
    trainer = BEGAN(BEGANConfig(batch_size=32, lambda_k=0.5, gamma=1.0), context(POINTS))
    ks = [trainer.update(POINTS[i % 8 * 32:][:32])["began/k"] for i in range(40)]
    assert all(0.0 <= k <= 1.0 for k in ks) and max(ks) > 0  # the control moved, and only within [0, 1]


def test_infogan_traversal_has_a_row_per_category():
    trainer = InfoGAN(InfoGANConfig(categories=4), context(IMAGES))
    traversal = trainer.traversal()
    assert traversal.shape == (4 * 10, 1, 8, 8)
    assert not np.allclose(traversal[0], traversal[9])  # the continuous code changes the image


def test_code_accuracy_is_the_best_one_to_one_matching_of_codes_to_labels():
    from toolkit_gan.infogan import matched_accuracy

    labels = np.array([0, 0, 1, 1, 2, 2, 2, 1])
    assert matched_accuracy((labels + 1) % 3, labels) == 1.0  # renamed code values are as good
    # codes: {0: [0, 0, 1], 1: [1, 2, 2, 2], 2: [1]}; the best map 0->0, 1->2, 2->1 gets 2 + 3 + 1 right
    codes = np.array([0, 0, 1, 0, 1, 1, 1, 2])
    assert matched_accuracy(codes, labels) == 6 / 8
    assert matched_accuracy(np.zeros(8, dtype=int), labels) == 3 / 8  # one code value: the largest class
    assert matched_accuracy(np.arange(8) % 4, np.arange(8) % 2) == 4 / 8  # more codes than labels
    rng = np.random.default_rng(0)
    balanced = np.repeat(np.arange(10), 500)
    # a code that knows nothing of the class: chance, 0.1, plus the little the matching can pick out of noise
    assert 0.1 <= matched_accuracy(rng.integers(10, size=balanced.size), balanced) < 0.12


def test_infogan_reports_code_accuracy_on_labelled_digits():
    from toolkit.datasets import load_dataset

    held_out, labels = load_dataset("digits", "test", 0)
    trainer = InfoGAN(InfoGANConfig(batch_size=32), DataContext(tuple(held_out.shape[1:]), 100, 100, 0, "cpu", "digits"))
    accuracy = trainer.evaluate(held_out)["code_accuracy"]
    assert 0.05 < accuracy < 0.5  # an untrained Q: near chance (0.1 for ten balanced classes)
    np.testing.assert_array_equal(trainer.inferred_categories(held_out[:5]).shape, (5,))
    assert "code_accuracy" not in trainer.evaluate(held_out[:100])  # samples that are not the test split


def test_wgan_gp_preset_takes_the_authors_toy_settings_on_the_mixtures_only():
    from toolkit.planning import plan_from_argv

    toy = plan_from_argv("wgan", ["--data", "ring8", "--preset", "gp"]).algo_config
    assert (toy.hidden, toy.latent_dim, toy.norm, toy.gradient_penalty, toy.batch_size, toy.betas) == (
        (512, 512, 512), 2, "none", 0.1, 256, (0.5, 0.9))
    images = plan_from_argv("wgan", ["--data", "digits", "--preset", "gp"]).algo_config
    assert (images.norm, images.gradient_penalty, images.betas) == ("layer", 10.0, (0.0, 0.9))
    assert toy.learning_rate == images.learning_rate == 1e-4  # what both share stays
    flagged = plan_from_argv("wgan", ["--data", "grid25", "--preset", "gp", "--gradient-penalty", "1"]).algo_config
    assert flagged.gradient_penalty == 1.0 and flagged.hidden == (512, 512, 512)  # a flag still wins
    toy_run = plan_from_argv("wgan", ["--data", "ring8", "--preset", "gp"])
    assert (toy_run.run.steps, toy_run.algo_config.learning_rate_decay) == (20_000, "linear")
    assert plan_from_argv("wgan", ["--data", "digits", "--preset", "gp"]).algo_config.learning_rate_decay == "none"
    # gan_toy.py's ReLU critic, He init and data scales (its ring divided by 1.414, its grid by 2.828)
    grid = plan_from_argv("wgan", ["--data", "grid25", "--preset", "gp"]).algo_config
    assert (toy.critic_activation, toy.init, grid.critic_activation, grid.init) == ("relu", "he", "relu", "he")
    assert (toy.data_scale, grid.data_scale) == (pytest.approx(1 / 1.414), pytest.approx(1 / 2.828))
    assert plan_from_argv("wgan", ["--data", "grid25", "--preset", "gp"]).run.steps == 80_000
    assert (images.critic_activation, images.init, images.data_scale) == ("leaky_relu", "torch", 1.0)


@pytest.mark.parametrize("algo, dataset, preset, checks", [
    ("gan", "digits", "digits", {"norm": "batch"}),
    ("gan", "ring8", "mixtures", {"hidden": (256, 256, 256), "latent_dim": 2}),
    ("wgan", "grid25", "mixtures", {"hidden": (256, 256, 256), "clip": 0.01}),
    ("gmmn", "ring8", "mixtures", {"hidden": (256, 256, 256), "bandwidths": (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)}),
    ("dcgan", "digits", "digits", {"norm": "batch", "architecture": "conv"}),
])
def test_gan_family_presets_apply_by_dataset(algo, dataset, preset, checks):
    from toolkit.planning import plan_from_argv

    p = plan_from_argv(algo, ["--data", dataset])
    assert p.preset == preset and {k: getattr(p.algo_config, k) for k in checks} == checks


def test_dcgan_does_not_inherit_the_mlp_gans_presets():
    from toolkit_gan.gan import DCGAN, GAN

    assert "mixtures" in GAN.presets and "mixtures" not in DCGAN.presets


def test_historical_average_is_the_running_mean():
    trainer = GAN(GANConfig(batch_size=32, historical_averaging=1.0), context(POINTS))
    seen = [parameters_of(trainer.generator)]
    for _ in range(3):
        trainer.update(POINTS[:32])
        seen.append(parameters_of(trainer.generator))
    average = trainer.averages["generator"].averages
    for i, a in enumerate(average):
        assert torch.allclose(a, torch.stack([s[i] for s in seen]).mean(0), atol=1e-6)


# -- metrics ------------------------------------------------------------------------------


def test_mode_coverage_counts_modes_and_quality():
    centres = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0], [5.0, 5.0]])
    rng = np.random.default_rng(0)
    everywhere = centres[rng.integers(4, size=1000)] + 0.1 * rng.standard_normal((1000, 2))
    assert mode_coverage(everywhere, centres, std=0.1) == {"modes_covered": 4.0, "high_quality": pytest.approx(0.99, abs=0.01)}
    collapsed = centres[[0] * 990 + [1] * 10] + 0.01
    result = mode_coverage(collapsed, centres, std=0.1)
    assert result["modes_covered"] == 1.0 and result["high_quality"] == 1.0  # 10 stray points do not cover a mode
    far = np.full((100, 2), 2.5)
    assert mode_coverage(far, centres, std=0.1) == {"modes_covered": 0.0, "high_quality": 0.0}


def test_frechet_distance_of_gaussians():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((5000, 3))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-3)
    assert frechet_distance(a, a + [2.0, 0.0, 0.0]) == pytest.approx(4.0, abs=1e-3)
    # N(0, I) against N(0, 4I): the trace term is 3 * (1 + 4 - 2 * 2) = 3
    assert frechet_distance(a, 2 * rng.standard_normal((5000, 3))) == pytest.approx(3.0, abs=0.3)


def test_trace_sqrt_product_matches_the_matrix_square_root():
    from scipy import linalg

    from toolkit_gan.metrics import trace_sqrt_product

    rng = np.random.default_rng(1)
    for dim, n in ((3, 50), (40, 20)):  # full rank, and singular (fewer samples than dimensions)
        cov_a = np.cov(rng.standard_normal((n, dim)), rowvar=False)
        cov_b = np.cov(rng.standard_normal((n, dim)) @ rng.standard_normal((dim, dim)), rowvar=False)
        expected = np.trace(np.real(linalg.sqrtm(cov_a @ cov_b)))
        assert trace_sqrt_product(cov_a, cov_b) == pytest.approx(expected, rel=1e-6)


def test_inception_style_score_bounds():
    confident_and_spread = np.eye(10)[np.arange(100) % 10]
    assert inception_style_score(confident_and_spread) == pytest.approx(10.0, rel=1e-6)
    assert inception_style_score(np.eye(10)[np.zeros(100, dtype=int)]) == pytest.approx(1.0)


def test_digits_metrics_rank_real_digits_above_noise(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    from toolkit.datasets import load_dataset
    from toolkit_gan.metrics import sample_metrics

    train, _ = load_dataset("digits", "train")
    test, _ = load_dataset("digits", "test")
    real = sample_metrics("digits", None, train[:360], test)
    noise = sample_metrics("digits", None, np.random.default_rng(0).random((360, 1, 8, 8), dtype=np.float32), test)
    assert real["FD-digits"] < noise["FD-digits"] / 10
    # a trained classifier is confident on real digits (version 1's 120 steps gave 7.8) and
    # spreads them over the ten classes; noise lands on a few classes
    assert real["IS-digits"] > 9 and noise["IS-digits"] < real["IS-digits"] / 2
    assert list((tmp_path / "toolkit" / "classifiers").glob("FD-digits-1x8x8-*.pt"))  # cached for the next run


# -- end to end ---------------------------------------------------------------------------


@pytest.mark.parametrize("cls,config", [
    (GAN, GANConfig(batch_size=64, hidden=(64,), learning_rate=1e-3)),
    (WGAN, WGANConfig(batch_size=64, hidden=(64,), gradient_penalty=10.0, clip=0.0, optimizer="adam",
                      learning_rate=1e-3, n_critic=2)),
    (GMMN, GMMNConfig(batch_size=64, hidden=(64,), learning_rate=1e-2, bandwidths=(0.5, 1.0, 2.0))),
])
def test_trainers_learn_the_brightness_of_toy_images(cls, config):
    """Data: 4x4 images near 0.8; an untrained generator's sigmoid outputs sit near 0.5."""
    data = (0.8 + 0.05 * np.random.default_rng(0).standard_normal((512, 1, 4, 4))).clip(0, 1).astype(np.float32)
    trainer = cls(config, context(data))
    torch.manual_seed(0)
    before = trainer.sample(256).mean()
    for i in range(300):
        trainer.update(data[(i % 8) * 64:][:64])
    after = trainer.sample(256).mean()
    assert abs(before - 0.8) > 0.15 and abs(after - 0.8) < 0.06, (before, after)


def test_a_run_on_ring8_logs_mode_coverage_and_a_scatter_plot(tmp_path):
    import json

    run_dir = toolkit.train("gmmn", data="ring8", steps=50, eval_every=50, checkpoint_every=0, batch_size=64,
                            progress=False, run_dir=str(tmp_path / "run"))
    assert toolkit.run.plan("gmmn", {"data": "ring8"}).preset == "mixtures"  # presets apply by dataset
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    final = [r for r in records if "eval/modes_covered" in r][-1]
    assert 0 <= final["eval/modes_covered"] <= 8 and 0 <= final["eval/high_quality"] <= 1
    assert (run_dir / "samples" / "step_000000050.png").is_file()


def test_sample_command_draws_from_a_checkpoint(tmp_path):
    from PIL import Image

    from toolkit.cli import main

    run_dir = toolkit.train("gan", data="digits", steps=20, eval_every=20, progress=False, run_dir=str(tmp_path / "r"))
    out = tmp_path / "grid.png"
    assert main(["sample", str(run_dir), "--n", "16", "--out", str(out), "--seed", "3"]) == 0
    grid = np.asarray(Image.open(out))
    assert grid.shape[0] == grid.shape[1] >= 4 * 8  # 4x4 digits, enlarged
    again = tmp_path / "again.png"
    main(["sample", str(run_dir), "--n", "16", "--out", str(again), "--seed", "3"])
    assert np.array_equal(np.asarray(Image.open(again)), grid)  # the seed picks the samples


def test_real_fid_only_with_local_inception_weights(tmp_path, monkeypatch):
    from toolkit_gan import inception
    from toolkit_gan.metrics import real_fid

    monkeypatch.setenv("TOOLKIT_INCEPTION_WEIGHTS", str(tmp_path / "missing.pth"))
    images = np.random.default_rng(0).random((3, 1, 8, 8), dtype=np.float32)  # few: 299x299 on a CPU
    assert real_fid(images, images) == {}  # no weights: no FID, no download
    network = inception.FIDInception()
    state = network.state_dict()
    # the layout of the published FID weights (torchvision's Inception3 names, 1008 classes):
    # 23,850,960 parameters, so the checkpoint loads strictly
    assert sum(p.numel() for p in network.parameters()) == 23_850_960
    assert state["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
    assert state["Mixed_6e.branch7x7dbl_5.conv.weight"].shape == (192, 192, 1, 7)
    assert state["Mixed_7c.branch3x3dbl_3b.conv.weight"].shape == (384, 384, 3, 1)
    assert state["fc.weight"].shape == (1008, 2048)
    torch.manual_seed(0)
    for module in network.modules():  # batch-norm statistics of real activations, not 0 and 1
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None
    with torch.no_grad():
        network.train()(torch.rand(2, 3, 8, 8))
    torch.save({k: v.clone() for k, v in network.state_dict().items()}, tmp_path / "weights.pth")
    monkeypatch.setenv("TOOLKIT_INCEPTION_WEIGHTS", str(tmp_path / "weights.pth"))
    inception._NETWORK.clear()
    shifted = np.clip(images[::-1] * 0.2 + 0.8, 0, 1)
    same, different = real_fid(images, images)["FID"], real_fid(shifted, images)["FID"]
    # sqrtm of 2048-d covariances of three images is only approximately exact
    assert abs(same) < 0.01 * different, (same, different)
