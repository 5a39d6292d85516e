"""The sweep card of a training sweep: the paper's dose-response, ablation, variance-collapse and
margin tables and figures, for the user's own cells."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from rho_audit._util.naming import OPTION_SYMBOLS, slug
from rho_audit.api.errors import RhoAuditError
from rho_audit.report import charts
from rho_audit.report import stats as report_stats
from rho_audit.report.gather import finite_number
from rho_audit.report.records import (
    Ablation,
    ConditionStats,
    Contrast,
    DoseLevel,
    DoseResponse,
    Figure,
    MarginLevel,
    Statistic,
    SweepCard,
    SweepCell,
    VarianceCollapse,
    VarianceRow,
)
from rho_audit.store import RunStore, StoredCell


def _param_label(params: Iterable[tuple[str, Any]]) -> str:
    parts = []
    for key, value in params:
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        parts.append(f"{OPTION_SYMBOLS.get(key, key)}={shown}")
    return " ".join(parts)


def _cell_scores(store: RunStore, row: StoredCell) -> dict[str, float | None]:
    """Scores from the cell's audit run when it is in the store, else from the cell's result."""
    if row.audit_run_id:
        results = store.results(row.audit_run_id)
        if results:
            return {r["dimension"]: finite_number((r.get("evaluation") or {}).get("score")) for r in results}
    return {d: finite_number(s.get("score")) for d, s in (row.result.get("scores") or {}).items()}


def _sweep_cell(store: RunStore, row: StoredCell, many_models: bool) -> SweepCell:
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
        label = " ".join(x for x in (str(trainer), _param_label(params)) if x)
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
        audit_run_id=row.audit_run_id,
        scores=_cell_scores(store, row) if row.status == "complete" else {},
        values={},
        final_loss=finite_number((result.get("final_metrics") or {}).get("loss")),
        final_contrastive=finite_number((result.get("final_metrics") or {}).get("contrastive_loss")),
        error=row.error,
    )


def _with_values(cell: SweepCell, baseline: Mapping[str, float | None] | None) -> SweepCell:
    if baseline is None:
        return replace(cell, values=dict(cell.scores))
    values = {
        d: (s - baseline[d]) if s is not None and baseline.get(d) is not None else None
        for d, s in cell.scores.items()
    }
    return replace(cell, values=values)


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


def _varying(conditions: Sequence[ConditionStats], key: str) -> list[Any]:
    values = {dict(c.params)[key] for c in conditions if key in dict(c.params)}
    return sorted(v for v in values if isinstance(v, int | float) and not isinstance(v, bool))


def _dose_responses(
    conditions: Sequence[ConditionStats], dims: Sequence[str], value_label: str
) -> tuple[DoseResponse, ...]:
    """One dose-response per (model, trainer, other settings) whose cells vary a numeric option
    (λ first); the margin has its own table, as in the paper."""
    keys = sorted(
        {k for c in conditions for k, _ in c.params if k not in ("margin",)}, key=lambda k: (k != "lambda", k)
    )
    out = []
    for key in keys:
        if len(_varying(conditions, key)) < 2:
            continue
        groups: dict[tuple[Any, ...], list[ConditionStats]] = {}
        for c in conditions:
            params = dict(c.params)
            if key in params and isinstance(params[key], int | float):
                rest = tuple((k, v) for k, v in c.params if k != key)
                groups.setdefault((c.model_label, c.trainer, rest), []).append(c)
        for (model, trainer, rest), members in groups.items():
            if len({dict(m.params)[key] for m in members}) < 2:
                continue
            levels = tuple(
                sorted((DoseLevel(float(dict(m.params)[key]), m) for m in members), key=lambda lv: lv.x)
            )
            name = " ".join(x for x in (str(trainer), _param_label(rest)) if x)
            out.append(_dose(key, name, model, levels, dims, value_label))
    return tuple(out)


def _dose(
    key: str, name: str, model: str, levels: tuple[DoseLevel, ...], dims: Sequence[str], value_label: str
) -> DoseResponse:
    symbol = OPTION_SYMBOLS.get(key, key)
    series = [
        charts.LineSeries(
            d,
            tuple(
                charts.LinePoint(lv.x, lv.condition.summary[d].mean, lv.condition.summary[d].se)
                for lv in levels
            ),
        )
        for d in dims
    ]
    title = f"Dose-response: {value_label} vs {symbol} ({name}, {model} model)"
    chart = charts.line_chart(
        series,
        f"{symbol} ({key}, weight of the contrastive term)" if key == "lambda" else f"{symbol} ({key})",
        value_label,
        title,
    )
    caption = (
        f"Mean over seeds ± standard error per dimension; dashed line: 0 (no change from the "
        f"baseline). Each point is one {symbol} value."
    )
    return DoseResponse(
        key,
        symbol,
        name,
        levels,
        Figure(f"dose-{slug(key)}-{slug(name)}-{slug(model)}", title, caption, chart),
    )


def _reference(conditions: Sequence[ConditionStats]) -> ConditionStats | None:
    """SFT is the paper's reference for every contrast; without it, the first condition."""
    return next((c for c in conditions if c.trainer == "sft"), conditions[0] if conditions else None)


