"""Generators and discriminators for any sample shape: MLPs for points and small images,
DCGAN-style convolutional stacks for images (Radford et al. 2016: strided convolutions
instead of pooling, batch norm except at the generator's output and the discriminator's
input, ReLU in the generator, LeakyReLU(0.2) in the discriminator), with weight
normalisation (Salimans & Kingma 2016) as the alternative to batch norm and minibatch
discrimination (Salimans et al. 2016, §3.2) before the discriminator's last layer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

Norm = Literal["batch", "weight", "layer", "none"]


def _normed(layer: nn.Module, norm: Norm) -> nn.Module:
    return weight_norm(layer) if norm == "weight" else layer


def _norm_layer(norm: Norm, features: int, conv: bool) -> list[nn.Module]:
    if norm == "batch":
        return [nn.BatchNorm2d(features) if conv else nn.BatchNorm1d(features)]
    if norm == "layer":  # per-sample, so it keeps WGAN-GP's per-sample gradient penalty valid
        return [nn.GroupNorm(1, features) if conv else nn.LayerNorm(features)]
    return []


def conv_sizes(size: int) -> list[int]:
    """Spatial sizes after each stride-2 convolution: halve while the size is even and the
    half is at least 4 (at least two halvings for tiny images): 32 -> [16, 8, 4], 28 -> [14, 7], 8 -> [4, 2]."""
    sizes = []
    while size % 2 == 0 and size // 2 >= 4:
        size //= 2
        sizes.append(size)
    while len(sizes) < 2 and size % 2 == 0 and size // 2 >= 2:
        size //= 2
        sizes.append(size)
    if not sizes:
        raise ValueError(f"images of side {size} cannot be halved; use the MLP architecture")
    return sizes


class MinibatchDiscrimination(nn.Module):
    """Salimans et al. (2016), §3.2: M_i = f(x_i) T (B kernels of dimension C),
    c_b(x_i, x_j) = exp(-||M_i,b - M_j,b||_L1), o(x_i)_b = sum_{j != i} c_b(x_i, x_j);
    the features f(x_i) go on with o(x_i) appended, so the discriminator sees how alike the
    samples of a batch are and a collapsed generator is easy to spot."""

    def __init__(self, in_features: int, kernels: int, kernel_dim: int = 5) -> None:
        super().__init__()
        self.kernels, self.kernel_dim = kernels, kernel_dim
        self.tensor = nn.Parameter(torch.randn(in_features, kernels * kernel_dim) * 0.1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        m = (features @ self.tensor).view(-1, self.kernels, self.kernel_dim)
        l1 = (m[:, None] - m[None]).abs().sum(-1)  # (N, N, kernels)
        closeness = torch.exp(-l1).sum(1) - 1.0  # exp(0) = 1 for j = i
        return torch.cat([features, closeness], dim=1)


class Discriminator(nn.Module):
    """body (input -> features) -> optional minibatch discrimination -> head (-> ``out`` scores).
    ``features`` is what feature matching and InfoGAN's Q head read."""

    def __init__(self, body: nn.Module, features: int, out: int, minibatch_kernels: int = 0) -> None:
        super().__init__()
        self.body = body
        self.minibatch = MinibatchDiscrimination(features, minibatch_kernels) if minibatch_kernels else None
        self.head = nn.Linear(features + minibatch_kernels, out)
        self.feature_size = features

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def score(self, features: torch.Tensor) -> torch.Tensor:
        if self.minibatch is not None:
            features = self.minibatch(features)
        scores = self.head(features)
        return scores.squeeze(1) if scores.shape[1] == 1 else scores

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.score(self.features(x))


