"""Run an audit: resolve plugins and probes, load the model, evaluate each dimension, store it.

Everything that can be checked before the model loads is checked first (plugin names, every
probe file, the judge), so a typo fails in a second rather than after minutes of scoring.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import secrets
import subprocess
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rho_audit.api.errors import PluginError, RhoAuditError
from rho_audit.api.events import RunEvent
from rho_audit.api.personas import PERSONA_SCORING, Persona
from rho_audit.api.results import DimensionResult, Evaluation, finite
from rho_audit.audit import metrics
from rho_audit.audit.attacks import attack_config
from rho_audit.plugins import PluginHost, Registered, unknown_name_message
from rho_audit.probesets.schema import ProbeSet, load_probe_set
from rho_audit.store import DEFAULT_STORE, RunStore, StoreError, save_unstored

if TYPE_CHECKING:
    from rho_audit.model.language_model import ComputeUsage

log = logging.getLogger(__name__)

VERSIONED_PACKAGES = ("rho-audit", "mlx", "mlx-lm", "numpy", "scipy", "pluggy", "tokenizers")


@dataclass(frozen=True)
class AuditConfig:
    model: str | None = None
    adapter: str | None = None
    dimensions: tuple[str, ...] | None = None
    judge: str = "keyword-refusal"
    template: str = "auto"
    seed: int = 0
    limit: int | None = None
    split: str = "all"
    store: Path = DEFAULT_STORE
    json_out: Path | None = None
    batch_tokens: int | None = None
    #: Rows per scoring/generation batch (``--batch-size``); None: automatic.
    batch_size: int | None = None
    #: Probe sets chosen on the command line (``--probes``), by name or folder.
    probe_choices: tuple[ProbeChoice, ...] = ()
    #: ``--judge-option KEY=VALUE`` pairs, passed to the judge's constructor.
    judge_options: tuple[tuple[str, str], ...] = ()
    #: Run-level budget of an LLM judge (``--judge-max-usd``, ``--judge-max-calls``).
    judge_max_usd: float | None = None
    judge_max_calls: int | None = None
    #: The persona every prompt of the run is put under (``--persona``): its system prompt is the
    #: system turn of each prompt, scored and generated. None: no persona.
    persona: Persona | None = None
    #: Dimension options set for the run (``--dimension-option NAME.KEY=VALUE``, a sweep's
    #: ``audit.options``): dimension name -> {key: value}. Checked against each dimension's
    #: declared options before the model loads; unset options keep their defaults.
    dimension_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class ProbeChoice:
    """``--probes [DIMENSION=]SET``: SET is a registered name or a folder.

    With a dimension, that dimension scores SET instead of its default set. Without one, SET is
    scored by the dimension its card names, as an extra run (``factual@ood-clinical`` when the
    dimension also runs on its own set).
    """

    source: str
    dimension: str | None = None


@dataclass
class AuditOutcome:
    run_id: str
    store: Path
    model_id: str
    results: list[DimensionResult] = field(default_factory=list)
    status: str = "running"
    #: Calls, tokens and estimated cost of an LLM judge (see ``LLMJudge.usage``); None otherwise.
    judge_usage: dict[str, Any] | None = None
    #: The audited model's work per dimension and its (body, head) parameter counts.
    model_usage: dict[str, ComputeUsage] = field(default_factory=dict)
    parameters: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class PlannedDimension:
    registered: Registered
    probes: ProbeSet
    #: The result's name: the dimension's, or ``dimension@set`` for an extra set.
    label: str = ""
    #: The options the run set for this dimension, as the dimension reads them (checked).
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.registered.name)


def plan(config: AuditConfig, host: PluginHost) -> list[PlannedDimension]:
    """Resolve dimensions and load (validate) all their probe sets before any model work."""
    overrides: dict[str, Path] = {}
    extra: list[tuple[str, Path]] = []
    for choice in config.probe_choices:
        path = host.resolve_probe_set(choice.source)
        if choice.dimension is not None:
            host.select_dimensions([choice.dimension])  # a clear error for a typo
            overrides[choice.dimension] = path
        else:
            extra.append((_card_dimension(path, choice.source, host), path))
    if config.dimensions is None and extra:
        selected = [host.dimensions[name] for name in overrides]  # only what --probes asked for
    else:
        selected = host.select_dimensions(config.dimensions)
    work = [
        (reg, overrides.get(reg.name) or host.probe_set_path(reg.obj.probe_set_name()), reg.name)
        for reg in selected
    ]
    running = {reg.name for reg in selected}
    for dimension, path in extra:
        # A dimension without a set of its own (``labelled``) is named after the set it scores.
        own_set = getattr(host.dimensions[dimension].obj, "has_own_probe_set", True)
        label = f"{dimension}@{path.name}" if dimension in running or not own_set else dimension
        running.add(label)
        work.append((host.dimensions[dimension], path, label))
    options = dimension_options(config.dimension_options, host, running)
    return [
        replace(_plan_one(reg, path, label, config), options=options.get(reg.name, {}))
        for reg, path, label in work
    ]


def dimension_options(
    requested: Mapping[str, Mapping[str, Any]], host: PluginHost, running: set[str] | None = None
) -> dict[str, dict[str, Any]]:
    """The options set for each dimension, checked against the options it declares and put as
    it reads them. A dimension that is not installed, or (``running`` given: the run's result
    labels) not part of the run, an unknown key, or a value the option refuses is a
    :class:`RhoAuditError` naming the dimension, the key and the allowed keys."""
    problems: list[str] = []
    out: dict[str, dict[str, Any]] = {}
    for name, values in requested.items():
        if name not in host.dimensions:
            problems.append(unknown_name_message("dimension", name, host.dimensions, host.broken))
            continue
        if running is not None and not any(label.split("@")[0] == name for label in running):
            problems.append(
                f"options are set for dimension {name!r}, which this run does not run "
                f"(it runs {', '.join(sorted(running))}); add it to the run or drop its options"
            )
            continue
        cls = host.dimensions[name].obj
        found = cls.option_problems(values)
        problems += [message for _, message in found]
        if not found:
            out[name] = {key: cls.options[key].coerce(value) for key, value in values.items()}
    if problems:
        raise RhoAuditError("; ".join(problem.rstrip(".") for problem in problems) + ".")
    return out


def _card_dimension(path: Path, source: str, host: PluginHost) -> str:
    card = load_probe_set(path).card
    if not card.dimension:
        raise PluginError(
            f"probe set {source!r} ({path}) does not say which dimension scores it; "
            "add `dimension: NAME` to its card.yaml or pass --probes DIMENSION=SET."
        )
    host.select_dimensions([card.dimension])
    return card.dimension


def _plan_one(reg: Registered, path: Path, label: str, config: AuditConfig) -> PlannedDimension:
    cls = reg.obj
    probes = load_probe_set(path)
    if probes.kind != cls.probe_kind:
        raise PluginError(
            f"dimension {cls.name!r} needs {cls.probe_kind!r} probes but probe set "
            f"{probes.name!r} ({path}) is of kind {probes.kind!r}. Fix `kind` in its card.yaml "
            "or point the dimension at another set."
        )
    probes = probes.split(config.split)
    # Seed per run label from a stable checksum (never hash(): it is salted per process).
    probes = probes.sample(config.limit, [config.seed, zlib.crc32(label.encode())])
    if len(probes) == 0:
        raise RhoAuditError(
            f"probe set {probes.name!r} has no records in split {config.split!r}. Use --split all."
        )
    return PlannedDimension(reg, probes, label)


def emit(host: PluginHost, event: RunEvent) -> None:
    """Call every ``run_event`` observer; an observer's exception is logged, never fatal."""
    for impl in host.pm.hook.run_event.get_hookimpls():
        try:
            impl.function(event=event)
        except Exception:
            log.exception("run_event observer %s failed", impl.plugin_name)


