"""The sweep card of a training sweep: the paper's dose-response, ablation, variance-collapse,
margin and out-of-distribution tables and figures, for the user's own cells, once per audit split
(held-out first).

This module gathers the cells of each split from the store (their audit runs, or the scores kept
in the cell when a run is gone) and groups them into conditions; the analyses are in
:mod:`rho_audit.report.sweep_analyses`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from rho_audit.api.errors import RhoAuditError
from rho_audit.report import stats as report_stats
from rho_audit.report.audit_card import judge_usage_rows, pooled_judge_usage
from rho_audit.report.budget import budget_studies
from rho_audit.report.gather import ProbeOutcome, finite_number, probe_outcomes
from rho_audit.report.ood import POOLED_ACCURACY, PooledAccuracy, pooled_of_results, pooled_of_scores
from rho_audit.report.records import (
    Ablation,
    BudgetStudy,
    ConditionStats,
    DoseResponse,
    JudgeUsage,
    MarginLevel,
    Statistic,
    SweepCard,
    SweepCell,
    SweepSplit,
)
from rho_audit.report.splits import audit_splits, ordered_splits, split_label
from rho_audit.report.sweep_analyses import SplitAnalyses, param_label
from rho_audit.report.training_losses import LOSS_CHANGE, loss_changes
from rho_audit.store import RunStore, StoredCell


def _split_entry(row: StoredCell, split: str) -> tuple[str | None, Mapping[str, Any]]:
    """(audit run id, kept scores) of ``row`` on ``split``. A cell that audits several splits
    keeps each under ``result.splits``; one that audits one split (every sweep made before
    splits could be listed) keeps it in ``audit_run_id`` and ``result.scores``."""
    by_split = row.result.get("splits")
    if isinstance(by_split, dict) and isinstance(by_split.get(split), dict):
        entry = by_split[split]
        return entry.get("audit_run_id"), entry.get("scores") or {}
    if split == audit_splits(row.spec.get("audit") or {})[0]:
        return row.audit_run_id, row.result.get("scores") or {}
    return None, {}


@dataclass(frozen=True)
class _Audit:
    """What a cell's card rows need of one of its audits."""

    scores: dict[str, float | None] = field(default_factory=dict)
    metrics: dict[str, str] = field(default_factory=dict)
    pooled: tuple[PooledAccuracy, ...] = ()
    secondary: dict[str, dict[str, float | None]] = field(default_factory=dict)
    trends: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _audit_of(store: RunStore, run_id: str | None, kept: Mapping[str, Any]) -> _Audit:
    """From the audit run when it is in the store, else from what the cell kept of it (headline
    scores only)."""
    results = store.results(run_id) if run_id else []
    if results:
        evs = {str(r["dimension"]): r.get("evaluation") or {} for r in results}
        return _Audit(
            {d: finite_number(ev.get("score")) for d, ev in evs.items()},
            {d: str(ev.get("metric", "")) for d, ev in evs.items()},
            pooled_of_results(results),
            {
                d: {str(k): finite_number(v) for k, v in (ev.get("secondary") or {}).items()}
                for d, ev in evs.items()
                if ev.get("secondary")
            },
            {d: tuple(str(t) for t in ev.get("trend") or ()) for d, ev in evs.items() if ev.get("trend")},
        )
    entries = {d: v for d, v in kept.items() if isinstance(v, dict)}
    return _Audit(
        {d: finite_number(v.get("score")) for d, v in entries.items()},
        {d: str(v.get("metric") or "") for d, v in entries.items()},
        pooled_of_scores(entries),
    )