def discriminator(shape: Sequence[int], architecture: str, hidden: Sequence[int], width: int, norm: Norm,
                  out: int = 1, minibatch_kernels: int = 0,
                  activation: Literal["leaky_relu", "relu"] = "leaky_relu") -> Discriminator:
    """An MLP discriminator (LeakyReLU 0.2 or ReLU, norm on hidden layers but the first) or a
    DCGAN one (stride-2 4x4 convolutions doubling the channels from ``width``)."""
    layers: list[nn.Module] = []
    if architecture == "mlp":
        layers.append(nn.Flatten())
        size = math.prod(shape)
        for i, features in enumerate(hidden):
            layers += [_normed(nn.Linear(size, features), norm), *(_norm_layer(norm, features, False) if i else []),
                       nn.ReLU() if activation == "relu" else nn.LeakyReLU(0.2)]
            size = features
        return Discriminator(nn.Sequential(*layers), size, out, minibatch_kernels)
    channels = shape[0]
    sizes = conv_sizes(shape[-1])
    for i in range(len(sizes)):
        features = width * 2**i
        layers += [_normed(nn.Conv2d(channels, features, 4, 2, 1), norm),
                   *(_norm_layer(norm, features, True) if i else []), nn.LeakyReLU(0.2)]
        channels = features
    layers.append(nn.Flatten())
    return Discriminator(nn.Sequential(*layers), channels * sizes[-1] ** 2, out, minibatch_kernels)


class Generator(nn.Module):
    """z -> a sample of ``shape``; images pass through a sigmoid so they lie in [0, 1] like the data."""

    def __init__(self, body: nn.Module, shape: Sequence[int], images: bool) -> None:
        super().__init__()
        self.body, self.shape, self.images = body, tuple(shape), images

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.body(z).view(len(z), *self.shape)
        return torch.sigmoid(x) if self.images else x


def generator(latent: int, shape: Sequence[int], architecture: str, hidden: Sequence[int], width: int,
              norm: Norm) -> Generator:
    """An MLP generator (ReLU, norm on hidden layers) or a DCGAN one: a linear layer to the
    smallest feature map, then stride-2 transposed convolutions halving the channels, the
    last one to the image's channels with no norm."""
    images = len(shape) == 3
    layers: list[nn.Module] = []
    if architecture == "mlp":
        size = latent
        for features in hidden:
            layers += [_normed(nn.Linear(size, features), norm), *_norm_layer(norm, features, False), nn.ReLU()]
            size = features
        layers.append(nn.Linear(size, math.prod(shape)))
        return Generator(nn.Sequential(*layers), shape, images)
    channels = shape[0]
    sizes = conv_sizes(shape[-1])
    features = width * 2 ** (len(sizes) - 1)
    layers += [_normed(nn.Linear(latent, features * sizes[-1] ** 2), norm), nn.Unflatten(1, (features, sizes[-1], sizes[-1])),
               *_norm_layer(norm, features, True), nn.ReLU()]
    for stage in reversed(range(len(sizes))):  # up from the smallest map
        last = stage == 0
        out_features = channels if last else features // 2
        upsample = nn.ConvTranspose2d(features, out_features, 4, 2, 1)  # doubles the side exactly
        layers.append(upsample if last else _normed(upsample, norm))
        if not last:
            layers += [*_norm_layer(norm, out_features, True), nn.ReLU()]
        features = out_features
    return Generator(nn.Sequential(*layers), shape, images)


def he_uniform_init(network: nn.Module) -> nn.Module:
    """The initialisation of WGAN-GP's toy code (tflib's ``Linear``): He-uniform weights (std
    sqrt(2 / fan_in)) in the layers a ReLU follows, Glorot-uniform in the last (output) layer,
    zero biases. torch's default draws weights about 2.4 times smaller (std 1 / sqrt(3 fan_in))."""
    linears = [m for m in network.modules() if isinstance(m, nn.Linear)]
    for layer in linears[:-1]:
        nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
        nn.init.zeros_(layer.bias)
    nn.init.xavier_uniform_(linears[-1].weight)
    nn.init.zeros_(linears[-1].bias)
    return network
