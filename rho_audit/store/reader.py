"""The read side of the run store: typed records, one read transaction at a time.

Readers (``report``, ``monitor``, ``runs``, ``judges agree``) open the store with
:meth:`RunStore.read_only <rho_audit.store.run_store.RunStore.read_only>`, over
:func:`connect_read_only`: a ``mode=ro`` connection, or an immutable one when the folder cannot
hold SQLite's ``-shm`` file, so a store on read-only media or in a folder the user cannot write
is still readable.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import quote

from rho_audit.api.errors import RhoAuditError
from rho_audit.store.errors import BUSY_TIMEOUT_S, cannot_write_or_open, store_error
from rho_audit.store.records import (
    AgentTurn,
    DimensionScore,
    RunRow,
    StoredCell,
    StoredSweep,
    TrainStep,
    resolve_id,
)


def _uri(path: Path, query: str) -> str:
    return f"file:{quote(str(Path(path).resolve()))}?{query}"


def connect_read_only(path: Path, timeout: float = BUSY_TIMEOUT_S, **options: Any) -> sqlite3.Connection:
    """A connection that can never write ``path``, even where this user cannot write its folder.

    ``mode=ro`` first: it sees a live writer's commits through the WAL. That needs the ``-shm``
    file, which SQLite cannot create in a read-only folder or file system; there the store is
    opened ``immutable=1`` instead (no writer can be using it, or its ``-shm`` would exist).
    ``options`` go to :func:`sqlite3.connect`. Raises :class:`sqlite3.Error` like it."""
    db = sqlite3.connect(_uri(path, "mode=ro"), uri=True, timeout=timeout, **options)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError as err:
        db.close()
        if not (Path(path).is_file() and cannot_write_or_open(err)):
            raise
    return sqlite3.connect(_uri(path, "immutable=1"), uri=True, timeout=timeout, **options)


_Method = TypeVar("_Method", bound=Callable[..., Any])


def reading(method: _Method) -> _Method:
    """A read of the store: a SQLite failure becomes a :class:`StoreError` naming the cause."""

    @functools.wraps(method)
    def read(self: StoreReads, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as err:
            raise store_error(self.path, err, "read") from err

    return cast(_Method, read)


_RUN_COLUMNS = (
    "run_id, created_at, finished_at, status, model_id, seed, config_json, config_sha256,"
    " versions_json, git_revision, error, kind, model_path, adapter"
)
_CELL_COLUMNS = (
    "sweep_id, cell_id, config_sha256, status, train_run_id, audit_run_id, updated_at, error, cell_json"
)


def _run_row(r: tuple[Any, ...]) -> RunRow:
    return RunRow(*r[:6], json.loads(r[6]), r[7], json.loads(r[8]), *r[9:])


class StoreReads:
    """The queries of the run store. :class:`~rho_audit.store.run_store.RunStore` has them all;
    every method returns typed records (or the stored JSON documents of results and judges)."""

    path: Path
    db: sqlite3.Connection

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read transaction, so every read inside sees the same moment of the store (for a
        store opened :meth:`read_only`, whose connection does not open transactions itself)."""
        try:
            self.db.execute("BEGIN")
            try:
                yield
            finally:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
        except sqlite3.Error as err:
            raise store_error(self.path, err, "read") from err

    # -- runs ------------------------------------------------------------------------------

    @reading
    def runs(self) -> list[RunRow]:
        """Every run, oldest first."""
        rows = self.db.execute(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY created_at").fetchall()
        return [_run_row(r) for r in rows]

    @reading
    def get_run(self, run_id: str) -> RunRow | None:
        """The run with exactly this id, or None."""
        row = self.db.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return _run_row(row) if row else None

    def find_run(self, target: str) -> str | None:
        """The run id that ``target`` names (see :func:`resolve_id`), or None."""
        return resolve_id(target, (r.run_id for r in self.runs()), "run", self.path)

    def run(self, target: str) -> RunRow:
        """The run named by ``target``, an id or a unique prefix of one."""
        found = self.find_run(target)
        row = self.get_run(found) if found else None
        if row is None:
            raise RhoAuditError(f"no run {target!r} in {self.path}. `rho-audit runs` lists them.")
        return row

    @reading
    def running_train_runs(self, adapter: str, other_than: str) -> list[str]:
        """Training runs into ``adapter`` still marked running, but ``other_than``."""
        rows = self.db.execute(
            "SELECT run_id FROM runs WHERE kind = 'train' AND status = 'running' AND adapter = ?"
            " AND run_id != ?",
            (adapter, other_than),
        ).fetchall()
        return [r[0] for r in rows]

    @reading
    def finished_train_runs(self, config_sha256: str) -> list[RunRow]:
        """Complete training runs of exactly this training config, newest first."""
        rows = self.db.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE kind = 'train' AND status = 'complete'"
            " AND config_sha256 = ? ORDER BY created_at DESC",
            (config_sha256,),
        ).fetchall()
        return [_run_row(r) for r in rows]

    # -- results ---------------------------------------------------------------------------

    @reading
    def results(self, run_id: str) -> list[dict[str, Any]]:
        """The run's dimension results as stored (a ``DimensionResult`` JSON minus its probe records)."""
        rows = self.db.execute(
            "SELECT result_json FROM dimension_results WHERE run_id = ? ORDER BY rowid", (run_id,)
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    @reading
    def dimension_scores(self, run_id: str) -> list[DimensionScore]:
        """The headline score of each dimension the run has finished, in the order they finished."""
        rows = self.db.execute(
            "SELECT dimension, metric, score, ci_low, ci_high, n, status FROM dimension_results"
            " WHERE run_id = ? ORDER BY rowid",
            (run_id,),
        ).fetchall()
        return [DimensionScore(*r) for r in rows]

    @reading
    def probe_records(self, run_id: str, dimension: str) -> list[dict[str, Any]]:
        """One dimension's probe records (``ProbeRecord`` JSON), in the order they were scored."""
        rows = self.db.execute(
            "SELECT record_json FROM probe_records WHERE run_id = ? AND dimension = ? ORDER BY rowid",
            (run_id, dimension),
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    # -- training --------------------------------------------------------------------------

    @reading
    def train_steps(self, run_id: str, after: int = 0) -> list[TrainStep]:
        """The run's optimizer steps after step ``after``, in order; an unreadable row is skipped."""
        steps = []
        for step, metrics in self.db.execute(
            "SELECT step, metrics_json FROM train_steps WHERE run_id = ? AND step > ? ORDER BY step",
            (run_id, after),
        ):
            try:
                doc = json.loads(metrics)
            except (TypeError, ValueError):
                continue
            if isinstance(doc, dict):
                steps.append(TrainStep(step, doc))
        return steps

    # -- sweeps ----------------------------------------------------------------------------

    @reading
    def sweeps(self) -> list[StoredSweep]:
        """Every sweep in the store, the one updated last first."""
        rows = self.db.execute(
            "SELECT sweep_id, MAX(updated_at), COUNT(*) FROM sweep_cells GROUP BY sweep_id ORDER BY 2 DESC"
        ).fetchall()
        return [StoredSweep(*r) for r in rows]

    def sweep_ids(self) -> list[str]:
        """Every sweep id, sorted."""
        return sorted(s.sweep_id for s in self.sweeps())

    def find_sweep(self, target: str) -> str | None:
        """The sweep id that ``target`` names (see :func:`resolve_id`), or None."""
        return resolve_id(target, self.sweep_ids(), "sweep", self.path)

    @reading
    def cells(self, sweep_id: str) -> list[StoredCell]:
        """The sweep's cells, in the order their rows were last written."""
        rows = self.db.execute(
            f"SELECT {_CELL_COLUMNS} FROM sweep_cells WHERE sweep_id = ? ORDER BY rowid", (sweep_id,)
        ).fetchall()
        return [StoredCell(*r) for r in rows]

    @reading
    def cell(self, sweep_id: str, cell_id: str) -> StoredCell | None:
        row = self.db.execute(
            f"SELECT {_CELL_COLUMNS} FROM sweep_cells WHERE sweep_id = ? AND cell_id = ?", (sweep_id, cell_id)
        ).fetchone()
        return StoredCell(*row) if row else None

    # -- judges ----------------------------------------------------------------------------

    @reading
    def judge_cache_get(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """Cached verdicts (label, score, rationale) for the keys that have one."""
        found: dict[str, dict[str, Any]] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):  # SQLite caps the number of parameters
            chunk = unique[start : start + 500]
            rows = self.db.execute(
                "SELECT cache_key, label, score, rationale FROM judge_cache WHERE cache_key IN"
                f" ({','.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
            found.update({k: {"label": lab, "score": sc, "rationale": ra} for k, lab, sc, ra in rows})
        return found

    @reading
    def judge_usage(self, run_id: str) -> list[dict[str, Any]]:
        """Judge usage rows of a run (each ``usage_json`` plus ``context``), for reports."""
        rows = self.db.execute(
            "SELECT context, usage_json FROM judge_usage WHERE run_id = ? ORDER BY rowid", (run_id,)
        ).fetchall()
        return [{"context": context, **json.loads(usage)} for context, usage in rows]

    # -- diff ------------------------------------------------------------------------------

    @reading
    def diff_results(self, run_id: str) -> dict[str, Any]:
        """A ``rho-audit diff`` run's results document ({} when it stored none)."""
        row = self.db.execute("SELECT result_json FROM diff_results WHERE run_id = ?", (run_id,)).fetchone()
        return json.loads(row[0]) if row else {}

    # -- agent -----------------------------------------------------------------------------

    @reading
    def agent_turns(self, run_id: str) -> list[AgentTurn]:
        """An auditing agent's turns (``rho-audit investigate``), in conversation order."""
        rows = self.db.execute(
            "SELECT turn, role, input_tokens, output_tokens, cost_usd, turn_json FROM agent_turns"
            " WHERE run_id = ? ORDER BY turn",
            (run_id,),
        ).fetchall()
        return [AgentTurn(t, role, i, o, c, json.loads(doc)) for t, role, i, o, c, doc in rows]

    @reading
    def latest_run(
        self, kind: str, model_path: str, adapter: str | None, status: str = "complete"
    ) -> RunRow | None:
        """The newest run of ``kind`` on this model (and adapter, None: none) with ``status``."""
        row = self.db.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE kind = ? AND status = ? AND model_path = ?"
            " AND adapter IS ? ORDER BY created_at DESC LIMIT 1",
            (kind, status, model_path, adapter),
        ).fetchone()
        return _run_row(row) if row else None
