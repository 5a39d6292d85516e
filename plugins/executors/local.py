"""The ``local`` executor: cells one after another in this process, writing the store as they go."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rho_audit.api import CellJob, Executor, RhoAuditError, SweepSession, hookimpl


class LocalExecutor(Executor):
    """One cell at a time on this machine's MLX device (Metal, CUDA or the CPU)."""

    name: ClassVar[str] = "local"
    description: ClassVar[str] = "one cell after another in this process (the default)"

    def check(self) -> None:
        """``--address`` and ``--cpus-per-cell`` mean nothing here: refuse them rather than ignore them."""
        if self.settings.address or self.settings.cpus_per_cell is not None:
            option = "--address" if self.settings.address else "--cpus-per-cell"
            raise RhoAuditError(
                f"{option} is for a distributed executor; the local executor runs every cell in this "
                "process. Add --executor ray to run the cells on a Ray cluster."
            )

    def run(self, jobs: Sequence[CellJob], session: SweepSession) -> None:
        """Run each job here in the sweep's order; Ctrl-C leaves the current cell to be resumed."""
        for job in jobs:
            session.started(job)
            session.run_here(job)


@hookimpl
def register_executors(register):
    register(LocalExecutor)
