"""Normalizing flows for the approximate posterior (Rezende & Mohamed 2015).

q_K(z_K) = q_0(z_0) prod_k |det df_k/dz_{k-1}|^-1, so
log q_K(z_K) = log q_0(z_0) - sum_k log |det df_k/dz_{k-1}| (eq. 7). The flow's parameters
are amortised, output by the encoder for each x as in the paper (§4.2, "the parameters of
the flow are output by the inference network"), so each function here takes ``z`` shaped
(k, batch, d) (k importance samples) and ``params`` shaped (batch, P).

* planar (eq. 10-12): f(z) = z + u_hat h(w^T z + b), h = tanh,
  log|det| = log|1 + u_hat^T psi(z)|, psi(z) = h'(w^T z + b) w, with
  u_hat = u + (m(w^T u) - w^T u) w / ||w||^2, m(x) = -1 + softplus(x), which keeps
  w^T u_hat >= -1 so the map is invertible (Appendix A.1).
* radial (eq. 14): f(z) = z + beta h(alpha, r)(z - z0), r = ||z - z0||, h = 1 / (alpha + r),
  log|det| = (d - 1) log(1 + beta h) + log(1 + beta h + beta h' r), h' = -1 / (alpha + r)^2,
  with alpha = softplus(.) > 0 and beta = -alpha + softplus(.) >= -alpha (Appendix A.2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def planar_parameter_count(d: int) -> int:
    return 2 * d + 1


def radial_parameter_count(d: int) -> int:
    return d + 2


def planar(z: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One planar map; returns f(z) and log|det df/dz| (shaped like z without its last dimension)."""
    d = z.shape[-1]
    u, w, b = params[..., :d], params[..., d : 2 * d], params[..., 2 * d :]
    wu = (w * u).sum(-1, keepdim=True)
    u_hat = u + (F.softplus(wu) - 1 - wu) * w / w.pow(2).sum(-1, keepdim=True).clamp_min(1e-12)
    activation = (z * w).sum(-1, keepdim=True) + b
    out = z + u_hat * torch.tanh(activation)
    psi = (1 - torch.tanh(activation).pow(2)) * w
    log_det = torch.log((1 + (psi * u_hat).sum(-1)).abs() + 1e-12)
    return out, log_det


def radial(z: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One radial map; returns f(z) and log|det df/dz|."""
    d = z.shape[-1]
    z0 = params[..., :d]
    alpha = F.softplus(params[..., d : d + 1])
    beta = -alpha + F.softplus(params[..., d + 1 : d + 2])
    difference = z - z0
    r = difference.norm(dim=-1, keepdim=True)
    h = 1 / (alpha + r)
    out = z + beta * h * difference
    log_det = ((d - 1) * torch.log1p(beta * h) + torch.log1p(beta * h - beta * h.pow(2) * r)).squeeze(-1)
    return out, log_det


FLOWS = {"planar": (planar, planar_parameter_count), "radial": (radial, radial_parameter_count)}


def apply_flow(kind: str, z: torch.Tensor, params: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """K = ``length`` maps of ``kind`` in sequence; ``params`` (batch, K * P) holds each map's
    parameters in order. Returns z_K and sum_k log|det df_k/dz_{k-1}|."""
    transform, count = FLOWS[kind]
    per_map = count(z.shape[-1])
    total = torch.zeros(z.shape[:-1], device=z.device, dtype=z.dtype)
    for k in range(length):
        z, log_det = transform(z, params[..., k * per_map : (k + 1) * per_map])
        total = total + log_det
    return z, total
