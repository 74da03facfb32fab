"""The global random generators a run seeds, saves in checkpoints and restores."""

from __future__ import annotations

import random
from typing import Any

import numpy as np


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_states() -> dict[str, Any]:
    import torch

    return {"python": random.getstate(), "numpy": np.random.get_state()[1:], "torch": torch.get_rng_state()}


def restore_rng_states(states: dict[str, Any]) -> None:
    import torch

    python_state = states["python"]
    random.setstate((python_state[0], tuple(python_state[1]), python_state[2]))
    np.random.set_state(("MT19937", *states["numpy"]))
    torch.set_rng_state(states["torch"])


def seeded_generator(device: Any, seed: int | None) -> Any:
    """A torch generator of its own on ``device``, seeded with ``seed`` (fresh entropy when None),
    for sampling that must not disturb, or depend on, the global torch generator."""
    import torch

    generator = torch.Generator(device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator
