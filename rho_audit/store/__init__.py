"""The run store: one SQLite file holding runs, results, training steps, sweeps, judge cache."""

from rho_audit.store.run_store import *  # noqa: F403
from rho_audit.store.run_store import DEFAULT_STORE, RunStore

__all__ = ["DEFAULT_STORE", "RunStore"]
