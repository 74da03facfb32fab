"""Planning: everything about a run is decided and checked here, before anything is written.

    options (CLI argv, Python keywords or a checkpoint's config)
      -> the algorithm, loaded once
      -> layers merged: dataclass defaults < the env's preset < --config FILE.toml < flags
      -> the env resolved and described (spaces, episode limit, goal interface, ...) or the dataset found
      -> every value checked: run options, registry names (samplers, loggers), the device,
         the algorithm's own check of its config against the env or dataset
      -> one frozen ``Plan``

Unknown option names are refused in one place (``_layers``); a refused plan has written nothing.
``env_context`` / ``data_context`` are the one way a context is built from a plan.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.config import (
    Preset,
    RunConfig,
    build,
    coerce,
    field_types,
    fields_of,
    option_name,
    parse_options,
    read_toml,
    to_dict,
    to_toml,
    validate_names,
    values_from_toml,
)
from toolkit.errors import ToolkitError, plugin_error, unknown_name
from toolkit.interfaces import ChecksSpec, DataContext, DataSpec, EnvContext, EnvSpec, ResolvedEnv
from toolkit.plugins import Entry, Registry, get_registry
from toolkit.ranges import check_ranges

# Run options added after algorithms could have had a field of the same name: an algorithm
# that still defines one keeps working (its field gets the run option's value), with a warning.
SHARED_SINCE_0_2 = {"threads"}


@dataclass(frozen=True)
class Plan:
    """A fully validated run: which algorithm, its configs, and what it trains on."""

    algo: str
    entry: Entry
    algo_class: type
    run: RunConfig
    algo_config: Any
    preset: str | None
    env: ResolvedEnv | None
    spec: EnvSpec | None = None
    """The described env (spaces, limit, capabilities); None for data-loop algorithms."""
    device: str = "cpu"
    """The resolved torch device (``--device auto`` picks cuda when available)."""
    preset_values: dict[str, Any] = field(default_factory=dict)
    """What the preset sets (its overrides for this env or dataset applied), before flags and files."""

    @property
    def sections(self) -> dict[str, dict[str, Any]]:
        """The resolved values, ``{"run": {...}, "algo": {...}}``: what checkpoints store."""
        return {"run": to_dict(self.run), "algo": to_dict(self.algo_config)}

    @property
    def config_dict(self) -> dict[str, Any]:
        """The sections with the algorithm and preset names: what loggers (W&B) receive."""
        return {"algorithm": self.algo, "preset": self.preset, **self.sections}

    def toml(self) -> str:
        """The resolved config as written to ``config.toml``."""
        return to_toml(self.algo, self.run, self.algo_config, self.preset)


# -- entry points ----------------------------------------------------------------------------


def plan(algo: str, flags: dict[str, Any] | None = None, *, config_file: str | Path | None = None,
         config_values: dict[str, Any] | None = None, preset: str | None = None,
         registry: Registry | None = None) -> Plan:
    """Resolve and validate a run. ``flags`` maps field names (run-level or the algorithm's) to
    already-coerced values; ``config_values`` is a config document (a checkpoint's)."""
    registry = registry or get_registry()
    entry, cls = load_algorithm(algo, registry)
    return _plan(entry, cls, registry, flags or {}, config_file, config_values, preset)


def plan_from_argv(algo: str, argv: list[str], registry: Registry | None = None) -> Plan:
    """The CLI's plan: ``--config FILE``, ``--preset NAME`` and field options, parsed once."""
    registry = registry or get_registry()
    entry, cls = load_algorithm(algo, registry)
    special, rest = _split_special(argv, ("--config", "--preset"))
    flags = parse_options(rest, [RunConfig, cls.Config])
    return _plan(entry, cls, registry, flags, special.get("config"), None, special.get("preset"))


def plan_from_options(algo: str, options: dict[str, Any], registry: Registry | None = None) -> Plan:
    """The Python API's plan: ``toolkit.train("dqn", env="CartPole-v1", steps=1000)``."""
    registry = registry or get_registry()
    entry, cls = load_algorithm(algo, registry)
    options = dict(options)
    config_file, preset = options.pop("config", None), options.pop("preset", None)
    types = _option_types(cls)
    flags = {}
    for key, value in options.items():
        if key not in types:
            raise unknown_name("option", key, types)
        flags[key] = coerce(value, types[key], key)
    return _plan(entry, cls, registry, flags, config_file, None, preset)


def load_algorithm(name: str, registry: Registry | None = None) -> tuple[Entry, type]:
    """The registered algorithm class, checked for what the runtime needs of it."""
    registry = registry or get_registry()
    entry = registry.get("algorithm", name)
    cls = entry.load()
    if getattr(cls, "loop", None) not in ("env", "data") or not hasattr(cls, "Config"):
        raise ToolkitError(f"plugin '{entry.plugin}': algorithm '{name}' must define Config and loop = 'env' or 'data'")
    clash = {f.name for f in fields_of(cls.Config)} & {f.name for f in fields_of(RunConfig)}
    if clash - SHARED_SINCE_0_2:
        raise ToolkitError(f"plugin '{entry.plugin}': algorithm '{name}' redefines run options {sorted(clash)}")
    if clash:
        warnings.warn(f"algorithm '{name}' (plugin '{entry.plugin}') defines {sorted(clash)}, now run options; "
                      "drop the field and read it from the run (it still receives the run's value)",
                      DeprecationWarning, stacklevel=2)
    return entry, cls


NO_PRESET = "none"
"""``--preset none``: no preset, not even the one the env would get automatically."""


def select_preset(cls: type, name: str | None, env: ResolvedEnv | None, env_name: str) -> tuple[str | None, Preset | None]:
    """The preset named explicitly, none for ``none`` (the algorithm's own defaults), else the
    first one that lists the env (or its family)."""
    presets: dict[str, Preset] = getattr(cls, "presets", {}) or {}
    if name == NO_PRESET and NO_PRESET not in presets:
        return None, None
    if name:
        if name not in presets:
            raise unknown_name("preset", name, [*presets, NO_PRESET])
        return name, presets[name]
    keys = preset_subjects(env, env_name)
    for preset_name, preset in presets.items():
        if keys & set(preset.envs):
            return preset_name, preset
    return None, None


def preset_settings(p: Plan) -> str:
    """The preset's description and its values as the run uses them: ``rl-zoo3's CartPole-v1
    settings: n_envs=8, n_steps=32, ...``; where a flag or the config file replaced one, both."""

    def shown(value: Any) -> str:
        return format(value, "g") if isinstance(value, float) else str(value)

    parts = []
    for name, value in p.preset_values.items():
        used = getattr(p.run, name) if hasattr(p.run, name) else getattr(p.algo_config, name, value)
        parts.append(f"{name}={shown(used)}" + ("" if used == value else f" (preset: {shown(value)})"))
    description = p.algo_class.presets[p.preset].description if p.preset else ""
    return f"{description}: {', '.join(parts)}" if description else ", ".join(parts)


def preset_mismatch(p: Plan) -> str:
    """A note when the run's preset names envs (or datasets) and this one is not among them:
    ``--preset atari`` on Hopper-v5 is allowed (a custom env may want it) but rarely meant."""
    if not p.preset:
        return ""
    preset = p.algo_class.presets[p.preset]
    made_for = set(preset.envs) | set(preset.overrides)
    subject = p.run.env if p.env else p.run.data
    if not made_for or made_for & preset_subjects(p.env, subject):
        return ""
    return f"preset '{p.preset}' is made for {', '.join(sorted(made_for))}; {subject} is not one of them"


def preset_subjects(env: ResolvedEnv | None, env_name: str) -> set[str]:
    """What presets may name for this run: the env as given, its id and family (or the dataset)."""
    return {env_name} | ({env.id, env.family} if env else set())


# -- contexts --------------------------------------------------------------------------------


def env_context(p: Plan, device: str | None = None) -> EnvContext:
    """What a planned env-loop algorithm is constructed with."""
    return context_for_spec(p.spec, p.run.n_envs, p.run.steps, p.run.seed, device or p.device)


def context_for_spec(spec: EnvSpec, n_envs: int, total_steps: int, seed: int, device: str) -> EnvContext:
    """The ``EnvContext`` of a described env (runs, offline use and ``check_algorithm`` alike)."""
    return EnvContext(spec.observation_space, spec.action_space, n_envs, spec.frame_stack, total_steps, seed, device,
                      spec.id, spec)


def data_context(p: Plan, sample_shape: tuple[int, ...], n_samples: int, device: str | None = None) -> DataContext:
    """What a data-loop algorithm is constructed with."""
    return DataContext(tuple(sample_shape), int(n_samples), p.run.steps, p.run.seed, device or p.device,
                       p.run.data, p.run.data_dir)


def construct(p: Plan, context: EnvContext | DataContext) -> Any:
    """``Algorithm(config, context)``; an exception from the plugin becomes one line naming it."""
    try:
        return p.algo_class(p.algo_config, context)
    except ToolkitError:
        raise
    except Exception as exc:
        raise plugin_error(p.entry.plugin, f"algorithm '{p.algo}' could not be built", exc) from exc


# -- the planner -----------------------------------------------------------------------------


def _plan(entry: Entry, cls: type, registry: Registry, flags: dict[str, Any], config_file: str | Path | None,
          config_values: dict[str, Any] | None, preset: str | None) -> Plan:
    sections = {"run": RunConfig, "algo": cls.Config}
    owner = {f.name: s for s, c in reversed(sections.items()) for f in fields_of(c)}  # run wins a shared name
    file_layer: dict[str, dict[str, Any]] = {"run": {}, "algo": {}}
    if config_file is not None:
        document = read_toml(config_file)
        if document.get("algorithm", entry.name) != entry.name:
            raise ToolkitError(f"{config_file} is a config for '{document['algorithm']}', not '{entry.name}'")
        preset = preset or document.get("preset")
        file_layer = values_from_toml(_upgrade(document, cls), sections, str(config_file))
    if config_values is not None:
        file_layer = values_from_toml(_upgrade(config_values, cls), sections, "checkpoint config")
    flag_layer: dict[str, dict[str, Any]] = {"run": {}, "algo": {}}
    for key, value in flags.items():
        if key not in owner:
            raise unknown_name("option", option_name(key), [option_name(k) for k in owner])
        flag_layer[owner[key]][key] = value

    def chosen(key: str, default: Any) -> Any:
        return flag_layer["run"].get(key, file_layer["run"].get(key, default))

    resolved = None
    if cls.loop == "env":
        from toolkit.vec_env import resolve_env

        subject = chosen("env", RunConfig.env)
        resolved = resolve_env(subject, registry)
    else:
        subject = chosen("data", RunConfig.data)  # a data algorithm's presets name datasets
        registry.get("dataset", subject)
    preset_name, preset_obj = select_preset(cls, preset, resolved, subject)
    preset_values = preset_obj.values_for(preset_subjects(resolved, subject)) if preset_obj else {}
    values: dict[str, dict[str, Any]] = {"run": {}, "algo": {}}
    for key, value in preset_values.items():
        if key not in owner:
            raise ToolkitError(f"preset '{preset_name}' of '{entry.name}' sets unknown option '{key}'")
        values[owner[key]][key] = coerce(value, field_types(sections[owner[key]])[key], f"preset {preset_name}")
    for layer in (file_layer, flag_layer):
        for section in values:
            values[section].update(layer[section])
    run = build(RunConfig, values["run"])
    for shared in SHARED_SINCE_0_2 & {f.name for f in fields_of(cls.Config)}:
        values["algo"][shared] = getattr(run, shared)
    algo_config = build(cls.Config, values["algo"])

    def spelled(name: str) -> str:
        """A field as the user set it: a flag, a key of the config file, or a preset's value."""
        section = owner.get(name, "algo")
        if name in file_layer[section] and name not in flag_layer[section]:
            return f"{name} in {config_file if config_values is None else 'the checkpoint config'}"
        if name in preset_values and name not in flag_layer[section]:
            return f"{name} of preset '{preset_name}'"
        return option_name(name)

    check_ranges(run, spelled)
    check_ranges(algo_config, spelled)
    validate_names(algo_config, registry)
    for name in _logger_names(run):
        registry.get("logger", name)
    device = resolve_device(run.device)
    spec = None
    if resolved is not None:
        from toolkit.vec_env import parse_env_kwargs, with_env_kwargs

        resolved = with_env_kwargs(resolved, parse_env_kwargs(run.env_kwargs))
        spec = _describe(resolved, run)
        _algorithm_check(entry, cls, algo_config, spec)
    else:
        _algorithm_check(entry, cls, algo_config, DataSpec(run.data, run.data_dir))
    return Plan(entry.name, entry, cls, run, algo_config, preset_name, resolved, spec, device, preset_values)


# gymnasium's env families whose missing package toolkit ships as an extra: the error names it
# (gymnasium's own hint for Box2D builds box2d-py with swig; toolkit's extra is a wheel)
EXTRA_FOR_PACKAGE = {"Box2D": "box2d"}


def missing_dependency_message(exc: Exception) -> str:
    """One line for gymnasium's DependencyNotInstalled, naming toolkit's extra where there is one."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for package, extra in EXTRA_FOR_PACKAGE.items():
        if first.lower().startswith(package.lower()):
            return f"missing dependency: {package} is not installed; pip install 'toolkit[{extra}]'"
    return f"missing dependency: {first}"


def _describe(resolved: ResolvedEnv, run: RunConfig) -> EnvSpec:
    from toolkit.vec_env import describe_env

    try:
        return describe_env(resolved, run.max_episode_steps)
    except ToolkitError:
        raise
    except Exception as exc:
        if type(exc).__name__ == "DependencyNotInstalled":  # gymnasium: an env's optional extra is missing
            raise ToolkitError(missing_dependency_message(exc)) from None
        if isinstance(exc, TypeError) and resolved.env_kwargs:  # most likely an argument the env does not take
            from toolkit.vec_env import constructor_arguments

            accepted = constructor_arguments(resolved.id)
            for key in resolved.env_kwargs if accepted is not None else ():
                if key not in accepted:
                    raise unknown_name(f"--env-kwargs key of {resolved.id}", key, accepted) from None
            raise ToolkitError(f"env {resolved.id} could not be made with --env-kwargs {','.join(run.env_kwargs)}: "
                               f"{str(exc).strip().splitlines()[0] if str(exc).strip() else 'TypeError'}") from None
        raise ToolkitError(f"env {resolved.id} could not be made: {type(exc).__name__}: "
                           f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") from exc


def _algorithm_check(entry: Entry, cls: type, config: Any, spec: Any) -> None:
    if not isinstance(cls, ChecksSpec):
        return
    try:
        cls.check(config, spec)
    except ToolkitError:
        raise
    except Exception as exc:
        raise plugin_error(entry.plugin, f"algorithm '{entry.name}' refused the config", exc) from exc


def _upgrade(document: dict[str, Any], cls: type) -> dict[str, Any]:
    """A config written before ``threads`` became a run option: move it to ``[run]``."""
    algo = document.get("algo")
    if isinstance(algo, dict) and "threads" in algo and "threads" not in {f.name for f in fields_of(cls.Config)}:
        algo = dict(algo)
        run = {**document.get("run", {}), "threads": algo.pop("threads")}
        return {**document, "algo": algo, "run": run}
    return document


def _option_types(cls: type) -> dict[str, Any]:
    return {**field_types(cls.Config), **field_types(RunConfig)}


def _logger_names(run: RunConfig) -> list[str]:
    return [name for name in (n.strip() for n in run.loggers.split(",")) if name]


def check_run(run: RunConfig) -> None:
    """The run options' declared ranges (kept for callers of the former name)."""
    check_ranges(run)


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ToolkitError("--device cuda requested but torch sees no CUDA device; use --device cpu")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ToolkitError("--device mps requested but MPS is not available; use --device cpu")
    return device


def _split_special(argv: list[str], names: tuple[str, ...]) -> tuple[dict[str, str], list[str]]:
    """Pull options that are not config fields (--config, --preset) out of the argument list."""
    special: dict[str, str] = {}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        name, has_value, value = argv[i].partition("=")
        if name in names:
            if not has_value:
                if i + 1 >= len(argv):
                    raise ToolkitError(f"option {name} needs a value")
                value = argv[i + 1]
                i += 1
            special[name[2:]] = value
        else:
            rest.append(argv[i])
        i += 1
    return special, rest
