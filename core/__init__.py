"""toolkit: reinforcement-learning and generative-model training with plugins.

The Python API mirrors the CLI::

    from toolkit import train
    run_dir = train("random", env="CartPole-v1", steps=1000)
"""

from __future__ import annotations

import pluggy

hookimpl = pluggy.HookimplMarker("toolkit")

__version__ = "0.1.0"
__all__ = ["hookimpl", "train", "resume", "__version__"]


def train(algo: str, **options):
    """Train ``algo`` with run and algorithm options given as keywords; returns the run dir."""
    from toolkit.run import train_from_options

    return train_from_options(algo, options)


def resume(run_dir, steps: int | None = None):
    """Continue the run in ``run_dir`` from its latest checkpoint; returns the run dir."""
    from toolkit.run import resume as _resume

    return _resume(run_dir, steps=steps)
