"""Network building blocks shared by algorithms."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def mlp(in_features: int, hidden: Sequence[int], out_features: int, activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear layers of the given hidden widths with ``activation`` between them."""
    layers: list[nn.Module] = []
    width = in_features
    for size in hidden:
        layers += [nn.Linear(width, size), activation()]
        width = size
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


class NatureCNN(nn.Module):
    """The convolutional torso of Mnih et al. (2015): 32 8x8/4, 64 4x4/2, 64 3x3/1, then a
    512-unit layer. Takes uint8 frame stacks (B, C, 84, 84) and scales them to [0, 1] inside,
    so observations stay uint8 until they reach the network."""

    def __init__(self, in_channels: int = 4, features: int = 512) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels, 32, 8, stride=4), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(),
            nn.Flatten(),
        )
        self.fc = nn.Sequential(nn.Linear(64 * 7 * 7, features), nn.ReLU())
        self.out_features = features

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.fc(self.convs(frames.float() / 255.0))
