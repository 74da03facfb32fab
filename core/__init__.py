"""toolkit: reinforcement-learning and generative-model training with plugins.

The Python API mirrors the CLI::

    from toolkit import train, load
    run_dir = train("dqn", env="CartPole-v1", steps=50_000)
    agent = load(run_dir)
    action = agent.predict(observation)
"""

from __future__ import annotations

import pluggy

hookimpl = pluggy.HookimplMarker("toolkit")

__version__ = "0.1.0"
__all__ = ["hookimpl", "train", "resume", "load", "__version__"]


def train(algo: str, **options):
    """Train ``algo`` with run and algorithm options given as keywords; returns the run dir."""
    from toolkit.run import train_from_options

    return train_from_options(algo, options)


def resume(run_dir, steps: int | None = None):
    """Continue the run in ``run_dir`` from its latest checkpoint; returns the run dir."""
    from toolkit.run import resume as _resume

    return _resume(run_dir, steps=steps)


def load(path, device: str = "cpu"):
    """The trained agent (``predict``, ``make_env``, ``scores``) or generative model
    (``sample``) of a run directory or checkpoint; see ``toolkit.agent``."""
    from toolkit.agent import load as _load

    return _load(path, device=device)