def _ablation(
    conditions: Sequence[ConditionStats], dims: Sequence[str], value_label: str, model: str | None
) -> Ablation | None:
    if len({c.trainer for c in conditions}) < 2:
        return None
    ref = _reference(conditions)
    assert ref is not None
    contrasts = tuple(
        Contrast(c.label, d, report_stats.welch_test(c.values[d], ref.values[d]))
        for c in conditions
        if c is not ref
        for d in dims
    )
    marks = {(x.condition, x.dimension): x.test.marks for x in contrasts}
    series = [
        charts.BarSeries(
            c.label,
            tuple(
                charts.Bar(c.summary[d].mean, c.summary[d].sd, _mark(marks.get((c.label, d), "")))
                for d in dims
            ),
        )
        for c in conditions
    ]
    title = f"Ablation: {value_label} per condition (mean ± SD over seeds){_of(model)}"
    chart = charts.grouped_bar_chart(list(dims), series, value_label, title)
    caption = (
        f"Bars: mean over seeds; whiskers: ± 1 sample SD; marks: Welch's t-test vs {ref.label} "
        f"({report_stats.SIGNIFICANCE})."
    )
    figure = Figure(_fig_name("ablation", model), title, caption, chart)
    return Ablation(model or "", ref, tuple(conditions), contrasts, figure)


def _mark(marks: str) -> str:
    return "" if marks == "n.s." else marks


def _variance(
    conditions: Sequence[ConditionStats], dims: Sequence[str], value_label: str, model: str | None
) -> VarianceCollapse | None:
    if len(conditions) < 2 or max(len(c.seeds) for c in conditions) < 2:
        return None  # σ needs two seeds; the card says so under "Not shown"
    ref = _reference(conditions)
    assert ref is not None
    rows = tuple(
        VarianceRow(
            c.label,
            d,
            c.summary[d].n,
            c.summary[d].sd,
            None if c is ref else report_stats.sd_reduction(c.summary[d].sd, ref.summary[d].sd),
        )
        for d in dims
        for c in conditions
    )
    series = [charts.BoxSeries(c.label, tuple(c.values[d] for d in dims)) for c in conditions]
    title = f"Variance across seeds: {value_label} per condition{_of(model)}"
    chart = charts.box_plot_chart(list(dims), series, value_label, title)
    caption = (
        "Points: one seed each; boxes: quartiles with the median; whiskers: furthest seed within "
        f"1.5 IQR. σ: sample SD over seeds; reduction relative to {ref.label}."
    )
    return VarianceCollapse(
        model or "", ref, rows, Figure(_fig_name("variance", model), title, caption, chart)
    )


def _of(model: str | None) -> str:
    return f" ({model} model)" if model else ""


def _fig_name(kind: str, model: str | None) -> str:
    return f"{kind}-{slug(model)}" if model else kind


def _per_model(
    build: Callable[..., Any], conditions: Sequence[ConditionStats], dims: Sequence[str], value_label: str
) -> tuple[Any, ...]:
    """One ablation (or variance table) per model: a condition is only compared with the
    reference trained on the same base model."""
    models = list(dict.fromkeys(c.model_label for c in conditions))
    out = []
    for model in models:
        mine = [c for c in conditions if c.model_label == model]
        built = build(mine, dims, value_label, model if len(models) > 1 else None)
        if built is not None:
            out.append(built)
    return tuple(out)


def _margins(conditions: Sequence[ConditionStats]) -> tuple[MarginLevel, ...]:
    if len(_varying(conditions, "margin")) < 2:
        return ()
    levels = [
        MarginLevel(float(dict(c.params)["margin"]), c) for c in conditions if "margin" in dict(c.params)
    ]
    return tuple(sorted(levels, key=lambda lv: (lv.margin, lv.condition.label)))


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
    Statistic("σ reduction", report_stats.SD_REDUCTION),
)


def build_sweep_card(store: RunStore, sweep_id: str) -> SweepCard:
    """The sweep card of ``sweep_id`` (or a unique prefix of it), from its cells in the store."""
    found = store.find_sweep(sweep_id)
    if found is None:
        known = ", ".join(store.sweep_ids()) or "none"
        raise RhoAuditError(f"no sweep {sweep_id!r} in {store.path} (known: {known}).")
    sweep_id = found
    rows = store.cells(sweep_id)
    models = sorted({str(r.spec.get("model_label", "default")) for r in rows})
    cells = sorted((_sweep_cell(store, r, len(models) > 1) for r in rows), key=_cell_order)
    dims = list(dict.fromkeys(d for c in cells for d in c.scores))
    baselines = {c.model_label: c.scores for c in cells if c.trainer is None and c.status == "complete"}
    value_label = "Δ score vs baseline" if baselines else "score"
    cells = [_with_values(c, baselines.get(c.model_label)) if c.trainer is not None else c for c in cells]
    train_cells = [c for c in cells if c.trainer is not None]
    conditions = _conditions(train_cells, dims)
    spec0 = rows[0].spec
    dose = _dose_responses(conditions, dims, value_label)
    ablations = _per_model(_ablation, conditions, dims, value_label)
    variances = _per_model(_variance, conditions, dims, value_label)
    margin = _margins(conditions)
    return SweepCard(
        title=f"Sweep card: {sweep_id}",
        sweep_id=sweep_id,
        models=tuple(models),
        trainers=tuple(dict.fromkeys(c.trainer for c in train_cells if c.trainer)),
        seeds=tuple(sorted({c.seed for c in train_cells if isinstance(c.seed, int)})),
        audit=_settings(spec0.get("audit") or {}),
        dimensions=tuple(dims),
        baselines=baselines,
        value_label=value_label,
        n_cells=len(cells),
        n_complete=sum(1 for c in cells if c.status == "complete"),
        cells=tuple(cells),
        conditions=conditions,
        dose=dose,
        ablations=ablations,
        variances=variances,
        margin=margin,
        not_shown=_not_shown(conditions, dose, ablations, margin, baselines),
        statistics=SWEEP_STATISTICS,
    )


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
) -> tuple[str, ...]:
    """Why a paper artefact is missing, so an empty section never looks like a bug."""
    out = []
    if not baselines:
        out.append("Deltas: no complete baseline cell, so raw scores are shown instead of Δ.")
    if not dose:
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
