"""Reading one sweep from the run store, read-only and incrementally, into a SweepState."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rho_audit.display.tui.state import FINAL, RUNNING, CellView, SweepState
from rho_audit.store import AmbiguousId, CellDoc, RunStore, StoredCell, StoreError, StoreNotReady


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
        self._step_seen: dict[str, float] = {}  # run id -> when its last step was first read
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
            elif cell.status in FINAL:
                cell.started_at = self._started(store, cell)
        # Only the running cell's curve stays in memory (a details view re-reads a finished one).
        live = {c.train_run_id for c in cells if c.status in RUNNING or c.status == "stopped"}
        self._steps = {run_id: steps for run_id, steps in self._steps.items() if run_id in live}
        self._step_seen = {run_id: t for run_id, t in self._step_seen.items() if run_id in live}
        cells.sort(key=self._sort_key(cells))
        state.cells = cells
        state.steps = self._steps
        state.step_seen_at = self._step_seen

    def _doc(self, row: StoredCell) -> CellDoc:
        """The cell's document, parsed again only when its row changed."""
        cached = self._docs.get(row.cell_id)
        if cached is None or cached[0] != row.updated_at:
            cached = (row.updated_at, row.doc)
            self._docs[row.cell_id] = cached
        return cached[1]

    def _started(self, store: RunStore, cell: CellView) -> float | None:
        """When the cell's first run was created (a resumed run keeps its id and creation time)."""
        ids = [r for r in (cell.train_run_id, cell.audit_run_id) if r]
        for run_id in ids:
            if run_id not in self._run_created:
                run = store.get_run(run_id)
                if run:
                    self._run_created[run_id] = run.created_at
        starts = [self._run_created[r] for r in ids if r in self._run_created]
        return min(starts) if starts else None

    def _running(self, store: RunStore, cell: CellView, state: SweepState) -> None:
        cell.started_at = self._started(store, cell) or cell.updated_at
        if cell.train_run_id and cell.status == "training":
            self.steps(cell.train_run_id, state.read_at)
        if cell.audit_run_id and cell.status == "auditing":
            cell.partial = {s.dimension: s.to_json() for s in store.dimension_scores(cell.audit_run_id)}

    def steps(self, run_id: str, now: float | None = None) -> list[dict[str, Any]]:
        """The run's step metrics, reading only the steps not seen yet; ``now`` is noted as the time
        new steps were seen (the ETA counts down from it)."""
        store = self._connect()
        known = self._steps.setdefault(run_id, [])
        if store is None:
            return known
        last = known[-1]["step"] if known else 0
        new = [step.flat() for step in store.train_steps(run_id, after=last)]
        if new:
            known.extend(new)
            self._step_seen[run_id] = time.time() if now is None else now
        return known

    def resume_step(self, cell: CellView) -> int | None:
        """The step the cell's training resumes from: its newest checkpoint's, when the adapter
        folder is on this machine."""
        adapter = cell.train.get("adapter_dir")
        if not adapter:
            return None
        try:  # train.checkpoints' pointer, read directly: importing that module loads the model stack
            pointer = json.loads((Path(adapter) / "latest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        step = pointer.get("step") if isinstance(pointer, dict) else None
        return step if isinstance(step, int) else None

    def _check_lock(self, cells: list[CellView], state: SweepState) -> None:
        """Is the process that holds the sweep's lock alive? Read at most every LOCK_CHECK_S."""
        checked, alive, pid = self._lock
        # Read again at once when a cell's row changed since the last read of the lock (a new
        # process may hold it now) and while the holder is dead (one small file, not a busy loop).
        changed = any(c.updated_at > checked for c in cells if c.status in RUNNING)
        if state.read_at - checked >= self.LOCK_CHECK_S or checked == 0.0 or changed or alive is False:
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
