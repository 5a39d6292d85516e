"""Experiment tracking: what a tracker plugin (MLflow, ...) reads about a finished run or sweep cell.

A tracker is a ``run_event`` observer. It is switched on by ``--track NAME`` (``run``, ``train``,
``sweep``) or ``RHO_AUDIT_TRACKING=NAME`` (:func:`tracking_enabled`), and when a run or cell
ends it asks for the whole record here (:func:`tracked_run`, :func:`tracked_cell`), read from the
run store this process writes (:func:`current_store`). Read it off the audit's thread (a queue
and a thread of its own): a tracker must never slow an audit, and its failures must never
fail one.

The functions below read the host's store and render its cards; they import those modules when
called, never when this module is imported.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rho_audit.store import RunStore

#: Comma list of the trackers to use (``mlflow``); ``none`` or empty: none.
TRACKING_ENV = "RHO_AUDIT_TRACKING"

_STORE: list[Path] = []


def tracking_enabled(name: str) -> bool:
    """Whether tracker ``name`` is switched on (``--track NAME`` or ``RHO_AUDIT_TRACKING``)."""
    names = {n.strip().lower() for n in os.environ.get(TRACKING_ENV, "").split(",")}
    return name.lower() in names


def use_store(path: Path) -> None:
    """Record the run store this process writes (the CLI's ``--store``; a sweep's store)."""
    _STORE[:] = [Path(path)]


def current_store() -> Path | None:
    """The run store this process writes, once :func:`use_store` has named one."""
    return _STORE[0] if _STORE else None


@dataclass(frozen=True)
class TrackedScore:
    """One dimension's headline in a run: the score (rho for pair dimensions) with its 95% CI,
    and the paired accuracy where the dimension has one."""

    dimension: str
    metric: str
    score: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None
    status: str | None
    probe_set: str | None = None
    probe_set_version: str | None = None
    accuracy: float | None = None


@dataclass(frozen=True)
class TrackedRun:
    """Everything a tracker records of one audit run, training run or sweep cell.

    ``key`` is the rho-audit id (a run id, or ``SWEEP_ID/CELL_ID``); ``params`` are flat strings
    (nested settings joined with dots); ``steps`` are the training steps (step, metrics) of the
    run or of the cell's training; ``result_json`` is the run's (or cell's) JSON result, and
    ``card_run_id`` the audit run whose HTML card belongs with it (:func:`card_html`)."""

    key: str
    kind: str  # audit | train | cell
    name: str
    status: str
    params: dict[str, str]
    scores: tuple[TrackedScore, ...] = ()
    metrics: dict[str, float] = field(default_factory=dict)
    steps: tuple[tuple[int, dict[str, float]], ...] = ()
    result_json: str = "{}"
    card_run_id: str | None = None


def tracked_run(run_id: str, store: Path | None = None) -> TrackedRun | None:
    """The record of run ``run_id`` in ``store`` (default :func:`current_store`), or None when
    there is no such run (or no store)."""
    path = store or current_store()
    if path is None:
        return None
    reads = _open(path)
    try:
        run = reads.get_run(run_id)
        if run is None:
            return None
        results = reads.results(run_id)
        steps = _steps(reads, run_id)
    finally:
        reads.close()
    params = flat_params(run.config)
    params.update(
        {
            "model": run.model_id,
            "model_path": str(run.model_path or ""),
            "adapter": str(run.adapter or ""),
            "seed": str(run.seed),
            "config_sha256": run.config_sha256,
        }
    )
    scores = tuple(_score(r) for r in results)
    params.update({f"probe_set.{s.dimension}": f"{s.probe_set}@{s.probe_set_version}" for s in scores})
    doc = {"run": {"run_id": run.run_id, "kind": run.kind, "status": run.status, "config": run.config}}
    doc["results"] = results
    return TrackedRun(
        run_id,
        run.kind,
        f"{run.kind} {run.run_id}",
        run.status,
        params,
        scores,
        steps=steps,
        result_json=json.dumps(doc, indent=2, sort_keys=True),
        card_run_id=run_id if run.kind == "audit" and results else None,
    )


def tracked_cell(sweep_id: str, cell_id: str, store: Path | None = None) -> TrackedRun | None:
    """The record of a sweep cell: its settings, its audit's scores (probe sets and versions
    read from the audit run), its training's steps and final metrics, its retries."""
    path = store or current_store()
    if path is None:
        return None
    reads = _open(path)
    try:
        row = reads.cell(sweep_id, cell_id)
        if row is None:
            return None
        result, spec = row.result, row.spec
        audited = {r["dimension"]: r for r in reads.results(row.audit_run_id)} if row.audit_run_id else {}
        steps = _steps(reads, row.train_run_id) if row.train_run_id else ()
    finally:
        reads.close()
    params = flat_params({"train": spec.get("train") or {}, "audit": spec.get("audit") or {}})
    params.update(
        {
            "sweep_id": sweep_id,
            "cell_id": cell_id,
            "kind": str(spec.get("kind", "")),
            "model": str(spec.get("model") or "default"),
            "config_sha256": row.config_sha256,
        }
    )
    scores = []
    for dim, s in (result.get("scores") or {}).items():
        stored = audited.get(dim, {})
        scores.append(
            TrackedScore(
                dim,
                str(s.get("metric") or ""),
                s.get("score"),
                s.get("ci_low"),
                s.get("ci_high"),
                s.get("n"),
                s.get("status"),
                s.get("probe_set") or stored.get("probe_set"),
                stored.get("probe_set_version"),
                s.get("paired_accuracy"),
            )
        )
    params.update({f"probe_set.{s.dimension}": f"{s.probe_set}@{s.probe_set_version}" for s in scores})
    metrics = {f"final.{k}": float(v) for k, v in (result.get("final_metrics") or {}).items() if _number(v)}
    metrics["attempts"] = float(result.get("attempts") or 1)
    return TrackedRun(
        f"{sweep_id}/{cell_id}",
        "cell",
        cell_id,
        row.status,
        params,
        tuple(scores),
        metrics,
        steps,
        json.dumps({"spec": spec, "result": result}, indent=2, sort_keys=True),
        row.audit_run_id if row.status == "complete" else None,
    )


