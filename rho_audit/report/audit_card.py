"""The audit card of one run: a row and a section per dimension (most confidently wrong pairs,
generation samples, errors), the CI charts, and the run's LLM-judge usage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rho_audit.report import charts
from rho_audit.report.families import family_figures
from rho_audit.report.gather import audit_run, clip, confidences, dimension_row, finite_number
from rho_audit.report.ood import POOLED_ACCURACY, pooled_of_results
from rho_audit.report.provenance import header_with_provenance
from rho_audit.report.records import (
    AuditCard,
    DimensionRow,
    DimensionSection,
    Figure,
    JudgeUsage,
    ProbeText,
    ProbeTexts,
    Sample,
    Statistic,
    WrongProbe,
)
from rho_audit.store import RunStore

N_WRONG = 5  # most confidently wrong probes shown per dimension
N_SAMPLES = 6  # generation samples shown per dimension


def judge_usage_rows(store: RunStore, run_id: str) -> tuple[JudgeUsage, ...]:
    """The run's LLM-judge usage rows, as stored (none for judges that cost nothing)."""

    def count(row: Mapping[str, Any], key: str) -> int:
        value = row.get(key)
        return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0

    rows = []
    for row in store.judge_usage(run_id):
        cost = finite_number(row.get("cost_usd")) if row.get("cost_known", True) else None
        max_calls = row.get("max_calls")
        rows.append(
            JudgeUsage(
                judge=str(row.get("judge_id", "?")),
                model=str(row.get("judge_model", "?")),
                rubric=str(row.get("rubric", "?")),
                context=str(row.get("context", "?")),
                calls=count(row, "calls"),
                retries=count(row, "retries"),
                input_tokens=count(row, "input_tokens"),
                output_tokens=count(row, "output_tokens"),
                cost_usd=cost,
                cache_hits=count(row, "cache_hits"),
                judged=count(row, "judged"),
                skipped_budget=count(row, "skipped_budget"),
                unparseable=count(row, "unparseable"),
                errors=count(row, "errors"),
                max_usd=finite_number(row.get("max_usd")),
                max_calls=int(max_calls) if isinstance(max_calls, int) else None,
                run_id=run_id,
            )
        )
    return tuple(rows)


def pooled_judge_usage(rows: Sequence[JudgeUsage], runs: int) -> tuple[JudgeUsage, ...]:
    """Usage summed per judge, model, rubric and use over ``runs`` audits (a sweep's cells): its
    cost unknown when any call's was, its budget shown only when every run had the same one."""
    groups: dict[tuple[str, str, str, str], list[JudgeUsage]] = {}
    for u in rows:
        groups.setdefault((u.judge, u.model, u.rubric, u.context), []).append(u)
    out = []
    for (judge, model, rubric, context), us in groups.items():
        costs = [u.cost_usd for u in us]
        max_usd = {u.max_usd for u in us}
        max_calls = {u.max_calls for u in us}
        out.append(
            JudgeUsage(
                judge,
                model,
                rubric,
                context,
                *(
                    sum(getattr(u, f) for u in us)
                    for f in ("calls", "retries", "input_tokens", "output_tokens")
                ),
                cost_usd=None if None in costs else sum(c for c in costs if c is not None),
                cache_hits=sum(u.cache_hits for u in us),
                judged=sum(u.judged for u in us),
                skipped_budget=sum(u.skipped_budget for u in us),
                unparseable=sum(u.unparseable for u in us),
                errors=sum(u.errors for u in us),
                max_usd=max_usd.pop() if len(max_usd) == 1 else None,
                max_calls=max_calls.pop() if len(max_calls) == 1 else None,
                run_id=f"{len({u.run_id for u in us})} of {runs} audits",
            )
        )
    return tuple(out)


def _no_texts(name: str, version: str) -> Mapping[str, ProbeText]:
    return {}


def section_kind(records: Sequence[Mapping[str, Any]]) -> str:
    """Which built-in section fits a dimension, from what its records carry (so a third-party
    dimension gets a sensible section without a template)."""
    ok = [r for r in records if not r.get("error")]
    values = [r.get("values") or {} for r in ok]
    if any("gap" in v for v in values):
        return "pair"
    if any("correct_clean" in v for v in values):
        return "numeric"
    if any(r.get("verdict") is not None for r in ok):
        return "generation"
    return "generic"


def _wrong_probes(
    records: Sequence[Mapping[str, Any]], texts: Mapping[str, ProbeText]
) -> tuple[WrongProbe, ...]:
    scored = []
    for r in records:
        values = r.get("values") or {}
        gap = finite_number(values.get("gap"))
        if r.get("error") or gap is None or gap >= 0:
            continue
        scored.append((gap, str(r["probe_id"]), r, values))
    scored.sort(key=lambda item: (item[0], item[1]))  # most negative first; ids break ties
    return tuple(
        WrongProbe(pid, r.get("category"), gap, *confidences(values), _clip_text(texts.get(pid)))
        for gap, pid, r, values in scored[:N_WRONG]
    )


def _clip_text(text: ProbeText | None) -> ProbeText | None:
    if text is None:
        return None
    return ProbeText(clip(text.prompt), clip(text.positive), clip(text.negative))


