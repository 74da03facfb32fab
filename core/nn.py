"""Network building blocks shared by algorithms."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from toolkit.errors import ToolkitError


def mlp(in_features: int, hidden: Sequence[int], out_features: int, activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear layers of the given hidden widths with ``activation`` between them."""
    layers: list[nn.Module] = []
    width = in_features
    for size in hidden:
        layers += [nn.Linear(width, size), activation()]
        width = size
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


def image_layout(space: Any) -> str | None:
    """"CHW" or "HWC" when ``space`` holds uint8 images (a 3-axis Box of 0..255 whose smallest
    axis, the channels, comes first or last), else None. A (4, 84, 84) Atari stack is CHW,
    CarRacing's (96, 96, 3) frames are HWC; SB3 reads the layout the same way (its
    ``is_image_space_channels_first``)."""
    shape = tuple(getattr(space, "shape", None) or ())
    if len(shape) != 3 or getattr(space, "dtype", None) != np.uint8:
        return None
    if not (np.all(space.low == 0) and np.all(space.high == 255)):
        return None
    if shape[0] <= min(shape[1], shape[2]):
        return "CHW"
    if shape[2] <= min(shape[0], shape[1]):
        return "HWC"
    return None


def image_channels_and_size(space: Any) -> tuple[int, tuple[int, int]]:
    """(channels, (height, width)) of a 3-axis observation space: channels last when
    ``image_layout`` says HWC, else first (any other 3-axis space is taken as CHW, as before
    channels-last images were recognised)."""
    shape = tuple(space.shape)
    return (shape[2], shape[:2]) if image_layout(space) == "HWC" else (shape[0], shape[1:])


def warn_images_read_by_mlps(spec: Any, reader: str, remedy: str) -> None:
    """Warn at start when ``spec``'s observations are images (``image_layout``) that ``reader``
    flattens into an MLP's input, where a CNN would read them far better."""
    if image_layout(spec.observation_space) is not None:
        warnings.warn(f"{spec.id} gives images {tuple(spec.observation_space.shape)}; {reader} reads them with MLPs "
                      f"over raw pixels ({remedy})", UserWarning, stacklevel=3)


def nature_cnn_output_side(side: int) -> int:
    """The side of the last feature map of the Nature CNN for an input side (8/4, 4/2, 3/1,
    no padding): 7 for 84, 1 for 36, the smallest side it takes."""
    return ((side - 8) // 4 + 1 - 4) // 2 + 1 - 2


def nature_cnn_fits(space: Any) -> bool:
    """Whether the Nature CNN takes ``space``'s observations: 3-axis images whose sides
    (``image_channels_and_size``) are all at least 36 pixels."""
    if len(tuple(getattr(space, "shape", None) or ())) != 3:
        return False
    return min(nature_cnn_output_side(side) for side in image_channels_and_size(space)[1]) >= 1


def uses_nature_cnn(network: str, space: Any) -> bool:
    """What ``--network`` (auto, nature or mlp) picks for these observations: nature, the Nature
    CNN; auto, the Nature CNN for Atari's (C, 84, 84) frame stacks only; mlp, MLPs."""
    shape = tuple(getattr(space, "shape", None) or ())
    return network == "nature" or (network == "auto" and len(shape) == 3 and shape[1:] == (84, 84))


def check_network_option(network: str, spec: Any) -> None:
    """Refuse ``--network nature`` on observations the Nature CNN cannot take, and warn at start
    when ``--network auto`` leaves images to MLPs (``spec`` is the env's ``EnvSpec``)."""
    space = spec.observation_space
    if network == "nature" and not nature_cnn_fits(space):
        raise ToolkitError(f"--network nature needs images (C, H, W) or (H, W, C) of at least 36x36; "
                           f"{spec.id} gives {space} (use --network auto or mlp)")
    if network == "auto" and not uses_nature_cnn(network, space):
        warn_images_read_by_mlps(spec, "--network auto", "it picks the CNN for Atari's (C, 84, 84) frames only; "
                                 "--network nature reads them with the Nature CNN")


class NatureCNN(nn.Module):
    """The convolutional torso of Mnih et al. (2015): 32 8x8/4, 64 4x4/2, 64 3x3/1, then a
    512-unit layer. Takes uint8 images, (B, C, 84, 84) frame stacks by default, and scales
    them to [0, 1] inside, so observations stay uint8 until they reach the network. Other
    sizes (at least 36x36) and channels-last images (B, H, W, C), such as CarRacing's, are
    taken as SB3's CnnPolicy takes them: the first linear layer is sized from the image, and
    channels-last input is transposed inside (so an exported policy takes the env's own
    frames)."""

    def __init__(self, in_channels: int = 4, features: int = 512, image_size: tuple[int, int] = (84, 84),
                 channels_last_input: bool = False) -> None:
        super().__init__()
        height, width = (nature_cnn_output_side(side) for side in image_size)
        if min(height, width) < 1:
            raise ValueError(f"the Nature CNN needs images of at least 36x36 pixels, got {image_size}")
        self.channels_last_input = channels_last_input
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels, 32, 8, stride=4), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(),
            nn.Flatten(),
        )
        self.fc = nn.Sequential(nn.Linear(64 * height * width, features), nn.ReLU())
        self.out_features = features

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if self.channels_last_input:  # (B, H, W, C) -> (B, C, H, W), already channels-last in memory
            frames = frames.permute(0, 3, 1, 2)
        return self.fc(self.convs(frames.float() / 255.0))

    @classmethod
    def for_images(cls, space: Any, features: int = 512) -> NatureCNN:
        """The CNN for a 3-axis observation space, either layout (``image_channels_and_size``)."""
        channels, size = image_channels_and_size(space)
        return cls(channels, features, size, channels_last_input=image_layout(space) == "HWC")


class CompiledOptimizerStep:
    """``optimizer.step`` through ``torch.compile``: the update becomes one generated loop over
    each parameter instead of a pass over memory per tensor operation, which on a CPU is where
    a small network's update time goes (centred RMSProp, 7 passes; MinAtar's network: 0.5 ->
    0.2 ms per step on this machine). Compilation happens on the first call; if it fails there
    (no C++ compiler, an unsupported backend), that call and all later ones run the eager step,
    after one warning. Resume-safe: the optimizer's state dict is the eager one."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self.step = torch.compile(optimizer.step)
        self.compiled_once = False

    def __call__(self) -> None:
        if self.compiled_once:
            self.step()
            return
        try:  # compilation fails before the step touches any parameter, so the eager retry is clean
            self.step()
        except Exception as error:  # torch raises backend-specific types; any of them means "no compiled step"
            warnings.warn(f"compiling the optimizer step failed, using the eager step ({type(error).__name__}: "
                          f"{str(error).splitlines()[0][:200] if str(error) else ''})", RuntimeWarning, stacklevel=2)
            self.step = self.optimizer.step
            self.optimizer.step()
        self.compiled_once = True
