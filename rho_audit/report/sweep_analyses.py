"""The analyses of a sweep card, for one audit split: dose-response, ablation contrasts (seed-level
Welch tests and item-level paired bootstrap CIs), variance across seeds, the margin table, and the
pooled accuracy of the extra probe sets (the paper's Tables 1-5 and 8 and Figure 1).

:mod:`rho_audit.report.sweep_card` gathers the cells and conditions from the store and hands them
to :class:`SplitAnalyses`; every builder here is a function of those records (plus the probe
records of the cells' audits, read through ``items``, for the item-level CIs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rho_audit._util.naming import OPTION_SYMBOLS, param_label, slug
from rho_audit.report import charts
from rho_audit.report import stats as report_stats
from rho_audit.report.gather import ProbeOutcome
from rho_audit.report.ood import PooledAccuracy
from rho_audit.report.records import (
    Ablation,
    ConditionStats,
    Contrast,
    DoseLevel,
    DoseResponse,
    Figure,
    MarginLevel,
    OodLevel,
    OodTable,
    SecondaryRow,
    SecondaryTable,
    SweepCell,
    VarianceCollapse,
    VarianceRow,
)
from rho_audit.report.stats import PairedDifference

#: The paper's Table 5 contrasts besides "each condition vs sft": (condition's trainer, the
#: trainer it is compared with). Conditions are paired when they agree on every setting both have.
PAPER_CONTRASTS = (("shuffled", "rho-guided"), ("rho-guided", "contrastive-only"))

#: The grid key of the token budget: its cells are compared across trainers
#: (:mod:`rho_audit.report.budget`), so it has no dose-response per trainer.
BUDGET_KEY = "budget_tokens"

#: (audit run id, dimension) -> probe id -> outcome; {} when the run or its records are gone.
ItemLoader = Callable[[str, str], Mapping[str, ProbeOutcome]]


def reference(conditions: Sequence[ConditionStats]) -> ConditionStats | None:
    """SFT is the paper's reference; in a dose-response without it, λ = 0 (SFT on the same
    data stream); else the first condition."""
    return next(
        (c for c in conditions if c.trainer == "sft"),
        next(
            (c for c in conditions if dict(c.params).get("lambda") == 0),
            conditions[0] if conditions else None,
        ),
    )


def varying_values(conditions: Sequence[ConditionStats], key: str) -> list[Any]:
    """The distinct numeric values ``key`` takes among ``conditions``, ascending."""
    values = {dict(c.params)[key] for c in conditions if key in dict(c.params)}
    return sorted(v for v in values if isinstance(v, int | float) and not isinstance(v, bool))


def _mark(marks: str) -> str:
    return "" if marks == "n.s." else marks


def _of(model: str | None) -> str:
    return f" ({model} model)" if model else ""


@dataclass
class SplitAnalyses:
    """The analyses of one split's conditions. ``tag`` ("" with one split) keeps figure names
    unique across splits; ``seed`` seeds the item-level bootstrap (the audits' own seed)."""

    cells: Sequence[SweepCell]
    conditions: Sequence[ConditionStats]
    dims: Sequence[str]
    value_label: str
    tag: str
    items: ItemLoader
    seed: int = 0
    #: ``DIMENSION FIGURE`` of the figures evaluations name in ``trend``: plotted in the
    #: dose-response next to the headlines (the conditions' values and summaries hold them).
    trends: Sequence[str] = ()

    def fig_name(self, kind: str, *parts: str | None) -> str:
        return "-".join([kind, *(slug(p) for p in parts if p), *([self.tag] if self.tag else [])])

    def per_model(self, build: Callable[[list[ConditionStats], str | None], Any]) -> tuple[Any, ...]:
        """One table per model: a condition is only compared with conditions of its own model."""
        models = list(dict.fromkeys(c.model_label for c in self.conditions))
        out = []
        for model in models:
            built = build(
                [c for c in self.conditions if c.model_label == model], model if len(models) > 1 else None
            )
            if built is not None:
                out.append(built)
        return tuple(out)

    # -- dose-response and margin ------------------------------------------------------------

    def dose_responses(self) -> tuple[DoseResponse, ...]:
        """One dose-response per (model, trainer, other settings) whose cells vary a numeric
        option (λ first); the margin has its own table, as in the paper, and the token budget its
        own figures across trainers."""
        conditions = self.conditions
        keys = sorted(
            {k for c in conditions for k, _ in c.params if k not in ("margin", BUDGET_KEY)},
            key=lambda k: (k != "lambda", k),
        )
        return tuple(d for key in keys for d in self._doses(key))

    def margin_figures(self) -> tuple[Figure, ...]:
        """The margin table's figure: each dimension's Δ against γ, one per (model, trainer,
        other settings), drawn as a dose-response is."""
        return tuple(d.figure for d in self._doses("margin"))

    def _doses(self, key: str) -> list[DoseResponse]:
        """One dose-response over ``key`` per group of conditions that differ only in it."""
        conditions = self.conditions
        if len(varying_values(conditions, key)) < 2:
            return []
        groups: dict[tuple[Any, ...], list[ConditionStats]] = {}
        for c in conditions:
            params = dict(c.params)
            if key in params and isinstance(params[key], int | float):
                rest = tuple((k, v) for k, v in c.params if k != key)
                groups.setdefault((c.model_label, c.trainer, rest), []).append(c)
        out = []
        for (model, trainer, rest), members in groups.items():
            if len({dict(m.params)[key] for m in members}) < 2:
                continue
            levels = tuple(
                sorted((DoseLevel(float(dict(m.params)[key]), m) for m in members), key=lambda lv: lv.x)
            )
            name = " ".join(x for x in (str(trainer), param_label(rest)) if x)
            out.append(self._dose(key, name, model, levels))
        return out

    def _dose(self, key: str, name: str, model: str, levels: tuple[DoseLevel, ...]) -> DoseResponse:
        symbol = OPTION_SYMBOLS.get(key, key)
        series = [
            charts.LineSeries(
                d,
                tuple(
                    charts.LinePoint(lv.x, lv.condition.summary[d].mean, lv.condition.summary[d].se)
                    for lv in levels
                ),
            )
            for d in [*self.dims, *self.trends]
        ]
        kind = "Margin" if key == "margin" else "Dose-response"
        title = f"{kind}: {self.value_label} vs {symbol} ({name}, {model} model)"
        axis = {
            "lambda": f"{symbol} ({key}, weight of the contrastive term)",
            "margin": f"{symbol} ({key}, hinge margin, nats per token)",
        }.get(key, f"{symbol} ({key})")
        chart = charts.line_chart(series, axis, self.value_label, title)
        caption = (
            f"Mean over seeds ± standard error per dimension; dashed line: 0 (no change from the "
            f"baseline). Each point is one {symbol} value."
        )
        parts = ("margin", name, model) if key == "margin" else ("dose", key, name, model)
        figure = Figure(self.fig_name(*parts), title, caption, chart)
        return DoseResponse(key, symbol, name, levels, figure)

    def margins(self) -> tuple[MarginLevel, ...]:
        if len(varying_values(self.conditions, "margin")) < 2:
            return ()
        levels = [
            MarginLevel(float(dict(c.params)["margin"]), c)
            for c in self.conditions
            if "margin" in dict(c.params)
        ]
        return tuple(sorted(levels, key=lambda lv: (lv.margin, lv.condition.label)))

    # -- ablation contrasts ------------------------------------------------------------------

    def ablations(self) -> tuple[Ablation, ...]:
        return self.per_model(self._ablation)

    def _ablation(self, conditions: list[ConditionStats], model: str | None) -> Ablation | None:
        if len({c.trainer for c in conditions}) < 2:
            return None
        ref = reference(conditions)
        assert ref is not None
        versus = {c.label: _matching(c, conditions, ref) for c in conditions if c is not ref}
        own = [(c, versus[c.label]) for c in conditions if c is not ref]
        matched = any(m is not ref for _, m in own)  # e.g. each objective vs sft at its own budget
        if matched:  # the reference trainer's own conditions are the references, not contrasts
            own = [(c, m) for c, m in own if c.trainer != ref.trainer]
        pairs = own + _paper_pairs(conditions, ref)
        contrasts = tuple(
            Contrast(
                a.label,
                d,
                report_stats.welch_test(a.values[d], b.values[d]),
                b.label,
                self._item_difference(a, b, d),
            )
            for a, b in pairs
            for d in self.dims
        )
        marks = {
            (x.condition, x.dimension): x.test.marks
            for x in contrasts
            if x.condition in versus and x.versus == versus[x.condition].label
        }
        series = [
            charts.BarSeries(
                c.label,
                tuple(
                    charts.Bar(c.summary[d].mean, c.summary[d].sd, _mark(marks.get((c.label, d), "")))
                    for d in self.dims
                ),
            )
            for c in conditions
        ]
        title = f"Ablation: {self.value_label} per condition (mean ± SD over seeds){_of(model)}"
        chart = charts.grouped_bar_chart(list(self.dims), series, self.value_label, title)
        against = f"the {ref.trainer} condition with the same settings" if matched else ref.label
        caption = (
            f"Bars: mean over seeds; whiskers: ± 1 sample SD; marks: Welch's t-test vs {against} "
            f"({report_stats.SIGNIFICANCE})."
        )
        figure = Figure(self.fig_name("ablation", model), title, caption, chart)
        return Ablation(model or "", ref, tuple(conditions), contrasts, figure)

    def _item_difference(self, a: ConditionStats, b: ConditionStats, dimension: str) -> PairedDifference:
        """a − b of the mean score over seeds, recomputed on resampled probes (the baseline is
        the same for both, so this is also the difference of their mean Δ)."""
        groups = [self._seed_items(c, dimension) for c in (a, b)]
        outcomes = [o for group in groups for o in group]
        if not outcomes or not all(groups):
            seeds = all(c.summary[dimension].n for c in (a, b))
            note = "no probe records of these audits in the store" if seeds else "no complete seeds yet"
            return PairedDifference(0, None, None, None, None, None, report_stats.NOT_TESTED, None, note)
        shared = sorted(set.intersection(*(set(o) for o in outcomes)))
        metric = self._metric(a, dimension)
        if metric == "rank_biserial":
            ids = [i for i in shared if all(None not in (o[i].positive, o[i].negative) for o in outcomes)]

            def aligned(o: Mapping[str, ProbeOutcome]) -> report_stats.ItemScores:
                return (
                    np.array([o[i].positive for i in ids], dtype=float),
                    np.array([o[i].negative for i in ids], dtype=float),
                )
        elif metric in ("accuracy", "answer_rate"):
            ids = [i for i in shared if all(o[i].correct is not None for o in outcomes)]

            def aligned(o: Mapping[str, ProbeOutcome]) -> report_stats.ItemScores:
                return np.array([bool(o[i].correct) for i in ids], dtype=float)
        else:
            note = f"no item-level test for metric {metric!r}"
            return PairedDifference(0, None, None, None, None, None, report_stats.NOT_TESTED, None, note)
        return report_stats.condition_difference(
            [aligned(o) for o in groups[0]], [aligned(o) for o in groups[1]], self.seed
        )

    def _seed_items(self, condition: ConditionStats, dimension: str) -> list[Mapping[str, ProbeOutcome]]:
        """The probe outcomes of each complete seed of ``condition`` that has them."""
        out = []
        for cell in self.cells:
            if (cell.model_label, cell.condition) != (condition.model_label, condition.key):
                continue
            if cell.status == "complete" and cell.audit_run_id and cell.values.get(dimension) is not None:
                found = self.items(cell.audit_run_id, dimension)
                if found:
                    out.append(found)
        return out

    def _metric(self, condition: ConditionStats, dimension: str) -> str:
        return next(
            (c.metrics.get(dimension, "") for c in self.cells if c.condition == condition.key and c.metrics),
            "",
        )

    # -- variance across seeds ---------------------------------------------------------------

    def variances(self) -> tuple[VarianceCollapse, ...]:
        return self.per_model(self._variance)

    def _variance(self, conditions: list[ConditionStats], model: str | None) -> VarianceCollapse | None:
        if len(conditions) < 2 or max(len(c.seeds) for c in conditions) < 2:
            return None  # σ needs two seeds; the card says so under "Not shown"
        ref = reference(conditions)
        assert ref is not None
        rows = tuple(
            VarianceRow(
                c.label,
                d,
                c.summary[d].n,
                c.summary[d].sd,
                None if c is ref else report_stats.sd_reduction(c.summary[d].sd, ref.summary[d].sd),
                None if c is ref else report_stats.sd_ratio(c.summary[d].sd, ref.summary[d].sd),
            )
            for d in self.dims
            for c in [ref, *(c for c in conditions if c is not ref)]
        )
        series = [charts.BoxSeries(c.label, tuple(c.values[d] for d in self.dims)) for c in conditions]
        title = f"Variance across seeds: {self.value_label} per condition{_of(model)}"
        chart = charts.box_plot_chart(list(self.dims), series, self.value_label, title)
        n_seeds = [len(c.seeds) for c in conditions]
        mean_sd = f"bar: mean; whiskers: ± 1 SD (no box: quartiles of fewer than {charts.BOX_MIN_SEEDS} seeds"
        boxes = "boxes: quartiles with the median; whiskers: furthest seed within 1.5 IQR"
        if max(n_seeds) < charts.BOX_MIN_SEEDS:
            shape = f"{mean_sd} would only restate the points)"
        elif min(n_seeds) < charts.BOX_MIN_SEEDS:
            shape = f"{boxes}; a condition with fewer seeds: {mean_sd})"
        else:
            shape = boxes
        caption = (
            f"Points: one seed each; {shape}. σ: sample SD over seeds; reduction and ratio relative "
            f"to {ref.label}."
        )
        return VarianceCollapse(
            model or "", ref, rows, Figure(self.fig_name("variance", model), title, caption, chart)
        )

    # -- pooled accuracy of the extra probe sets -----------------------------------------------

    def ood_tables(self, baselines: Mapping[str, SweepCell]) -> tuple[OodTable, ...]:
        """Per model and pair dimension with two or more extra sets: the baseline's accuracy on
        each set and pooled, then each condition's mean over seeds and its Δ from the baseline."""
        models = list(dict.fromkeys(c.model_label for c in (*baselines.values(), *self.cells)))
        out = []
        for model in models:
            base = baselines.get(model)
            mine = [c for c in self.conditions if c.model_label == model]
            dims = list(dict.fromkeys(p.dimension for c in self._model_cells(model, base) for p in c.pooled))
            for dim in dims:
                sets = tuple(
                    dict.fromkeys(s for c in self._model_cells(model, base) for s in _pooled(c, dim, ()))
                )
                base_level = _ood_level("baseline (base model)", [base] if base else [], dim, sets, None)
                rows = [base_level] if base else []
                for condition in mine:
                    members = [
                        c for c in self.cells if c.condition == condition.key and c.model_label == model
                    ]
                    rows.append(_ood_level(condition.label, members, dim, sets, base_level if base else None))
                out.append(
                    OodTable(model if len(models) > 1 else "", dim, sets, tuple(rows), base is not None)
                )
        return tuple(out)

    # -- secondary figures -------------------------------------------------------------------

    def secondary_tables(self, baselines: Mapping[str, SweepCell]) -> tuple[SecondaryTable, ...]:
        """Per model, every secondary figure any audit stored (whatever its keys), as rows; the
        baseline and each condition as columns."""
        models = list(dict.fromkeys(c.model_label for c in (*baselines.values(), *self.cells)))
        out = []
        for model in models:
            base = baselines.get(model)
            cells = self._model_cells(model, base)
            keys = list(dict.fromkeys((d, k) for c in cells for d, figs in c.secondary.items() for k in figs))
            if not keys:
                continue
            mine = [c for c in self.conditions if c.model_label == model]
            groups = [[base]] if base else []
            groups += [
                [c for c in self.cells if (c.model_label, c.condition) == (model, k.key)] for k in mine
            ]
            rows = tuple(
                SecondaryRow(
                    d,
                    k,
                    tuple(
                        report_stats.summarize(
                            [
                                v
                                for c in group
                                if c.status == "complete" and (v := c.secondary.get(d, {}).get(k)) is not None
                            ]
                        )
                        for group in groups
                    ),
                )
                for d, k in keys
            )
            columns = (("baseline",) if base else ()) + tuple(c.label for c in mine)
            out.append(SecondaryTable(model if len(models) > 1 else "", columns, rows))
        return tuple(out)

    def _model_cells(self, model: str, base: SweepCell | None) -> list[SweepCell]:
        return ([base] if base else []) + [c for c in self.cells if c.model_label == model]


def _matching(
    condition: ConditionStats, conditions: Sequence[ConditionStats], ref: ConditionStats
) -> ConditionStats:
    """What ``condition`` is compared with: the reference trainer's condition that agrees with it on
    every setting both have (sft at the same token budget), else the reference itself."""
    mine = dict(condition.params)
    for other in conditions:
        theirs = dict(other.params)
        if (
            other.trainer == ref.trainer
            and other is not ref
            and all(mine[k] == theirs[k] for k in mine.keys() & theirs.keys())
        ):
            return other
    return ref


def _paper_pairs(
    conditions: Sequence[ConditionStats], ref: ConditionStats
) -> list[tuple[ConditionStats, ConditionStats]]:
    """The paper's other contrasts among ``conditions`` (e.g. rho-guided λ=0.2 vs contrastive-only)."""
    out = []
    for mine, theirs in PAPER_CONTRASTS:
        for a in conditions:
            for b in conditions:
                if (a.trainer, b.trainer) != (mine, theirs) or b is ref:
                    continue
                pa, pb = dict(a.params), dict(b.params)
                if all(pa[k] == pb[k] for k in pa.keys() & pb.keys()):
                    out.append((a, b))
    return out


def _pooled(cell: SweepCell, dimension: str, default: Any) -> Any:
    """The set names of ``dimension``'s pooled accuracy in ``cell``, else ``default``."""
    found = _find(cell.pooled, dimension)
    return found.set_names if found else default


def _find(pooled: Sequence[PooledAccuracy], dimension: str) -> PooledAccuracy | None:
    return next((p for p in pooled if p.dimension == dimension), None)


def _ood_level(
    label: str, cells: Sequence[SweepCell], dimension: str, sets: Sequence[str], base: OodLevel | None
) -> OodLevel:
    found = [p for c in cells if c.status == "complete" and (p := _find(c.pooled, dimension))]
    by_set = [
        report_stats.summarize(
            [
                a.accuracy.value
                for p in found
                for a in p.sets
                if a.probe_set == name and a.accuracy.value is not None
            ]
        )
        for name in sets
    ]
    pooled = report_stats.summarize([p.pooled.value for p in found if p.pooled.value is not None])

    def delta(value: float | None, reference: float | None) -> float | None:
        return value - reference if value is not None and reference is not None and base else None

    return OodLevel(
        label,
        len(found),
        tuple(by_set),
        tuple(delta(s.mean, b.mean) for s, b in zip(by_set, base.sets if base else by_set, strict=True)),
        pooled,
        delta(pooled.mean, base.pooled.mean if base else None),
        found[0].pooled if len(found) == 1 else None,
    )
