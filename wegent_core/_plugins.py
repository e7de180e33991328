"""The plugin manager facade: entry points in, one read-only registry per extension point out.

    plugins = Plugins.load()
    store = plugins.open_store("memory://")
    runtime_factory = plugins.runtimes["ClaudeCode"].factory

Plugins (built-ins included) are found through the `wegent` entry-point group; host applications and tests add
plugin objects with `Plugins.register`. A plugin that fails (its import, a hook, an unknown hook name) is skipped,
recorded with its error and announced with a `PluginWarning`; it never breaks the others. When a lookup misses, the
`PluginError` names what is registered and which plugins failed, since a missing `redis` store is usually a failed
`wegent-redis`.
Two plugins that register the same name under one hook are an error: which one wins would depend on install order.
"""

from __future__ import annotations

import difflib
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from . import _hookspecs
from ._errors import PluginError
from ._hookspecs import PROJECT

GROUP = "wegent"
DISABLE_ENV = "WEGENT_DISABLE_PLUGINS"


class PluginWarning(UserWarning):
    """A plugin failed to load and was skipped."""


@dataclass(frozen=True, slots=True)
class Registration:
    """One thing a plugin registered: `factory` is what the extension point's hook spec asks for."""

    name: str
    factory: Any
    plugin: str  # the name of the plugin that registered it
    description: str = ""


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """A plugin as `wegent plugins` shows it. `error` is set when it failed and was skipped."""

    name: str
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...]
    error: str | None = None
    registered: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # extension point -> names

    @property
    def origin(self) -> str:
        """`'name' from dist 1.0`, for messages."""
        source = f" from {self.distribution} {self.version or ''}".rstrip() if self.distribution else ""
        return f"{self.name!r}{source}"


@dataclass(frozen=True, slots=True)
class _Point:
    hook: str
    attr: str
    noun: str


POINTS = (
    _Point("register_runtimes", "runtimes", "runtime"),
    _Point("register_sandboxes", "sandboxes", "sandbox"),
    _Point("register_model_providers", "model_providers", "model provider"),
    _Point("register_stores", "stores", "store"),
    _Point("register_store_schemas", "store_schemas", "store schema"),
    _Point("register_knowledge_backends", "knowledge_backends", "knowledge backend"),
    _Point("register_tools", "tools", "tool"),
    _Point("register_toolkits", "toolkits", "toolkit"),
)
_HOOKS = [p.hook for p in POINTS]


class Registry(Mapping[str, Registration]):
    """What is registered for one extension point, by name. Read-only; a miss raises `PluginError` that explains it."""

    def __init__(self, noun: str, diagnose: Callable[[], str]) -> None:
        self.noun = noun
        self._entries: dict[str, Registration] = {}
        self._diagnose = diagnose

    def __getitem__(self, name: str) -> Registration:
        try:
            return self._entries[name]
        except KeyError:
            raise PluginError(self._missing(name)) from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str, default: Any = None) -> Any:  # Mapping.get would turn our PluginError into a crash
        return self._entries.get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<Registry of {self.noun}s: {', '.join(self._entries) or 'none'}>"

    def _missing(self, name: str) -> str:
        known = sorted(self._entries)
        message = f"no {self.noun} registered for {name!r} (registered: {', '.join(known) or 'none'})"
        close = [k for k in known if k.lower() == str(name).lower()] or difflib.get_close_matches(str(name), known, 1)
        if close:
            message += f"; did you mean {close[0]!r}?"
        return message + self._diagnose()


