"""How much training moved the losses: the first quarter of each cell's steps against the last.

Each SFT example is seen once (one epoch over a seeded shuffle), so the loss logged at a step is
the model's loss on a text it has not trained on yet: the first and last quarters of a run are
two held-out estimates of the SFT loss, before and after most of the training (progressive
validation). A condition's change pools its seeds' steps: last-quarter mean − first-quarter mean
with a Welch 95% CI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from rho_audit.report.records import SweepCell
from rho_audit.store import RunStore

#: Share of a run's steps in each compared window.
WINDOW = 0.25
LOSS_CHANGE = (
    "SFT loss at each step is on a text not yet trained on (one epoch); first → last quarter of "
    "the steps, seeds pooled; change = last − first with a Welch 95% CI (negative: training "
    "lowered the loss on new texts)"
)


@dataclass(frozen=True)
class LossChange:
    label: str
    seeds: int
    steps: int
    sft_first: float | None
    sft_last: float | None
    change: float | None
    ci_low: float | None
    ci_high: float | None
    p: float | None
    #: Mean hinge (contrastive) loss and share of active pairs, first and last quarter.
    hinge_first: float | None
    hinge_last: float | None
    active_first: float | None
    active_last: float | None


def loss_changes(store: RunStore, cells: Sequence[SweepCell]) -> tuple[LossChange, ...]:
    """One row per condition with complete training runs, in the cells' order."""
    by_condition: dict[str, list[SweepCell]] = {}
    for cell in cells:
        if cell.trainer is not None and cell.status == "complete" and cell.train_run_id:
            by_condition.setdefault(cell.condition, []).append(cell)
    return tuple(
        row for group in by_condition.values() if (row := _condition_change(store, group)) is not None
    )


def _windows(values: Sequence[float]) -> tuple[list[float], list[float]]:
    """The first and last quarter of ``values`` (both empty when too short for two windows)."""
    k = max(1, int(len(values) * WINDOW))
    if len(values) < 2 * k:
        return [], []
    return list(values[:k]), list(values[-k:])


def _condition_change(store: RunStore, group: Sequence[SweepCell]) -> LossChange | None:
    pooled: dict[str, tuple[list[float], list[float]]] = {}
    steps = 0
    for cell in group:
        assert cell.train_run_id is not None
        logged = store.train_steps(cell.train_run_id)
        steps = max(steps, len(logged))
        for metric in ("sft_loss", "contrastive_loss", "active_share"):
            values = [float(s.metrics[metric]) for s in logged if _finite(s.metrics.get(metric))]
            first, last = _windows(values)
            a, b = pooled.setdefault(metric, ([], []))
            a += first
            b += last
    first, last = pooled.get("sft_loss", ([], []))
    if len(first) < 2 or len(last) < 2:
        return None
    test = stats.ttest_ind(last, first, equal_var=False)
    ci = test.confidence_interval(0.95)
    return LossChange(
        label=group[0].label,
        seeds=len(group),
        steps=steps,
        sft_first=float(np.mean(first)),
        sft_last=float(np.mean(last)),
        change=float(np.mean(last) - np.mean(first)),
        ci_low=float(ci.low),
        ci_high=float(ci.high),
        p=float(test.pvalue),
        hinge_first=_mean(pooled["contrastive_loss"][0]),
        hinge_last=_mean(pooled["contrastive_loss"][1]),
        active_first=_mean(pooled["active_share"][0]),
        active_last=_mean(pooled["active_share"][1]),
    )


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and bool(np.isfinite(value))