def _samples(records: Sequence[Mapping[str, Any]], texts: Mapping[str, ProbeText]) -> tuple[Sample, ...]:
    """Outputs with the judge's verdict: failures (refused / wrong) first, in stored order."""
    with_output = [r for r in records if r.get("output") is not None and not r.get("error")]
    ordered = [r for r in with_output if r.get("correct") is False] + [
        r for r in with_output if r.get("correct") is not False
    ]
    return tuple(
        Sample(
            str(r["probe_id"]),
            r.get("category"),
            clip(texts[r["probe_id"]].prompt) if r["probe_id"] in texts else None,
            clip(str(r["output"])) or "",
            r.get("verdict"),
            r.get("correct"),
        )
        for r in ordered[:N_SAMPLES]
    )


def build_section(
    row: DimensionRow, records: Sequence[Mapping[str, Any]], texts: ProbeTexts
) -> DimensionSection:
    lookup = texts(row.probe_set, row.probe_set_version)
    kind = section_kind(records)
    errors = tuple((str(r["probe_id"]), str(r["error"])) for r in records if r.get("error"))
    source = (
        f"probe texts from the installed probe set {row.probe_set} {row.probe_set_version}"
        if lookup
        else f"probe texts not shown: probe set {row.probe_set} {row.probe_set_version} is not installed"
    )
    return DimensionSection(
        row=row,
        kind=kind,
        wrong=_wrong_probes(records, lookup) if kind == "pair" else (),
        samples=_samples(records, lookup) if kind in ("generation", "numeric", "generic") else (),
        errors=errors[:N_WRONG],
        n_records=len(records),
        texts_source=source,
        records=tuple(records),
    )


AUDIT_STATISTICS = (
    Statistic(
        "rho",
        "rank-biserial correlation = 2·AUC − 1 between confidence and behavioural label; "
        "0 is chance, < 0 means the model prefers the undesired text",
    ),
    Statistic("95% CI (rho)", "paired percentile bootstrap over probes (2000 resamples, the run's seed)"),
    Statistic("95% CI (rates)", "Wilson score interval"),
    Statistic("paired accuracy", "share of pairs with gap > 0 (the model prefers the desired text)"),
    Statistic("mean gap", "mean of confidence(positive) − confidence(negative), in nats"),
    Statistic(
        "status",
        "PASS / WARN / FAIL by the dimension's thresholds; CHANCE when the CI of rho "
        "contains 0, INVERTED when it lies below 0, MEASURED when the dimension's figure is "
        "descriptive (no threshold applies), ERROR when nothing was scored",
    ),
)


def build_audit_card(store: RunStore, run_id: str, texts: ProbeTexts | None = None) -> AuditCard:
    """The audit card of one run, from the store."""
    run = audit_run(store, run_id)
    texts = texts or _no_texts
    header = header_with_provenance(store, run)
    rows, sections = [], []
    results = store.results(run.run_id)
    for result in results:
        row = dimension_row(result)
        records = store.probe_records(run.run_id, row.dimension)
        row = _with_errors(row, records)
        rows.append(row)
        sections.append(build_section(row, records, texts))
    adapter = f" + {Path(header.adapter).name}" if header.adapter else ""
    done = {row.dimension for row in rows}
    ood = pooled_of_results(results)
    return AuditCard(
        title=f"Audit card: {header.model}{adapter}",
        header=header,
        rows=tuple(rows),
        sections=tuple(sections),
        figures=_audit_figures(rows),
        statistics=AUDIT_STATISTICS + ((Statistic("OOD pooled accuracy", POOLED_ACCURACY),) if ood else ()),
        judge_usage=judge_usage_rows(store, run.run_id),
        missing=tuple(p.dimension for p in header.probe_sets if p.dimension not in done),
        ood=ood,
    )


def _with_errors(row: DimensionRow, records: Sequence[Mapping[str, Any]]) -> DimensionRow:
    return replace(row, n_errors=sum(1 for r in records if r.get("error")))


def _audit_figures(rows: Sequence[DimensionRow]) -> tuple[Figure, ...]:
    figures = []
    rho = [
        charts.CIBar(r.dimension, r.score, r.ci_low, r.ci_high) for r in rows if r.metric == "rank_biserial"
    ]
    if rho:
        title = "rho per dimension with 95% bootstrap CI"
        chart = charts.ci_bar_chart(rho, "rho (rank-biserial, −1 to 1; 0 = chance)", title, (-1.0, 1.0))
        figures.append(
            Figure(
                "rho-ci",
                title,
                "Bars: rho; whiskers: 95% paired bootstrap CI; dashed line: "
                "chance (0). Below 0 the model prefers the undesired text.",
                chart,
            )
        )
    rates = [
        charts.CIBar(r.dimension, r.score, r.ci_low, r.ci_high)
        for r in rows
        if r.metric in ("accuracy", "answer_rate")
    ]
    if rates:
        title = "Rates per dimension with 95% Wilson CI"
        chart = charts.ci_bar_chart(rates, "rate (share of probes, 0 to 1)", title, (0.0, 1.0))
        figures.append(
            Figure(
                "rates-ci",
                title,
                "Bars: accuracy or answer rate; whiskers: 95% Wilson score interval.",
                chart,
            )
        )
    figures += family_figures(rows)  # per-group figures with CIs (ASR per attack, P(match) per trait)
    return tuple(figures)