class Plugins:
    """The loaded plugins and their registries. Build one with `Plugins.load()`."""

    runtimes: Registry
    sandboxes: Registry
    model_providers: Registry
    stores: Registry
    store_schemas: Registry
    knowledge_backends: Registry
    tools: Registry
    toolkits: Registry

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(_hookspecs)
        self.blocked: list[str] = []  # entry points that were found but not loaded
        self._origin: dict[str, tuple[str | None, str | None]] = {}  # plugin name -> (distribution, version)
        self._failed: dict[str, PluginInfo] = {}
        self._provided: dict[str, dict[str, tuple[str, ...]]] = {}
        for point in POINTS:
            setattr(self, point.attr, Registry(point.noun, self._diagnosis))

    @classmethod
    def load(cls, *, entry_points: bool = True, blocked: Iterable[str] = ()) -> Plugins:
        """Load the `wegent` entry points (less the blocked names and those in $WEGENT_DISABLE_PLUGINS) and fill the
        registries, calling every register hook once."""
        plugins = cls()
        if entry_points:
            plugins._load_entry_points({*blocked, *_env_blocked()})
        plugins._check_pending()
        plugins._fill()
        return plugins

    # --- public API -----------------------------------------------------------------------------------------------

    def register(self, plugin: object, name: str | None = None) -> str:
        """Add a plugin object (a module, a class or an instance with `@hookimpl` functions) and re-fill the
        registries. Unlike an entry point, a plugin given here that fails raises `PluginError` and is not kept.
        The name defaults to the module's or class's name (`MyPlugin`, then `MyPlugin-2`, ...)."""
        try:
            registered = self.pm.register(plugin, name or self._free_name(plugin))
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise PluginError(f"cannot register plugin {name or plugin!r}: {_describe(exc)}") from exc
        if registered is None:  # pluggy ignores None
            raise PluginError(f"cannot register {plugin!r} as a plugin")
        unknown = _unknown_hooks(self.pm, plugin)
        if unknown:
            self.pm.unregister(plugin)
            raise PluginError(f"plugin {registered!r}: {unknown}")
        try:
            self._fill(strict=registered)
        except BaseException:
            self.pm.unregister(plugin)
            self._fill()
            raise
        return registered

    def info(self) -> list[PluginInfo]:
        """Every plugin, loaded or failed, by name."""
        loaded = [self._info(name, plugin) for name, plugin in self.pm.list_name_plugin() if plugin is not None]
        return sorted([*loaded, *self._failed.values()], key=lambda info: info.name)

    @property
    def failures(self) -> list[PluginInfo]:
        return [self._failed[name] for name in sorted(self._failed)]

    def open_store(self, url: str) -> Any:
        """Open a store by URL, choosing the store factory by scheme (`memory://`, `sqlite:///x.db`,
        `postgresql+psycopg://...` tries `postgresql+psycopg`, then `postgresql`)."""
        return _by_scheme(self.stores, url).factory(url)

    def store_schema(self, url: str) -> Any:
        """The `StoreSchema` of the store at `url`, chosen by scheme as `open_store` chooses the store. A store
        registered with no schema manager keeps no versioned schema: `PluginError` says so."""
        scheme = _by_scheme(self.stores, url).name  # an unknown store fails here, with the store's explanation
        if scheme not in self.store_schemas:
            raise PluginError(f"the {scheme!r} store has no schema to manage: it needs no `wegent db upgrade`")
        return self.store_schemas[scheme].factory(url)

    # --- loading --------------------------------------------------------------------------------------------------

    def _load_entry_points(self, blocked: set[str]) -> None:
        for ep in metadata.entry_points(group=GROUP):
            if ep.name in blocked:
                self.blocked.append(ep.name)
                continue
            dist = getattr(ep, "dist", None)
            self._origin[ep.name] = (dist.name, dist.version) if dist is not None else (None, None)
            try:
                self.pm.register(ep.load(), name=ep.name)
            except Exception as exc:  # a broken plugin must not break the others
                self._fail(ep.name, _describe(exc))

    def _check_pending(self) -> None:
        # check_pending raises for the first unknown hook only; drop that plugin and go on until all are clean.
        while True:
            try:
                self.pm.check_pending()
                return
            except pluggy.PluginValidationError as exc:
                name = self.pm.get_name(exc.plugin) or repr(exc.plugin)
                hooks = _hook_names(self.pm, exc.plugin)
                message = _unknown_hooks(self.pm, exc.plugin) or _describe(exc)
                self.pm.unregister(exc.plugin)
                self._fail(name, f"PluginValidationError: {message}", hooks)

    def _fill(self, strict: str | None = None) -> None:
        """Call every register hook of every plugin and replace the registries. A plugin that raises is dropped
        (recorded and warned about), except `strict`, whose error propagates."""
        tables: dict[str, dict[str, Registration]] = {p.attr: {} for p in POINTS}
        provided: dict[str, dict[str, tuple[str, ...]]] = {}
        for name, plugin in list(self.pm.list_name_plugin()):
            if plugin is None:
                continue
            try:
                found = self._collect(name, plugin)
            except Exception as exc:
                if name == strict:
                    raise PluginError(f"plugin {name!r} failed: {_describe(exc)}") from exc
                hooks = _hook_names(self.pm, plugin)
                self.pm.unregister(plugin)
                self._fail(name, _describe(exc), hooks)
                continue
            for point in POINTS:
                self._merge(tables[point.attr], found[point.attr], point.noun)
            provided[name] = {attr: tuple(entries) for attr, entries in found.items() if entries}
        for point in POINTS:
            getattr(self, point.attr)._entries = tables[point.attr]
        self._provided = provided

    def _collect(self, name: str, plugin: object) -> dict[str, dict[str, Registration]]:
        found: dict[str, dict[str, Registration]] = {p.attr: {} for p in POINTS}
        others = [p for p in self.pm.get_plugins() if p is not plugin]
        implemented = set(_hook_names(self.pm, plugin))
        for point in POINTS:
            if point.hook in implemented:
                hook = self.pm.subset_hook_caller(point.hook, remove_plugins=others)
                hook(register=_registrar(found[point.attr], point.noun, name))
        return found

    def _merge(self, table: dict[str, Registration], entries: dict[str, Registration], noun: str) -> None:
        for key, entry in entries.items():
            first = table.setdefault(key, entry)
            if first is not entry:
                fix = (
                    f"uninstall one, or block one with {DISABLE_ENV}={entry.plugin}"
                    if entry.plugin in self._origin
                    else "register only one"
                )
                raise PluginError(
                    f"{noun} {key!r} is registered twice: by plugin {self._origin_of(first.plugin)} and by plugin "
                    f"{self._origin_of(entry.plugin)}; {fix}"
                )

    # --- bookkeeping ----------------------------------------------------------------------------------------------

    def _fail(self, name: str, error: str, hooks: tuple[str, ...] = ()) -> None:
        distribution, version = self._origin.get(name, (None, None))
        info = PluginInfo(name, distribution, version, hooks, error)
        self._failed[name] = info
        warnings.warn(
            f"wegent plugin {info.origin} failed to load and is skipped: {error}",
            PluginWarning,
            stacklevel=_outside_stacklevel(),
        )

    def _info(self, name: str, plugin: object) -> PluginInfo:
        distribution, version = self._origin.get(name, (None, None))
        return PluginInfo(
            name, distribution, version, _hook_names(self.pm, plugin), registered=self._provided.get(name, {})
        )

    def _free_name(self, plugin: object) -> str:
        base = getattr(plugin, "__name__", None) or type(plugin).__qualname__
        taken = {name for name, _ in self.pm.list_name_plugin()} | set(self._failed)
        return next(n for n in (base, *(f"{base}-{i}" for i in range(2, 10_000))) if n not in taken)

    def _origin_of(self, name: str) -> str:
        distribution, version = self._origin.get(name, (None, None))
        return PluginInfo(name, distribution, version, ()).origin

    def _diagnosis(self) -> str:
        notes = [f" Plugin {info.origin} failed to load: {info.error}." for info in self.failures]
        if self.blocked:
            notes.append(f" Blocked plugins ({DISABLE_ENV} or blocked=): {', '.join(sorted(self.blocked))}.")
        return "." + "".join(notes) if notes else ""


