"""The comparison card: every run after the first against the first, on the probes both scored,
with a paired bootstrap CI of each difference and McNemar's test."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from rho_audit._util.naming import slug
from rho_audit.api.errors import RhoAuditError
from rho_audit.report import charts
from rho_audit.report import stats as report_stats
from rho_audit.report.audit_card import judge_usage_rows
from rho_audit.report.gather import ProbeOutcome, audit_run, dimension_row, probe_outcomes
from rho_audit.report.provenance import header_with_provenance
from rho_audit.report.records import Comparison, ComparisonCard, DeltaRow, Figure, RunHeader, Statistic
from rho_audit.report.stats import PairedDifference
from rho_audit.store import RunStore

RATE_METRICS = ("accuracy", "answer_rate")
PAIRED_METRICS = ("rank_biserial", *RATE_METRICS)


def paired_difference(
    metric: str, before: Mapping[str, ProbeOutcome], after: Mapping[str, ProbeOutcome], seed: int
) -> tuple[PairedDifference, float | None, float | None]:
    """The paired test of one dimension, plus paired accuracy before/after on the shared probes."""
    ids = sorted(set(before) & set(after))
    flags = [
        (before[i].correct, after[i].correct)
        for i in ids
        if before[i].correct is not None and after[i].correct is not None
    ]
    mcnemar = report_stats.mcnemar_exact([a for a, _ in flags], [b for _, b in flags]) if flags else None
    acc_a = float(np.mean([a for a, _ in flags])) if flags else None
    acc_b = float(np.mean([b for _, b in flags])) if flags else None
    if metric == "rank_biserial":
        pairs = [
            i
            for i in ids
            if None not in (before[i].positive, before[i].negative, after[i].positive, after[i].negative)
        ]
        pa = (np.array([before[i].positive for i in pairs]), np.array([before[i].negative for i in pairs]))
        pb = (np.array([after[i].positive for i in pairs]), np.array([after[i].negative for i in pairs]))
        delta, low, high = report_stats.rho_difference(pa, pb, seed)
        score_a = _rho(pa) if len(pairs) >= 2 else None
        score_b = _rho(pb) if len(pairs) >= 2 else None
        n = len(pairs)
    elif metric in RATE_METRICS:
        a = np.array([x for x, _ in flags], dtype=float)
        b = np.array([y for _, y in flags], dtype=float)
        delta, low, high = report_stats.rate_difference(a, b, seed)
        score_a, score_b, n = acc_a, acc_b, len(flags)
    else:
        # A plugin's own metric: its direction and resampling unit are unknown here, so no test
        # is claimed; the caller shows the stored scores.
        note = f"no paired test for metric {metric!r}: stored scores shown"
        return (
            PairedDifference(len(ids), None, None, None, None, None, report_stats.NOT_TESTED, mcnemar, note),
            acc_a,
            acc_b,
        )
    note = "" if n >= 2 else "fewer than 2 probes scored in both runs"
    diff = PairedDifference(
        n, score_a, score_b, delta, low, high, report_stats.verdict_for(low, high), mcnemar, note
    )
    return diff, acc_a, acc_b


def _rho(pair: tuple[np.ndarray, np.ndarray]) -> float:
    from rho_audit.audit.metrics import rank_biserial

    return float(rank_biserial(pair[0], pair[1]))


def _compare(store: RunStore, ref: RunHeader, other: RunHeader, seed: int) -> Comparison:
    ref_results = {r["dimension"]: dimension_row(r) for r in store.results(ref.run_id)}
    rows = []
    for result in store.results(other.run_id):
        row = dimension_row(result)
        base = ref_results.get(row.dimension)
        if base is None:
            continue
        if base.metric != row.metric or base.probe_set != row.probe_set:
            note = f"not comparable: {base.probe_set} ({base.metric}) vs {row.probe_set} ({row.metric})"
            rows.append(
                DeltaRow(
                    row.dimension,
                    row.metric,
                    PairedDifference(0, None, None, None, None, None, report_stats.NOT_TESTED, None, note),
                    None,
                    None,
                )
            )
            continue
        before = probe_outcomes(store.probe_records(ref.run_id, row.dimension))
        after = probe_outcomes(store.probe_records(other.run_id, row.dimension))
        diff, acc_a, acc_b = paired_difference(row.metric, before, after, seed)
        if diff.before is None and diff.after is None and row.metric not in PAIRED_METRICS:
            delta = row.score - base.score if row.score is not None and base.score is not None else None
            diff = replace(diff, before=base.score, after=row.score, delta=delta)
        if base.probe_set_version != row.probe_set_version:
            diff = _annotate(
                diff,
                f"probe set versions differ ({base.probe_set_version} vs "
                f"{row.probe_set_version}); paired on shared ids",
            )
        rows.append(DeltaRow(row.dimension, row.metric, diff, acc_a, acc_b))
    return Comparison(ref, other, tuple(rows), None)


def _annotate(diff: PairedDifference, note: str) -> PairedDifference:
    return replace(diff, note="; ".join(x for x in (diff.note, note) if x))


def _tested(rows: Sequence[DeltaRow]) -> list[DeltaRow]:
    return [r for r in rows if r.diff.ci_low is not None]  # the chart shows what was tested


def shared_domain(comparisons: Sequence[Comparison]) -> tuple[float, float] | None:
    """One x-range for every panel of a card (each Δ and its CI, and 0), so bars of different
    panels can be compared by length; None when nothing was tested."""
    values = [
        v
        for c in comparisons
        for r in _tested(c.rows)
        for v in (r.diff.delta, r.diff.ci_low, r.diff.ci_high)
        if v is not None
    ]
    return charts.data_domain(values) if values else None


def _delta_figure(
    comparison: Comparison, domain: tuple[float, float] | None, label_chars: int, panels: int
) -> Figure | None:
    ref, other = comparison.reference, comparison.other
    bars = [
        charts.CIBar(r.dimension, r.diff.delta, r.diff.ci_low, r.diff.ci_high)
        for r in _tested(comparison.rows)
    ]
    if not bars:
        return None
    title = f"Change after − before ({other.run_id} vs {ref.run_id})"
    chart = charts.ci_bar_chart(
        bars, "difference in score (rho or rate; 0 = no change)", title, domain, label_chars
    )
    caption = (
        "Bars: difference on the probes both runs scored; whiskers: 95% paired bootstrap CI. "
        "A whisker clear of the dashed 0 line is a significant change."
    )
    if panels > 1:
        caption += " Every panel of this card has the same x-scale, so bars compare across panels."
    return Figure(f"delta-{slug(other.run_id)}", title, caption, chart)


COMPARISON_STATISTICS = (
    Statistic("Δ", "score(after) − score(before), both computed on the probes scored in both runs"),
    Statistic("95% CI of Δ", report_stats.PAIRED_BOOTSTRAP),
    Statistic("McNemar", report_stats.MCNEMAR),
    Statistic("verdict", report_stats.VERDICT_RULE),
    Statistic("accuracy before → after", "share of shared probes answered right (pairs: gap > 0)"),
)


def build_comparison_card(store: RunStore, run_ids: Sequence[str], seed: int | None = None) -> ComparisonCard:
    """Every run after the first compared with the first (the reference: "before")."""
    if len(run_ids) < 2:
        raise RhoAuditError("a comparison needs at least two runs (the first is the reference).")
    runs = [header_with_provenance(store, audit_run(store, r)) for r in run_ids]
    seed = runs[0].seed if seed is None else seed
    comparisons = tuple(_compare(store, runs[0], other, seed) for other in runs[1:])
    domain = shared_domain(comparisons)
    label_chars = max((len(r.dimension) for c in comparisons for r in _tested(c.rows)), default=0)
    comparisons = tuple(
        replace(c, figure=_delta_figure(c, domain, label_chars, len(comparisons))) for c in comparisons
    )
    return ComparisonCard(
        title=f"Comparison card: {len(runs)} runs of {runs[0].model}",
        runs=tuple(runs),
        comparisons=comparisons,
        statistics=COMPARISON_STATISTICS,
        seed=seed,
        judge_usage=tuple(u for r in runs for u in judge_usage_rows(store, r.run_id)),
    )