def _sweep_cell(store: RunStore, row: StoredCell, many_models: bool, split: str) -> SweepCell:
    spec, result = row.spec, row.result
    train = spec.get("train") or {}
    grid = spec.get("grid") or {}
    baseline = spec.get("kind") == "baseline"
    params = tuple((k, v) for k, v in grid.items() if k not in ("trainer", "seed"))
    trainer = None if baseline else train.get("trainer") or grid.get("trainer")
    model_label = str(spec.get("model_label", "default"))
    if baseline:
        label = "baseline (scores)"
    else:
        label = " ".join(x for x in (str(trainer), param_label(params)) if x)
    run_id, kept = _split_entry(row, split)
    audit = _audit_of(store, run_id, kept) if row.status == "complete" else _Audit()
    return SweepCell(
        cell_id=str(row.cell_id),
        condition=str(spec.get("condition", row.cell_id)),
        label=f"{model_label}: {label}" if many_models else label,
        model_label=model_label,
        trainer=trainer,
        seed=None if baseline else train.get("seed"),
        params=params,
        status=str(row.status),
        train_run_id=row.train_run_id,
        audit_run_id=run_id if run_id else (row.audit_run_id if row.status != "complete" else None),
        scores=audit.scores,
        values={},
        final_loss=finite_number((result.get("final_metrics") or {}).get("loss")),
        final_contrastive=finite_number((result.get("final_metrics") or {}).get("contrastive_loss")),
        error=row.error,
        pooled=audit.pooled,
        metrics=audit.metrics,
        secondary=audit.secondary,
        trends=audit.trends,
    )


def _with_values(cell: SweepCell, base: SweepCell | None, trends: Sequence[tuple[str, str]]) -> SweepCell:
    """The cell with its values: each headline score, and each trend figure (``Evaluation.trend``)
    under ``DIMENSION FIGURE``, as Δ vs the model's baseline when there is one."""

    def delta(value: float | None, reference: float | None) -> float | None:
        if base is None:
            return value
        return value - reference if value is not None and reference is not None else None

    values = {d: delta(s, base.scores.get(d) if base else None) for d, s in cell.scores.items()}
    for d, fig in trends:
        mine = (cell.secondary.get(d) or {}).get(fig)
        theirs = (base.secondary.get(d) or {}).get(fig) if base else None
        values[f"{d} {fig}"] = delta(mine, theirs)
    return replace(cell, values=values)


def trend_figures(cells: Sequence[SweepCell]) -> list[tuple[str, str]]:
    """(dimension, figure) of every trend figure the cells' evaluations name, in first-seen order."""
    return list(dict.fromkeys((d, fig) for c in cells for d, figs in c.trends.items() for fig in figs))


def _cell_order(cell: SweepCell) -> tuple[Any, ...]:
    """A fixed order whatever order the store wrote the rows in: per model the baseline, then
    seed by seed, sft (the reference) first, then trainers and their settings alphabetically."""
    params = tuple(
        (k, (0, float(v), "") if isinstance(v, int | float) else (1, 0.0, str(v))) for k, v in cell.params
    )
    return (
        cell.model_label,
        cell.trainer is not None,
        cell.seed if isinstance(cell.seed, int) else -1,
        cell.trainer != "sft",
        cell.trainer or "",
        params,
        cell.cell_id,
    )


def _conditions(cells: Sequence[SweepCell], dims: Sequence[str]) -> tuple[ConditionStats, ...]:
    groups: dict[tuple[str, str], list[SweepCell]] = {}
    for c in cells:
        groups.setdefault((c.model_label, c.condition), []).append(c)
    out = []
    for (model, key), members in groups.items():
        done = [m for m in members if m.status == "complete"]
        values = {d: tuple(v for m in done if (v := m.values.get(d)) is not None) for d in dims}
        first = members[0]
        out.append(
            ConditionStats(
                key=key,
                label=first.label,
                model_label=model,
                trainer=first.trainer,
                params=first.params,
                n_total=len(members),
                seeds=tuple(m.seed for m in done),
                values=values,
                summary={d: report_stats.summarize(v) for d, v in values.items()},
            )
        )
    return tuple(out)