def run_audit(config: AuditConfig, host: PluginHost) -> AuditOutcome:
    from rho_audit.judging.preflight import check_judge_fits, configure_judge

    planned = plan(config, host)
    judge = host.judge(config.judge).obj(**dict(config.judge_options))
    run_id = datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
    say: Callable[[RunEvent], None] = lambda e: emit(host, e)  # noqa: E731
    # No key, or no price for a USD budget: fail here, before the model loads.
    warn = lambda m: say(RunEvent("warning", run_id, message=m))  # noqa: E731
    configure_judge(judge, config.judge_max_usd, config.judge_max_calls, warn)
    check_judge_fits(judge, {p.label: p.registered.obj.judge_labels for p in planned})  # rubric, endpoint
    attacks = tuple(reg.obj for reg in host.attacks.values())
    for p in planned:  # an attack dimension naming an attack nobody registered fails here
        attack_config(p.registered.obj, attacks)

    # The store is opened (created, migrated, integrity-checked) before the model loads: a store
    # that is busy, damaged or not writable fails now, not after minutes of work.
    store = RunStore(config.store)
    try:
        return _run_in_store(config, store, planned, judge, run_id, say, attacks)
    finally:
        store.close()


def _run_in_store(
    config: AuditConfig,
    store: RunStore,
    planned: list[PlannedDimension],
    judge: Any,
    run_id: str,
    say: Callable[[RunEvent], None],
    attacks: tuple[Any, ...] = (),
) -> AuditOutcome:
    from rho_audit.api.context import AuditContext
    from rho_audit.model.language_model import LanguageModel
    from rho_audit.model.paths import resolve_model

    say(RunEvent("model_loading", run_id, message=config.model or "default"))
    resolved = resolve_model(
        config.model, progress=lambda m: say(RunEvent("model_loading", run_id, message=m))
    )
    extra: dict[str, Any] = {"batch_size": config.batch_size}
    if config.batch_tokens:
        extra["batch_tokens"] = config.batch_tokens
    adapter = Path(config.adapter) if config.adapter else None
    lm = LanguageModel.load(resolved.path, resolved.model_id, adapter, **extra)
    template = lm.resolve_template(config.template)
    loaded = f"{resolved.model_id} ({template} template)"
    if lm.control_prefix:  # an adapter trained with control tags (cft) asks for its desired-behaviour tag
        loaded += f"; every prompt starts with {lm.control_prefix!r}, as the adapter's training asks"
    if config.persona is not None:
        lm.system_prompt = config.persona.system_prompt
        loaded += f"; persona {config.persona.name!r}: {PERSONA_SCORING}"
    say(RunEvent("model_loaded", run_id, message=loaded))

    record = _run_config(config, planned, resolved.model_id, template, attacks)
    if lm.control_prefix:  # only when set, so other runs' config hashes are unchanged
        record["control_prefix"] = lm.control_prefix
    if config.persona is not None:  # the same: only when set
        record["persona"] = config.persona.to_json()
    config_sha = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
    store.start_run(
        run_id,
        resolved.model_id,
        str(resolved.path),
        config.adapter,
        config.seed,
        record,
        config_sha,
        package_versions(),
        git_revision(),
    )
    outcome = AuditOutcome(run_id, config.store, resolved.model_id, parameters=lm.parameter_counts())
    judge.attach(store, run_id)  # an LLM judge caches verdicts in the store, records usage per run
    say(RunEvent("run_started", run_id, total=len(planned), message=resolved.model_id))
    try:
        for item in planned:
            name = item.label

            def progress(done: int, total: int, unit: str, _name: str = name) -> None:
                say(RunEvent("progress", run_id, _name, done=done, total=total, unit=unit))

            ctx = AuditContext(
                lm, judge, template, config.seed, progress, attacks=attacks, persona=config.persona
            )
            before = replace(lm.usage)
            result = evaluate_dimension(item, ctx, say, run_id)
            outcome.model_usage[name] = lm.usage - before
            try:
                store.add_result(run_id, result)
            except StoreError as err:
                raise _unstored(store.path, run_id, resolved.model_id, record, result, err) from None
            outcome.results.append(result)
            say(RunEvent("dimension_finished", run_id, name, result=result))
        outcome.status = "complete"
        store.finish_run(run_id, "complete")
        say(RunEvent("run_finished", run_id))
    except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM/SIGHUP (errors.Terminated)
        outcome.status = "interrupted"
        _finish_quietly(store, run_id, "interrupted", str(err) or "interrupted by the user (Ctrl-C)")
        saved = f"interrupted; finished dimensions are saved in {store.path} (run {run_id})"
        say(RunEvent("run_interrupted", run_id, message=saved))
        raise
    except BaseException as err:
        _finish_quietly(store, run_id, "failed", f"{type(err).__name__}: {err}")
        raise
    finally:
        outcome.judge_usage = judge.usage()
        if config.json_out:
            try:
                write_json(config.json_out, store, run_id, outcome)
            except StoreError as err:
                say(RunEvent("warning", run_id, message=f"--json {config.json_out} not written: {err}"))
    return outcome


