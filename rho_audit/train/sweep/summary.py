"""The sweep's results table, from the store alone: scores, deltas vs the baseline, and mean ±
sample standard deviation over seeds; one table per audit split, and a column for the pooled
accuracy of a dimension's extra probe sets (``audit.probes``) when a cell has two or more."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rho_audit._util.stats import mean_and_sd
from rho_audit.report.ood import pooled_of_scores
from rho_audit.report.splits import audit_splits, split_label
from rho_audit.store import RunStore, StoredCell
from rho_audit.train.sweep.plan import CellSpec, SweepPlan


@dataclass(frozen=True)
class CellSummary:
    cell: CellSpec
    status: str
    scores: dict[str, float | None]
    deltas: dict[str, float | None]
    error: str | None = None


@dataclass(frozen=True)
class ConditionSummary:
    model_label: str
    condition: str
    n: int  # complete seeds
    total: int
    mean: dict[str, float | None]
    std: dict[str, float | None]  # sample std over seeds (None below 2 seeds)
    mean_delta: dict[str, float | None]


@dataclass(frozen=True)
class SweepSummary:
    plan: SweepPlan
    #: Dimension results, then ``DIM OOD acc`` columns (see :func:`pooled_column`).
    dimensions: list[str]
    baselines: dict[str, dict[str, float | None]]  # model label -> dimension -> score
    cells: list[CellSummary]
    conditions: list[ConditionSummary]
    split: str = "eval"
    #: How many splits the sweep audits: the tables name their split only when there are several.
    n_splits: int = 1

    @property
    def split_label(self) -> str:
        return split_label(self.split)


def pooled_column(dimension: str) -> str:
    """The column of a dimension's pooled accuracy over its extra probe sets."""
    return f"{dimension} OOD acc"


def summaries(plan: SweepPlan, store_path: Path) -> list[SweepSummary]:
    """One summary per audit split of the sweep, held-out first."""
    splits = audit_splits(plan.cells[0].audit) if plan.cells else ["eval"]
    return [summarize(plan, store_path, split) for split in splits]


def summarize(plan: SweepPlan, store_path: Path, split: str | None = None) -> SweepSummary:
    """Build the results table from the store alone, so cells finished by earlier invocations
    (or by a remote executor) count like the ones run now. ``split``: which audit split (the
    first, held-out one when None)."""
    splits = audit_splits(plan.cells[0].audit) if plan.cells else ["eval"]
    split = split or splits[0]
    rows: dict[str, StoredCell] = {}
    if Path(store_path).exists():
        store = RunStore(store_path)
        try:
            rows = {r.cell_id: r for r in store.cells(plan.sweep_id)}
        finally:
            store.close()
    scores = {c.cell_id: _row_scores(rows.get(c.cell_id), c, split, split == splits[0]) for c in plan.cells}
    # The file's order of dimensions (the store's JSON has its keys sorted), then any others.
    configured = [d for c in plan.cells for d in c.audit.get("dimensions") or []]
    dims = list(dict.fromkeys([*configured, *(d for s in scores.values() for d in s)]))
    baselines = {
        c.model_label: scores[c.cell_id] for c in plan.baselines if _complete(rows.get(c.cell_id), c)
    }
    cells = []
    for cell in plan.train_cells:
        row = rows.get(cell.cell_id)
        status = row.status if row and row.config_sha256 == cell.config_sha256 else "pending"
        base = baselines.get(cell.model_label, {})
        s = scores[cell.cell_id]
        cells.append(
            CellSummary(
                cell,
                status,
                s,
                {d: _minus(s.get(d), base.get(d)) for d in dims},
                row.error if row else None,
            )
        )
    conditions = _conditions(cells, dims, baselines)
    return SweepSummary(plan, dims, baselines, cells, conditions, split, len(splits))


def _complete(row: StoredCell | None, cell: CellSpec) -> bool:
    return row is not None and row.status == "complete" and row.config_sha256 == cell.config_sha256


def _row_scores(row: StoredCell | None, cell: CellSpec, split: str, first: bool) -> dict[str, float | None]:
    """The cell's scores on ``split``, then the pooled accuracy of each dimension's extra sets."""
    if row is None or not _complete(row, cell):
        return {}
    by_split = row.result.get("splits") or {}
    entry = by_split.get(split) if isinstance(by_split, dict) else None
    if isinstance(entry, dict):
        found = entry.get("scores") or {}
    else:
        found = (row.result.get("scores") or {}) if first else {}
    out = {dim: s.get("score") for dim, s in found.items()}
    for pooled in pooled_of_scores(found):
        out[pooled_column(pooled.dimension)] = pooled.pooled.value
    return out


def _minus(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


def _conditions(
    cells: list[CellSummary], dims: list[str], baselines: dict[str, dict[str, float | None]]
) -> list[ConditionSummary]:
    groups: dict[tuple[str, str], list[CellSummary]] = {}
    for c in cells:
        groups.setdefault((c.cell.model_label, c.cell.condition), []).append(c)
    out = []
    for (label, condition), members in groups.items():
        done = [m for m in members if m.status == "complete"]
        mean: dict[str, float | None] = {}
        std: dict[str, float | None] = {}
        for d in dims:
            mean[d], std[d] = mean_and_sd([m.scores[d] for m in done if m.scores.get(d) is not None])
        base = baselines.get(label, {})
        out.append(
            ConditionSummary(
                label,
                condition,
                len(done),
                len(members),
                mean,
                std,
                {d: _minus(mean[d], base.get(d)) for d in dims},
            )
        )
    return out


def cell_statuses(plan: SweepPlan, store_path: Path) -> dict[str, str]:
    """cell id -> status in the store (``pending`` when the store has no row yet); read-only."""
    if not Path(store_path).exists():
        return {c.cell_id: "pending" for c in plan.cells}
    store = RunStore(store_path)
    try:
        rows = {r.cell_id: r.status for r in store.cells(plan.sweep_id)}
    finally:
        store.close()
    return {c.cell_id: rows.get(c.cell_id, "pending") for c in plan.cells}
