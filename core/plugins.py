"""Plugin manager: finds plugins through entry points, loads them one at a time, and keeps a
registry of what each one provided.

A plugin that fails to import, fails validation or raises inside a hook is recorded with its
error (``toolkit plugins`` shows it) and its partial registrations are rolled back; every
other plugin and command keeps working.

Environment variables:
  TOOLKIT_PLUGINS         comma-separated entry-point names to load; set but empty loads none
                          but the built-ins; unset loads every installed plugin.
  TOOLKIT_TRACE_PLUGINS   when "1", print every hook call and registration to stderr.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from toolkit import hookspecs
from toolkit.errors import ToolkitError, unknown_name

ENTRY_POINT_GROUP = "toolkit"
PLUGINS_ENV = "TOOLKIT_PLUGINS"
TRACE_ENV = "TOOLKIT_TRACE_PLUGINS"
# Core eats its own dog food: its defaults arrive through the same hooks as any plugin's.
BUILTIN_PLUGINS = {"toolkit": "toolkit.builtin", "toolkit.envs": "toolkit.envs"}
# hook name -> the kind of thing it registers
REGISTRATION_HOOKS = {
    "register_algorithms": "algorithm",
    "register_samplers": "sampler",
    "register_envs": "env",
    "register_datasets": "dataset",
    "register_loggers": "logger",
}


@dataclass
class Entry:
    """One registered thing: an algorithm, sampler, env family, dataset or logger."""

    kind: str
    name: str
    target: Any
    """The object itself, or a "module:attr" string imported on first use."""
    description: str
    plugin: str
    extra: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Any:
        """The registered object, importing it first when it was registered by string."""
        self.target = self._import(self.target)
        return self.target

    def extra_value(self, key: str, default: Any = None) -> Any:
        """An extra registration argument, imported first when it is a "module:attr" string."""
        if key not in self.extra:
            return default
        self.extra[key] = self._import(self.extra[key])
        return self.extra[key]

    def _import(self, target: Any) -> Any:
        if not isinstance(target, str):
            return target
        module_name, _, attr = target.partition(":")
        try:
            obj = importlib.import_module(module_name)
            for part in attr.split(".") if attr else []:
                obj = getattr(obj, part)
        except Exception as exc:  # a broken plugin must not crash with a traceback
            raise ToolkitError(
                f"plugin '{self.plugin}' cannot load {self.kind} '{self.name}' "
                f"from {target}: {type(exc).__name__}: {exc}"
            ) from exc
        return obj


@dataclass
class PluginInfo:
    """What `toolkit plugins` reports about one plugin."""

    name: str
    version: str | None
    builtin: bool
    hooks: list[str] = field(default_factory=list)
    provides: list[str] = field(default_factory=list)
    error: str | None = None


class Registry:
    """Everything the loaded plugins registered, by kind and name."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Entry]] = {k: {} for k in REGISTRATION_HOOKS.values()}
        self.conflicts: dict[tuple[str, str], list[str]] = {}
        self.plugins: list[PluginInfo] = []
        self.pm = pluggy.PluginManager("toolkit")
        self.pm.add_hookspecs(hookspecs)

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def get(self, kind: str, name: str) -> Entry:
        """The entry called ``name``; a one-line error naming the closest names otherwise."""
        if (kind, name) in self.conflicts:
            a, b = self.conflicts[(kind, name)][:2]
            raise ToolkitError(
                f"{kind} '{name}' is registered by two plugins, '{a}' and '{b}'; uninstall one "
                f"or choose with {PLUGINS_ENV}"
            )
        try:
            return self.entries[kind][name]
        except KeyError:
            raise unknown_name(kind, name, self.entries[kind]) from None

    def load(self, kind: str, name: str) -> Any:
        return self.get(kind, name).load()

    def plugin(self, name: str) -> PluginInfo | None:
        return next((p for p in self.plugins if p.name == name), None)

    # -- loading ---------------------------------------------------------------------------

    def add_plugin(self, name: str, module: Any, version: str | None, builtin: bool) -> None:
        """Register one plugin module and run its registration hooks, isolating failures."""
        info = PluginInfo(name=name, version=version, builtin=builtin)
        self.plugins.append(info)
        try:
            self.pm.register(module, name=name)
        except Exception as exc:
            info.error = _describe(exc)
            return
        try:
            self.pm.check_pending()  # a hookimpl whose name matches no hook, e.g. a typo
        except pluggy.PluginValidationError as exc:
            info.error = f"PluginValidationError: {exc}"
            self.pm.unregister(module)
            return
        info.hooks = sorted(h.name for h in self.pm.get_hookcallers(module) or [])
        added: list[tuple[str, str]] = []
        try:
            for hook_name, kind in REGISTRATION_HOOKS.items():
                impl = _impl_of(self.pm, hook_name, module)
                if impl is None:
                    continue
                _trace(f"{name}: calling {hook_name}")
                impl.function(**_args(impl, register=self._register_callback(kind, name, info, added)))
        except Exception as exc:
            info.error = _describe(exc)
            for kind, entry_name in added:  # roll back so a half-registered plugin leaves no trace
                self.entries[kind].pop(entry_name, None)
            info.provides = []
            self.pm.unregister(module)

    def _register_callback(self, kind: str, plugin: str, info: PluginInfo, added: list) -> Callable:
        def register(name: str, target: Any = None, description: str = "", **extra: Any) -> None:
            if not isinstance(name, str) or not name:
                raise TypeError(f"{kind} names must be non-empty strings, got {name!r}")
            if kind == "env" and target is None:
                target = extra.pop("resolve")
            existing = self.entries[kind].get(name)
            if existing is not None:
                self.conflicts[(kind, name)] = [existing.plugin, plugin]
                message = f"{kind} '{name}' is also registered by plugin '{existing.plugin}'"
                info.error = f"{info.error}; {message}" if info.error else message
                _trace(f"{plugin}: duplicate {kind} {name}")
                return
            description = (description or "").strip().splitlines()[0] if description else ""
            self.entries[kind][name] = Entry(kind, name, target, description, plugin, extra)
            added.append((kind, name))
            info.provides.append(f"{kind}:{name}")
            _trace(f"{plugin}: registered {kind} {name}")

        return register

    def call_commands(self, cli: Any) -> None:
        """Let every plugin add CLI sub-commands; a plugin that raises is recorded, not fatal."""
        for info in self.plugins:
            module = self.pm.get_plugin(info.name)
            impl = module and _impl_of(self.pm, "register_commands", module)
            if impl is None:
                continue
            try:
                impl.function(**_args(impl, cli=cli))
            except Exception as exc:
                info.error = _describe(exc)