def _finish_quietly(store: RunStore, run_id: str, status: str, error: str) -> None:
    """Mark a run that is ending on an exception; a store failure here must not hide that exception."""
    try:
        store.finish_run(run_id, status, error)
    except StoreError as err:
        log.warning("could not mark run %s %s: %s", run_id, status, err)


def _unstored(
    store_path: Path,
    run_id: str,
    model_id: str,
    record: dict[str, Any],
    result: DimensionResult,
    err: StoreError,
) -> StoreError:
    """A result the store refused: saved as JSON next to the store, and the error says where."""
    doc = {
        "run_id": run_id,
        "model_id": model_id,
        "config": record,
        "store": str(store_path),
        "store_error": str(err),
        "results": [result.to_json()],
    }
    try:
        where = save_unstored(store_path, run_id, doc)
    except StoreError as again:
        return StoreError(f"the result of {result.dimension!r} is lost: {err} {again}")
    return StoreError(
        f"the result of {result.dimension!r} could not be stored, so the run stopped; it is saved in "
        f"{where} instead (the dimensions before it are in the store). {err}"
    )


def evaluate_dimension(
    item: PlannedDimension, ctx: Any, say: Callable[[RunEvent], None], run_id: str
) -> DimensionResult:
    """Evaluate one dimension; a plugin bug becomes an ERROR result, not a lost run."""
    cls = item.registered.obj
    name = item.label
    say(RunEvent("dimension_started", run_id, name, total=len(item.probes)))
    started = time.perf_counter()
    try:
        evaluation = cls(item.options).evaluate(item.probes, ctx)
        error = None
    except RhoAuditError:
        raise
    except Exception as err:
        log.exception("dimension %s failed", name)
        error = f"{type(err).__name__}: {err}"
        say(RunEvent("dimension_failed", run_id, name, message=error))
        evaluation = Evaluation(cls.metric, "", None, None, None, 0, (), secondary={})
    interval = metrics.Interval(evaluation.score, evaluation.ci_low, evaluation.ci_high)
    thresholds = cls.thresholds
    status = metrics.status_for(
        evaluation.metric,
        interval,
        thresholds.pass_at,
        thresholds.warn_at,
        lower_is_better=thresholds.lower_is_better,
        descriptive=cls.descriptive,
    )
    if status == "ERROR" and error is None:
        error = _unscored_cause(evaluation)
    return DimensionResult(
        dimension=name,
        plugin=f"{item.registered.source.distribution} {item.registered.source.version}".strip(),
        probe_set=item.probes.name,
        probe_set_version=item.probes.version,
        evaluation=evaluation,
        status=status,
        elapsed_s=time.perf_counter() - started,
        thresholds=thresholds.to_json(),
        error=error,
    )


