"""Registering toolkit's envs in gymnasium's own registry, so other libraries (SB3, CleanRL)
can ``gym.make("toolkit/KeyDoor-v0")`` once the package providing them is imported.

An env package calls ``register_with_gymnasium(specs)`` at import. ``toolkit list`` imports
every plugin and must not import gymnasium (~0.2 s), so when gymnasium is not imported yet
the registration waits for it: a one-shot import hook runs it right after ``import gymnasium``.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from collections.abc import Iterable
from typing import Any

# (id, entry point "module:Class", kwargs, max_episode_steps)
GymSpec = tuple[str, str, dict[str, Any], "int | None"]

_pending: list[GymSpec] = []


def register_with_gymnasium(specs: Iterable[GymSpec]) -> None:
    """Register ``specs`` with gymnasium now if it is imported, else as soon as it is."""
    _pending.extend(specs)
    gymnasium = sys.modules.get("gymnasium")
    if gymnasium is not None and hasattr(gymnasium, "register"):
        _flush(gymnasium)
    elif not any(isinstance(finder, _AfterGymnasiumImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterGymnasiumImport())


def _flush(gymnasium: Any) -> None:
    while _pending:
        env_id, entry_point, kwargs, max_episode_steps = _pending.pop(0)
        if env_id not in gymnasium.registry:
            gymnasium.register(env_id, entry_point=entry_point, kwargs=kwargs, max_episode_steps=max_episode_steps)


class _AfterGymnasiumImport(importlib.abc.MetaPathFinder):
    """Finds gymnasium with the normal machinery, and runs the pending registrations after
    its module has executed."""

    def find_spec(self, name, path, target=None):
        if name != "gymnasium":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisterAfter(spec.loader)
        return spec


class _RegisterAfter(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        self.loader.exec_module(module)
        _flush(module)
