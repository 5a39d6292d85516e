"""Resumable training sweeps: a YAML grid of trainers × options × seeds × models, each cell = train + audit.

A sweep file is validated completely before anything runs (both its full and its ``quick:``
form), and every problem is reported with the file line and the key path it belongs to. The
grid expands into :class:`CellSpec` records with stable ids and a config hash; the sweep's id
is its name plus a hash of those cells, so the quick and the full version never share rows.

Execution is a pure function, :func:`execute_cell` (cell spec, store path, plugin host) ->
:class:`CellResult` (:mod:`.execution`). Where it runs is an executor's choice
(:class:`rho_audit.api.Executor`, a plugin: ``local``, ``ray``); this process stays the only
writer of the store: a worker runs its cell against a scratch store (:mod:`.remote`) and sends
the cell's runs back as JSON (:mod:`.transfer`), which the driver imports (:mod:`.session`).

Resumability lives in the run store (one ``sweep_cells`` row per cell, each update one SQLite
transaction) and in the trainer's own checkpoints: re-running the same command skips complete
cells, resumes an interrupted training from its last checkpoint, re-uses an audit that had
finished, and re-runs one that had not, marking the stale run ``interrupted``. Nothing is held
only in memory, so a SIGKILL at any instant loses at most the steps since the last checkpoint.

Modules: :mod:`.schema` (the file and its problems), :mod:`.plan` (expansion into cells),
:mod:`.execution` (one cell), :mod:`.lock`, :mod:`.runner` (the whole sweep), :mod:`.session`,
:mod:`.transfer`, :mod:`.remote` (cells elsewhere), :mod:`.summary`.
"""

from rho_audit.train.sweep.execution import CellResult, CellStatus, execute_cell, record_result
from rho_audit.train.sweep.lock import sweep_lock
from rho_audit.train.sweep.plan import DEFAULT_OUT, CellSpec, SweepPlan, plan_sweep
from rho_audit.train.sweep.runner import describe, run_sweep, write_manifest
from rho_audit.train.sweep.schema import SweepFileError, format_path, line_of, unknown_message
from rho_audit.train.sweep.session import SweepRun
from rho_audit.train.sweep.summary import (
    CellSummary,
    ConditionSummary,
    SweepSummary,
    cell_statuses,
    pooled_column,
    summaries,
    summarize,
)

__all__ = [
    "DEFAULT_OUT",
    "CellResult",
    "CellSpec",
    "CellStatus",
    "CellSummary",
    "ConditionSummary",
    "SweepFileError",
    "SweepPlan",
    "SweepRun",
    "SweepSummary",
    "cell_statuses",
    "describe",
    "execute_cell",
    "format_path",
    "line_of",
    "plan_sweep",
    "pooled_column",
    "record_result",
    "run_sweep",
    "summaries",
    "summarize",
    "sweep_lock",
    "unknown_message",
    "write_manifest",
]
