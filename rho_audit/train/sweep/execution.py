"""Running one cell: train (resuming from a checkpoint when there is one), then audit it once per
split of its audit settings (held-out first), each split a run of its own.

Execution is a pure function, :func:`execute_cell` (cell spec, store path, plugin host) ->
:class:`CellResult`. Executors (:class:`rho_audit.api.Executor`, registered through the
``register_executors`` hook) decide where it runs: the built-in ``local`` one calls it here,
against the driver's store; a distributed one calls it on a worker against a scratch store
(:mod:`.remote`) and the driver imports what came back (:mod:`.session`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from rho_audit.api.errors import RhoAuditError
from rho_audit.api.events import RunEvent
from rho_audit.api.hooks import hookimpl
from rho_audit.api.results import finite
from rho_audit.plugins import PluginHost
from rho_audit.report.splits import audit_splits
from rho_audit.store import CellDoc, RunStore
from rho_audit.train.config import TrainConfig
from rho_audit.train.sweep.plan import CellSpec

log = logging.getLogger(__name__)


CellStatus = Literal["pending", "training", "auditing", "complete", "failed"]


@dataclass(frozen=True)
class CellResult:
    """What running a cell produced, JSON-serialisable so a remote executor can send it back."""

    cell_id: str
    status: Literal["complete", "failed"]
    train_run_id: str | None = None
    audit_run_id: str | None = None
    #: dimension -> {"score", "metric", "ci_low", "ci_high", "n", "status"} of the audit.
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    steps: int | None = None
    final_metrics: dict[str, float] = field(default_factory=dict)
    elapsed_s: float = 0.0
    error: str | None = None
    #: With several audit splits: split -> {"audit_run_id", "scores"}, held-out first; ``scores``
    #: and ``audit_run_id`` above are then those of the first split. Empty with one split.
    splits: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: How many times the executor started the cell (a worker killed mid-cell is retried).
    attempts: int = 1

    def to_json(self) -> dict[str, Any]:
        return finite(asdict(self))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CellResult:
        return cls(**data)


class _CellRow:
    """The store row of one cell, written at every status change (one transaction each)."""

    def __init__(self, store: RunStore, cell: CellSpec) -> None:
        self.store, self.cell = store, cell
        prior = store.cell(cell.sweep_id, cell.cell_id)
        same = prior is not None and prior.config_sha256 == cell.config_sha256
        self.train_run_id: str | None = prior.train_run_id if same and prior else None
        self.audit_run_id: str | None = prior.audit_run_id if same and prior else None
        #: split -> its finished audit run, kept in the row while the next split is audited.
        self.audits: dict[str, str] = _finished_audits(prior.result) if same and prior else {}
        self.several_splits = len(audit_splits(cell.audit)) > 1

    def split_runs(self) -> dict[str, dict[str, Any]]:
        """The finished audits by split, as the row keeps them (nothing with one split)."""
        if not self.several_splits:
            return {}
        return {s: {"audit_run_id": r} for s, r in self.audits.items()}

    def set(self, status: CellStatus, error: str | None = None, result: CellResult | None = None) -> None:
        if result is not None:
            body: dict[str, Any] | None = result.to_json()
        else:  # only the splits audited so far, so a kill between two splits redoes neither
            body = {"splits": self.split_runs()} if self.split_runs() else None
        doc = CellDoc(self.cell.to_json(), body)
        self.store.set_cell(
            self.cell.sweep_id,
            self.cell.cell_id,
            self.cell.config_sha256,
            status,
            doc.to_json(),
            self.train_run_id,
            self.audit_run_id,
            error,
        )


def execute_cell(cell: CellSpec, store_path: Path, host: PluginHost) -> CellResult:
    """Train (resuming from a checkpoint when there is one) and audit one cell.

    A pure function of its arguments, so it can run in another process or on another machine.
    A user error (:class:`RhoAuditError`) marks the cell failed and propagates: it would fail
    every cell alike. Any other exception marks the cell failed and is returned as the result, so
    one diverging run does not stop the sweep. Ctrl-C leaves the row as it is, to be resumed.
    """
    started = time.monotonic()
    store = RunStore(store_path)
    try:
        row = _CellRow(store, cell)
        try:
            steps, final = _train_cell(cell, host, store, row) if cell.kind == "train" else (None, {})
            row.set("auditing")
            by_split = _audit_cell(cell, host, store, row)
            first = next(iter(by_split.values()))
            result = CellResult(
                cell.cell_id,
                "complete",
                row.train_run_id,
                first["audit_run_id"],
                first["scores"],
                steps,
                final,
                time.monotonic() - started,
                splits=by_split if len(by_split) > 1 else {},
            )
        except RhoAuditError as err:
            row.set("failed", str(err))
            raise
        except Exception as err:
            log.exception("sweep cell %s failed", cell.cell_id)
            result = CellResult(
                cell.cell_id,
                "failed",
                row.train_run_id,
                row.audit_run_id,
                elapsed_s=time.monotonic() - started,
                error=f"{type(err).__name__}: {err}",
                splits=row.split_runs(),
            )
        row.set(result.status, result.error, result)
        return result
    finally:
        store.close()


def _train_cell(
    cell: CellSpec, host: PluginHost, store: RunStore, row: _CellRow
) -> tuple[int, dict[str, float]]:
    from rho_audit.audit.runner import emit
    from rho_audit.train import loop as training

    row.set("training")

    def say(event: RunEvent) -> None:
        if event.kind == "train_started":
            _close_orphans(store, cell, event.run_id)
            if event.run_id != row.train_run_id:
                row.train_run_id = event.run_id  # recorded at once: a kill from here on resumes this run
                row.set("training")
        emit(host, event)

    config = TrainConfig.model_validate(cell.train)
    reused = _reuse_finished_adapter(config, store)
    if reused:
        emit(host, RunEvent("warning", reused.run_id, message=f"{cell.cell_id}: {reused.message}"))
    # OUT/<sweep>/<cell>/adapter (plan._finish): every sweep under OUT shares one reference cache
    cache = Path(config.adapter_dir).parents[2] / training.REFERENCE_CACHE
    outcome = training.train(config, host, store, say=say, reference_cache=cache)
    row.train_run_id = outcome.run_id
    if outcome.status != "complete":
        raise RuntimeError(f"training ended with status {outcome.status!r}")
    return outcome.steps, dict(outcome.final_metrics)


@dataclass(frozen=True)
class ReusedAdapter:
    run_id: str
    message: str


def _reuse_finished_adapter(config: TrainConfig, store: RunStore) -> ReusedAdapter | None:
    """Copy in the adapter of a complete training run of exactly this config (another sweep in
    the same store, e.g. the ablation's rho-guided cells that the dose-response and margin sweeps
    also need), so the cell is audited without training it again. Training is seeded, so a
    retrained adapter would only differ by floating-point noise. Nothing is reused into a folder
    that already holds a checkpoint or an adapter."""
    from rho_audit.train import checkpoints

    out = Path(config.adapter_dir)
    if checkpoints.finished_run(out) or checkpoints.latest_checkpoint(out):
        return None
    sha = config.config_sha256()
    for run in store.finished_train_runs(sha):
        source = Path(run.adapter or "")
        done = checkpoints.finished_run(source) if run.adapter else None
        if done and done.get("config_sha256") == sha and source.resolve() != out.resolve():
            checkpoints.copy_finished_adapter(source, out)
            return ReusedAdapter(
                run.run_id, f"reusing the adapter of training run {run.run_id} (same config) from {source}"
            )
    return None


def _close_orphans(store: RunStore, cell: CellSpec, current: str) -> None:
    """Mark ``interrupted`` the cell's earlier training runs still marked ``running``: a kill
    before a run's first checkpoint leaves nothing to resume, so training starts over under a new
    run id and the old one would otherwise stay ``running`` forever. The sweep lock guarantees
    that no other process is training into this cell's folder."""
    for run_id in store.running_train_runs(str(Path(cell.adapter_dir or "")), other_than=current):
        store.finish_run(
            run_id,
            "interrupted",
            f"stopped before its first checkpoint; the sweep restarted the cell as {current}",
        )


