"""Running a sweep: every cell not complete yet, baselines first, then seed by seed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from rho_audit._util.files import atomic_write_text
from rho_audit.api.events import RunEvent
from rho_audit.api.executors import Executor
from rho_audit.plugins import PluginHost
from rho_audit.store import RunStore
from rho_audit.train.sweep.execution import CellResult
from rho_audit.train.sweep.lock import sweep_lock
from rho_audit.train.sweep.plan import CellSpec, SweepPlan
from rho_audit.train.sweep.session import DriverSession, SweepRun


def run_sweep(
    plan: SweepPlan,
    store_path: Path,
    host: PluginHost,
    executor: Executor | None = None,
    wait: bool = False,
    on_wait: Callable[[str], None] | None = None,
) -> SweepRun:
    """Run every cell that is not complete yet, baselines first, then seed by seed.

    ``executor`` (default: the registered ``local`` one) decides where cells run; this process
    is the only writer of the store either way. Refuses while another process runs the same
    sweep on the same store (or writes into the same adapter folder); ``wait=True`` waits for it
    instead, telling ``on_wait`` (default: a ``warning`` event), and then skips what it completed."""
    from rho_audit.api.tracking import use_store
    from rho_audit.audit.runner import emit

    store_path = Path(store_path)
    use_store(store_path)  # where trackers read the finished cells
    outcome = SweepRun()
    if on_wait is None:

        def on_wait(message: str) -> None:
            emit(host, RunEvent("warning", plan.sweep_id, message=message))

    with sweep_lock(store_path, plan.sweep_id, plan.out_dir, wait=wait, on_wait=on_wait):
        write_manifest(plan)
        done = _register_cells(plan, store_path)
        cells = plan.run_order()
        outcome.skipped = [c.cell_id for c in cells if c.cell_id in done]
        session = DriverSession(plan, store_path, host, outcome, describe, _score_line)
        jobs = [session.job(c) for c in cells if c.cell_id not in done]
        if executor is None and "local" in host.executors:
            executor = host.executor("local")()
        if executor is not None:
            executor.run(jobs, session)
        else:  # the local executor's plugin disabled (RHO_AUDIT_LOAD_PLUGINS): the same loop
            for job in jobs:
                session.started(job)
                session.run_here(job)
    return outcome


def _register_cells(plan: SweepPlan, store_path: Path) -> set[str]:
    """Write a pending row for every new cell (so the store shows the whole plan from the
    start) and return the ids of the cells already complete with this config."""
    store = RunStore(store_path)
    try:
        rows = {r.cell_id: r for r in store.cells(plan.sweep_id)}
        done = set()
        for cell in plan.cells:
            row = rows.get(cell.cell_id)
            if row is None:
                store.set_cell(
                    plan.sweep_id, cell.cell_id, cell.config_sha256, "pending", {"spec": cell.to_json()}
                )
            elif row.status == "complete" and row.config_sha256 == cell.config_sha256:
                done.add(cell.cell_id)
        return done
    finally:
        store.close()


def describe(cell: CellSpec) -> str:
    """A cell in words, for progress lines."""
    model = cell.model or "the default model"
    if cell.kind == "baseline":
        return f"baseline audit of {model}"
    train = cell.train or {}
    options = " ".join(f"{k}={v:g}" for k, v in sorted(train.get("options", {}).items()))
    return f"{train.get('trainer')} {options} seed {train.get('seed')} on {model}".replace("  ", " ")


def _score_line(result: CellResult) -> str:
    return " ".join(
        f"{dim} {s['score']:+.3f}" if s.get("score") is not None else f"{dim} -"
        for dim, s in result.scores.items()
    )


def write_manifest(plan: SweepPlan) -> Path:
    """``<out>/<sweep_id>/sweep.json``: the source file and the expanded cells, for the record."""
    path = plan.out_dir / "sweep.json"
    doc = {
        "sweep_id": plan.sweep_id,
        "name": plan.name,
        "description": plan.description,
        "quick": plan.quick,
        "source": str(plan.source),
        "source_text": plan.source.read_text(encoding="utf-8"),
        "cells": [c.to_json() for c in plan.cells],
    }
    return atomic_write_text(path, json.dumps(doc, indent=2, sort_keys=True))
