"""Events a run emits through the ``run_event`` hook (loggers, the TUI, the CLI display)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from rho_audit.api.results import DimensionResult

EventKind = Literal[
    "run_started",
    "model_loading",
    "model_loaded",
    "dimension_started",
    "progress",
    "dimension_finished",
    "dimension_failed",
    "warning",
    "run_finished",
    "run_interrupted",
    # training (``rho-audit train`` and sweeps)
    "train_started",
    "train_step",
    "checkpoint_saved",
    "train_finished",
    # sweeps
    "cell_started",
    "cell_finished",
    "cell_failed",
]


@dataclass(frozen=True)
class RunEvent:
    """One thing that happened in a run.

    ``dimension`` is set for dimension_* and progress events; ``done``/``total`` for progress
    (units named by ``unit``: "texts", "prompts", ...); ``result`` for dimension_finished;
    ``message`` for warnings, failures and model events. Training events carry ``done``/``total``
    in optimizer steps and, for train_step, ``metrics`` (sft_loss, contrastive_loss,
    active_share, lr, grad_norm, tokens_per_s, each averaged over the accumulation steps).
    Sweep events (cell_*) name the cell in ``cell`` and count cells in ``done``/``total``.
    """

    kind: EventKind
    run_id: str
    dimension: str | None = None
    done: int | None = None
    total: int | None = None
    unit: str | None = None
    message: str | None = None
    result: DimensionResult | None = None
    metrics: dict[str, float] | None = None
    time: float = field(default_factory=time.time)
    #: The sweep cell (its id) a cell_* event is about.
    cell: str | None = None