class _AuditWatcher:
    """Records the audit's run id in the cell row as soon as the run exists in the store."""

    def __init__(self, row: _CellRow) -> None:
        self.row = row

    @hookimpl
    def run_event(self, event: RunEvent) -> None:
        if event.kind == "run_started":
            self.row.audit_run_id = event.run_id
            self.row.set("auditing")


def _audit_cell(
    cell: CellSpec, host: PluginHost, store: RunStore, row: _CellRow
) -> dict[str, dict[str, Any]]:
    """Audit the cell once per split, held-out first: split -> {"audit_run_id", "scores"}.

    An audit that finished before a kill is reused, never run twice; one that was running is
    marked ``interrupted`` and run again."""
    splits = audit_splits(cell.audit)
    previous = row.audit_run_id
    found = store.get_run(previous) if previous else None
    if found is not None and previous not in row.audits.values():
        if found.status == "complete":
            # With one split the run is that split's; with several its config says which.
            split = splits[0] if len(splits) == 1 else found.config.get("split")
            if split in splits and split not in row.audits:
                row.audits[split] = found.run_id
        elif found.status == "running":
            store.finish_run(
                found.run_id, "interrupted", "stopped during a sweep; the cell's audit was re-run"
            )
    out: dict[str, dict[str, Any]] = {}
    for split in splits:
        done = row.audits.get(split)
        if done is not None and (run := store.get_run(done)) is not None and run.status == "complete":
            out[split] = {"audit_run_id": done, "scores": _stored_scores(store, done)}
            continue
        run_id, scores = _audit_split(cell, split, host, store, row)
        row.audits[split] = run_id
        out[split] = {"audit_run_id": run_id, "scores": scores}
        if row.several_splits:
            row.set("auditing")  # this split is done: a kill from here on keeps it
    row.audit_run_id = out[splits[0]]["audit_run_id"]
    return out


