"""A Textual app that follows a training sweep from its run store: ``rho-audit monitor`` and ``sweep --tui``.

This is the only module that imports Textual. The engine never sees it: in ``sweep --tui`` the
app is one more ``run_event`` observer (:class:`TuiDisplay`), and ``rho-audit monitor`` only
reads the store.

How it stays light and flicker-free
    The app polls the store read-only (``mode=ro``, one consistent read transaction per tick,
    every ``interval`` seconds; SQLite WAL lets it read while the sweep writes). Events from an
    in-process sweep go into a queue that the same tick drains, so a burst of events costs one
    screen update, and a widget is only touched when its text changed. A locked or half-written
    store skips a tick; a store or sweep that does not exist yet is waited for.

What it shows
    A header (cells done / running / failed / queued, elapsed, ETA, whether the sweep process
    is alive), the grid of cells, the running cell (trainer, λ, γ, seed, step / total, SFT and
    contrastive loss sparklines from ``train_steps``, share of active pairs, tokens/s), the
    results (per-dimension rho coloured by its delta vs the baseline), a small dose-response
    view, and a log of what happened (cells started, finished and failed with their error,
    warnings). Keys: ``?`` help, ``f`` filter, ``enter`` details, ``r`` report card, ``q`` quit.

A sweep killed mid-cell leaves its row ``training`` or ``auditing``: the app reads the pid the
sweep wrote into its lock file and, when that process is gone, shows the cell as stopped and
says how to resume.
"""

from __future__ import annotations

import collections
import itertools
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
import webbrowser
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input, RichLog, Static

from rho_audit.api.events import RunEvent
from rho_audit.api.hooks import hookimpl
from rho_audit.store import AmbiguousId, CellDoc, RunStore, StoredCell, StoreError, StoreNotReady

log = logging.getLogger(__name__)

#: Status words shown for the store's cell statuses (and ``stopped``: running, but its process is gone).
STATUS_LABEL = {
    "pending": "queued",
    "training": "train",
    "auditing": "audit",
    "complete": "done",
    "failed": "failed",
    "stopped": "stopped",
}
STATUS_STYLE = {
    "pending": "dim",
    "training": "bold cyan",
    "auditing": "bold cyan",
    "complete": "green",
    "failed": "bold red",
    "stopped": "yellow",
}
STATUS_MARK = {
    "pending": "·",
    "training": "▶",
    "auditing": "▶",
    "complete": "✓",
    "failed": "✗",
    "stopped": "■",
}
RUNNING = ("training", "auditing")
#: From this many columns on, the side panels widen and the results show full names, 3 decimals.
WIDE = 110
FINAL = ("complete", "failed")
BARS = "▁▂▃▄▅▆▇█"
OPTION_SYMBOL = {"lambda": "λ", "margin": "γ"}


# --------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def sparkline(values: Sequence[float], width: int) -> str:
    """The last ``width`` values as bars, scaled between their own min and max."""
    values = [v for v in values if v is not None][-max(1, width) :]
    if not values:
        return ""
    low, high = min(values), max(values)
    if high - low < 1e-12:
        return BARS[3] * len(values)
    return "".join(BARS[min(7, int((v - low) / (high - low) * 7.999))] for v in values)


def downsample(values: Sequence[float], n: int) -> list[float]:
    """A whole curve in ``n`` points: the mean of each of ``n`` equal slices."""
    if len(values) <= n:
        return list(values)
    edges = [round(i * len(values) / n) for i in range(n + 1)]
    return [statistics.fmean(values[a:b]) for a, b in itertools.pairwise(edges) if b > a]


def delta_style(delta: float | None) -> str:
    """Green when the dimension improved against the base model, red when it got worse."""
    if delta is None:
        return ""
    if delta >= 0.05:
        return "bold green"
    if delta >= 0.01:
        return "green"
    if delta <= -0.05:
        return "bold red"
    if delta <= -0.01:
        return "red"
    return "dim"


def score_text(score: dict[str, Any] | None, digits: int = 2) -> str:
    if not score or score.get("score") is None:
        return "-"
    value = score["score"]
    return (
        f"{value:+.{digits}f}"
        if score.get("metric", "rank_biserial") == "rank_biserial"
        else f"{value:.{digits}f}"
    )


def options_text(options: dict[str, Any]) -> str:
    return " ".join(f"{OPTION_SYMBOL.get(k, k)} {v:g}" for k, v in sorted(options.items()))


