"""The ``ray`` executor: each cell a Ray task on a cluster (``pip install 'rho-audit[ray]'``).

``rho-audit sweep FILE --executor ray [--address ADDR] [--cpus-per-cell N] [--retries N]``. Each
cell's payload (JSON) goes to a task that reserves ``--cpus-per-cell`` CPUs and runs the cell
against a scratch store on its worker (:func:`rho_audit.api.run_cell_payload`); the report comes
back to this process, the only writer of the run store. At most as many cells run at once as
the cluster has CPUs for, in the sweep's order.

Faults: a task whose worker process or node dies is started again, up to ``--retries`` times,
and the number of starts is recorded with the cell; a cell that fails by itself (a diverging
loss) is not retried here (a re-run of the sweep retries it, as with the local executor). A
user error in any cell cancels the rest, and so does Ctrl-C; the store keeps what finished, and
running the same command again resumes the sweep.

Models: a worker that lacks the driver's converted model folder (same path, same content hash)
says so, and the model is put into Ray's object store once, from where each such node fetches
it once and unpacks it into its temp folder.

Ray is imported inside :meth:`RayExecutor.run` only, so rho-audit works (and lists this
executor) without it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

from rho_audit.api import CellJob, Executor, RhoAuditError, SweepSession, hookimpl

log = logging.getLogger(__name__)

#: What the worker's environment must not inherit from the driver's: a tracker (the driver
#: tracks each cell once it is in its store).
WORKER_ENV = {"RHO_AUDIT_TRACKING": "none"}
#: How long one wait for a finished task may block before Python runs again (signal handlers).
WAIT_S = 0.5


def _run_cell(payload: dict[str, Any], model: list[Any], attempt: int) -> dict[str, Any]:
    """The task body, on a worker: ``model`` is ``[]`` or ``[ObjectRef]`` of the model archive
    (in a list, so Ray does not fetch it unless the worker needs it)."""
    import ray

    from rho_audit.api import run_cell_payload

    fetch = (lambda: ray.get(model[0])) if model else None
    return run_cell_payload(payload, fetch, attempt)


class RayExecutor(Executor):
    """Cells as Ray tasks, on a local Ray or the cluster at ``--address``."""

    name: ClassVar[str] = "ray"
    description: ClassVar[str] = "each cell a Ray task on a cluster (--address, --cpus-per-cell)"

    def check(self) -> None:
        """Ray must be installed, and ``--cpus-per-cell`` positive."""
        _import_ray()
        if self.settings.cpus_per_cell is not None and self.settings.cpus_per_cell <= 0:
            raise RhoAuditError(f"--cpus-per-cell must be > 0 (got {self.settings.cpus_per_cell:g}).")

    def run(self, jobs: Sequence[CellJob], session: SweepSession) -> None:
        """Run the jobs as Ray tasks, as many at once as the cluster has CPUs for."""
        ray = _import_ray()
        started_here = not ray.is_initialized()
        if started_here:
            _init(ray, self.settings.address)
        try:
            _Loop(ray, self.settings.cpus_per_cell or 1.0, self.settings.retries, session).run(jobs)
        finally:
            if started_here:
                ray.shutdown()


class _Loop:
    """Submits jobs in order while the cluster has room, and hands each report to the session."""

    def __init__(self, ray: Any, cpus: float, retries: int, session: SweepSession) -> None:
        self.ray, self.cpus, self.retries, self.session = ray, cpus, retries, session
        self.task = ray.remote(_run_cell).options(
            num_cpus=cpus, max_retries=0, runtime_env={"env_vars": WORKER_ENV}
        )
        self.pending: dict[Any, tuple[CellJob, int, list[Any]]] = {}
        self.models: dict[str, Any] = {}
        self.retryable = tuple(
            getattr(ray.exceptions, name)
            for name in ("WorkerCrashedError", "NodeDiedError", "ObjectLostError", "OutOfMemoryError")
            if hasattr(ray.exceptions, name)
        )

    def run(self, jobs: Sequence[CellJob]) -> None:
        queue = list(jobs)
        cpus = self.ray.cluster_resources().get("CPU", 0)
        if cpus < self.cpus:  # Ray would wait for such a node for ever (or for an autoscaler)
            log.warning(
                "the Ray cluster has %g CPUs, fewer than --cpus-per-cell %g: cells wait until a node "
                "that large joins. Lower --cpus-per-cell, or add such a node.",
                cpus,
                self.cpus,
            )
        room = max(1, int(cpus // self.cpus))
        try:
            while queue or self.pending:
                while queue and len(self.pending) < room:
                    job = queue.pop(0)
                    self.session.started(job)
                    self._submit(job, 1, [])
                # A timeout returns to Python now and then, so a Ctrl-C is acted on at once: a
                # blocking wait can hold the signal until a task ends, and then lose it.
                ready, _ = self.ray.wait(list(self.pending), num_returns=1, timeout=WAIT_S)
                if ready:
                    self._collect(ready[0])
        except BaseException:  # Ctrl-C, a user error in one cell: stop the others
            for ref in self.pending:
                self.ray.cancel(ref, force=True)
            self.pending.clear()
            raise

    def _submit(self, job: CellJob, attempt: int, model: list[Any]) -> None:
        ref = self.task.remote(self.session.payload(job), model, attempt)
        self.pending[ref] = (job, attempt, model)

    def _collect(self, ref: Any) -> None:
        job, attempt, model = self.pending.pop(ref)
        try:
            report = self.ray.get(ref)
        except self.retryable as err:
            reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'worker died'}"
            if attempt <= self.retries:
                log.warning("cell %s: its worker died (%s); starting it again", job.cell_id, reason)
                self._submit(job, attempt + 1, model)
            else:
                self.session.lost(job, f"its worker died {attempt} times; last: {reason}", attempt)
            return
        except self.ray.exceptions.RayTaskError as err:  # a bug outside the cell's own isolation
            self.session.lost(job, f"the task failed: {str(err).splitlines()[-1]}", attempt)
            return
        sha = report.get("needs_model")
        if sha:  # this node lacks the model folder: ship it once, then run the cell there
            if sha not in self.models:
                self.models[sha] = self.ray.put(self.session.model_archive(sha))
            self._submit(job, attempt, [self.models[sha]])
            return
        self.session.finished(job, report, attempt)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RhoAuditError(
            "--executor ray needs Ray, which is not installed: pip install 'rho-audit[ray]' (on the driver "
            "and on every worker of the cluster), or run with --executor local."
        ) from None
    return ray


def _init(ray: Any, address: str | None) -> None:
    """Join the cluster at ``address`` (or RAY_ADDRESS), else start a local Ray for this sweep."""
    try:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
    except ConnectionError as err:
        raise RhoAuditError(
            f"cannot reach a Ray cluster at {address}: {err}. Start one with `ray start --head` and pass "
            "the address it prints (--address HOST:6379), or leave --address out for a local Ray."
        ) from None


@hookimpl
def register_executors(register):
    register(RayExecutor)
