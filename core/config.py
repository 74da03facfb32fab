"""Run-level configuration, and the conversions every config dataclass goes through:
dataclass <-> CLI options <-> TOML <-> plain dict.

A config is a frozen dataclass whose fields carry a docstring each (the string literal right
below the field, as in CleanRL's ``Args``); those docstrings become the CLI help text.
Resolution order, lowest to highest: dataclass defaults, the env's preset, ``--config
FILE.toml``, explicit flags.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import textwrap
import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from toolkit.errors import ToolkitError, unknown_name
from toolkit.ranges import bounded  # noqa: F401  (config modules import it from here)


@dataclass(frozen=True)
class RunConfig:
    """Options shared by every algorithm: what to train on, for how long, where results go."""

    env: str = "CartPole-v1"
    """Environment: a gymnasium id, an Atari game name (Pong -> PongNoFrameskip-v4 with DQN
    preprocessing) or a toolkit toy env (see `toolkit list`)."""
    data: str = "digits"
    """Dataset for generative trainers (see `toolkit list`)."""
    data_dir: str = ""
    """Directory holding dataset files (MNIST, CIFAR-10, image folders)."""
    seed: int = bounded(1, at_least=0, at_most=2**32 - 1)
    """Seed for every random generator: same seed, config and device give the same run."""
    steps: int = bounded(100_000, at_least=1)
    """Total env steps summed over envs (env-loop algorithms) or updates (data-loop)."""
    n_envs: int = bounded(1, at_least=1)
    """Number of environments stepped in parallel."""
    vec_env: Literal["sync", "async"] = "sync"
    """sync steps envs in this process; async runs each in a subprocess."""
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    """Torch device; auto picks cuda when available, else cpu."""
    threads: int = bounded(0, at_least=0)
    """Torch CPU threads (0: torch's default); give parallel runs on one machine 1 each."""
    run_dir: str = ""
    """Exact run directory (default runs/<env>__<algo>__<seed>__<time>)."""
    eval_every: int = bounded(50_000, at_least=0)
    """Evaluate every this many steps (0: only at the end)."""
    eval_episodes: int = bounded(10, at_least=1)
    """Episodes per evaluation (deterministic policy, separate env instances)."""
    checkpoint_every: int = bounded(25_000, at_least=0)
    """Write a checkpoint every this many steps (and always at the end)."""
    keep_checkpoints: int = bounded(3, at_least=0)
    """Keep only the newest K step checkpoints (best.pt is kept apart)."""
    save_replay: bool = False
    """Put replay buffers in checkpoints, so a resumed run continues exactly (large on Atari)."""
    capture_video: bool = False
    """Record the first evaluation episode of each evaluation to videos/ as MP4."""
    log_every: int = bounded(1_000, at_least=0)
    """Write losses and throughput to metrics.jsonl every this many steps."""
    max_episode_steps: int = bounded(0, at_least=0)
    """Cut episodes after this many env steps (0: the env's own limit)."""
    env_kwargs: tuple[str, ...] = ()
    """Arguments for the env's constructor, KEY=VALUE comma-separated, e.g.
    continuous=True,gravity=-9.0 (values are read as Python literals, else kept as strings)."""
    track: bool = False
    """Log to Weights & Biases (online when logged in, else offline under the run dir)."""
    wandb_project: str = "toolkit"
    """W&B project name."""
    wandb_entity: str = ""
    """W&B entity (team or user); empty uses your default."""
    wandb_group: str = ""
    """W&B group, e.g. to gather the seeds of one experiment."""
    wandb_tags: tuple[str, ...] = ()
    """W&B tags, comma-separated."""
    wandb_timeout: float = bounded(15.0, above=0)
    """Seconds to wait for the W&B server at start-up before logging offline instead."""
    loggers: str = ""
    """Extra loggers, comma-separated: tensorboard, csv, or any a plugin registers (`toolkit list`)."""
    progress: bool = True
    """Show a progress bar with live return and loss."""
    on_nonfinite: Literal["stop", "warn"] = "stop"
    """A NaN or inf in a loss, a reward or an observation: stop the run (naming it; the last
    checkpoint is from before it) or warn once and go on."""


@dataclass(frozen=True)
class Preset:
    """Named hyperparameters for an algorithm, applied automatically to the envs it names."""

    values: dict[str, Any]
    """Field values (run-level or algorithm fields) that differ from the defaults."""
    envs: tuple[str, ...] = ()
    """Env ids or env families ("atari"), or for a generative trainer dataset names, this
    preset is applied to automatically."""
    description: str = ""
    overrides: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    """Env ids, families or dataset names -> values that replace some of ``values`` there: one
    preset name for a method whose published settings differ between, say, toy data and images."""

    def values_for(self, subjects: set[str]) -> dict[str, Any]:
        """``values`` with the overrides of the first subject (env id, family or dataset) that has some."""
        for subject, replaced in self.overrides.items():
            if subject in subjects:
                return {**self.values, **replaced}
        return dict(self.values)


# -- dataclass introspection -----------------------------------------------------------------


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass, read from its source, joined to one line."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, following in zip(body, body[1:]):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[node.target.id] = " ".join(following.value.value.split())
    return docs


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def fields_of(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.init]


def option_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def describe_type(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "|".join(str(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_type(a) for a in typing.get_args(annotation) if a is not type(None))
    if origin is tuple:
        return "comma-separated " + describe_type(typing.get_args(annotation)[0]) + "s"
    return getattr(annotation, "__name__", str(annotation))


# -- values ----------------------------------------------------------------------------------


def coerce(value: Any, annotation: Any, where: str) -> Any:
    """``value`` (a CLI string or a TOML value) converted to ``annotation``, or a one-line error."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "")):
            return None
        return coerce(value, options[0], where)
    if origin is Literal:
        choices = typing.get_args(annotation)
        for choice in choices:
            if value == choice or (isinstance(value, str) and value == str(choice)):
                return choice
        suggestion = unknown_name("choice", str(value), [str(c) for c in choices])
        raise ToolkitError(f"invalid value for {where}: {suggestion}")
    if origin is tuple:
        (item_type, *_) = typing.get_args(annotation)
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise ToolkitError(f"invalid value for {where}: expected a list, got {value!r}")
        return tuple(coerce(v.strip() if isinstance(v, str) else v, item_type, where) for v in items if v != "")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
            return False
        raise ToolkitError(f"invalid value for {where}: {value!r} is not a boolean (true/false)")
    if annotation is int:
        number = value
        if isinstance(value, str):
            # Accept 1e6 and 1_000_000 for step counts, but not 2.5.
            try:
                number = float(value.replace("_", "")) if not value.strip().lstrip("-").isdigit() else int(value)
            except ValueError:
                number = None
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not float(number).is_integer():
            raise ToolkitError(f"invalid value for {where}: {value!r} is not an integer")
        return int(number)
    if annotation is float:
        if isinstance(value, bool):
            raise ToolkitError(f"invalid value for {where}: {value!r} is not a number")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ToolkitError(f"invalid value for {where}: {value!r} is not a number") from None
    if annotation is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ToolkitError(f"invalid value for {where}: expected a string, got {value!r}")
        return str(value)
    raise ToolkitError(f"invalid value for {where}: unsupported field type {annotation!r}")


def build(cls: type, values: dict[str, Any], where: str = "") -> Any:
    """An instance of ``cls`` from already-coerced values (unknown keys are an error)."""
    names = {f.name for f in fields_of(cls)}
    for key in values:
        if key not in names:
            raise unknown_name(f"option{where}", key, names)
    return cls(**values)


def to_dict(config: Any) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in fields_of(config.__class__)}


def validate_names(config: Any, registry: Any) -> None:
    """Fields declared with ``metadata={"registry": KIND}`` must name a registered KIND.
    Sampler fields may carry options (``prioritized:alpha=0.5``); a sampler is cheap to
    build, so one is built with capacity 1 to check them."""
    for f in fields_of(config.__class__):
        kind = f.metadata.get("registry")
        if kind == "sampler":
            from toolkit.replay import make_sampler

            make_sampler(getattr(config, f.name), 1, registry)
        elif kind:
            registry.get(kind, getattr(config, f.name))


# -- CLI options and TOML --------------------------------------------------------------------


def parse_options(argv: list[str], classes: list[type]) -> dict[str, Any]:
    """``--name value``, ``--name=value``, ``--flag`` and ``--no-flag`` into coerced field values."""
    types_by_name: dict[str, Any] = {}
    for cls in classes:
        types_by_name.update({f.name: field_types(cls)[f.name] for f in fields_of(cls)})
    values: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        token = argv[i]
        if not token.startswith("--") or token == "--":
            raise ToolkitError(f"unexpected argument '{token}'; options look like --name value")
        name, has_value, value = token[2:].partition("=")
        key = name.replace("-", "_")
        if key not in types_by_name and key.startswith("no_") and types_by_name.get(key[3:]) is bool and not has_value:
            values[key[3:]] = False
            i += 1
            continue
        if key not in types_by_name:
            raise unknown_name("option", "--" + name, [option_name(n) for n in types_by_name])
        annotation = types_by_name[key]
        if annotation is bool and not has_value:
            next_is_bool = i + 1 < len(argv) and argv[i + 1].lower() in ("true", "false")
            value = argv[i + 1] if next_is_bool else "true"
            i += 2 if next_is_bool else 1
        elif not has_value:
            if i + 1 >= len(argv):
                raise ToolkitError(f"option --{name} needs a value")
            value = argv[i + 1]
            i += 2
        else:
            i += 1
        values[key] = coerce(value, annotation, "--" + name)
    return values


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ToolkitError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ToolkitError(f"{path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ToolkitError(f"{path} is not UTF-8 text (byte {exc.start}); TOML files are UTF-8") from None
    except IsADirectoryError:
        raise ToolkitError(f"config file {path} is a directory") from None
    except OSError as exc:
        raise ToolkitError(f"cannot read config file {path}: {exc.strerror or exc}") from None


def values_from_toml(data: dict[str, Any], classes: dict[str, type], path: str) -> dict[str, dict[str, Any]]:
    """Split a config file into coerced values per section ("run", "algo").

    Accepts the layout toolkit writes (``[run]`` and ``[algo]`` tables) and flat keys.
    """
    out: dict[str, dict[str, Any]] = {section: {} for section in classes}
    owner = {f.name: section for section, cls in classes.items() for f in fields_of(cls)}

    def put(section: str | None, key: str, value: Any) -> None:
        section = section or owner.get(key)
        if section is None:
            raise unknown_name(f"config key in {path}", key, owner)
        cls = classes[section]
        names = [f.name for f in fields_of(cls)]
        if key not in names:
            raise unknown_name(f"config key in {path}", f"{section}.{key}", [f"{section}.{n}" for n in names])
        out[section][key] = coerce(value, field_types(cls)[key], f"{key} in {path}")

    for key, value in data.items():
        if key in ("algorithm", "preset"):
            continue
        if isinstance(value, dict) and key in classes:
            for sub_key, sub_value in value.items():
                put(key, sub_key, sub_value)
        elif isinstance(value, dict):
            raise unknown_name(f"config section in {path}", key, list(classes))
        else:
            put(None, key, value)
    return out


def to_toml(algorithm: str, run: RunConfig, algo_config: Any, preset: str | None = None) -> str:
    """The resolved config as TOML: ``algorithm``, ``preset``, then ``[run]`` and ``[algo]``
    tables (None values are left out: TOML has no null)."""
    import tomli_w

    def plain(config: Any) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in to_dict(config).items() if v is not None}

    document: dict[str, Any] = {"algorithm": algorithm}
    if preset:
        document["preset"] = preset
    document["run"] = plain(run)
    document["algo"] = plain(algo_config)
    return tomli_w.dumps(document).rstrip("\n") + "\n"