SWEEP_STATISTICS = (
    Statistic(
        "Δ score",
        "score of the cell's audit − score of the base model's audit (same probes, "
        "same seed); rho for pair dimensions, rates otherwise",
    ),
    Statistic("mean ± s.e.", report_stats.MEAN_SE),
    Statistic("mean ± SD", report_stats.MEAN_SD),
    Statistic("Welch p", report_stats.WELCH),
    Statistic("Cohen's d", report_stats.COHENS_D),
    Statistic("significance", report_stats.SIGNIFICANCE),
    Statistic("item-level 95% CI", report_stats.ITEM_BOOTSTRAP),
    Statistic("σ reduction", report_stats.SD_REDUCTION),
    Statistic("σ ratio", report_stats.SD_RATIO),
)
OOD_STATISTIC = Statistic("OOD pooled accuracy", POOLED_ACCURACY)
BUDGET_STATISTIC = Statistic("mean ± 95% CI", report_stats.MEAN_CI)


class _Items:
    """Probe outcomes of audit runs, read once each (the item-level CIs reuse them)."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self.cache: dict[tuple[str, str], Mapping[str, ProbeOutcome]] = {}

    def __call__(self, run_id: str, dimension: str) -> Mapping[str, ProbeOutcome]:
        key = (run_id, dimension)
        if key not in self.cache:
            self.cache[key] = probe_outcomes(self.store.probe_records(run_id, dimension))
        return self.cache[key]


def build_sweep_card(store: RunStore, sweep_id: str) -> SweepCard:
    """The sweep card of ``sweep_id`` (or a unique prefix of it), from its cells in the store."""
    found = store.find_sweep(sweep_id)
    if found is None:
        known = ", ".join(store.sweep_ids()) or "none"
        raise RhoAuditError(f"no sweep {sweep_id!r} in {store.path} (known: {known}).")
    sweep_id = found
    rows = store.cells(sweep_id)
    models = sorted({str(r.spec.get("model_label", "default")) for r in rows})
    splits = ordered_splits(s for r in rows for s in audit_splits(r.spec.get("audit") or {}))
    spec0 = rows[0].spec
    seed = (spec0.get("audit") or {}).get("seed", 0)
    items = _Items(store)
    sections = tuple(
        _split_section(
            store, rows, split, len(models) > 1, len(splits) > 1, items, seed if isinstance(seed, int) else 0
        )
        for split in splits
    )
    first = sections[0]
    train_cells = [c for c in first.cells if c.trainer is not None]
    has_ood = any(s.ood for s in sections)
    has_budget = any(s.budget for s in sections)
    training = loss_changes(store, first.cells)
    return SweepCard(
        title=f"Sweep card: {sweep_id}",
        sweep_id=sweep_id,
        models=tuple(models),
        trainers=tuple(dict.fromkeys(c.trainer for c in train_cells if c.trainer)),
        seeds=tuple(sorted({c.seed for c in train_cells if isinstance(c.seed, int)})),
        audit=_settings(_sweep_audit(rows)),
        n_cells=len(first.cells),
        n_complete=sum(1 for c in first.cells if c.status == "complete"),
        splits=sections,
        statistics=SWEEP_STATISTICS
        + ((OOD_STATISTIC,) if has_ood else ())
        + ((BUDGET_STATISTIC,) if has_budget else ())
        + ((Statistic("loss change", LOSS_CHANGE),) if training else ()),
        training=training,
        judge_usage=_judge_usage(store, sections),
    )


def _judge_usage(store: RunStore, sections: Sequence[SweepSplit]) -> tuple[JudgeUsage, ...]:
    audits = list(dict.fromkeys(c.audit_run_id for s in sections for c in s.cells if c.audit_run_id))
    return pooled_judge_usage([u for r in audits for u in judge_usage_rows(store, r)], len(audits))


def _split_section(
    store: RunStore,
    rows: Sequence[StoredCell],
    split: str,
    many_models: bool,
    many_splits: bool,
    items: _Items,
    seed: int,
) -> SweepSplit:
    cells = sorted((_sweep_cell(store, r, many_models, split) for r in rows), key=_cell_order)
    dims = list(dict.fromkeys(d for c in cells for d in c.scores))
    base_cells = {c.model_label: c for c in cells if c.trainer is None and c.status == "complete"}
    baselines = {m: c.scores for m, c in base_cells.items()}
    value_label = "Δ score vs baseline" if baselines else "score"
    trends = trend_figures(cells)
    cells = [
        _with_values(c, base_cells.get(c.model_label), trends) if c.trainer is not None else c for c in cells
    ]
    train_cells = [c for c in cells if c.trainer is not None]
    trend_labels = [f"{d} {fig}" for d, fig in trends]
    conditions = _conditions(train_cells, [*dims, *trend_labels])
    analyses = SplitAnalyses(
        train_cells, conditions, dims, value_label, split if many_splits else "", items, seed, trend_labels
    )
    dose = analyses.dose_responses()
    ablations = analyses.ablations()
    margin = analyses.margins()
    budget = budget_studies(analyses, base_cells)
    return SweepSplit(
        split=split,
        heading=f" — {split_label(split)}" if many_splits else "",
        tag=split if many_splits else "",
        dimensions=tuple(dims),
        baselines=baselines,
        value_label=value_label,
        cells=tuple(cells),
        conditions=conditions,
        dose=dose,
        ablations=ablations,
        variances=analyses.variances(),
        margin=margin,
        margin_figures=analyses.margin_figures(),
        ood=analyses.ood_tables(base_cells),
        secondary=analyses.secondary_tables(base_cells),
        not_shown=_not_shown(conditions, dose, ablations, margin, baselines, budget),
        budget=budget,
    )


def _sweep_audit(rows: Sequence[StoredCell]) -> dict[str, Any]:
    """The sweep's audit block: the first cell's, with the personas of all its cells (each cell of
    a ``personas:`` axis holds its own ``persona``)."""
    audit = dict(rows[0].spec.get("audit") or {})
    personas = [a["persona"] for r in rows if (a := r.spec.get("audit") or {}).get("persona")]
    if audit.pop("persona", None) is not None:
        audit["personas"] = list(dict.fromkeys(personas))
    return audit


def _settings(audit: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The audit block of the sweep as (key, text): lists joined, None shown as 'all'."""

    def text(value: Any) -> str:
        if value is None:
            return "all"
        return ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)

    return tuple((k, text(v)) for k, v in sorted(audit.items()))


