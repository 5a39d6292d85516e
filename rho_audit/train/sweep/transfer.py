"""A cell's state as one JSON document, so a cell can run on a worker that never opens the
driver's run store: the driver exports what its store holds of the cell (the cell's row and the
runs it names) into the payload, the worker imports that into a scratch store, runs the cell
there, and sends back the same kind of document, which the driver imports. One writer per store.

Everything goes through :class:`RunStore`'s own reads and writes (the store keeps all the SQL).
An imported run keeps its id, config, steps, results, probe records and judge usage; its
``created_at``/``finished_at`` are the import's. A run the receiving store already has as
``complete`` is left alone, so importing twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import Any

from rho_audit.api.results import CompatStat, DimensionResult, Evaluation, ProbeRecord, finite
from rho_audit.store import RunRow, RunStore
from rho_audit.train.sweep.plan import CellSpec


def export_cell(store: RunStore, cell: CellSpec, extra_runs: Iterable[str] = ()) -> dict[str, Any]:
    """The cell's row (None before it has one) and every run it depends on: the runs its row
    names, training runs into its adapter folder still marked running, ``extra_runs``, and the
    finished training runs of its config (so the worker can reuse such an adapter, as
    :func:`~rho_audit.train.sweep.execution.execute_cell` does)."""
    row = store.cell(cell.sweep_id, cell.cell_id)
    ids: list[str] = list(extra_runs)
    doc: dict[str, Any] | None = None
    if row is not None:
        doc = {
            "config_sha256": row.config_sha256,
            "status": row.status,
            "train_run_id": row.train_run_id,
            "audit_run_id": row.audit_run_id,
            "error": row.error,
            "cell": row.doc.to_json(),
        }
        ids += [r for r in (row.train_run_id, row.audit_run_id) if r]
        splits = row.result.get("splits") or {}
        ids += [e["audit_run_id"] for e in splits.values() if isinstance(e, dict) and e.get("audit_run_id")]
    if cell.adapter_dir:
        ids += store.running_train_runs(str(cell.adapter_dir), other_than="")
    reusable = []
    if cell.train:
        from rho_audit.train.config import TrainConfig

        sha = TrainConfig.model_validate(cell.train).config_sha256()
        reusable = [r.run_id for r in store.finished_train_runs(sha)]
    runs = [export_run(store, run_id) for run_id in dict.fromkeys(ids + reusable)]
    return {"cell": doc, "runs": [r for r in runs if r is not None]}


def export_run(store: RunStore, run_id: str) -> dict[str, Any] | None:
    """One run with its training steps, dimension results (and their probe records) and judge usage."""
    row = store.get_run(run_id)
    if row is None:
        return None
    results = [
        {"result": r, "records": store.probe_records(run_id, str(r["dimension"]))}
        for r in store.results(run_id)
    ]
    return finite(
        {
            "row": asdict(row),
            "steps": [[s.step, s.metrics] for s in store.train_steps(run_id)],
            "results": results,
            "judge_usage": store.judge_usage(run_id),
        }
    )


def export_all(store: RunStore, cell: CellSpec, skip: Iterable[str] = ()) -> dict[str, Any]:
    """What a worker sends back: the cell's row and every run in its scratch store but ``skip``
    (the runs it was only given to reuse, which it did not change)."""
    doc = export_cell(store, cell)
    left_out = set(skip)
    doc["runs"] = [
        r for r in (export_run(store, row.run_id) for row in store.runs() if row.run_id not in left_out) if r
    ]
    return doc


def import_runs(store: RunStore, runs: Iterable[Mapping[str, Any]]) -> list[str]:
    """Write each exported run into ``store`` (but the ones it already has complete); returns
    the ids written."""
    written = []
    for doc in runs:
        row = RunRow(**doc["row"])
        have = store.get_run(row.run_id)
        if have is not None and have.status == "complete":
            continue
        store.start_run(
            row.run_id,
            row.model_id,
            row.model_path,
            row.adapter,
            row.seed,
            row.config,
            row.config_sha256,
            row.versions,
            row.git_revision,
            row.kind,
        )
        for step, metrics in doc.get("steps") or ():
            store.add_train_step(row.run_id, int(step), metrics)
        for entry in doc.get("results") or ():
            store.add_result(row.run_id, dimension_result(entry["result"], entry.get("records") or ()))
        for usage in doc.get("judge_usage") or ():
            usage = dict(usage)
            store.record_judge_usage(row.run_id, str(usage.pop("context")), usage)
        if row.status != "running":
            store.finish_run(row.run_id, row.status, row.error)
        written.append(row.run_id)
    return written


def import_cell_row(store: RunStore, cell: CellSpec, doc: Mapping[str, Any] | None) -> None:
    """Write the cell's row as exported (nothing when there was none)."""
    if not doc:
        return
    store.set_cell(
        cell.sweep_id,
        cell.cell_id,
        doc["config_sha256"],
        doc["status"],
        doc["cell"],
        doc.get("train_run_id"),
        doc.get("audit_run_id"),
        doc.get("error"),
    )


def dimension_result(summary: Mapping[str, Any], records: Iterable[Mapping[str, Any]]) -> DimensionResult:
    """A stored result (``DimensionResult`` JSON without records) and its probe records, as the
    record :meth:`RunStore.add_result` takes."""
    ev = dict(summary["evaluation"])
    compat = ev.get("rho_eval_compat")
    evaluation = Evaluation(
        **{
            **ev,
            "records": tuple(ProbeRecord(**r) for r in records),
            "rho_eval_compat": CompatStat(**compat) if isinstance(compat, dict) else None,
            "trend": tuple(ev.get("trend") or ()),
        }
    )
    return DimensionResult(**{**summary, "evaluation": evaluation})
