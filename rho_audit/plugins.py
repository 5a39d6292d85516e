"""The plugin host: discover entry points, isolate broken plugins, collect what they register.

Each entry point of the ``rho_audit`` group is loaded on its own, so one plugin that fails to
import is listed as broken instead of taking the CLI down (simonw/llm#1280), unless
``RHO_AUDIT_STRICT_PLUGINS=1``. ``RHO_AUDIT_LOAD_PLUGINS`` (comma list of entry-point names)
loads only those; ``RHO_AUDIT_DISABLE_PLUGINS`` skips the named ones.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from rho_audit import hookspecs, user_probes
from rho_audit.errors import PluginError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PluginSource:
    """Where a plugin came from: entry-point name and the distribution that ships it."""

    entry_point: str
    module: str
    distribution: str
    version: str


@dataclass(frozen=True)
class BrokenPlugin:
    source: PluginSource
    error: str


@dataclass(frozen=True)
class Registered:
    """A class (or probe-set folder) a plugin registered, with its provenance."""

    kind: str
    name: str
    obj: Any
    source: PluginSource


@dataclass
class PluginHost:
    pm: pluggy.PluginManager
    sources: dict[str, PluginSource] = field(default_factory=dict)
    broken: list[BrokenPlugin] = field(default_factory=list)

    # -- registries ------------------------------------------------------------------------

    @cached_property
    def dimensions(self) -> dict[str, Registered]:
        return self._collect("dimension", "register_dimensions", lambda cls: cls.name)

    @cached_property
    def judges(self) -> dict[str, Registered]:
        return self._collect("judge", "register_judges", lambda cls: cls.name)

    @cached_property
    def trainers(self) -> dict[str, Registered]:
        return self._collect("trainer", "register_trainers", lambda cls: cls.name)

    @cached_property
    def probe_sets(self) -> dict[str, Registered]:
        return self._collect("probe_set", "register_probe_sets", None)

    def _collect(
        self, kind: str, hook_name: str, name_of: Callable[[Any], str] | None
    ) -> dict[str, Registered]:
        """Call each implementation with its own ``register`` so every entry knows its plugin."""
        found: dict[str, Registered] = {}
        clashes: list[str] = []
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            source = self.sources.get(impl.plugin_name) or _local_source(impl.plugin_name)

            def register(*args: Any, _source: PluginSource = source) -> None:
                if name_of is None:  # probe sets: register(name, folder)
                    name, obj = args[0], Path(args[1])
                else:
                    obj = args[0]
                    if not isinstance(obj, type):
                        raise PluginError(
                            f"plugin {_source.entry_point!r} ({_source.distribution}) registered an "
                            f"instance of {type(obj).__name__}; register the class itself."
                        )
                    name = name_of(obj)
                if name in found:
                    other = found[name].source
                    clashes.append(
                        f"{kind} {name!r} is registered by both {other.distribution} "
                        f"(entry point {other.entry_point!r}) and {_source.distribution} "
                        f"(entry point {_source.entry_point!r})"
                    )
                    return
                found[name] = Registered(kind, name, obj, _source)

            try:
                impl.function(register=register)
            except PluginError:
                raise
            except Exception as err:  # a plugin's bug must not take the host down
                self._mark_broken(source, f"{hook_name} failed: {type(err).__name__}: {err}")
        if clashes:
            raise PluginError(
                "; ".join(clashes) + ". Uninstall one of the packages, or disable one with "
                "RHO_AUDIT_DISABLE_PLUGINS=<entry point>."
            )
        return found

    def _mark_broken(self, source: PluginSource, error: str) -> None:
        if _strict():
            raise PluginError(f"plugin {source.entry_point!r} ({source.distribution}) is broken: {error}")
        log.warning("plugin %s is broken: %s", source.entry_point, error)
        self.broken.append(BrokenPlugin(source, error))

    # -- lookups with helpful errors ---------------------------------------------------------

    def select_dimensions(self, names: Iterable[str] | None) -> list[Registered]:
        if names is None:
            return list(self.dimensions.values())
        selected = []
        for name in names:
            if name not in self.dimensions:
                raise PluginError(unknown_name_message("dimension", name, self.dimensions, self.broken))
            selected.append(self.dimensions[name])
        return selected

    def judge(self, name: str) -> Registered:
        if name not in self.judges:
            raise PluginError(unknown_name_message("judge", name, self.judges, self.broken))
        return self.judges[name]

    def probe_set_path(self, name: str) -> Path:
        if name not in self.probe_sets:
            raise PluginError(unknown_name_message("probe set", name, self.probe_sets, self.broken))
        return self.probe_sets[name].obj

    def resolve_probe_set(self, name_or_path: str) -> Path:
        """A registered probe-set name, or a folder (or its probes.jsonl) on disk."""
        if name_or_path in self.probe_sets:
            return self.probe_sets[name_or_path].obj
        path = Path(name_or_path).expanduser()
        if path.exists():
            return path
        raise PluginError(
            unknown_name_message("probe set", name_or_path, self.probe_sets, self.broken)
            + " A folder path (card.yaml + probes.jsonl) works too; `rho-audit probes list` shows the names."
        )


def unknown_name_message(kind: str, name: str, known: Iterable[str], broken: list[BrokenPlugin]) -> str:
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    broken_note = ""
    if broken:
        names = ", ".join(b.source.entry_point for b in broken)
        broken_note = f" Broken plugins (see `rho-audit plugins`): {names}."
    return (
        f"unknown {kind} {name!r}.{hint} Known: {', '.join(known) or 'none'}.{broken_note} "
        "Install the package that provides it, or check `rho-audit plugins`."
    )


def _strict() -> bool:
    return os.environ.get("RHO_AUDIT_STRICT_PLUGINS", "") not in ("", "0", "false")


def _env_list(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {item.strip() for item in raw.split(",") if item.strip()}


def _local_source(name: str) -> PluginSource:
    return PluginSource(name, name, "(registered in-process)", "")


def _dist_of(ep: metadata.EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "unknown", ""
    return dist.metadata["Name"], dist.version


def load_host(extra_plugins: Iterable[ModuleType | object] = ()) -> PluginHost:
    """Build the plugin manager and load every allowed entry point in isolation."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    host = PluginHost(pm)
    allow = _env_list("RHO_AUDIT_LOAD_PLUGINS")
    deny = _env_list("RHO_AUDIT_DISABLE_PLUGINS") or set()
    seen: set[str] = set()
    for ep in metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP):
        if ep.name in seen:  # the same distribution visible twice on sys.path
            continue
        seen.add(ep.name)
        if (allow is not None and ep.name not in allow) or ep.name in deny:
            continue
        dist, version = _dist_of(ep)
        source = PluginSource(ep.name, ep.value, dist, version)
        try:
            plugin = ep.load()
        except Exception as err:  # ImportError, SyntaxError, anything raised at import time
            host._mark_broken(source, f"{type(err).__name__}: {err}")
            continue
        if _register_checked(pm, plugin, ep.name, host, source):
            host.sources[ep.name] = source
    if (allow is None or user_probes.PLUGIN_NAME in allow) and user_probes.PLUGIN_NAME not in deny:
        source = PluginSource(user_probes.PLUGIN_NAME, user_probes.__name__, "imported (user data dir)", "")
        if _register_checked(pm, user_probes, user_probes.PLUGIN_NAME, host, source):
            host.sources[user_probes.PLUGIN_NAME] = source
    for plugin in extra_plugins:
        _register_checked(pm, plugin, None, host, _local_source(repr(plugin)))
    return host


def _register_checked(
    pm: pluggy.PluginManager, plugin: object, name: str | None, host: PluginHost, source: PluginSource
) -> bool:
    """Register one plugin; a wrong signature or a misspelt hook name (``check_pending``)
    marks it broken, loudly, without touching the other plugins."""
    try:
        pm.register(plugin, name=name)
        pm.check_pending()
    except pluggy.PluginValidationError as err:
        if pm.is_registered(plugin):
            pm.unregister(plugin)
        host._mark_broken(source, f"{err}; check the hook names in rho_audit/hookspecs.py")
        return False
    return True
