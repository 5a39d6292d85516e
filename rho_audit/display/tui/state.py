"""The monitor's picture of a sweep (:class:`SweepState`, one :class:`CellView` per cell) and what
the panels work out from it: training progress, ETAs, the dose-response view. Pure functions of a
SweepState, so they are tested without an app."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rho_audit._util.naming import OPTION_SYMBOLS
from rho_audit.display.tui.formatting import options_text

RUNNING = ("training", "auditing")
FINAL = ("complete", "failed")


@dataclass
class CellView:
    """One cell as the store has it, plus what the monitor works out (start time, stale state)."""

    cell_id: str
    status: str
    spec: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    train_run_id: str | None
    audit_run_id: str | None
    updated_at: float
    started_at: float | None = None
    #: dimension -> score dict, for an audit still running (its dimensions land one by one).
    partial: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.spec.get("kind", "train")

    @property
    def train(self) -> dict[str, Any]:
        return self.spec.get("train") or {}

    @property
    def scores(self) -> dict[str, dict[str, Any]]:
        return (self.result or {}).get("scores") or self.partial

    def elapsed(self, now: float) -> float | None:
        if self.result and self.status in FINAL and self.result.get("elapsed_s"):
            # The result times only the process that finished the cell; after a resume its run
            # (same id) dates from the first process: from then to the finish counts every process.
            spans = [float(self.result["elapsed_s"])]
            if self.started_at:
                spans.append(self.updated_at - self.started_at)
            return max(spans)
        if self.status in RUNNING and self.started_at:
            return now - self.started_at
        return None

    def describe(self) -> str:
        if self.kind == "baseline":
            model = self.spec.get("model")
            return f"baseline audit of {Path(model).name if model else 'the default model'}"
        t = self.train
        return " ".join(
            p
            for p in (t.get("trainer", "?"), options_text(t.get("options") or {}), f"seed {t.get('seed')}")
            if p
        )


@dataclass
class SweepState:
    """Everything one poll found. ``problem`` says why nothing (or old data) is shown."""

    store: Path
    sweep_id: str | None = None
    cells: list[CellView] = field(default_factory=list)
    #: train run id -> its steps' metrics, in step order (only the running cell's run is kept fresh).
    steps: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: train run id -> when the reader first saw its last step (steps carry no time of their own).
    step_seen_at: dict[str, float] = field(default_factory=dict)
    #: True / False when the sweep's lock file names a live / dead process; None when unknown.
    alive: bool | None = None
    pid: int | None = None
    problem: str | None = None
    read_at: float = 0.0

    def count(self, *statuses: str) -> int:
        return sum(1 for c in self.cells if c.status in statuses)

    @property
    def running(self) -> CellView | None:
        live = [c for c in self.cells if c.status in RUNNING or c.status == "stopped"]
        return max(live, key=lambda c: c.updated_at) if live else None

    @property
    def finished(self) -> bool:
        return bool(self.cells) and all(c.status in FINAL for c in self.cells)

    def baseline_scores(self, cell: CellView) -> dict[str, dict[str, Any]]:
        label = cell.spec.get("model_label")
        for c in self.cells:
            if c.kind == "baseline" and c.status == "complete" and c.spec.get("model_label") == label:
                return c.scores
        return {}

    def dimensions(self) -> list[str]:
        dims: list[str] = []
        for c in self.cells:
            dims += (c.spec.get("audit") or {}).get("dimensions") or []
            dims += list(c.scores)
        return list(dict.fromkeys(dims))


@dataclass(frozen=True)
class Progress:
    step: int | None
    total: int | None
    exact: bool


def train_progress(state: SweepState, cell: CellView, totals: dict[str, int]) -> Progress:
    steps = state.steps.get(cell.train_run_id or "", [])
    step = steps[-1]["step"] if steps else None
    if cell.train_run_id in totals:
        return Progress(step, totals[cell.train_run_id], True)
    total, exact = _estimated_steps(cell.train)
    return Progress(step, total, exact)


def _estimated_steps(train: dict[str, Any]) -> tuple[int | None, bool]:
    """Optimizer steps of a training config as ``train.config.build_plan`` counts them, without loading
    anything heavy: (steps, exact). Exact when ``max_sft_examples`` caps the data."""
    try:
        corpus = train.get("corpus")
        if corpus:
            path = Path(corpus)
            n = sum(1 for line in path.open(encoding="utf-8") if line.strip()) if path.is_file() else None
        else:
            n = _builtin_corpus_size()
        cap = train.get("max_sft_examples")
        if n is None:
            return (
                (None, False)
                if not cap
                else (max(1, cap * train.get("epochs", 1) // train.get("grad_accumulation", 4)), False)
            )
        n_all = n + int(train.get("trap_texts", 200))
        exact = bool(cap) and cap <= n
        n_used = min(n_all, cap) if cap else n_all
        return max(1, n_used * int(train.get("epochs", 1)) // int(train.get("grad_accumulation", 4))), exact
    except (OSError, TypeError, ValueError):
        return None, False


_CORPUS_SIZE: list[int] = []


def _builtin_corpus_size() -> int | None:
    if not _CORPUS_SIZE:
        try:
            from rho_audit_corpus import CORPUS_ROOT

            _CORPUS_SIZE.append(
                sum(
                    1
                    for f in sorted((CORPUS_ROOT / "general").glob("*.jsonl"))
                    for line in f.open(encoding="utf-8")
                    if line.strip()
                )
            )
        except (ImportError, OSError):
            return None
    return _CORPUS_SIZE[0]


def mean_duration(state: SweepState, kind: str) -> float | None:
    values = [
        float(c.result["elapsed_s"])
        for c in state.cells
        if c.kind == kind and c.status == "complete" and c.result and c.result.get("elapsed_s")
    ]
    return statistics.fmean(values) if values else None


def cell_eta(state: SweepState, cell: CellView, now: float, totals: dict[str, int]) -> float | None:
    """Seconds left for the running cell: steps left × recent seconds per step, less the time since
    the last step landed (up to one step), plus an audit as long as the baseline's; or the mean of
    finished cells of its kind minus its elapsed time."""
    elapsed = cell.elapsed(now) or 0.0
    typical = mean_duration(state, cell.kind)
    if cell.status == "training":
        prog = train_progress(state, cell, totals)
        steps = state.steps.get(cell.train_run_id or "", [])
        secs = [s["seconds"] for s in steps[-10:] if isinstance(s.get("seconds"), int | float)]
        if prog.total and prog.step is not None and secs:
            audit = mean_duration(state, "baseline") or 0.0
            per_step = statistics.fmean(secs)
            # Between optimizer steps the current one is under way: count down at the step rate,
            # at most one step's worth, so the ETA ticks with the elapsed time instead of freezing.
            seen = state.step_seen_at.get(cell.train_run_id or "")
            into = min(per_step, max(0.0, now - seen)) if seen is not None else 0.0
            return max(0.0, max(0, prog.total - prog.step) * per_step - into) + audit
    if typical is not None:
        return max(0.0, typical - elapsed)
    return None


def sweep_eta(state: SweepState, now: float, totals: dict[str, int]) -> float | None:
    queued = [c for c in state.cells if c.status == "pending"]
    running = state.running
    left = 0.0
    if running is not None and running.status in RUNNING:
        eta = cell_eta(state, running, now, totals)
        if eta is None:
            return None
        left += eta
    if queued:
        per_train = mean_duration(state, "train")
        if per_train is None and running is not None and running.kind == "train":
            per_train = (running.elapsed(now) or 0.0) + (left or 0.0)  # this cell's own estimate
        for c in queued:
            per = mean_duration(state, c.kind) or per_train
            if per is None:
                return None
            left += per
    return left


def sweep_started(state: SweepState) -> float | None:
    starts = [c.started_at for c in state.cells if c.started_at]
    starts += [c.updated_at - float(c.result.get("elapsed_s") or 0) for c in state.cells if c.result]
    return min(starts) if starts else None


@dataclass(frozen=True)
class DoseView:
    title: str
    levels: list[str]
    #: dimension -> values at each level (None where no finished cell has it yet)
    rows: dict[str, list[float | None]]
    relative: bool


def dose_response(state: SweepState) -> DoseView | None:
    """Mean Δρ vs the baseline at each level of the sweep's dose axis (λ first, then γ, then any
    other numeric grid key) for the trainer that has most levels; per condition when none."""
    done = [c for c in state.cells if c.kind == "train" and c.status == "complete" and c.scores]
    if not done:
        return None
    dims = [d for d in state.dimensions() if any(d in c.scores for c in done)]
    axes: dict[tuple[str, str], set[float]] = {}
    for c in state.cells:
        if c.kind != "train":
            continue
        trainer = c.train.get("trainer", "?")
        for key, value in (c.spec.get("grid") or {}).items():
            if (
                key not in ("seed", "trainer")
                and isinstance(value, int | float)
                and not isinstance(value, bool)
            ):
                axes.setdefault((trainer, key), set()).add(float(value))
    preferred = {"lambda": 0, "margin": 1}
    candidates = [(k, v) for k, v in axes.items() if len(v) >= 2]
    relative = any(state.baseline_scores(c) for c in done)

    def value(c: CellView, dim: str) -> float | None:
        s = (c.scores.get(dim) or {}).get("score")
        if s is None:
            return None
        base = (state.baseline_scores(c).get(dim) or {}).get("score")
        return s - base if relative and base is not None else (None if relative else s)

    groups: dict[str, list[CellView]]
    if candidates:
        (trainer, key), levels = max(candidates, key=lambda kv: (len(kv[1]), -preferred.get(kv[0][1], 9)))
        ordered = sorted(levels)
        groups = {f"{v:g}": [] for v in ordered}
        for c in done:
            v = (c.spec.get("grid") or {}).get(key)
            if c.train.get("trainer") == trainer and v is not None and f"{float(v):g}" in groups:
                groups[f"{float(v):g}"].append(c)
        title = f"{'Δ' if relative else ''}ρ vs {OPTION_SYMBOLS.get(key, key)} ({trainer})"
    else:
        groups = {}
        for c in done:
            groups.setdefault(c.spec.get("condition") or c.cell_id, []).append(c)
        title = f"mean {'Δ' if relative else ''}ρ by condition"
    rows = {}
    for dim in dims:
        row = []
        for members in groups.values():
            values = [v for v in (value(c, dim) for c in members) if v is not None]
            row.append(statistics.fmean(values) if values else None)
        rows[dim] = row
    return DoseView(title, list(groups), rows, relative)
