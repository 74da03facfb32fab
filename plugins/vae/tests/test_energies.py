"""Rezende & Mohamed's density-matching experiment: the energies of Table 1, log Z, the flow's
density under the change of variables, and that fitting lowers the KL."""

import math

import numpy as np
import torch

from toolkit_vae.energies import ENERGIES, base_log_prob, fit_flows, flow_samples, log_partition
from toolkit_vae.flows import apply_flow


def table_1(name, z1, z2):
    """Table 1 of the paper, written out in numpy."""
    w1 = np.sin(2 * np.pi * z1 / 4)
    w2 = 3 * np.exp(-0.5 * ((z1 - 1) / 0.6) ** 2)
    w3 = 3 / (1 + np.exp(-(z1 - 1) / 0.3))
    if name == "U1":
        return (0.5 * ((np.hypot(z1, z2) - 2) / 0.4) ** 2
                - np.log(np.exp(-0.5 * ((z1 - 2) / 0.6) ** 2) + np.exp(-0.5 * ((z1 + 2) / 0.6) ** 2)))
    if name == "U2":
        return 0.5 * ((z2 - w1) / 0.4) ** 2
    if name == "U3":
        return -np.log(np.exp(-0.5 * ((z2 - w1) / 0.35) ** 2) + np.exp(-0.5 * ((z2 - w1 + w2) / 0.35) ** 2))
    return -np.log(np.exp(-0.5 * ((z2 - w1) / 0.4) ** 2) + np.exp(-0.5 * ((z2 - w1 + w3) / 0.35) ** 2))


def test_the_energies_are_table_1s_inside_the_window():
    z = np.random.default_rng(0).uniform(-4, 4, (200, 2))
    for name, energy in ENERGIES.items():
        np.testing.assert_allclose(energy(torch.tensor(z)).numpy(), table_1(name, z[:, 0], z[:, 1]), rtol=1e-9,
                                   err_msg=name)


def test_every_target_has_finite_mass_inside_the_integration_grid():
    """Table 1's U2-U4 repeat along z1 forever (a flow fitted to them slid out of the window);
    the wall confines them, so widening the grid adds no mass."""
    for name, energy in ENERGIES.items():
        wide = log_partition(energy, points=2401, extent=12.0)
        assert math.isclose(log_partition(energy), wide, abs_tol=1e-3), name


def test_log_partition_of_a_standard_gaussian_energy_is_log_2_pi():
    assert math.isclose(log_partition(lambda z: 0.5 * z.pow(2).sum(-1)), math.log(2 * math.pi), rel_tol=1e-6)


def test_the_flow_density_is_the_change_of_variables():
    """log q_K(z_K) = log q_0(z_0) - log|det dz_K/dz_0|, with the Jacobian from autograd."""
    params = 0.8 * torch.randn(3 * 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    generator = torch.Generator().manual_seed(1)
    z, log_q = flow_samples(params, "planar", 3, 4, generator)
    z0 = torch.randn(4, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for i in range(4):
        jacobian = torch.autograd.functional.jacobian(lambda x: apply_flow("planar", x, params, 3)[0], z0[i])
        expected = base_log_prob(z0[i]) - torch.log(torch.det(jacobian).abs())
        assert torch.allclose(log_q[i].double(), expected, atol=1e-4)


def test_fitting_lowers_the_kl_to_the_target():
    untrained, = fit_flows(["U2"], 4, steps=0, eval_samples=5000)
    trained, = fit_flows(["U2"], 4, steps=400, learning_rate=1e-2, eval_samples=5000)
    assert trained.kl < untrained.kl - 0.5
    assert trained.kl > -3 * trained.kl_std_error  # a KL: never clearly below zero
