"""The driver's side of a sweep as executors see it (:class:`rho_audit.api.SweepSession`): the
one writer of the run store. A cell run here writes as it goes; a cell run on a worker comes
back as a report (its result and its runs, see :mod:`.transfer`) that is imported here."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rho_audit.api.errors import RhoAuditError
from rho_audit.api.events import RunEvent
from rho_audit.api.executors import CellJob
from rho_audit.plugins import PluginHost
from rho_audit.store import RunStore
from rho_audit.train.sweep.execution import CellResult, execute_cell, record_result
from rho_audit.train.sweep.plan import CellSpec, SweepPlan
from rho_audit.train.sweep.transfer import export_cell, import_runs


@dataclass
class SweepRun:
    """What :func:`run_sweep` did this time (the table is built from the store by :func:`summarize`)."""

    ran: list[CellResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[CellResult]:
        return [r for r in self.ran if r.status == "failed"]


class DriverSession:
    """Implements :class:`rho_audit.api.SweepSession` for one :func:`run_sweep` call. Its methods
    may be called from an executor's threads: store writes and events are serialised."""

    def __init__(
        self,
        plan: SweepPlan,
        store_path: Path,
        host: PluginHost,
        outcome: SweepRun,
        describe: Callable[[CellSpec], str],
        score_line: Callable[[CellResult], str],
    ) -> None:
        self.plan, self.store_path, self.host, self.outcome = plan, Path(store_path), host, outcome
        self.sweep_id = plan.sweep_id
        self.cells = {c.cell_id: c for c in plan.cells}
        self.total = len(plan.cells)
        self.done = len(outcome.skipped)
        self._describe, self._score_line = describe, score_line
        self._lock = threading.RLock()
        self._models: dict[str | None, dict[str, Any]] = {}
        self._model_paths: dict[str, Path] = {}

    def job(self, cell: CellSpec) -> CellJob:
        return CellJob(cell.cell_id, self._describe(cell), cell.to_json())

    # -- SweepSession ----------------------------------------------------------------------

    def started(self, job: CellJob) -> None:
        with self._lock:
            self._emit("cell_started", job.cell_id, job.description)

    def run_here(self, job: CellJob) -> None:
        cell = self.cells[job.cell_id]
        result = execute_cell(cell, self.store_path, self.host)
        with self._lock:
            self._write(lambda store: record_result(store, cell, result))
            self._close(result)

    def payload(self, job: CellJob) -> dict[str, Any]:
        from rho_audit.train.sweep.remote import model_identity

        cell = self.cells[job.cell_id]
        with self._lock:
            if cell.model not in self._models:
                identity = model_identity(cell.model)
                self._models[cell.model] = identity
                self._model_paths[identity["sha256"]] = Path(identity["path"])
            store = RunStore(self.store_path)
            try:
                seed = export_cell(store, cell)
            finally:
                store.close()
        # A worker that cannot see this file does not share --out: it sends the adapter back.
        marker = str(self.plan.out_dir / "sweep.json")
        return {"spec": cell.to_json(), "seed": seed, "model": self._models[cell.model], "out_marker": marker}

    def finished(self, job: CellJob, report: dict[str, Any], attempts: int = 1) -> None:
        cell = self.cells[job.cell_id]
        if "result" not in report:
            raise RhoAuditError(f"cell {job.cell_id}: the worker sent no result ({sorted(report)}).")
        result = replace(CellResult.from_json(report["result"]), attempts=attempts)
        if report.get("adapter") and cell.adapter_dir:
            from rho_audit.train.sweep.remote import unpack

            unpack(base64.b64decode(report["adapter"]), Path(cell.adapter_dir))
        with self._lock:

            def write(store: RunStore) -> None:
                import_runs(store, (report.get("state") or {}).get("runs") or ())
                record_result(store, cell, result)

            self._write(write)
            self._close(result)
        if report.get("user_error"):
            raise RhoAuditError(result.error or f"cell {job.cell_id} failed")

    def lost(self, job: CellJob, error: str, attempts: int) -> None:
        cell = self.cells[job.cell_id]
        with self._lock:

            def write(store: RunStore) -> CellResult:
                prior = store.cell(cell.sweep_id, cell.cell_id)
                same = prior is not None and prior.config_sha256 == cell.config_sha256
                result = CellResult(
                    cell.cell_id,
                    "failed",
                    prior.train_run_id if same and prior else None,
                    prior.audit_run_id if same and prior else None,
                    error=error,
                    splits=(prior.result.get("splits") or {}) if same and prior else {},
                    attempts=attempts,
                )
                record_result(store, cell, result)
                return result

            self._close(self._write(write))

    def model_archive(self, sha256: str) -> bytes:
        from rho_audit.train.sweep.remote import archive_folder, folder_sha256

        path = self._model_paths.get(sha256)
        if path is None or folder_sha256(path) != sha256:
            raise RhoAuditError(
                f"no model with content hash {sha256[:12]} on this machine any more (its folder changed "
                "during the sweep). Leave model folders alone while a sweep runs, and run it again."
            )
        return archive_folder(path)

    # -- the driver's bookkeeping --------------------------------------------------------------

    def _write(self, work: Callable[[RunStore], Any]) -> Any:
        store = RunStore(self.store_path)
        try:
            return work(store)
        finally:
            store.close()

    def _close(self, result: CellResult) -> None:
        self.outcome.ran.append(result)
        self.done += 1
        kind = "cell_finished" if result.status == "complete" else "cell_failed"
        self._emit(kind, result.cell_id, result.error or self._score_line(result))

    def _emit(self, kind: Any, cell_id: str, message: str) -> None:
        from rho_audit.audit.runner import emit

        emit(
            self.host,
            RunEvent(kind, self.sweep_id, cell=cell_id, done=self.done, total=self.total, message=message),
        )