def _audit_split(
    cell: CellSpec, split: str, host: PluginHost, store: RunStore, row: _CellRow
) -> tuple[str, dict[str, dict[str, Any]]]:
    from rho_audit.audit import runner

    a = cell.audit
    probes = tuple(_probe_choice(item) for item in a.get("probes") or ())
    dimensions = tuple(a["dimensions"]) if a["dimensions"] else None
    if dimensions is None and probes:
        # `run --probes` alone audits only the probe sets; a sweep audits them besides everything.
        dimensions = tuple(r.name for r in host.select_dimensions(None))
    config = runner.AuditConfig(
        model=cell.model,
        adapter=cell.adapter_dir,
        dimensions=dimensions,
        judge=a["judge"],
        judge_options=tuple((k, str(v)) for k, v in (a.get("judge_options") or {}).items()),
        template=a["template"],
        seed=a["seed"],
        limit=a["limit"],
        split=split,
        store=store.path,
        probe_choices=probes,
        # A cell of the sweep's personas axis audits under its persona (a registered name).
        persona=host.resolve_personas(a["persona"])[0] if a.get("persona") else None,
        dimension_options=a.get("options") or {},
    )
    watcher = _AuditWatcher(row)
    host.pm.register(watcher, name=f"rho-audit-sweep-{cell.cell_id}")
    try:
        outcome = runner.run_audit(config, host)
    finally:
        host.pm.unregister(watcher)
    row.audit_run_id = outcome.run_id
    return outcome.run_id, {r.dimension: _score_of(r.to_json()) for r in outcome.results}


def _probe_choice(item: str) -> Any:
    """A ``probes:`` entry as ``rho-audit run --probes`` takes it: SET or DIMENSION=SET."""
    from rho_audit.audit.runner import ProbeChoice

    name, sep, source = item.partition("=")
    return ProbeChoice(source.strip(), name.strip()) if sep else ProbeChoice(item.strip())


def _finished_audits(result: Mapping[str, Any] | None) -> dict[str, str]:
    splits = (result or {}).get("splits")
    if not isinstance(splits, dict):
        return {}
    return {
        str(split): str(entry["audit_run_id"])
        for split, entry in splits.items()
        if isinstance(entry, dict) and entry.get("audit_run_id")
    }


def _stored_scores(store: RunStore, run_id: str) -> dict[str, dict[str, Any]]:
    return {str(r["dimension"]): _score_of(r) for r in store.results(run_id)}


def _score_of(result: Mapping[str, Any]) -> dict[str, Any]:
    """What a cell keeps of a dimension's result: the headline, and the probe set with its
    paired accuracy (the pooled accuracy over several probe sets is built from those)."""
    ev = result.get("evaluation") or {}
    return {
        "score": ev.get("score"),
        "metric": ev.get("metric"),
        "ci_low": ev.get("ci_low"),
        "ci_high": ev.get("ci_high"),
        "n": ev.get("n"),
        "status": result.get("status"),
        "probe_set": result.get("probe_set"),
        "paired_accuracy": ev.get("paired_accuracy"),
    }


def record_result(store: RunStore, cell: CellSpec, result: CellResult) -> None:
    """The driver's copy of a cell's final row (a rewrite for the local executor; what brings a
    remote executor's result into this store)."""
    doc = CellDoc(cell.to_json(), result.to_json())
    store.set_cell(
        cell.sweep_id,
        cell.cell_id,
        cell.config_sha256,
        result.status,
        doc.to_json(),
        result.train_run_id,
        result.audit_run_id,
        result.error,
    )
