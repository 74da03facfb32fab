"""Rezende & Mohamed 2015, Section 6.1 and Figure 3: fitting a flow to an unnormalised 2-D
density p(z) proportional to exp(-U(z)) by minimising the reverse KL, that is the free energy

    F(q) = E_{q_K}[log q_K(z_K) + U(z_K)] = KL(q_K || p) - log Z >= -log Z,

with q_K the base N(0, I) carried through K maps (``toolkit_vae.flows``) whose parameters are
learned directly (nothing is amortised: there is one target). The four energies are Table 1's:

    U1(z) = 1/2 ((||z|| - 2) / 0.4)^2 - log(exp(-1/2 ((z1 - 2) / 0.6)^2) + exp(-1/2 ((z1 + 2) / 0.6)^2))
    U2(z) = 1/2 ((z2 - w1(z)) / 0.4)^2
    U3(z) = -log(exp(-1/2 ((z2 - w1(z)) / 0.35)^2) + exp(-1/2 ((z2 - w1(z) + w2(z)) / 0.35)^2))
    U4(z) = -log(exp(-1/2 ((z2 - w1(z)) / 0.4)^2) + exp(-1/2 ((z2 - w1(z) + w3(z)) / 0.35)^2))

    w1(z) = sin(2 pi z1 / 4), w2(z) = 3 exp(-1/2 ((z1 - 1) / 0.6)^2), w3(z) = 3 sigmoid((z1 - 1) / 0.3)

As the paper, the energy is annealed: beta_t U with beta_t rising linearly from 0.01 to 1
over the first part of training. The paper ran RMSProp (1e-5, momentum 0.9) for 500k
iterations, more than a CPU affords for 12 fits; here Adam (1e-3) runs 30k steps by default
(at 10k the 32-map flows were still far behind the 8-map ones; at 30k they are ahead on U2
and U3 and level on U1 and U4).
log Z is integrated on a grid, so the fit is reported as KL(q_K || p) in nats (0 is perfect).

U2-U4 do not depend on how far z1 is from the origin, only on the phase of sin(2 pi z1 / 4),
so exp(-U) as written has infinite mass and no KL to it exists: a flow that slides along z1
lowers its free energy without bound, and fitted to U3 and U4 the 32-map flows did exactly
that, leaving the figure's window (2026-12-01). As the figure shows them, the targets here
are restricted to the window |z1| <= 4 by a soft wall, an energy rising quadratically over
``WALL_WIDTH`` outside it, which leaves Table 1's values inside the window unchanged (the
normflows library confines its versions with a quartic envelope instead).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from toolkit_vae.flows import FLOWS, apply_flow

PLOT_EXTENT = 4.0
"""Figure 3's window, [-4, 4]^2; U2-U4 are confined to it along z1."""
WALL_WIDTH = 0.2
"""How far outside the window U2-U4's wall has risen by 1/2 (e^-1/2 of the density)."""


def _w1(z: torch.Tensor) -> torch.Tensor:
    return torch.sin(2 * math.pi * z[..., 0] / 4)


def _w2(z: torch.Tensor) -> torch.Tensor:
    return 3 * torch.exp(-0.5 * ((z[..., 0] - 1) / 0.6) ** 2)


def _w3(z: torch.Tensor) -> torch.Tensor:
    return 3 * torch.sigmoid((z[..., 0] - 1) / 0.3)


def _two_wells(a: torch.Tensor, a_scale: float, b: torch.Tensor, b_scale: float) -> torch.Tensor:
    """-log(exp(-1/2 (a / a_scale)^2) + exp(-1/2 (b / b_scale)^2)), computed stably."""
    return -torch.logsumexp(torch.stack([-0.5 * (a / a_scale) ** 2, -0.5 * (b / b_scale) ** 2]), dim=0)


def u1(z: torch.Tensor) -> torch.Tensor:
    ring = 0.5 * ((z.norm(dim=-1) - 2) / 0.4) ** 2
    return ring + _two_wells(z[..., 0] - 2, 0.6, z[..., 0] + 2, 0.6)


def _window_wall(z: torch.Tensor) -> torch.Tensor:
    """0 for |z1| <= PLOT_EXTENT, then (d / WALL_WIDTH)^2 / 2 at a distance d outside."""
    return 0.5 * (torch.relu(z[..., 0].abs() - PLOT_EXTENT) / WALL_WIDTH) ** 2