def _impl_of(pm: pluggy.PluginManager, hook_name: str, module: Any):
    caller = getattr(pm.hook, hook_name)
    return next((i for i in caller.get_hookimpls() if i.plugin is module), None)


def _args(impl: Any, **available: Any) -> dict[str, Any]:
    # pluggy lets an implementation take a subset of the spec's arguments.
    return {name: available[name] for name in impl.argnames if name in available}


def _describe(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({os.path.basename(frame[0].filename)}:{frame[0].lineno})" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}".replace("\n", " ")


def _trace(message: str) -> None:
    if os.environ.get(TRACE_ENV) == "1":
        print(f"[toolkit plugins] {message}", file=sys.stderr)


def pinned_plugins() -> set[str] | None:
    """The entry-point names TOOLKIT_PLUGINS allows, or None when every plugin may load."""
    value = os.environ.get(PLUGINS_ENV)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def load_registry() -> Registry:
    """Load the built-ins, then every installed plugin (one at a time) into a new registry."""
    registry = Registry()
    for name, module_name in BUILTIN_PLUGINS.items():
        registry.add_plugin(name, importlib.import_module(module_name), _version("toolkit"), True)
    pinned = pinned_plugins()
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if pinned is not None and ep.name not in pinned:
            continue
        version = ep.dist.version if ep.dist is not None else None
        _trace(f"loading entry point {ep.name} = {ep.value}")
        try:
            module = ep.load()
        except Exception as exc:  # includes SyntaxError and errors raised at import time
            registry.plugins.append(PluginInfo(ep.name, version, False, error=_describe(exc)))
            continue
        registry.add_plugin(ep.name, module, version, False)
    return registry


_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _registry
    if _registry is None:
        _registry = load_registry()
    return _registry


def reset_registry() -> None:
    """Forget the loaded registry (tests that install or uninstall plugins call this)."""
    global _registry
    _registry = None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None