def card_html(run_id: str, store: Path | None = None) -> str:
    """The audit card of ``run_id`` as one self-contained HTML page (``rho-audit report RUN``)."""
    from rho_audit.plugins import load_host
    from rho_audit.report.cards import build_card
    from rho_audit.report.gather import probe_texts_from_host
    from rho_audit.report.render import SectionTemplates, render

    path = store or current_store()
    if path is None:
        raise ValueError("no run store known: call use_store() first")
    host = load_host()
    reads = _open(path)
    try:
        card = build_card(reads, [run_id], probe_texts_from_host(host))
    finally:
        reads.close()
    return render(card, "html", SectionTemplates.from_host(host)).text


def flat_params(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested settings as flat ``a.b.c`` -> string (lists joined with commas)."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flat_params(value, f"{name}."))
        elif isinstance(value, list | tuple):
            flat[name] = ",".join(str(v) for v in value)
        else:
            flat[name] = "" if value is None else str(value)
    return flat


def _open(path: Path) -> RunStore:
    from rho_audit.store import RunStore

    return RunStore.read_only(path)


def _steps(reads: RunStore, run_id: str) -> tuple[tuple[int, dict[str, float]], ...]:
    return tuple(
        (s.step, {k: float(v) for k, v in s.metrics.items() if _number(v)}) for s in reads.train_steps(run_id)
    )


def _score(result: Mapping[str, Any]) -> TrackedScore:
    ev = result.get("evaluation") or {}
    return TrackedScore(
        str(result.get("dimension")),
        str(ev.get("metric") or ""),
        ev.get("score"),
        ev.get("ci_low"),
        ev.get("ci_high"),
        ev.get("n"),
        result.get("status"),
        result.get("probe_set"),
        result.get("probe_set_version"),
        ev.get("paired_accuracy"),
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
