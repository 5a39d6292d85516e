"""The plugin host: discover entry points, isolate broken plugins, collect what they register.

Each entry point of the ``rho_audit`` group is loaded on its own, so one plugin that fails to
import is listed as broken instead of taking the CLI down (simonw/llm#1280), unless
``RHO_AUDIT_STRICT_PLUGINS=1``. The same goes for what a plugin registers: a name two packages
both register (a third party's ``toxicity``) is refused for both and each is listed as broken,
naming the other; an instance, or a class that is not a Dimension/Judge/Trainer/Executor, is refused with
a message saying what to register instead. Everything else keeps working.

``RHO_AUDIT_LOAD_PLUGINS`` (comma list of entry-point names) loads only those;
``RHO_AUDIT_DISABLE_PLUGINS`` skips the named ones. Where two distributions use the same
entry-point name, ``DISTRIBUTION:ENTRY_POINT`` names one of them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

import rho_audit.api.hooks
from rho_audit import api
from rho_audit._util.messages import closest_name
from rho_audit.api.errors import PluginError
from rho_audit.probesets import user as user_probes

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
    """A plugin that failed to load, or one registration of it that was refused.

    ``kind`` and ``name`` say what was refused (``"dimension"``, ``"toxicity"``) when the plugin
    loaded but one of its registrations did not; both are empty when the whole plugin is broken.
    """

    source: PluginSource
    error: str
    kind: str = ""
    name: str = ""


#: What each class-registering hook must be given (``kind`` -> base class in rho_audit.api).
CLASS_KINDS: dict[str, type] = {
    "dimension": api.Dimension,
    "judge": api.Judge,
    "trainer": api.Trainer,
    "executor": api.Executor,
}


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
        return self._collect("dimension", "register_dimensions")

    @cached_property
    def judges(self) -> dict[str, Registered]:
        return self._collect("judge", "register_judges")

    @cached_property
    def trainers(self) -> dict[str, Registered]:
        return self._collect("trainer", "register_trainers")

    @cached_property
    def executors(self) -> dict[str, Registered]:
        return self._collect("executor", "register_executors")

    @cached_property
    def probe_sets(self) -> dict[str, Registered]:
        return self._collect("probe_set", "register_probe_sets")

    @cached_property
    def attacks(self) -> dict[str, Registered]:
        return self._collect("attack", "register_attacks")

    @cached_property
    def personas(self) -> dict[str, Registered]:
        return self._collect("persona", "register_personas")

    @cached_property
    def report_sections(self) -> dict[str, Registered]:
        return self._collect("report_section", "register_report_sections")

    def _collect(self, kind: str, hook_name: str) -> dict[str, Registered]:
        """Call each implementation with its own ``register`` so every entry knows its plugin.

        A registration that breaks the hook's contract, and every claim on a name more than one
        plugin registers, is refused and listed in :attr:`broken`; the rest is returned."""
        claims: dict[str, list[Registered]] = {}
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            source = self.sources.get(impl.plugin_name) or _local_source(impl.plugin_name)

            def register(*args: Any, _source: PluginSource = source) -> None:
                checked = _check_registration(kind, hook_name, args)
                if isinstance(checked, str):
                    self._mark_broken(_source, checked, kind, _claimed_name(args))
                    return
                name, obj = checked
                same = claims.setdefault(name, [])
                if not any(c.source == _source and c.obj is obj for c in same):  # idempotent
                    same.append(Registered(kind, name, obj, _source))

            try:
                impl.function(register=register)
            except PluginError:
                raise
            except Exception as err:  # a plugin's bug must not take the host down
                self._mark_broken(source, f"{hook_name} failed: {type(err).__name__}: {err}")
        found: dict[str, Registered] = {}
        for name, regs in claims.items():
            if len(regs) == 1:
                found[name] = regs[0]
                continue
            for reg in regs:
                self._mark_broken(reg.source, _clash_message(kind, name, reg, regs), kind, name)
        return found

    def _mark_broken(self, source: PluginSource, error: str, kind: str = "", name: str = "") -> None:
        if _strict():
            raise PluginError(
                f"plugin {source.entry_point!r} ({source.distribution}) is broken: {error} "
                "(RHO_AUDIT_STRICT_PLUGINS is set, so any broken plugin stops rho-audit; unset it "
                "to list broken plugins and run the rest.)"
            )
        broken = BrokenPlugin(source, error, kind, name)
        if broken in self.broken:  # a registry collected twice reports its problems once
            return
        log.warning("plugin %s is broken: %s", source.entry_point, error)
        self.broken.append(broken)

    # -- lookups with helpful errors ---------------------------------------------------------

    def select_dimensions(self, names: Iterable[str] | None) -> list[Registered]:
        """The dimensions named, or (None) every dimension that runs by default."""
        if names is None:
            return [r for r in self.dimensions.values() if getattr(r.obj, "runs_by_default", True)]
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

    def executor(self, name: str) -> type[api.Executor]:
        """The sweep executor class registered as ``name`` (``--executor``)."""
        if name not in self.executors:
            raise PluginError(unknown_name_message("executor", name, self.executors, self.broken))
        return self.executors[name].obj

    def probe_set_path(self, name: str) -> Path:
        if name not in self.probe_sets:
            raise PluginError(unknown_name_message("probe set", name, self.probe_sets, self.broken))
        return self.probe_sets[name].obj

    def resolve_personas(self, name_or_path: str) -> tuple[api.Persona, ...]:
        """A registered persona's name (one persona), or a persona file (every persona in it;
        see :mod:`rho_audit.probesets.persona_files`)."""
        from rho_audit.probesets import persona_files

        if name_or_path in self.personas:
            return (self.personas[name_or_path].obj,)
        path = Path(name_or_path).expanduser()
        if persona_files.is_persona_file(path):
            return persona_files.load_persona_file(path)
        raise PluginError(
            unknown_name_message("persona", name_or_path, self.personas, self.broken)
            + " A persona file (.jsonl, .yaml) works too; `rho-audit plugins` lists the registered personas."
        )

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
    refused = [b for b in broken if b.name == name and _kind_label(b.kind) == kind]
    if refused:  # it is installed, but refused: say why rather than "unknown"
        return refused[0].error
    known = sorted(known)
    close = closest_name(name, known)
    hint = f" Did you mean {close!r}?" if close else ""
    broken_note = ""
    if broken:
        names = ", ".join(b.source.entry_point for b in broken)
        broken_note = f" Broken plugins (see `rho-audit plugins`): {names}."
    return (
        f"unknown {kind} {name!r}.{hint} Known: {', '.join(known) or 'none'}.{broken_note} "
        "Install the package that provides it, or check `rho-audit plugins`."
    )


def _kind_label(kind: str) -> str:
    return kind.replace("_", " ")


def _describe(source: PluginSource) -> str:
    version = f" {source.version}" if source.version else ""
    return f"{source.distribution}{version} (entry point {source.entry_point!r})"


def _check_registration(kind: str, hook_name: str, args: tuple[Any, ...]) -> tuple[str, Any] | str:
    """``(name, object)`` for a registration that keeps the hook's contract, else what is wrong
    with it and how to fix it."""
    if kind == "attack":
        return _check_attack(hook_name, args)
    if kind == "persona":
        return _check_persona(hook_name, args)
    base = CLASS_KINDS.get(kind)
    if base is None:  # probe sets and report sections: register(name, folder)
        if len(args) != 2 or not isinstance(args[0], str) or not args[0].strip():
            return (
                f"{hook_name} called register{_args_repr(args)}; call register(name, folder) with a "
                f"{_kind_label(kind)} name and the folder that holds it."
            )
        try:
            return args[0], Path(args[1])
        except TypeError:
            return (
                f"{hook_name} registered {_kind_label(kind)} {args[0]!r} with folder "
                f"{args[1]!r}; pass a path (str or pathlib.Path) to the folder."
            )
    if len(args) != 1:
        return f"{hook_name} called register{_args_repr(args)}; call register(MyClass) once per class."
    obj = args[0]
    if not isinstance(obj, type):
        cls = type(obj).__name__
        return (
            f"{hook_name} registered an instance of {cls}; register the class itself: "
            f"register({cls}), not register({cls}()). rho-audit creates instances when it needs them."
        )
    if not issubclass(obj, base):
        return (
            f"{hook_name} registered {obj.__name__}, which is not a subclass of "
            f"rho_audit.api.{base.__name__}; subclass it (rho_audit/api/ documents what it needs)."
        )
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name.strip():
        return f'{hook_name} registered {obj.__name__}, which has no `name`; set name = "..." on the class.'
    return name, obj


def _check_attack(hook_name: str, args: tuple[Any, ...]) -> tuple[str, Any] | str:
    """An attack is registered as an :class:`rho_audit.api.Attack` instance (it is data)."""
    if len(args) != 1 or not isinstance(args[0], api.Attack):
        return (
            f"{hook_name} called register{_args_repr(args)}; call register(Attack(name, description, "
            "template=...)) once per attack (rho_audit.api.Attack)."
        )
    if args[0].name == api.CONTROL.name:
        return f"{hook_name} registered an attack named {api.CONTROL.name!r}, the control's name; rename it."
    return args[0].name, args[0]


def _check_persona(hook_name: str, args: tuple[Any, ...]) -> tuple[str, Any] | str:
    """A persona is registered as an :class:`rho_audit.api.Persona` instance (it is data)."""
    if len(args) != 1 or not isinstance(args[0], api.Persona):
        return (
            f"{hook_name} called register{_args_repr(args)}; call register(Persona(name, "
            "system_prompt, category=...)) once per persona (rho_audit.api.Persona)."
        )
    return args[0].name, args[0]


def _claimed_name(args: tuple[Any, ...]) -> str:
    """The name a refused registration was for, where it says one (so asking for it explains)."""
    first = args[0] if args else None
    name = first if isinstance(first, str) else getattr(first, "name", "")
    return name if isinstance(name, str) else ""


def _args_repr(args: tuple[Any, ...]) -> str:
    return "(" + ", ".join(repr(a) for a in args) + ")"


def _clash_message(kind: str, name: str, reg: Registered, regs: list[Registered]) -> str:
    others = [r.source for r in regs if r is not reg]
    mine = reg.source
    same_ep = any(o.entry_point == mine.entry_point for o in others)
    disable = f"{mine.distribution}:{mine.entry_point}" if same_ep else mine.entry_point
    if all(o == mine for o in others):
        by = f"{_describe(mine)} registers it {len(regs)} times"
        fix = "Register each name once."
    else:
        named = [_describe(r.source) for r in regs]
        both = "both " if len(named) == 2 else ""
        by = f"registered by {both}{', '.join(named[:-1])} and {named[-1]}"
        fix = f"Uninstall one of the packages, or disable one, e.g. RHO_AUDIT_DISABLE_PLUGINS={disable}."
    return f"{_kind_label(kind)} {name!r} is {by}, so rho-audit refuses it from all of them. {fix}"


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
    pm = pluggy.PluginManager(api.PROJECT_NAME)
    pm.add_hookspecs(rho_audit.api.hooks)
    host = PluginHost(pm)
    allow = _env_list("RHO_AUDIT_LOAD_PLUGINS")
    deny = _env_list("RHO_AUDIT_DISABLE_PLUGINS") or set()
    seen: dict[str, str] = {}  # entry-point name -> distribution that used it first
    for ep in metadata.entry_points(group=api.ENTRY_POINT_GROUP):
        dist, version = _dist_of(ep)
        if seen.get(ep.name) == dist:  # the same distribution visible twice on sys.path
            continue
        # Two packages may pick the same entry-point name (a third party's ``toxicity``): load
        # both, under distinct plugin names, so a clash of what they register is reported.
        plugin_name = ep.name if ep.name not in seen else f"{dist}:{ep.name}"
        seen.setdefault(ep.name, dist)
        names = {ep.name, f"{dist}:{ep.name}"}
        if (allow is not None and not names & allow) or names & deny:
            continue
        source = PluginSource(ep.name, ep.value, dist, version)
        try:
            plugin = ep.load()
        except Exception as err:  # ImportError, SyntaxError, anything raised at import time
            host._mark_broken(source, f"{type(err).__name__}: {err}")
            continue
        if _register_checked(pm, plugin, plugin_name, host, source):
            host.sources[plugin_name] = source
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
        host._mark_broken(source, f"{err}; check the hook names in rho_audit/api/hooks.py")
        return False
    except ValueError as err:  # the same module object registered under two entry points
        host._mark_broken(
            source,
            f"{err}; each module can be registered once: point one entry point at another module.",
        )
        return False
    return True
