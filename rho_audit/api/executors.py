"""Sweep executors: how the cells of a ``rho-audit sweep`` run (in this process, on a Ray cluster, ...).

An executor is a class registered through the ``register_executors`` hook and chosen with
``rho-audit sweep FILE --executor NAME``. The host gives it the cells still to run, each a
:class:`CellJob`, and a :class:`SweepSession` to report to. An executor that runs cells
elsewhere ships each job's :meth:`~SweepSession.payload` (plain JSON) to a worker, calls
:func:`run_cell_payload` there (JSON in, JSON out: the worker never opens the driver's run
store) and hands the returned report to :meth:`SweepSession.finished` on the driver, which
writes it into the store. The built-in ``local`` executor runs cells one after another with
:meth:`SweepSession.run_here`.

A minimal executor::

    from rho_audit.api import Executor, hookimpl

    class Threads(Executor):
        name = "threads"
        description = "each cell in a worker thread of this process"

        def run(self, jobs, session):
            for job in jobs:
                session.started(job)
                session.finished(job, run_cell_payload(session.payload(job)))

    @hookimpl
    def register_executors(register):
        register(Threads)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol


@dataclass(frozen=True)
class ExecutorSettings:
    """The sweep command's executor options, given to the executor's constructor.

    ``address``: the cluster to join (``--address``; None starts or finds a local one).
    ``cpus_per_cell``: CPUs each cell reserves (``--cpus-per-cell``). ``retries``: how many times
    a cell whose worker died is started again (``--retries``); a cell that fails by itself
    (a diverging loss) is recorded failed at once, as with the local executor."""

    address: str | None = None
    cpus_per_cell: float | None = None
    retries: int = 2


@dataclass(frozen=True)
class CellJob:
    """One cell to run: its id, a line for progress displays, and its spec (JSON)."""

    cell_id: str
    description: str
    spec: dict[str, Any] = field(repr=False)


class SweepSession(Protocol):
    """The host side of a sweep, as an executor sees it (implemented by the host)."""

    #: The sweep's id (its rows in the run store).
    sweep_id: str

    def started(self, job: CellJob) -> None:
        """Tell the displays that ``job`` starts now (call once per job, before its result)."""
        ...

    def run_here(self, job: CellJob) -> None:
        """Run ``job`` in this process, writing the run store as it goes (the local executor)."""
        ...

    def payload(self, job: CellJob) -> dict[str, Any]:
        """What a worker needs to run ``job`` (JSON): the cell spec, what the run store holds of
        the cell now, and the content hash of its converted model. Build it right before
        shipping the job (again for a retry)."""
        ...

    def finished(self, job: CellJob, report: dict[str, Any], attempts: int = 1) -> None:
        """Write what :func:`run_cell_payload` returned for ``job`` into the run store (the one
        writer) and tell the displays. ``attempts``: how many times the cell was started.
        Raises :class:`~rho_audit.api.errors.RhoAuditError` when the cell failed on a user
        error, which would fail every cell alike: stop the others then."""
        ...

    def lost(self, job: CellJob, error: str, attempts: int) -> None:
        """Record ``job`` failed because its worker kept dying (``attempts`` starts, each killed)."""
        ...

    def model_archive(self, sha256: str) -> bytes:
        """The converted model with this content hash as one archive, for a worker whose report
        said ``needs_model`` (its machine does not share the driver's model folder)."""
        ...


def run_cell_payload(
    payload: dict[str, Any], fetch_model: Callable[[], bytes] | None = None, attempt: int = 1
) -> dict[str, Any]:
    """Run one cell on this machine against a scratch run store and return its report (JSON):
    ``{"result": ..., "state": ..., "node": ..., "user_error": ...}`` for
    :meth:`SweepSession.finished`, or ``{"needs_model": SHA256, "node": ...}`` when the model is
    not here and ``fetch_model`` is None (ship :meth:`SweepSession.model_archive` and call again).

    The scratch store (in this machine's temp folder, kept across retries of the same cell)
    starts from what the driver's store held of the cell, so a retried cell resumes its training
    from the last checkpoint and reuses a finished audit, exactly as the local executor does.
    When the model's folder is missing here or differs from the driver's (content hash),
    ``fetch_model()`` is called for its archive, which is unpacked once per machine.
    ``attempt``: which start of this cell this is (1 for the first), returned in the report."""
    from rho_audit.train.sweep.remote import run_payload

    return run_payload(payload, fetch_model, attempt)


class Executor(ABC):
    """How a sweep's cells run. Subclass, set ``name``, implement :meth:`run`, and register the
    class with ``register_executors``. Import heavy libraries (``ray``) inside methods, so
    ``rho-audit --help`` never pays for them."""

    #: ``--executor NAME``; unique across installed plugins.
    name: ClassVar[str]
    #: One line for ``rho-audit sweep --help`` and ``rho-audit plugins``.
    description: ClassVar[str] = ""

    def __init__(self, settings: ExecutorSettings | None = None) -> None:
        self.settings = settings or ExecutorSettings()

    def check(self) -> None:
        """Raise :class:`~rho_audit.api.errors.RhoAuditError` naming the fix when this executor
        cannot run here (a missing library, a setting it does not take); called before the sweep
        starts. The default accepts everything."""
        return None

    @abstractmethod
    def run(self, jobs: Sequence[CellJob], session: SweepSession) -> None:
        """Run every job and report each to ``session`` (:meth:`~SweepSession.started`, then
        :meth:`~SweepSession.finished` or :meth:`~SweepSession.lost`). Jobs come in the
        sweep's order (baselines first, then seed by seed); an executor may run several at
        once. On Ctrl-C (``KeyboardInterrupt``) cancel what is outstanding and re-raise: the
        sweep resumes from the store when run again."""
