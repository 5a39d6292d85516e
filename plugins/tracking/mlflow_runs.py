"""MLflow tracking (``pip install 'rho-audit[mlflow]'``): each audit run, training run and sweep
cell becomes an MLflow run.

Switched on by ``--track mlflow`` or ``RHO_AUDIT_TRACKING=mlflow``. Runs go to
``MLFLOW_TRACKING_URI`` when it is set, else to the file store ``./mlruns`` (offline), in the
experiment ``MLFLOW_EXPERIMENT_NAME`` (default ``rho-audit``). Recorded per run:

- params: model, adapter, seed, config hash, the trainer and its options (training runs, cells),
  every audit setting, each dimension's probe set and version (``probe_set.DIM = NAME@VERSION``);
- metrics: per dimension the score (rho for pair dimensions) and its CI bounds (``DIM.score``,
  ``DIM.ci_low``, ``DIM.ci_high``), paired accuracy (``DIM.accuracy``), n; every training step's
  losses at their step numbers (``train.KEY``); a cell's final metrics and its ``attempts``;
- artifacts: ``result.json`` (the run's or the cell's JSON) and ``card.html`` (the audit card).

A sweep cell is one MLflow run: the audit and training runs inside it are not logged again.
The observer only queues the run's id; a thread of its own reads the store and talks to MLflow,
so a slow tracking server never slows the audit. A tracker that fails is logged once and then
left alone for the rest of the process; the audit's results never change.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import re
import threading
import time
from pathlib import Path
from typing import Any

from rho_audit.api import RunEvent, hookimpl, tracking

log = logging.getLogger(__name__)

NAME = "mlflow"
#: How long, at exit, the process waits for runs still queued (a tracker must not hang it).
FLUSH_TIMEOUT_S = float(os.environ.get("RHO_AUDIT_TRACKING_FLUSH_S", "60"))
#: MLflow refuses longer parameter values.
MAX_PARAM = 500


class MlflowTracker:
    """The queue, the thread that drains it, and the once-only failure log."""

    def __init__(self) -> None:
        self.queue: queue.Queue[tuple[str, str, str | None, Path | None] | None] = queue.Queue()
        self.in_cell: set[str] = set()
        self.failed = False
        self.thread = threading.Thread(target=self._drain, name="rho-audit-mlflow", daemon=True)
        self.thread.start()
        self._client: Any = None
        self._experiment: str | None = None

    # -- the audit's thread: cheap only ------------------------------------------------------

    def observe(self, event: RunEvent) -> None:
        if self.failed:
            return
        store = tracking.current_store()
        if event.kind == "cell_started" and event.cell:
            self.in_cell.add(event.run_id)
        elif event.kind in ("cell_finished", "cell_failed") and event.cell:
            self.in_cell.discard(event.run_id)
            self.queue.put(("cell", event.run_id, event.cell, store))
        elif event.kind in ("run_finished", "run_interrupted", "train_finished") and not self.in_cell:
            self.queue.put(("run", event.run_id, None, store))

    def flush(self, timeout: float = FLUSH_TIMEOUT_S) -> bool:
        """Wait until everything queued is logged (or dropped); False when ``timeout`` ran out."""
        deadline = time.monotonic() + timeout
        while self.queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self.queue.unfinished_tasks

    # -- the tracker's thread ---------------------------------------------------------------

    def _drain(self) -> None:
        while True:
            item = self.queue.get()
            try:
                if item is not None and not self.failed:
                    self._log(*item)
            except Exception as err:  # any failure: say it once, then stay out of the way
                self.failed = True
                log.warning(
                    "MLflow tracking failed and is off for the rest of this process (%s: %s); "
                    "the audit's results are unaffected. Check MLFLOW_TRACKING_URI (%s).",
                    type(err).__name__,
                    err,
                    os.environ.get("MLFLOW_TRACKING_URI", "./mlruns"),
                )
            finally:
                self.queue.task_done()

    def _log(self, what: str, key: str, cell: str | None, store: Path | None) -> None:
        record = tracking.tracked_cell(key, cell, store) if cell else tracking.tracked_run(key, store)
        if record is None:
            return
        from mlflow.entities import Metric, Param, RunTag

        client, experiment = self._mlflow()
        tags = {"rho_audit.key": record.key, "rho_audit.kind": record.kind}
        run = client.create_run(experiment, tags=tags, run_name=record.name)
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        params = [Param(_key(k), v[:MAX_PARAM]) for k, v in sorted(record.params.items())]
        metrics = [Metric(_key(k), v, now, 0) for k, v in record.metrics.items()]
        for s in record.scores:
            for name, value in (
                ("score", s.score),
                ("ci_low", s.ci_low),
                ("ci_high", s.ci_high),
                ("accuracy", s.accuracy),
                ("n", s.n),
            ):
                if value is not None:
                    metrics.append(Metric(_key(f"{s.dimension}.{name}"), float(value), now, 0))
        for step, values in record.steps:
            metrics += [Metric(_key(f"train.{k}"), v, now, step) for k, v in values.items()]
        client.log_batch(run_id, tags=[RunTag("rho_audit.status", record.status)])
        for start in range(0, len(params), 100):  # log_batch takes 100 params, 1000 metrics a call
            client.log_batch(run_id, params=params[start : start + 100])
        for start in range(0, len(metrics), 1000):
            client.log_batch(run_id, metrics=metrics[start : start + 1000])
        client.log_text(run_id, record.result_json, "result.json")
        if record.card_run_id:
            client.log_text(run_id, tracking.card_html(record.card_run_id, store), "card.html")
        status = {"complete": "FINISHED", "interrupted": "KILLED"}.get(record.status, "FAILED")
        client.set_terminated(run_id, status=status)

    def _mlflow(self) -> tuple[Any, str]:
        if self._client is None:
            import mlflow

            uri = os.environ.get("MLFLOW_TRACKING_URI") or Path("mlruns").resolve().as_uri()
            if uri.startswith("file:") or "://" not in uri:
                # MLflow 3 keeps its file store in maintenance mode behind this switch; a file
                # store is what works offline with nothing but mlflow-skinny installed.
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            client = mlflow.MlflowClient(tracking_uri=uri)
            name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or "rho-audit"
            found = client.get_experiment_by_name(name)
            self._experiment = found.experiment_id if found else client.create_experiment(name)
            self._client = client
        return self._client, str(self._experiment)


def _key(name: str) -> str:
    """A param or metric name MLflow accepts (letters, digits, ``_-. /``), at most 250 characters."""
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", name)[:250]


_TRACKER: list[MlflowTracker] = []


def tracker() -> MlflowTracker:
    """The process's tracker, started on first use (its thread, its exit flush)."""
    if not _TRACKER:
        _TRACKER.append(MlflowTracker())
        atexit.register(_flush_at_exit)
    return _TRACKER[0]


def _flush_at_exit() -> None:
    if _TRACKER and not _TRACKER[0].flush():
        log.warning("MLflow tracking: gave up on runs still queued after %.0f s at exit", FLUSH_TIMEOUT_S)


@hookimpl
def run_event(event: RunEvent) -> None:
    if tracking.tracking_enabled(NAME):
        tracker().observe(event)
