"""Every extension point of toolkit. Read this file to know what a plugin can do.

A plugin is an ordinary pip package with one entry point in the group ``toolkit``::

    [project.entry-points.toolkit]
    myalgo = "toolkit_myalgo"

The module it names implements any of the hooks below with ``@toolkit.hookimpl``. Every
hook is *registration only*: toolkit passes a ``register`` callback and the plugin calls it
once per thing it provides. Core owns ``register``, so it validates names, detects duplicates
(an error naming both plugins) and records which plugin provided what. A hook implementation
may accept fewer arguments than the spec names (pluggy allows it), so new arguments can be
added here without breaking plugins.

Core (``toolkit``) and the bundled environments (``toolkit.envs``) register their own
defaults through these same hooks.

Keep the hook module import-light: ``toolkit list`` imports every plugin, and must answer in
well under a second, so register heavy objects (anything that imports torch) by a
``"module:attribute"`` string that toolkit imports only when the thing is used.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("toolkit")


@hookspec
def register_algorithms(register):
    """Register training algorithms.

    ``register(name, target, description)``: ``target`` is the algorithm class or a
    ``"module:Class"`` string. The class satisfies ``toolkit.interfaces.EnvAlgorithm`` or
    ``DataAlgorithm`` and has the attributes ``Config`` (a frozen dataclass, one docstring per
    field), ``loop`` (``"env"`` or ``"data"``) and optionally ``presets``. ``name`` is what users
    type: ``toolkit train NAME``.
    """


@hookspec
def register_samplers(register):
    """Register replay samplers (which stored transitions to draw, with importance weights).

    ``register(name, target, description)``: ``target`` is a callable or ``"module:attr"``
    string; ``target(capacity)`` returns an object satisfying ``toolkit.interfaces.Sampler``.
    Algorithms that use the core replay select one by name (``--replay NAME``).
    """


@hookspec
def register_envs(register):
    """Register environment families.

    ``register(name, resolve, description)``: ``resolve(env_name)`` returns a
    ``toolkit.interfaces.ResolvedEnv`` when the family owns that name (for example the Atari
    family owns "Pong" and "PongNoFrameskip-v4"), else ``None``; it may be a ``"module:attr"``
    string. Names that no family owns fall through to gymnasium's registry unchanged
    (``module:EnvId`` imports ``module`` first). ``ResolvedEnv.capabilities`` tells the
    planner what the family knows beyond gymnasium's API (a goal interface, a known reward),
    which algorithms receive in ``EnvContext.spec``.
    ``register`` also accepts ``names=[...]``, the names listed by ``toolkit list`` and used
    for "did you mean" suggestions.
    """


@hookspec
def register_datasets(register):
    """Register datasets for data-loop (generative) algorithms.

    ``register(name, target, description)``: ``target(split, seed, data_dir)`` (split is
    ``"train"`` or ``"test"``) returns a ``numpy.ndarray`` of samples (images as float32 in
    [0, 1], shape (N, C, H, W); points as (N, D)), or a tuple ``(samples, labels)`` when the
    samples have classes (metrics such as a classifier's Frechet distance use them); it may
    be a ``"module:attr"`` string. Users select it with ``--data NAME``; core registers
    ``digits``, ``mnist``, ``fashion-mnist``, ``cifar10``, ``folder``, ``ring8``, ``grid25``
    (``toolkit.datasets``).
    """


@hookspec
def register_loggers(register):
    """Register metric sinks.

    ``register(name, target, description)``: ``target(run_dir, config: dict)`` returns an
    object satisfying ``toolkit.interfaces.Logger``. Core registers ``jsonl`` (always on) and
    ``wandb`` (``--track``); others are enabled with ``--loggers a,b`` (names checked before a
    run starts). The progress bar is the runtime's own, not a logger.
    """


@hookspec
def register_commands(cli):
    """Add sub-commands to the ``toolkit`` CLI; ``cli`` is the root ``typer.Typer`` app."""