# --- helpers ------------------------------------------------------------------------------------------------------


def _registrar(table: dict[str, Registration], noun: str, plugin: str) -> Callable[..., None]:
    def register(name: str, factory: Any, *, description: str = "") -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {noun} needs a non-empty string name, got {name!r}")
        if name in table:
            raise ValueError(f"{noun} {name!r} is registered twice by the same plugin")
        table[name] = Registration(name, factory, plugin, description)

    return register


def _env_blocked() -> list[str]:
    return [name.strip() for name in os.environ.get(DISABLE_ENV, "").split(",") if name.strip()]


def _hook_names(pm: pluggy.PluginManager, plugin: object) -> tuple[str, ...]:
    return tuple(sorted(caller.name for caller in pm.get_hookcallers(plugin) or ()))


def _by_scheme(registry: Registry, url: str) -> Registration:
    scheme, sep, _ = url.partition("://")
    if not sep or not scheme:
        raise PluginError(f"not a store URL: {url!r} (expected scheme://..., such as memory://)")
    scheme = scheme.lower()
    for candidate in (scheme, scheme.split("+", 1)[0]):
        if candidate in registry:
            return registry[candidate]
    return registry[scheme]  # raises the explanatory PluginError


def _unknown_hooks(pm: pluggy.PluginManager, plugin: object) -> str:
    """`unknown hook 'register_store' (did you mean 'register_stores'?)`, or "" if every hook is known."""
    notes = []
    for caller in pm.get_hookcallers(plugin) or ():
        if caller.has_spec() or all(impl.optionalhook for impl in caller.get_hookimpls() if impl.plugin is plugin):
            continue
        close = difflib.get_close_matches(caller.name, _HOOKS, 1)
        notes.append(f"unknown hook {caller.name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return "; ".join(notes)


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())  # pluggy's messages span lines
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _outside_stacklevel() -> int:
    # Point the warning at the first caller outside this module, whichever path led here.
    frame, level = sys._getframe(2), 2
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame, level = frame.f_back, level + 1
    return level