def clock_text(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def ellipsis(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def cell_label(cell_id: str, width: int) -> str:
    """A cell id that fits ``width``: ``rho-guided_lambda0.2_seed42`` becomes ``rho-guided λ0.2 s42``."""
    if len(cell_id) <= width:
        return cell_id
    short = cell_id
    for word, symbol in (("_lambda", " λ"), ("_margin", " γ"), ("_seed", " s"), ("_", " ")):
        short = short.replace(word, symbol)
    return ellipsis(short, width)


# --------------------------------------------------------------------------------------------
# Reading the store
# --------------------------------------------------------------------------------------------


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
            return float(self.result["elapsed_s"])
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


def _estimated_steps(train: dict[str, Any]) -> tuple[int | None, bool]:
    """Optimizer steps of a training config as ``training.build_plan`` counts them, without loading
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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StoreReader:
    """Read-only, incremental view of one sweep in a run store.

    Cell documents are parsed only when their row changed; training steps are read from the last
    step seen. Every poll is one read transaction, so the cells, runs and steps it returns belong
    to the same moment of the store."""

    LOCK_CHECK_S = 2.0

    def __init__(self, path: Path, sweep: str | None = None) -> None:
        self.path = Path(path)
        self.wanted = sweep
        self.store: RunStore | None = None
        self.sweep_id: str | None = None
        self._docs: dict[str, tuple[float, dict[str, Any]]] = {}
        self._run_created: dict[str, float] = {}
        self._steps: dict[str, list[dict[str, Any]]] = {}
        self._order: dict[str, int] | None = None
        self._order_for = 0  # how many cells the order was looked up for (retried as rows appear)
        self._lock: tuple[float, bool | None, int | None] = (0.0, None, None)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def _connect(self) -> RunStore | None:
        if self.store is None and self.path.exists():
            # Never upgrade: the monitor must not write to a store a sweep is using.
            self.store = RunStore.read_only(self.path, timeout=0.25, upgrade=False)
        return self.store

    def sweeps(self) -> list[tuple[str, float, int]]:
        """(sweep id, last update, cells) of every sweep in the store, most recent first."""
        store = self._connect()
        if store is None:
            return []
        return [(s.sweep_id, s.updated_at, s.n_cells) for s in store.sweeps()]

    def _pick_sweep(self, store: RunStore) -> str | None:
        if self.wanted is None:
            found = store.sweeps()
            return found[0].sweep_id if found else None
        return store.find_sweep(self.wanted)

    def read(self, now: float | None = None) -> SweepState:
        now = time.time() if now is None else now
        state = SweepState(self.path, read_at=now)
        try:
            store = self._connect()
            if store is None:
                state.problem = f"no run store at {self.path} yet; waiting for a sweep to create it"
                return state
            with store.snapshot():  # one read transaction: a consistent picture across the queries
                self._read(store, state)
        except StoreNotReady:
            state.problem = f"{self.path.name} has no sweeps yet; waiting"
        except AmbiguousId as err:
            state.problem = str(err)
        except StoreError as err:
            if err.retryable:
                state.problem = f"store busy ({err.detail}); retrying"
            else:
                state.problem = f"cannot read {self.path}: {err.detail}"
                self.close()
        return state

    def _read(self, store: RunStore, state: SweepState) -> None:
        if self.sweep_id is None:
            self.sweep_id = self._pick_sweep(store)
        state.sweep_id = self.sweep_id
        if self.sweep_id is None:
            which = f"sweep {self.wanted!r}" if self.wanted else "a sweep"
            state.problem = f"waiting for {which} in {self.path.name}"
            return
        cells = []
        for row in store.cells(self.sweep_id):
            doc = self._doc(row)
            cells.append(
                CellView(
                    row.cell_id,
                    row.status,
                    doc.spec,
                    doc.result,
                    row.error,
                    row.train_run_id,
                    row.audit_run_id,
                    row.updated_at,
                )
            )
        self._check_lock(cells, state)
        for cell in cells:
            if cell.status in RUNNING:
                self._running(store, cell, state)
                if state.alive is False:
                    cell.status = "stopped"
        # Only the running cell's curve stays in memory (a details view re-reads a finished one).
        live = {c.train_run_id for c in cells if c.status in RUNNING or c.status == "stopped"}
        self._steps = {run_id: steps for run_id, steps in self._steps.items() if run_id in live}
        cells.sort(key=self._sort_key(cells))
        state.cells = cells
        state.steps = self._steps

    def _doc(self, row: StoredCell) -> CellDoc:
        """The cell's document, parsed again only when its row changed."""
        cached = self._docs.get(row.cell_id)
        if cached is None or cached[0] != row.updated_at:
            cached = (row.updated_at, row.doc)
            self._docs[row.cell_id] = cached
        return cached[1]

    def _running(self, store: RunStore, cell: CellView, state: SweepState) -> None:
        ids = [r for r in (cell.train_run_id, cell.audit_run_id) if r]
        for run_id in ids:
            if run_id not in self._run_created:
                run = store.get_run(run_id)
                if run:
                    self._run_created[run_id] = run.created_at
        starts = [self._run_created[r] for r in ids if r in self._run_created]
        cell.started_at = min(starts) if starts else cell.updated_at
        if cell.train_run_id and cell.status == "training":
            self.steps(cell.train_run_id)
        if cell.audit_run_id and cell.status == "auditing":
            cell.partial = {s.dimension: s.to_json() for s in store.dimension_scores(cell.audit_run_id)}

    def steps(self, run_id: str) -> list[dict[str, Any]]:
        """The run's step metrics, reading only the steps not seen yet."""
        store = self._connect()
        known = self._steps.setdefault(run_id, [])
        if store is None:
            return known
        last = known[-1]["step"] if known else 0
        known.extend(step.flat() for step in store.train_steps(run_id, after=last))
        return known

    def _check_lock(self, cells: list[CellView], state: SweepState) -> None:
        """Is the process that holds the sweep's lock alive? Read at most every LOCK_CHECK_S."""
        checked, alive, pid = self._lock
        if state.read_at - checked >= self.LOCK_CHECK_S or checked == 0.0:
            alive, pid = None, None
            adapter = next((c.train.get("adapter_dir") for c in cells if c.train.get("adapter_dir")), None)
            if adapter:
                lock = Path(adapter).parent.parent / ".lock"
                try:
                    text = lock.read_text(encoding="utf-8").strip()
                    pid = int(text) if text.isdigit() else None
                except OSError:
                    pid = None
                alive = _pid_alive(pid) if pid else None
            self._lock = (state.read_at, alive, pid)
        state.alive, state.pid = alive, pid

    def _sort_key(self, cells: list[CellView]) -> Callable[[CellView], tuple]:
        """The sweep's run order: from its manifest when it is on this machine, else baselines
        first, then seed by seed."""
        if self._order is None or (not self._order and len(cells) != self._order_for):
            self._order_for = len(cells)
            adapter = next((c.train.get("adapter_dir") for c in cells if c.train.get("adapter_dir")), None)
            if adapter:
                try:
                    doc = json.loads((Path(adapter).parent.parent / "sweep.json").read_text(encoding="utf-8"))
                    specs = doc["cells"]
                    base = [s["cell_id"] for s in specs if s.get("kind") == "baseline"]
                    train = sorted(
                        (s for s in specs if s.get("kind") != "baseline"), key=lambda s: s.get("wave", 0)
                    )
                    self._order = {cid: i for i, cid in enumerate(base + [s["cell_id"] for s in train])}
                except (OSError, ValueError, KeyError, TypeError):
                    self._order = {}
        order = self._order or {}

        def key(c: CellView) -> tuple:
            return (order.get(c.cell_id, len(order)), c.kind != "baseline", c.spec.get("wave", 0), c.cell_id)

        return key


# --------------------------------------------------------------------------------------------
# What the panels show (pure functions of a SweepState)
# --------------------------------------------------------------------------------------------


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


def mean_duration(state: SweepState, kind: str) -> float | None:
    values = [
        float(c.result["elapsed_s"])
        for c in state.cells
        if c.kind == kind and c.status == "complete" and c.result and c.result.get("elapsed_s")
    ]
    return statistics.fmean(values) if values else None


def cell_eta(state: SweepState, cell: CellView, now: float, totals: dict[str, int]) -> float | None:
    """Seconds left for the running cell: steps left × recent seconds per step, plus an audit as
    long as the baseline's; or the mean of finished cells of its kind minus its elapsed time."""
    elapsed = cell.elapsed(now) or 0.0
    typical = mean_duration(state, cell.kind)
    if cell.status == "training":
        prog = train_progress(state, cell, totals)
        steps = state.steps.get(cell.train_run_id or "", [])
        secs = [s["seconds"] for s in steps[-10:] if isinstance(s.get("seconds"), int | float)]
        if prog.total and prog.step is not None and secs:
            audit = mean_duration(state, "baseline") or 0.0
            return max(0, prog.total - prog.step) * statistics.fmean(secs) + audit
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
        title = f"{'Δ' if relative else ''}ρ vs {OPTION_SYMBOL.get(key, key)} ({trainer})"
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


# --------------------------------------------------------------------------------------------
# The in-process feed (``sweep --tui``)
# --------------------------------------------------------------------------------------------


class StopAfterCell(KeyboardInterrupt):
    """Raised in the sweep's thread at the start of the next cell once the user asked to stop:
    the sweep stops the way Ctrl-C stops it, before that cell wrote anything."""


class TuiDisplay:
    """The ``run_event`` observer of ``--display tui``: queues events for the app, which drains
    the queue on its own tick (so 10 events/s cost one screen update), and stops the sweep at the
    next cell boundary once asked to."""

    def __init__(self) -> None:
        self.events: collections.deque[RunEvent] = collections.deque(maxlen=5000)
        self.stop_requested = threading.Event()
        self.finished = threading.Event()
        self.failure: BaseException | None = None
        self.totals: dict[str, int] = {}  # train run id -> exact optimizer steps

    @hookimpl
    def run_event(self, event: RunEvent) -> None:
        if event.kind == "cell_started" and self.stop_requested.is_set():
            raise StopAfterCell
        if event.kind == "train_started" and event.total:
            self.totals[event.run_id] = event.total
        self.events.append(event)

    def stop(self) -> None:
        """The sweep command's display protocol; the app is closed by :meth:`follow`."""

    def drain(self) -> list[RunEvent]:
        out = []
        while self.events:
            out.append(self.events.popleft())
        return out

    def follow(self, work: Callable[[], Any], store: Path, sweep_id: str) -> Any:
        """Run ``work`` (the sweep) in a thread while the app shows it; return its result or raise
        its exception once both are done. Leaving the app lets the running cell finish first."""
        from rho_audit.api.errors import RhoAuditError

        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise RhoAuditError(
                "--tui needs an interactive terminal; use --display rich or plain here, or follow the "
                "sweep from a terminal with `rho-audit monitor`."
            )
        result: dict[str, Any] = {}

        def target() -> None:
            try:
                result["value"] = work()
            except BaseException as err:
                result["error"] = err
                self.failure = err
            finally:
                self.finished.set()

        # Daemon: after the app closed, a second Ctrl-C ends the process; the store is safe (resumable).
        thread = threading.Thread(target=target, name="rho-audit-sweep", daemon=True)
        app = SweepMonitor(store, sweep_id, feed=self)
        with _logs_into(self):
            thread.start()
            app.run()
        if thread.is_alive():
            self.stop_requested.set()
            print(
                "finishing the current cell, then stopping (Ctrl-C stops at once; the sweep resumes "
                "where it stopped when you run the same command again)",
                file=sys.stderr,
                flush=True,
            )
            while thread.is_alive():
                thread.join(0.5)
        if "error" in result:
            if isinstance(result["error"], StopAfterCell):
                print("stopped after the current cell, as asked.", file=sys.stderr, flush=True)
            raise result["error"]
        return result["value"]


class _LogRecordsToFeed(logging.Handler):
    def __init__(self, feed: TuiDisplay) -> None:
        super().__init__(logging.WARNING)
        self.feed = feed

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage().splitlines()[0] if record.getMessage() else record.name
            self.feed.events.append(RunEvent("warning", "", message=f"{record.levelname.lower()}: {message}"))
        except Exception:  # a log record must never break the sweep
            pass


@contextmanager
def _logs_into(feed: TuiDisplay) -> Iterator[None]:
    """While the app owns the terminal, log records go to its log pane instead of stderr."""
    root = logging.getLogger()
    saved = root.handlers[:]
    handler = _LogRecordsToFeed(feed)
    root.handlers = [h for h in saved if not isinstance(h, logging.StreamHandler)] + [handler]
    try:
        yield
    finally:
        root.handlers = saved


# --------------------------------------------------------------------------------------------
# Widgets and screens
# --------------------------------------------------------------------------------------------


class Panel(Static):
    """A bordered Static whose text is re-rendered on resize from a builder, and only repainted
    when the text changed (its size is set by the CSS, so an update never needs a new layout)."""

    def __init__(self, builder: Callable[[int], Any], *, id: str, title: str) -> None:
        super().__init__(id=id)
        self.builder = builder
        self.border_title = title
        self._shown: str | None = None

    def redraw(self) -> None:
        width = max(10, self.content_size.width or (self.size.width - 2) or 38)
        content = self.builder(width)
        key = content.markup if isinstance(content, Text) else repr(content)
        if key != self._shown:
            self._shown = key
            self.update(content, layout=False)

    def on_resize(self) -> None:
        self._shown = None
        self.redraw()


class CellTable(DataTable):
    """A table of cells whose enter opens the highlighted cell's details (and says so in the footer)."""

    BINDINGS: ClassVar = [Binding("enter", "select_cursor", "details", key_display="⏎")]


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar = [Binding("escape,q,question_mark,enter", "dismiss", "close")]
    TEXT = """[b]rho-audit monitor[/b]: follows a sweep from its run store (read-only).

  [b]?[/b]        this help
  [b]f[/b]        filter the cells: text in the cell id, or a status
           (queued, train, audit, running, done, failed, stopped); empty = all
  [b]enter[/b]    details of the highlighted cell
  [b]r[/b]        open the highlighted cell's report card (HTML)
  [b]tab[/b]      move between the grid and the results
  [b]q[/b]        quit. The monitor never stops the sweep; in `sweep --tui`
           q asks whether to stop after the current cell.

Results: rho after training, [green]green[/] / [red]red[/] = better / worse than the
base model (bold: |Δ| ≥ 0.05). The dose view averages seeds.
"""

    def compose(self) -> ComposeResult:
        yield Static(self.TEXT, id="help-text")


class ConfirmStop(ModalScreen[str]):
    BINDINGS: ClassVar = [
        Binding("y", "choose('stop')", "stop after this cell"),
        Binding("n,escape", "choose('stay')", "keep running"),
    ]

    def __init__(self, cell: str | None) -> None:
        super().__init__()
        self.cell = cell

    def compose(self) -> ComposeResult:
        current = f" ({self.cell})" if self.cell else ""
        yield Static(
            f"Stop the sweep after the current cell{current}?\n\n"
            "  [b]y[/b]  yes: finish this cell, then stop and quit (re-run the command to resume)\n"
            "  [b]n[/b]  no: keep running and keep watching",
            id="confirm-text",
        )

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


class CellScreen(ModalScreen[None]):
    BINDINGS: ClassVar = [
        Binding("escape,q,enter", "dismiss", "back"),
        Binding("r", "report", "report card"),
    ]

    def __init__(self, body: Text, cell_id: str) -> None:
        super().__init__()
        self.body, self.cell_id = body, cell_id

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="cell-box"):
            yield Static(self.body, id="cell-text")
        yield Footer()

    def action_report(self) -> None:
        app = self.app
        if isinstance(app, SweepMonitor):
            app.open_report(self.cell_id)


class SweepMonitor(App[None]):
    """Follows one sweep of a run store. ``feed`` is set by ``sweep --tui`` (events, stop)."""

    TITLE = "rho-audit monitor"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    Screen { layout: vertical; }
    #header { height: 1; background: $panel; padding: 0 1; }
    #top { height: 2fr; min-height: 9; }
    #middle { height: 1fr; min-height: 7; }
    #grid-box, #results-box { width: 1fr; border: round $primary 50%; border-title-color: $text; }
    #grid-box:focus-within, #results-box:focus-within { border: round $accent; }
    #running { width: 36; height: 100%; border: round $primary 50%; padding: 0 1; }
    #dose { width: 28; height: 100%; border: round $primary 50%; padding: 0 1; }
    .wide #running { width: 50; }
    .wide #dose { width: 44; }
    #grid, #results { height: 1fr; scrollbar-size-vertical: 1; }
    #log { height: 1fr; min-height: 6; border: round $primary 50%; scrollbar-size-vertical: 1;
        overflow-x: hidden; }
    #filter { height: 1; border: none; padding: 0; display: none; }
    #filter.shown { display: block; }
    HelpScreen, ConfirmStop, CellScreen { align: center middle; }
    #help-text, #confirm-text { width: auto; max-width: 90%; height: auto; border: round $accent;
        padding: 0 1; background: $surface; }
    #cell-box { width: 90%; height: 90%; border: round $accent; padding: 0 1; background: $surface; }
    """
    BINDINGS: ClassVar = [
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("f", "filter", "filter"),
        Binding("enter", "details", "details", key_display="⏎", show=False),
        Binding("r", "report", "report"),
        Binding("q", "request_quit", "quit"),
        Binding("ctrl+c", "request_quit", "quit", show=False, priority=True),
    ]

    def __init__(
        self,
        store: Path,
        sweep: str | None = None,
        *,
        feed: TuiDisplay | None = None,
        interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        open_url: Callable[[str], bool] | None = None,
    ) -> None:
        super().__init__()
        self.reader = StoreReader(Path(store), sweep)
        self.feed = feed
        self.interval = interval
        self.clock = clock
        self.open_url = open_url or _open_in_browser
        self.state = SweepState(Path(store))
        self.filter_text = ""
        self.log_lines: list[str] = []  # plain text of what the log pane shows (tests read it)
        self.stopping = False
        self._seen: dict[str, tuple[str, frozenset[str]]] = {}
        self._grid_ids: list[str] = []
        self._grid_rows: dict[str, tuple[str, ...]] = {}
        self._grid_width = 0
        self._results_key: tuple | None = None
        self._said_problem: str | None = None
        self._said_stale: set[str] = set()
        self._said_done = False
        self._logged_finish = False
        self._progress: dict[str, tuple[str, int, int]] = {}  # audit progress from events

    # -- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="header")
        with Horizontal(id="top"):
            with Vertical(id="grid-box"):
                yield Input(placeholder="filter: text of a cell id or a status; empty = all", id="filter")
                yield CellTable(id="grid", cursor_type="row", cell_padding=0)
            yield Panel(self._running_text, id="running", title="running cell")
        with Horizontal(id="middle"):
            with Vertical(id="results-box"):
                yield CellTable(id="results", cursor_type="row", cell_padding=0)
            yield Panel(self._dose_text, id="dose", title="dose-response")
        yield RichLog(id="log", max_lines=2000, wrap=True, markup=False, auto_scroll=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#grid-box").border_title = "cells"
        self.query_one("#results-box").border_title = "results"
        self.query_one("#results-box").border_subtitle = "ρ · green/red: Δ vs base"
        self.query_one("#log", RichLog).border_title = "log"
        self.query_one("#grid", DataTable).focus()
        self._layout_for(self.size.width)
        self.call_after_refresh(self.poll)  # once the panes have their size (the log wraps to it)
        self.set_interval(self.interval, self.poll)

    # -- the tick --------------------------------------------------------------------------

    def poll(self) -> None:
        """One tick: read the store, drain the event queue, update what changed."""
        try:
            self._poll()
        except NoMatches:  # a tick that lands while the app closes: its widgets are gone
            pass

    def _poll(self) -> None:
        now = self.clock()
        state = self.reader.read(now)
        if state.problem and not state.cells and self.state.cells:
            self.state.problem = state.problem  # a failed read keeps the last picture, and says why
            state = self.state
        self.state = state
        if self.feed is not None:
            self._take_events(self.feed.drain())
            if self.feed.finished.is_set() and not self._said_done:
                self._said_done = True
                err = self.feed.failure
                if isinstance(err, StopAfterCell) or self.stopping:
                    self.exit()
                    return
                if err is not None and not isinstance(err, KeyboardInterrupt):
                    self.log_line(f"sweep stopped by an error: {type(err).__name__}: {err}", "bold red")
                    self.notify(f"the sweep stopped: {err}", severity="error", timeout=30)
                else:
                    self.notify("sweep finished; q shows the final tables", timeout=30)
        self._log_changes(state, now)
        self._update_header(state, now)
        self._update_grid(state, now)
        self._update_results(state)
        for panel in self.query(Panel):
            panel.redraw()

    def _take_events(self, events: list[RunEvent]) -> None:
        for e in events:
            if e.kind == "warning":
                self.log_line(f"warning: {e.message}", "yellow")
            elif e.kind == "dimension_failed":
                self.log_line(f"{self._current_id()}: audit {e.dimension} failed: {e.message}", "bold red")
            elif e.kind == "run_interrupted" and e.message:
                self.log_line(f"{self._current_id()}: {e.message}", "yellow")
            elif e.kind == "dimension_started" and e.dimension:
                self._progress[e.run_id] = (e.dimension, 0, e.total or 0)
            elif e.kind == "progress" and e.dimension:
                self._progress[e.run_id] = (e.dimension, e.done or 0, e.total or 0)

    def _current_id(self) -> str:
        running = self.state.running
        return running.cell_id if running else "sweep"

    # -- log -------------------------------------------------------------------------------

    def log_line(self, text: str, style: str = "", at: float | None = None) -> None:
        stamp = clock_text(self.clock() if at is None else at)
        self.log_lines.append(f"{stamp} {text}")
        line = Text(f"{stamp} ", style="dim")
        line.append(text, style=style)
        pane = self.query_one("#log", RichLog)
        width = pane.scrollable_content_region.width
        pane.write(line, width=width if width > 10 else None)  # wrap to the pane, not the console

    def _log_changes(self, state: SweepState, now: float) -> None:
        if state.problem and state.problem != self._said_problem and not state.cells:
            self._said_problem = state.problem
            self.log_line(state.problem, "dim")
        first = not self._seen
        cells = sorted(state.cells, key=lambda c: c.updated_at) if first else state.cells
        for c in cells:
            before = self._seen.get(c.cell_id)
            dims = frozenset(c.partial)
            if before == (c.status, dims):
                continue
            self._seen[c.cell_id] = (c.status, dims)
            old_status, old_dims = before or ("pending", frozenset())
            at = c.updated_at
            if c.status == "complete":
                scores = " ".join(f"{d} {score_text(s)}" for d, s in c.scores.items())
                self.log_line(f"✓ {c.cell_id} done in {duration(c.elapsed(now))}: {scores}", "green", at)
            elif c.status == "failed":
                self.log_line(f"✗ {c.cell_id} FAILED: {c.error or 'no error recorded'}", "bold red", at)
            elif c.status == "stopped":
                if c.cell_id not in self._said_stale:
                    self._said_stale.add(c.cell_id)
                    self.log_line(
                        f"■ {c.cell_id} stopped: the sweep process (pid {state.pid}) is gone. Run the same "
                        "sweep command again to resume it.",
                        "yellow",
                        at,
                    )
            elif c.status in RUNNING:
                if old_status != c.status:
                    what = "training" if c.status == "training" else "audit"
                    if c.kind == "baseline" or c.status == "training" or old_status == "pending":
                        self.log_line(f"▶ {c.cell_id}: {what} started ({c.describe()})", "cyan", at)
                    else:
                        self.log_line(f"  {c.cell_id}: training done, audit started", "cyan", at)
                for dim in sorted(dims - old_dims, key=list(c.partial).index):
                    s = c.partial[dim]
                    self.log_line(f"  {c.cell_id}: {dim} {score_text(s, 3)} [{s.get('status')}]", "", at)
        if state.finished and not self._logged_finish:
            self._logged_finish = True
            failed = state.count("failed")
            self.log_line(
                f"sweep {state.sweep_id} finished: {state.count('complete')} done, {failed} failed",
                "bold red" if failed else "bold green",
            )

    # -- header ----------------------------------------------------------------------------

    def _update_header(self, state: SweepState, now: float) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        if state.cells:
            done, failed = state.count("complete"), state.count("failed")
            running, queued = state.count(*RUNNING), state.count("pending")
            text.append(f"{done}/{len(state.cells)} done", style="bold green")
            if running:
                text.append(f" · {running} running", style="cyan")
            if failed:
                text.append(f" · {failed} failed", style="bold red")
            if queued:
                text.append(f" · {queued} queued", style="dim")
            started = sweep_started(state)
            eta = sweep_eta(state, now, self._totals()) if not state.finished else None
            if state.finished:
                text.append("  finished", style="bold green" if not failed else "bold red")
            elif state.alive is False:
                text.append(f"  process {state.pid} gone: stopped", style="bold yellow")
            else:
                if started:
                    text.append(f"  elapsed {duration(now - started)}")
                text.append(f"  ETA {duration(eta) if eta is not None else '?'}")
            if self.stopping:
                text.append("  stopping after this cell", style="bold yellow")
            text.append(f"  {state.sweep_id}", style="bold")
        else:
            text.append(state.sweep_id or "rho-audit monitor", style="bold")
            if state.problem:
                text.append(f"  {state.problem}", style="dim")
        if state.problem and state.cells:
            text.append(f"  ({state.problem})", style="dim")
        self._set_static("#header", text)

    def _set_static(self, selector: str, text: Text) -> None:
        widget = self.query_one(selector, Static)
        if getattr(widget, "_last", None) != text.markup:
            widget._last = text.markup  # type: ignore[attr-defined]
            widget.update(text, layout=False)

    def _totals(self) -> dict[str, int]:
        return self.feed.totals if self.feed is not None else {}

    # -- grid ------------------------------------------------------------------------------

    def visible(self, cells: Sequence[CellView]) -> list[CellView]:
        wanted = self.filter_text.strip().lower()
        if not wanted:
            return list(cells)
        words = {"running": RUNNING, "queued": ("pending",), "done": ("complete",)}
        out = []
        for c in cells:
            label = STATUS_LABEL.get(c.status, c.status)
            if (
                wanted in c.cell_id.lower()
                or wanted in (c.status, label)
                or c.status in words.get(wanted, ())
            ):
                out.append(c)
        return out

    def _status_cell(self, c: CellView, state: SweepState) -> Text:
        label = STATUS_LABEL.get(c.status, c.status)
        if c.status == "training":
            prog = train_progress(state, c, self._totals())
            if prog.step is not None and prog.total:
                label = f"train {min(100, 100 * prog.step // prog.total)}%"
        elif c.status == "auditing":
            dims = len((c.spec.get("audit") or {}).get("dimensions") or []) or None
            label = f"audit {len(c.partial)}/{dims}" if dims else "audit"
        return Text(f" {STATUS_MARK.get(c.status, ' ')} {label}", style=STATUS_STYLE.get(c.status, ""))

    def _update_grid(self, state: SweepState, now: float) -> None:
        grid = self.query_one("#grid", DataTable)
        cells = self.visible(state.cells)
        ids = [c.cell_id for c in cells]
        counts = f"{state.count('complete')}/{len(state.cells)}" if state.cells else ""
        shown = f" · filter {self.filter_text!r}: {len(cells)}" if self.filter_text else ""
        self.query_one("#grid-box").border_title = f"cells {counts}{shown}"
        width = max(12, self.query_one("#grid-box").content_size.width - len(" ▶ train 40%  12m04s") - 2)
        rows = {}
        for c in cells:
            elapsed = c.elapsed(now)
            rows[c.cell_id] = (
                Text(cell_label(c.cell_id, width)),
                self._status_cell(c, state),
                Text(f"{duration(elapsed) if elapsed else '':>7}"),
            )
        if ids != self._grid_ids or width != self._grid_width:
            current = self._grid_ids[grid.cursor_row] if 0 <= grid.cursor_row < len(self._grid_ids) else None
            grid.clear(columns=True)
            grid.add_column("cell", key="cell", width=width)
            grid.add_column(" status", key="status", width=12)
            grid.add_column("   time", key="time", width=7)
            self._grid_width = width
            for cid in ids:
                grid.add_row(*rows[cid], key=cid)
            self._grid_ids = ids
            if current in ids:
                grid.move_cursor(row=ids.index(current), animate=False)
            self._grid_rows = {cid: tuple(t.markup for t in rows[cid]) for cid in ids}
            return
        for cid in ids:
            marks = tuple(t.markup for t in rows[cid])
            old = self._grid_rows.get(cid)
            if old != marks:
                for column, value, was in zip(
                    ("cell", "status", "time"), rows[cid], old or (None,) * 3, strict=True
                ):
                    if value.markup != was:
                        grid.update_cell(cid, column, value)
                self._grid_rows[cid] = marks

    # -- results ---------------------------------------------------------------------------

    def _update_results(self, state: SweepState) -> None:
        table = self.query_one("#results", DataTable)
        dims = state.dimensions()
        wide = self.size.width >= WIDE
        digits = 3 if wide else 2
        room = self.query_one("#results-box").content_size.width
        full = [max(7 if wide else 6, len(d) + 1) for d in dims]
        named = wide or sum(full) + 20 <= room  # full dimension names when they leave room for the ids
        value_w = full if named else [6] * len(dims)
        width = max(12, room - sum(value_w) - 1)
        rows = []
        for c in self.visible(state.cells):
            if not c.scores:
                continue
            base = state.baseline_scores(c) if c.kind == "train" else {}
            values = []
            for d in dims:
                s = c.scores.get(d)
                delta = None
                if s and s.get("score") is not None and (base.get(d) or {}).get("score") is not None:
                    delta = s["score"] - base[d]["score"]
                values.append(Text(score_text(s, digits), style=delta_style(delta), justify="right"))
            name = (
                cell_label(c.cell_id, width) if c.status in FINAL else cell_label(c.cell_id, width - 2) + " …"
            )
            rows.append((c.cell_id, Text(name, style="" if c.kind == "train" else "bold"), values))
        key = (tuple(dims), width, tuple((r[0], r[1].markup, *(v.markup for v in r[2])) for r in rows))
        if key == self._results_key:
            return
        self._results_key = key
        current = table.cursor_row
        table.clear(columns=True)
        table.add_column("cell", key="cell", width=width)
        for d, w in zip(dims, value_w, strict=True):
            table.add_column(Text(d if named else d[:5], justify="right"), key=d, width=w)
        for cid, name, values in rows:
            table.add_row(name, *values, key=cid)
        if rows:
            table.move_cursor(row=min(current, len(rows) - 1), animate=False)

    # -- panels ----------------------------------------------------------------------------

    def _running_text(self, width: int) -> Text:
        state, now = self.state, self.clock()
        c = state.running
        text = Text(no_wrap=True, overflow="ellipsis")
        panel = self.query_one("#running", Panel)
        panel.border_title = (
            "running cell" if c is None else f"running cell · {STATUS_LABEL.get(c.status, c.status)}"
        )
        if c is None:
            if state.finished:
                failed = state.count("failed")
                text.append("sweep finished\n", style="bold green" if not failed else "bold red")
                text.append(f"{state.count('complete')} done, {failed} failed")
                if failed:
                    text.append("\nre-run the sweep command to retry the failed cells", style="dim")
            elif state.cells and state.alive is False and state.count("pending"):
                text.append("sweep not running\n", style="bold yellow")
                text.append(f"{state.count('pending')} cells queued\nre-run the sweep command to go on")
            elif state.cells:
                text.append("waiting for the next cell…", style="dim")
            else:
                text.append(state.problem or "waiting…", style="dim")
            return text
        text.append(ellipsis(c.cell_id, width) + "\n", style="bold")
        if c.kind == "baseline":
            text.append(ellipsis(c.describe(), width) + "\n")
        else:
            t = c.train
            opts = t.get("options") or {}
            parts = [t.get("trainer", "?")]
            parts += [f"{OPTION_SYMBOL.get(k, k)} {opts[k]:g}" for k in ("lambda", "margin") if k in opts]
            parts += [f"seed {t.get('seed')}"]
            text.append(ellipsis("  ".join(str(p) for p in parts), width) + "\n")
        elapsed = c.elapsed(now)
        eta = cell_eta(state, c, now, self._totals()) if c.status in RUNNING else None
        if c.status == "stopped":
            text.append(f"stopped: process {state.pid} is gone\n", style="yellow")
        elif c.status == "training":
            prog = train_progress(state, c, self._totals())
            total = f"{'' if prog.exact else '~'}{prog.total}" if prog.total else "?"
            step = prog.step or 0
            label = f"step {step}/{total} "
            bar_w = max(4, width - len(label) - 5)
            frac = min(1.0, step / prog.total) if prog.total else 0.0
            filled = int(frac * bar_w)
            text.append(label)
            text.append("█" * filled, style="cyan")
            text.append("░" * (bar_w - filled), style="dim")
            text.append(f" {frac:4.0%}\n")
        else:
            dims = (c.spec.get("audit") or {}).get("dimensions") or []
            line = f"audit {len(c.partial)}/{len(dims) or '?'} dimensions"
            prog = self._progress.get(c.audit_run_id or "")
            if prog and prog[2]:
                line += f" · {prog[0]} {prog[1]}/{prog[2]}"
            text.append(ellipsis(line, width) + "\n")
        text.append(f"elapsed {duration(elapsed)}  ETA {duration(eta) if eta is not None else '?'}\n")
        steps = state.steps.get(c.train_run_id or "", [])
        if steps:
            label_w, num_w = 6, 8
            spark_w = max(4, width - label_w - num_w - 1)
            for label, key, style in (
                ("sft", "sft_loss", "magenta"),
                ("contr", "contrastive_loss", "yellow"),
            ):
                # The last spark_w steps only: the panel's cost stays flat over a long run.
                values = [s.get(key) for s in steps[-spark_w:] if isinstance(s.get(key), int | float)]
                if not values:
                    continue
                text.append(f"{label:<{label_w}}", style="dim")
                text.append(sparkline(values, spark_w).ljust(spark_w), style=style)
                text.append(f" {values[-1]:>{num_w}.4g}\n")
            last = steps[-1]
            text.append(
                f"active {last.get('active_share', 0):.0%}  {last.get('tokens_per_s', 0):,.0f} tok/s\n"
            )
            loss, lr, norm = last.get("loss", 0), last.get("lr", 0), last.get("grad_norm", 0)
            text.append(f"loss {loss:.4g}  lr {lr:.1e}  |g| {norm:.2f}", style="dim")
        return text

    def _dose_text(self, width: int) -> Text:
        view = dose_response(self.state)
        text = Text(no_wrap=True, overflow="ellipsis")
        if view is None:
            text.append("appears when cells finish", style="dim")
            return text
        self.query_one("#dose", Panel).border_title = view.title
        name_w = min(10, max((len(d) for d in view.rows), default=4) + 1)
        n = len(view.levels)
        every = name_w + n + 6 * n + 1 <= width  # room for every level's value
        header = "  ".join(f"{lv:>5}" for lv in view.levels) if every else " ".join(view.levels)
        text.append(" " * (name_w + n + 1) if every else " " * name_w)
        text.append(ellipsis(header, max(1, width - name_w - (n + 1 if every else 0))) + "\n", style="dim")
        for dim, values in view.rows.items():
            known = [v for v in values if v is not None]
            text.append(f"{ellipsis(dim, name_w - 1):<{name_w}}")
            if not known:
                text.append("-\n", style="dim")
                continue
            # Δ bars share zero as their floor or ceiling, so a bar's height reads against the base model.
            low, high = (min(*known, 0.0), max(*known, 0.0)) if view.relative else (min(known), max(known))
            for v in values:
                if v is None:
                    text.append("·", style="dim")
                else:
                    i = 3 if high - low < 1e-12 else min(7, int((v - low) / (high - low) * 7.999))
                    text.append(BARS[i], style=delta_style(v) if view.relative else "cyan")
            if every:
                for v in values:
                    text.append(" ")
                    text.append(
                        f"{v:+.2f}" if v is not None else "    -",
                        style=delta_style(v) if view.relative else "",
                    )
            else:
                text.append(f" {known[-1]:+.2f}", style=delta_style(known[-1]) if view.relative else "")
            text.append("\n")
        return text

    # -- size ------------------------------------------------------------------------------

    def on_resize(self, event: Any) -> None:
        self._layout_for(event.size.width)
        self.call_after_refresh(self.poll)

    def _layout_for(self, width: int) -> None:
        self.set_class(width >= WIDE, "wide")

    # -- actions ---------------------------------------------------------------------------

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = self.filter_text
        box.add_class("shown")
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.filter_text = event.value.strip()
        self._close_filter()
        self.poll()

    def on_key(self, event: Any) -> None:
        box = self.query_one("#filter", Input)
        if event.key == "escape" and box.has_class("shown"):
            self._close_filter()
            event.stop()

    def _close_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.remove_class("shown")
        self.query_one("#grid", DataTable).focus()

    def highlighted(self) -> str | None:
        focused = self.focused
        table = focused if isinstance(focused, DataTable) else self.query_one("#grid", DataTable)
        if table.row_count == 0:
            return None
        try:
            key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key
        except Exception:
            return None
        return str(key.value) if key is not None and key.value is not None else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_details()

    def action_details(self) -> None:
        cell_id = self.highlighted()
        cell = next((c for c in self.state.cells if c.cell_id == cell_id), None)
        if cell is None:
            self.notify("no cell highlighted", severity="warning")
            return
        self.push_screen(CellScreen(self.cell_details(cell), cell.cell_id))

    def cell_details(self, c: CellView) -> Text:
        now = self.clock()
        text = Text()
        text.append(f"{c.cell_id}\n", style="bold")
        text.append(
            f"{STATUS_MARK.get(c.status, '')} {STATUS_LABEL.get(c.status, c.status)}",
            style=STATUS_STYLE.get(c.status, ""),
        )
        text.append(f"  ·  {c.describe()}\n")
        text.append(
            f"model {c.spec.get('model') or 'default'} · config {str(c.spec.get('config_sha256', ''))[:12]}\n"
        )
        text.append(f"train run {c.train_run_id or '-'} · audit run {c.audit_run_id or '-'}\n", style="dim")
        text.append(f"elapsed {duration(c.elapsed(now))} · last update {clock_text(c.updated_at)}\n")
        if c.error:
            text.append(f"\nerror: {c.error}\n", style="bold red")
        result = c.result or {}
        if result.get("steps"):
            m = result.get("final_metrics") or {}
            text.append(f"\n{result['steps']} optimizer steps; final ")
            text.append(
                ", ".join(f"{k} {v:.4g}" for k, v in sorted(m.items()) if isinstance(v, int | float)) + "\n"
            )
        if c.train_run_id:
            steps = self.reader.steps(c.train_run_id)
            for label, key in (("sft loss        ", "sft_loss"), ("contrastive loss", "contrastive_loss")):
                values = [s.get(key) for s in steps if isinstance(s.get(key), int | float)]
                if values:
                    curve = sparkline(downsample(values, 60), 60)
                    text.append(f"{label} {curve} {values[0]:.3f} → {values[-1]:.3f} ({len(values)} steps)\n")
        if c.scores:
            base = self.state.baseline_scores(c) if c.kind == "train" else {}
            text.append(
                f"\n{'dimension':<14}{'score':>8}{'95% CI':>15}{'Δ base':>9}{'n':>6}  status\n", style="bold"
            )
            for dim, s in c.scores.items():
                b = (base.get(dim) or {}).get("score")
                delta = s["score"] - b if s.get("score") is not None and b is not None else None
                ci = (
                    f"{s['ci_low']:+.2f}..{s['ci_high']:+.2f}"
                    if s.get("ci_low") is not None and s.get("ci_high") is not None
                    else "-"
                )
                text.append(f"{ellipsis(dim, 13):<14}{score_text(s, 3):>8}{ci:>15}")
                text.append(f"{f'{delta:+.3f}' if delta is not None else '-':>9}", style=delta_style(delta))
                text.append(f"{s.get('n', ''):>6}  {s.get('status', '')}\n")
        text.append("\nr: report card · esc: back", style="dim")
        return text

    def action_report(self) -> None:
        cell_id = self.highlighted()
        if cell_id is None:
            self.notify("no cell highlighted", severity="warning")
            return
        self.open_report(cell_id)

    def open_report(self, cell_id: str) -> None:
        cell = next((c for c in self.state.cells if c.cell_id == cell_id), None)
        if cell is None or not cell.audit_run_id or cell.status != "complete":
            self.notify(
                f"{cell_id} has no finished audit yet: its report card comes when it is done.",
                severity="warning",
            )
            return
        self.notify(f"rendering the report card of {cell_id}…", timeout=3)
        self._render_report(cell)

    @work(thread=True, exclusive=True, group="report", exit_on_error=False)
    def _render_report(self, cell: CellView) -> None:
        try:
            path = render_cell_report(self.reader.path, cell)
        except ImportError:
            self.call_from_thread(
                self.notify,
                "report cards need rho_audit.report.cards, which this install lacks.",
                severity="warning",
            )
            return
        except Exception as err:  # the card is optional: say why, keep monitoring
            self.call_from_thread(self.notify, f"report card failed: {err}", severity="error", timeout=15)
            return
        try:
            opened = self.open_url(path.resolve().as_uri())
        except Exception:
            opened = False
        message = f"report card: {path}" + (
            "" if opened else " (no graphical browser here: open it yourself)"
        )
        self.call_from_thread(self.notify, message, timeout=20)
        self.call_from_thread(self.log_line, message, "")

    def action_request_quit(self) -> None:
        sweep_running = self.feed is not None and not self.feed.finished.is_set()
        if not sweep_running:
            self.exit()
            return
        if self.stopping:
            self.notify("already stopping after the current cell", timeout=5)
            return

        def chosen(choice: str | None) -> None:
            if choice == "stop" and self.feed is not None:
                self.stopping = True
                self.feed.stop_requested.set()
                self.log_line(f"stopping after the current cell ({self._current_id()})", "bold yellow")
                self.poll()

        self.push_screen(ConfirmStop(self.state.running.cell_id if self.state.running else None), chosen)

    def on_unmount(self) -> None:
        self.reader.close()


def render_cell_report(store_path: Path, cell: CellView) -> Path:
    """The cell's audit card as a self-contained HTML file in the temp folder."""
    from rho_audit.report import cards as reports

    texts, sections = None, None
    try:  # probe texts and plugin sections make a fuller card; the card works without them
        from rho_audit.plugins import load_host

        host = load_host()
        texts, sections = reports.probe_texts_from_host(host), reports.SectionTemplates.from_host(host)
    except Exception:
        log.debug("report card without probe texts", exc_info=True)
    # The report builders only read, and the monitor never writes to a store a sweep is using.
    store = RunStore.read_only(store_path, timeout=5, upgrade=False)
    try:
        card = reports.build_audit_card(store, str(cell.audit_run_id), texts)
    finally:
        store.close()
    out = (
        Path(tempfile.gettempdir())
        / "rho-audit-monitor"
        / f"{reports.slug(cell.cell_id)}-{cell.audit_run_id}.html"
    )
    reports.write_report(card, "html", out, sections)
    return out


def _open_in_browser(url: str) -> bool:
    """Open a graphical browser only: a text browser would take over the terminal the app is in."""
    if sys.platform != "darwin" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return False
    if type(browser) is webbrowser.GenericBrowser:
        return False
    return bool(browser.open(url))


def run_monitor(store: Path, sweep: str | None = None, interval: float = 1.0) -> None:
    SweepMonitor(store, sweep, interval=interval).run()


__all__ = ["StoreReader", "SweepMonitor", "TuiDisplay", "run_monitor"]