def _not_shown(
    conditions: Sequence[ConditionStats],
    dose: Sequence[DoseResponse],
    ablations: Sequence[Ablation],
    margin: Sequence[MarginLevel],
    baselines: Mapping[str, Any],
    budget: Sequence[BudgetStudy] = (),
) -> tuple[str, ...]:
    """Why a paper artefact is missing, so an empty section never looks like a bug."""
    out = []
    if not baselines:
        out.append("Deltas: no complete baseline cell, so raw scores are shown instead of Δ.")
    if not dose and budget:
        out.append(
            "Dose-response: no numeric option (such as λ) other than the token budget takes two or more "
            "values in this sweep; the token budget has its own section, across trainers."
        )
    elif not dose and margin:
        out.append(
            "Dose-response: no numeric option (such as λ) other than the margin γ takes two or more values "
            "in this sweep; the margin has its own section."
        )
    elif not dose:
        out.append("Dose-response: no numeric option (such as λ) takes two or more values in this sweep.")
    if not ablations:
        out.append("Ablation: the sweep has a single trainer; it needs two or more (with sft as reference).")
    if not margin:
        out.append("Margin ablation: the margin γ takes a single value in this sweep.")
    if conditions and max(len(c.seeds) for c in conditions) < 2:
        out.append(
            "Seed statistics (SD, s.e., Welch's t-test, Cohen's d) and the variance section: every condition "
            "has fewer than 2 complete seeds."
        )
    return tuple(out)