def u2(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((z[..., 1] - _w1(z)) / 0.4) ** 2 + _window_wall(z)


def u3(z: torch.Tensor) -> torch.Tensor:
    return _two_wells(z[..., 1] - _w1(z), 0.35, z[..., 1] - _w1(z) + _w2(z), 0.35) + _window_wall(z)


def u4(z: torch.Tensor) -> torch.Tensor:
    return _two_wells(z[..., 1] - _w1(z), 0.4, z[..., 1] - _w1(z) + _w3(z), 0.35) + _window_wall(z)


ENERGIES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"U1": u1, "U2": u2, "U3": u3, "U4": u4}
EXTENT = 6.0
"""The energies' mass lies well inside [-EXTENT, EXTENT]^2, where log Z is integrated."""


def log_partition(energy: Callable[[torch.Tensor], torch.Tensor], points: int = 1201, extent: float = EXTENT) -> float:
    """log Z = log of the integral of exp(-U) over [-extent, extent]^2, on a grid."""
    axis = torch.linspace(-extent, extent, points, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), dim=-1)
    cell = (axis[1] - axis[0]) ** 2
    return float(torch.logsumexp(-energy(grid).flatten(), dim=0) + torch.log(cell))


def base_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I)."""
    return -0.5 * (z.pow(2).sum(-1) + z.shape[-1] * math.log(2 * math.pi))


def flow_samples(params: torch.Tensor, kind: str, length: int, n: int,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """n samples z_K of the flow and their log q_K(z_K) = log q_0(z_0) - sum_k log|det| (eq. 7).
    ``params`` (K * P,) for one flow, or (m, 1, K * P) for m flows at once (samples (m, n, 2))."""
    z0 = torch.randn(*params.shape[:-2], n, 2, generator=generator)
    z, log_det = apply_flow(kind, z0, params, length)
    return z, base_log_prob(z0) - log_det


@dataclass(frozen=True)
class Fit:
    energy: str
    params: torch.Tensor
    """(K * P,) the fitted maps' parameters."""
    kl: float
    """KL(q_K || p) in nats: F + log Z, estimated on fresh samples."""
    kl_std_error: float


def fit_flows(energy_names: list[str], length: int, *, kind: str = "planar", steps: int = 30_000,
              batch_size: int = 256, learning_rate: float = 1e-3, anneal_fraction: float = 0.25, seed: int = 0,
              eval_samples: int = 20_000) -> list[Fit]:
    """Fit K = ``length`` maps of ``kind`` to each exp(-U) by minimising its annealed free
    energy. The flows are independent (their own parameters, the sum of their free energies as
    the loss) but computed as one batch, which costs what one flow costs on a CPU."""
    energies = [ENERGIES[name] for name in energy_names]
    generator = torch.Generator().manual_seed(seed)
    count = FLOWS[kind][1](2)
    params = (0.1 * torch.randn(len(energies), 1, length * count, generator=generator)).requires_grad_(True)
    optimizer = torch.optim.Adam([params], lr=learning_rate)
    anneal = max(int(anneal_fraction * steps), 1)

    def free_energies(n: int, beta: float) -> torch.Tensor:
        """Per flow, the n terms log q_K(z_K) + beta U(z_K) whose mean is its free energy F."""
        z, log_q = flow_samples(params, kind, length, n, generator)
        return torch.stack([log_q[i] + beta * energy(z[i]) for i, energy in enumerate(energies)])

    for step in range(steps):
        beta = min(1.0, 0.01 + step / anneal)
        loss = free_energies(batch_size, beta).mean(dim=1).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        terms = free_energies(eval_samples, 1.0).double().numpy()
    return [Fit(name, params[i, 0].detach().clone(), float(terms[i].mean() + log_partition(energy)),
                float(terms[i].std() / np.sqrt(eval_samples)))
            for i, (name, energy) in enumerate(zip(energy_names, energies))]


def flow_density(params: torch.Tensor, kind: str, length: int, n: int = 200_000, bins: int = 100,
                 seed: int = 0) -> np.ndarray:
    """A histogram of the flow's samples on the plotting window (rows z2, columns z1): the
    fitted density's picture."""
    with torch.no_grad():
        z, _ = flow_samples(params, kind, length, n, torch.Generator().manual_seed(seed))
    histogram, _, _ = np.histogram2d(z[:, 1].numpy(), z[:, 0].numpy(), bins=bins,
                                     range=[[-PLOT_EXTENT, PLOT_EXTENT]] * 2, density=True)
    return histogram


def target_density(energy_name: str, bins: int = 100) -> np.ndarray:
    """exp(-U) / Z on the plotting window's bin centres (rows z2, columns z1)."""
    edges = torch.linspace(-PLOT_EXTENT, PLOT_EXTENT, bins + 1, dtype=torch.float64)
    centres = (edges[1:] + edges[:-1]) / 2
    grid = torch.stack(torch.meshgrid(centres, centres, indexing="xy"), dim=-1)
    energy = ENERGIES[energy_name]
    return torch.exp(-energy(grid) - log_partition(energy)).numpy()
