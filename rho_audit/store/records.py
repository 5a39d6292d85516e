"""Typed records of what the store holds, and the one rule for abbreviated run and sweep ids."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from rho_audit.store.errors import AmbiguousId


@dataclass(frozen=True)
class RunRow:
    """One audit or training run."""

    run_id: str
    created_at: float
    finished_at: float | None
    status: str  # running | complete | interrupted | failed
    model_id: str
    seed: int
    config: dict[str, Any]
    config_sha256: str
    versions: dict[str, str]
    git_revision: str | None
    error: str | None
    kind: str = "audit"  # audit | train
    model_path: str | None = None
    adapter: str | None = None


@dataclass(frozen=True)
class DimensionScore:
    """The headline of one dimension's result in a run (the ``dimension_results`` columns)."""

    dimension: str
    metric: str
    score: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    status: str

    def to_json(self) -> dict[str, Any]:
        """The score as sweeps store it in a cell's result and the monitor shows it."""
        return {
            "score": self.score,
            "metric": self.metric,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "n": self.n,
            "status": self.status,
        }


@dataclass(frozen=True)
class TrainStep:
    """One optimizer step of a training run; ``metrics`` are the trainer's (sft_loss, lr, seconds, ...)."""

    step: int
    metrics: dict[str, Any]

    def flat(self) -> dict[str, Any]:
        """``{"step": step, **metrics}``: one row of a training curve."""
        return {"step": self.step, **self.metrics}


@dataclass(frozen=True)
class StoredSweep:
    """A sweep as the store knows it: its cells' rows."""

    sweep_id: str
    updated_at: float
    n_cells: int


@dataclass(frozen=True)
class CellDoc:
    """A sweep cell's JSON document: the cell's spec, and its result once it has one."""

    spec: dict[str, Any]
    result: dict[str, Any] | None

    @classmethod
    def parse(cls, text: str | None) -> CellDoc:
        """The one parser of ``sweep_cells.cell_json``; anything unreadable is an empty document."""
        try:
            doc = json.loads(text) if text else {}
        except (TypeError, ValueError):
            doc = {}
        if not isinstance(doc, dict):
            doc = {}
        spec, result = doc.get("spec"), doc.get("result")
        return cls(spec if isinstance(spec, dict) else {}, result if isinstance(result, dict) else None)

    def to_json(self) -> dict[str, Any]:
        return {"spec": self.spec} if self.result is None else {"spec": self.spec, "result": self.result}


@dataclass
class StoredCell:
    """One sweep cell's row. Its document is parsed on first use (the monitor polls rows often)."""

    sweep_id: str
    cell_id: str
    config_sha256: str
    status: str  # pending | training | auditing | complete | failed
    train_run_id: str | None
    audit_run_id: str | None
    updated_at: float
    error: str | None
    cell_json: str = field(repr=False)

    @cached_property
    def doc(self) -> CellDoc:
        return CellDoc.parse(self.cell_json)

    @property
    def spec(self) -> dict[str, Any]:
        return self.doc.spec

    @property
    def result(self) -> dict[str, Any]:
        """The cell's result, or ``{}`` before it has one."""
        return self.doc.result or {}


@dataclass(frozen=True)
class AgentTurn:
    """One turn of an auditing agent (``rho-audit investigate``): an assistant message (text and
    tool calls, with its request's tokens and cost) or the tool results answering it."""

    turn: int
    role: str  # assistant | tool
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    doc: dict[str, Any]


def resolve_id(target: str, known: Iterable[str], what: str, where: Path | str) -> str | None:
    """The id that ``target`` names among ``known``: an exact id wins; else the one id it is a
    prefix of; None when it names none. A prefix of several raises :class:`AmbiguousId` listing them."""
    ids = list(dict.fromkeys(known))
    if target in ids:
        return target
    hits = [i for i in ids if i.startswith(target)]
    if len(hits) > 1:
        raise AmbiguousId(target, hits, what, where)
    return hits[0] if hits else None
