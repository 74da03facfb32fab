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
import types
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import metadata
from typing import Any

import pluggy

from toolkit import hookspecs
from toolkit.errors import ToolkitError, closest, describe_exception, unknown_name

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
                f"plugin '{self.plugin}' cannot load {self.kind} '{self.name}' from {target}: {describe_exception(exc)}"
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
    clashes: list[str] = field(default_factory=list)
    """Names this plugin registers that another plugin registers too (usable qualified: plugin:name)."""
    warnings: list[str] = field(default_factory=list)
    """Problems that do not stop the plugin loading, e.g. a hook function without @hookimpl."""


class Registry:
    """Everything the loaded plugins registered, by kind and name."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Entry]] = {k: {} for k in REGISTRATION_HOOKS.values()}
        self.conflicts: dict[tuple[str, str], list[str]] = {}
        """(kind, name) -> the plugins that all registered it; the name alone is then ambiguous."""
        self.claims: dict[tuple[str, str], dict[str, Entry]] = {}
        """(kind, name) -> each plugin's own entry, for qualified names (``plugin:name``)."""
        self.plugins: list[PluginInfo] = []
        self.pm = pluggy.PluginManager("toolkit")
        self.pm.add_hookspecs(hookspecs)

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def get(self, kind: str, name: str) -> Entry:
        """The entry called ``name`` (or ``plugin:name``, qualified by the plugin that registered
        it); a one-line error naming the closest names, or how to choose between plugins."""
        plugin, colon, bare = name.partition(":")
        if colon and (kind, bare) in self.claims and plugin in self.claims[(kind, bare)]:
            entry = self.claims[(kind, bare)][plugin]
            if (kind, bare) not in self.conflicts:
                return entry
            return replace(entry, name=name)  # the qualified name is what configs must record
        if (kind, name) in self.conflicts:
            owners = self.conflicts[(kind, name)]
            qualified = " or ".join(f"'{owner}:{name}'" for owner in owners)
            raise ToolkitError(
                f"{kind} '{name}' is registered by several plugins ({', '.join(owners)}); choose one with a "
                f"qualified name, {qualified}, or load only one of them with {PLUGINS_ENV}=<plugins>"
            )
        try:
            return self.entries[kind][name]
        except KeyError:
            raise unknown_name(kind, name, [*self.entries[kind], *(n for k, n in self.conflicts if k == kind)]) from None

    def ambiguous(self, kind: str) -> list[str]:
        """Names of this kind that several plugins registered."""
        return sorted(n for k, n in self.conflicts if k == kind)

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
        unknown = _unknown_hooks(module)
        if unknown:  # a @hookimpl whose name matches no hook, e.g. a typo
            info.error = "; ".join(f"unknown hook '{hook}'" + "".join(f"; did you mean: {c}?" for c in closest(hook, _HOOK_NAMES, n=1))
                                   for hook in unknown)
            _trace(f"{name}: {info.error}")
            self.pm.unregister(module)
            return
        info.warnings = _unmarked_hooks(module)
        for warning in info.warnings:
            _trace(f"{name}: warning: {warning}")
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
            _trace(f"{name}: failed in a registration hook: {info.error}")
            for kind, entry_name in added:  # roll back so a half-registered plugin leaves no trace
                self._unregister(kind, entry_name, name)
            info.provides = []
            self.pm.unregister(module)

    def _register_callback(self, kind: str, plugin: str, info: PluginInfo, added: list) -> Callable:
        def register(name: str, target: Any = None, description: str = "", **extra: Any) -> None:
            if not isinstance(name, str) or not name:
                raise TypeError(f"{kind} names must be non-empty strings, got {name!r}")
            if kind == "env" and target is None:
                target = extra.pop("resolve")
            description = (description or "").strip().splitlines()[0] if description else ""
            entry = Entry(kind, name, target, description, plugin, extra)
            claims = self.claims.setdefault((kind, name), {})
            claims[plugin] = entry
            added.append((kind, name))
            info.provides.append(f"{kind}:{name}")
            existing = self.entries[kind].pop(name, None)
            if existing is None and (kind, name) not in self.conflicts:
                self.entries[kind][name] = entry
                _trace(f"{plugin}: registered {kind} {name}")
                return
            # A clash: the bare name becomes ambiguous; every plugin keeps its own, qualified.
            owners = self.conflicts.setdefault((kind, name), [existing.plugin] if existing else [])
            owners.append(plugin)
            for owner in owners:
                owner_info = self.plugin(owner)
                others = ", ".join(f"'{o}'" for o in owners if o != owner)
                note = f"{kind} '{name}' is also registered by {others}: use '{owner}:{name}'"
                if owner_info is not None:
                    owner_info.clashes = [c for c in owner_info.clashes if not c.startswith(f"{kind} '{name}' ")] + [note]
            _trace(f"{plugin}: {kind} {name} clashes with {', '.join(owners[:-1])}")

        return register

    def _unregister(self, kind: str, name: str, plugin: str) -> None:
        claims = self.claims.get((kind, name), {})
        claims.pop(plugin, None)
        owners = [o for o in self.conflicts.pop((kind, name), []) if o != plugin]
        self.entries[kind].pop(name, None)
        if len(owners) > 1:
            self.conflicts[(kind, name)] = owners
        elif claims:
            self.entries[kind][name] = next(iter(claims.values()))

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


_HOOK_NAMES = [name for name in dir(hookspecs) if name.startswith("register_")]
_IMPL_MARK = "toolkit_impl"  # the attribute pluggy's HookimplMarker("toolkit") sets


def _hook_functions(module: Any) -> dict[str, Any]:
    """Functions named register* that the plugin itself defines (not ones it imported)."""
    owner = module.__name__ if isinstance(module, types.ModuleType) else type(module).__module__
    found = {name: getattr(module, name, None) for name in dir(module) if name.startswith("register")}
    return {name: fn for name, fn in found.items() if getattr(fn, "__module__", owner) == owner}


def _unknown_hooks(module: Any) -> list[str]:
    """Names of functions marked @hookimpl that match no hook."""
    return [name for name, fn in _hook_functions(module).items()
            if hasattr(fn, _IMPL_MARK) and name not in _HOOK_NAMES]


def _unmarked_hooks(module: Any) -> list[str]:
    """Functions named like a hook (or close to one) but not marked @hookimpl: pluggy ignores them."""
    found = []
    for name, fn in _hook_functions(module).items():
        if not callable(fn) or hasattr(fn, _IMPL_MARK) or isinstance(fn, type):
            continue
        close = [name] if name in _HOOK_NAMES else closest(name, _HOOK_NAMES, n=1, cutoff=0.85)
        if close:
            found.append(f"{name}() is not marked @hookimpl and is ignored (decorate it with "
                         f"@toolkit.hookimpl{'' if close == [name] else f'; did you mean {close[0]}?'})")
    return found


def _describe(exc: BaseException) -> str:
    return describe_exception(exc)


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
        except (Exception, SystemExit) as exc:  # SyntaxError, errors and sys.exit() at import time
            info = PluginInfo(ep.name, version, False, error=_describe(exc))
            registry.plugins.append(info)
            _trace(f"{ep.name}: failed to load: {info.error}")
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
