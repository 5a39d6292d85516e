"""The token-budget study of a sweep card: when the grid varies ``budget_tokens``, each audited
dimension's score against the budget (response tokens of the SFT data stream), one line per
objective (the trainer and its other settings), as in the six-objectives study.

Unlike a dose-response (one figure per trainer, Δ vs the baseline), the objectives share a figure,
so a budget at which one objective overtakes another shows as a crossing, and the y axis is the
audit's own score with the untrained model's score as a reference line. Points are the mean over
seeds with the 95% t-interval (:func:`rho_audit.report.stats.t_half_width`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rho_audit.report import charts
from rho_audit.report import stats as report_stats
from rho_audit.report.records import (
    METRIC_LABEL,
    BudgetLevel,
    BudgetStudy,
    ConditionStats,
    Figure,
    SweepCell,
)
from rho_audit.report.sweep_analyses import BUDGET_KEY, SplitAnalyses, param_label, varying_values

BASELINE_LABEL = "untrained baseline"


def token_label(tokens: float) -> str:
    """A token count as the axis writes it: 25000 -> '25k', 1500000 -> '1.5M', 800 -> '800'."""
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(tokens) >= size:
            return f"{tokens / size:g}{suffix}"
    return f"{tokens:g}"


def budget_studies(analyses: SplitAnalyses, baselines: Mapping[str, SweepCell]) -> tuple[BudgetStudy, ...]:
    """One study per model whose cells take two or more token budgets; () when the sweep's grid
    does not vary ``budget_tokens``."""
    if len(varying_values(analyses.conditions, BUDGET_KEY)) < 2:
        return ()

    def build(conditions: list[ConditionStats], model: str | None) -> BudgetStudy | None:
        base = baselines.get(conditions[0].model_label)
        return _study(analyses, conditions, model, base)

    return analyses.per_model(build)


@dataclass(frozen=True)
class _Column:
    """A quantity the study plots: a dimension's headline (``figure`` None) or one of the
    secondary figures its evaluation names in ``trend``."""

    dimension: str
    figure: str | None = None

    @property
    def label(self) -> str:
        return f"{self.dimension} {self.figure}" if self.figure else self.dimension

    def value(self, cell: SweepCell) -> float | None:
        if self.figure is None:
            return cell.scores.get(self.dimension)
        return (cell.secondary.get(self.dimension) or {}).get(self.figure)


def _columns(analyses: SplitAnalyses) -> tuple[_Column, ...]:
    trends: dict[str, dict[str, None]] = {}
    for cell in analyses.cells:
        for d, names in cell.trends.items():
            trends.setdefault(d, {}).update(dict.fromkeys(names))
    headline = [_Column(d) for d in analyses.dims]
    return tuple(headline + [_Column(d, f) for d in analyses.dims for f in trends.get(d, {})])


def _budget(condition: ConditionStats) -> int | None:
    value = dict(condition.params).get(BUDGET_KEY)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _study(
    analyses: SplitAnalyses,
    conditions: Sequence[ConditionStats],
    model: str | None,
    base: SweepCell | None,
) -> BudgetStudy | None:
    members = [c for c in conditions if _budget(c) is not None]
    budgets = tuple(sorted({b for c in members if (b := _budget(c)) is not None}))
    if len(budgets) < 2:
        return None
    columns = _columns(analyses)
    baseline = {col.label: col.value(base) for col in columns} if base else {}
    unsorted = [_level(analyses, c, columns) for c in members]
    objectives = tuple(dict.fromkeys(lv.objective for lv in unsorted))
    levels = tuple(sorted(unsorted, key=lambda lv: (objectives.index(lv.objective), lv.budget)))
    figures = tuple(
        _figure(analyses, levels, objectives, col, model, baseline.get(col.label)) for col in columns
    )
    labels = tuple(col.label for col in columns)
    return BudgetStudy(model or "", objectives, budgets, levels, baseline, figures, labels)


def _level(analyses: SplitAnalyses, condition: ConditionStats, columns: Sequence[_Column]) -> BudgetLevel:
    """The condition's raw values over its complete seeds (its ``values`` are Δ when there is a
    baseline; here the baseline is a line of its own)."""
    cells = [
        c
        for c in analyses.cells
        if (c.model_label, c.condition) == (condition.model_label, condition.key) and c.status == "complete"
    ]
    scores = {
        col.label: report_stats.summarize([v for c in cells if (v := col.value(c)) is not None])
        for col in columns
    }
    rest = tuple((k, v) for k, v in condition.params if k != BUDGET_KEY)
    objective = " ".join(x for x in (str(condition.trainer), param_label(rest)) if x)
    budget = _budget(condition)
    assert budget is not None  # members have a budget
    return BudgetLevel(
        objective,
        budget,
        condition,
        scores,
        {label: report_stats.t_half_width(s) for label, s in scores.items()},
    )


def _figure(
    analyses: SplitAnalyses,
    levels: Sequence[BudgetLevel],
    objectives: Sequence[str],
    column: _Column,
    model: str | None,
    baseline: float | None,
) -> Figure:
    label = column.label
    series = [
        charts.LineSeries(
            objective,
            tuple(
                charts.LinePoint(lv.budget, lv.scores[label].mean, lv.half_ci[label])
                for lv in levels
                if lv.objective == objective
            ),
        )
        for objective in objectives
    ]
    dimension = column.dimension
    metric = column.figure or next((m for c in analyses.cells if (m := c.metrics.get(dimension))), "")
    y_label = f"{dimension} ({METRIC_LABEL.get(metric, metric)})" if metric else f"{dimension} score"
    of = f", {model} model" if model else ""
    title = f"{label}: score vs training budget{of}"
    chart = charts.line_chart(
        series,
        "training budget (SFT response tokens, budget_tokens; log scale)",
        y_label,
        title,
        log_x=True,
        x_tick_label=token_label,
        error="95% t-interval over seeds",
        reference=charts.Reference(baseline, BASELINE_LABEL) if baseline is not None else None,
    )
    caption = (
        "Points: the audit's score (not Δ), mean over seeds; bars: 95% t-interval over seeds (none "
        "with one seed); one line per objective"
        + ("; dotted line: the untrained base model's score" if baseline is not None else "")
        + ". x: the budget, response tokens of the SFT data stream every objective walks (log scale, "
        "a tick at each budget of the grid)."
    )
    return Figure(analyses.fig_name("budget", dimension, column.figure, model), title, caption, chart)