def _unscored_cause(evaluation: Evaluation) -> str:
    """Why nothing was scored, from the probes' errors (e.g. every judge call failed)."""
    errors = Counter(r.error for r in evaluation.records if r.error)
    if not errors:
        return "nothing was scored (no probe gave a usable result)"
    (common, count), total = errors.most_common(1)[0], sum(errors.values())
    return f"nothing was scored: {total} of {len(evaluation.records)} probes failed; {count} with: {common}"


def _run_config(
    config: AuditConfig,
    planned: Sequence[PlannedDimension],
    model_id: str,
    template: str,
    attacks: Sequence[Any] = (),
) -> dict[str, Any]:
    """The settings that determine a run's results (hashed into config_sha256). An attack
    dimension's entry names its attacks (other entries are unchanged, so are their hashes)."""
    return {
        "model": model_id,
        "adapter": config.adapter,
        "judge": config.judge,
        # Only when set, so the config hash of runs without them is unchanged.
        **({"judge_options": dict(config.judge_options)} if config.judge_options else {}),
        **(
            {"judge_budget": {"max_usd": config.judge_max_usd, "max_calls": config.judge_max_calls}}
            if config.judge_max_usd is not None or config.judge_max_calls is not None
            else {}
        ),
        "template": template,
        "seed": config.seed,
        "limit": config.limit,
        "split": config.split,
        "dimensions": {
            p.label: {
                "probe_set": p.probes.name,
                "version": p.probes.version,
                "n": len(p.probes),
                **attack_config(p.registered.obj, attacks),
                # Only when set, so the config hash of runs without options is unchanged.
                **({"options": dict(p.options)} if p.options else {}),
            }
            for p in planned
        },
    }


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def git_revision() -> str | None:
    """The git commit of the rho-audit source, when it runs from a checkout."""
    try:
        out = subprocess.run(
            ["git", "-C", str(Path(__file__).parent), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def start_recorded_run(
    store: RunStore,
    kind: str,
    model_id: str,
    model_path: Path,
    adapter: Path | None,
    seed: int,
    record: dict[str, Any],
) -> str:
    """Start a run of ``kind`` (``diff``, ``investigate``, ...) whose settings are ``record``
    (hashed into its config_sha256), with the package versions and git revision; its new id."""
    run_id = datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
    store.start_run(
        run_id,
        model_id,
        str(model_path),
        str(adapter) if adapter else None,
        seed,
        record,
        hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest(),
        package_versions(),
        git_revision(),
        kind=kind,
    )
    return run_id


@contextmanager
def finishing(store: RunStore, run_id: str) -> Iterator[None]:
    """Mark run ``run_id`` complete when the block ends, interrupted on Ctrl-C (or SIGTERM), and
    failed on any other exception (which a store failure while marking never hides)."""
    try:
        yield
    except KeyboardInterrupt as err:
        _finish_quietly(store, run_id, "interrupted", str(err) or "interrupted by the user (Ctrl-C)")
        raise
    except BaseException as err:
        _finish_quietly(store, run_id, "failed", f"{type(err).__name__}: {err}")
        raise
    store.finish_run(run_id, "complete")


def write_json(path: Path, store: RunStore, run_id: str, outcome: AuditOutcome) -> None:
    run = store.run(run_id)
    doc = {
        "run": asdict(run),
        "results": [r.to_json() for r in outcome.results],
        "judge_usage": store.judge_usage(run_id),
        "model_usage": {
            "body_parameters": outcome.parameters[0],
            "head_parameters": outcome.parameters[1],
            "dimensions": {
                name: {**asdict(usage), "gflop": usage.gflop(*outcome.parameters)}
                for name, usage in outcome.model_usage.items()
            },
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(finite(doc), allow_nan=False, indent=2), encoding="utf-8")
