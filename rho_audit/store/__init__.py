"""The run store: one SQLite file holding runs, results, training steps, sweeps, judge cache.

All of rho-audit's SQL lives in this package: :mod:`.schema` (tables and migrations),
:mod:`.run_store` (opening, integrity, writes), :mod:`.reader` (typed reads), :mod:`.records`
(the records and the rule for abbreviated ids), :mod:`.errors`.
"""

from rho_audit._util.defaults import DEFAULT_STORE
from rho_audit.store.errors import (
    AmbiguousId,
    StoreBusy,
    StoreError,
    StoreNotReady,
    StoreNotWritable,
    unwritable_reason,
)
from rho_audit.store.records import (
    AgentTurn,
    CellDoc,
    DimensionScore,
    RunRow,
    StoredCell,
    StoredSweep,
    TrainStep,
    resolve_id,
)
from rho_audit.store.run_store import RunStore, save_unstored
from rho_audit.store.schema import SCHEMA_VERSION

__all__ = [
    "DEFAULT_STORE",
    "SCHEMA_VERSION",
    "AgentTurn",
    "AmbiguousId",
    "CellDoc",
    "DimensionScore",
    "RunRow",
    "RunStore",
    "StoreBusy",
    "StoreError",
    "StoreNotReady",
    "StoreNotWritable",
    "StoredCell",
    "StoredSweep",
    "TrainStep",
    "resolve_id",
    "save_unstored",
    "unwritable_reason",
]
