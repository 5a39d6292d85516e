"""The run store: one SQLite file (WAL mode) holding runs, dimension results and probe records.

Results are written per dimension as soon as each finishes, in its own transaction, so Ctrl-C or
a crash keeps everything done so far. WAL lets a monitor read while a run writes. The schema
carries a version (``PRAGMA user_version``); :data:`~rho_audit.store.schema.MIGRATIONS` upgrades
older files in place.

Opening for writing creates and migrates the schema inside one ``BEGIN IMMEDIATE`` transaction,
so processes that open a fresh store at once never race, and runs ``PRAGMA quick_check`` so a
damaged file fails before any work rather than when the first result is written. Readers open
with :meth:`RunStore.read_only`, which never writes (see :mod:`rho_audit.store.reader`). Every
SQLite failure becomes a :class:`StoreError` that names the cause (busy, not writable, damaged)
and the fix. This package holds all of rho-audit's SQL.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rho_audit.api.results import DimensionResult, finite
from rho_audit.store.errors import (
    BUSY_TIMEOUT_S,
    StoreError,
    StoreNotWritable,
    damaged,
    newer_schema,
    os_reason,
    store_error,
    unwritable_reason,
)
from rho_audit.store.reader import StoreReads, connect_read_only
from rho_audit.store.schema import SCHEMA_VERSION, migrate, quick_check, schema_version, set_wal

#: The tables that hold a run's rows, children first (``runs rm`` deletes from each).
_RUN_TABLES = (
    "probe_records",
    "dimension_results",
    "train_steps",
    "judge_usage",
    "agent_turns",
    "diff_results",
    "runs",
)


def _dumps(value: Any) -> str:
    return json.dumps(finite(value), allow_nan=False, sort_keys=True)


def save_unstored(store_path: Path, run_id: str, doc: dict[str, Any]) -> Path:
    """Write what the store could not take as JSON next to it (else in the working folder, else
    in the temp folder) and return where; raise :class:`StoreError` if nowhere can take it."""
    store_path = Path(store_path)
    name = f"{store_path.name}.{run_id}.unsaved.json"
    text = json.dumps(finite(doc), allow_nan=False, indent=2)
    tried = []
    for folder in (store_path.parent, Path.cwd(), Path(tempfile.gettempdir())):
        target = folder / name
        try:
            target.write_text(text, encoding="utf-8")
        except OSError as err:
            tried.append(f"{target}: {err.strerror or err}")
            continue
        return target
    raise StoreError(f"the result could not be saved as JSON either ({'; '.join(tried)}).")


class RunStore(StoreReads):
    """The run store at ``path``.

    ``RunStore(path)`` opens it for writing: the folder is created, the schema created or
    migrated in one ``BEGIN IMMEDIATE`` transaction and the file's integrity checked, so any
    problem surfaces here, before work starts. :meth:`read_only` opens it for reading. Every
    SQLite failure is raised as a :class:`StoreError`; the reads are those of
    :class:`~rho_audit.store.reader.StoreReads`."""

    def __init__(
        self,
        path: Path,
        *,
        read_only: bool = False,
        timeout: float = BUSY_TIMEOUT_S,
        upgrade: bool = True,
    ) -> None:
        self.path = Path(path)
        #: False for a read-only store, which serves cached judge verdicts but keeps no new ones.
        self.writable = not read_only
        self.db = self._open_reader(timeout, upgrade) if read_only else self._open_writer()

    @classmethod
    def read_only(cls, path: Path, *, timeout: float = BUSY_TIMEOUT_S, upgrade: bool = True) -> RunStore:
        """Open ``path`` for reading: it is never written (no journal-mode change), even where
        this user cannot write its folder (see :func:`connect_read_only`), unless its schema is
        older than this rho-audit's and ``upgrade`` allows upgrading it in place. With
        ``upgrade=False`` (the monitor, which must never write to a store a sweep is using) the
        schema is not checked at all: a read of a table not made yet raises
        :class:`~rho_audit.store.errors.StoreNotReady`."""
        return cls(path, read_only=True, timeout=timeout, upgrade=upgrade)

    def _open_writer(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreNotWritable(
                "cannot create the run store's folder: "
                + os_reason(err, str(self.path.parent))
                + ". Pass --store with a path in a folder you can write."
            ) from None
        db = None
        try:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level="IMMEDIATE")
            set_wal(db)
            migrate(db, self.path)
            problems = quick_check(db)
        except sqlite3.Error as err:
            if db is not None:
                db.close()
            raise store_error(self.path, err) from None
        except BaseException:
            if db is not None:
                db.close()
            raise
        if problems != ["ok"]:
            db.close()
            found = "; ".join(" ".join(p.split()) for p in problems)  # one paragraph
            raise StoreError(damaged(self.path, f"SQLite quick_check: {found}"))
        self.writable = True
        return db

    def _open_reader(self, timeout: float, upgrade: bool) -> sqlite3.Connection:
        if not self.path.is_file():
            raise StoreError(f"no run store at {self.path}. Pass --store, or run `rho-audit run` first.")
        db = None
        try:
            # Autocommit: reads open no transaction of their own; snapshot() opens one.
            db = connect_read_only(self.path, timeout, isolation_level=None, check_same_thread=False)
            version = schema_version(db) if upgrade else SCHEMA_VERSION
        except sqlite3.Error as err:
            if db is not None:
                db.close()
            raise store_error(self.path, err, "read") from None
        if version == SCHEMA_VERSION:
            return db
        db.close()
        if version > SCHEMA_VERSION:
            raise newer_schema(self.path, version, SCHEMA_VERSION)
        try:  # an older schema is upgraded in place, when it can be
            return self._open_writer()
        except StoreNotWritable:
            reason = unwritable_reason(self.path) or "it cannot be written here"
            raise StoreError(
                f"the run store {self.path} has schema version {version}, older than this "
                f"rho-audit's ({SCHEMA_VERSION}), and cannot be upgraded: {reason}. Open it once "
                "with write access (any rho-audit command upgrades it), or copy it to a folder you "
                "can write and pass --store COPY."
            ) from None

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; a SQLite failure becomes a :class:`StoreError` naming the cause."""
        try:
            with self.db:
                yield self.db
        except sqlite3.Error as err:
            raise store_error(self.path, err, "write to") from err

    # -- writing ---------------------------------------------------------------------------

    def start_run(
        self,
        run_id: str,
        model_id: str,
        model_path: str | None,
        adapter: str | None,
        seed: int,
        config: dict[str, Any],
        config_sha256: str,
        versions: dict[str, str],
        git_revision: str | None,
        kind: str = "audit",
    ) -> None:
        with self._write():
            self.db.execute(
                "INSERT INTO runs (run_id, created_at, status, model_id, model_path, adapter, seed,"
                " config_json, config_sha256, versions_json, git_revision, kind)"
                " VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                # A resumed training run keeps its id: mark it running again.
                " ON CONFLICT(run_id) DO UPDATE SET status = 'running', finished_at = NULL, error = NULL",
                (
                    run_id,
                    time.time(),
                    model_id,
                    model_path,
                    adapter,
                    seed,
                    _dumps(config),
                    config_sha256,
                    _dumps(versions),
                    git_revision,
                    kind,
                ),
            )

    def add_train_step(self, run_id: str, step: int, metrics: dict[str, Any]) -> None:
        """One optimizer step's metrics; re-writing a step (after a resume) replaces it."""
        with self._write():
            self.db.execute(
                "INSERT OR REPLACE INTO train_steps VALUES (?, ?, ?)", (run_id, step, _dumps(metrics))
            )

    def set_cell(
        self,
        sweep_id: str,
        cell_id: str,
        config_sha256: str,
        status: str,
        cell: dict[str, Any],
        train_run_id: str | None = None,
        audit_run_id: str | None = None,
        error: str | None = None,
    ) -> None:
        """Create or update a sweep cell's row (one transaction, so a kill never half-writes it)."""
        with self._write():
            self.db.execute(
                "INSERT OR REPLACE INTO sweep_cells VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    sweep_id,
                    cell_id,
                    config_sha256,
                    status,
                    train_run_id,
                    audit_run_id,
                    time.time(),
                    error,
                    _dumps(cell),
                ),
            )

    def add_result(self, run_id: str, result: DimensionResult) -> None:
        """Write one dimension's result and its probe records in one transaction."""
        ev = result.evaluation
        summary = result.to_json()
        summary["evaluation"].pop("records")
        with self._write():
            self.db.execute(
                "INSERT OR REPLACE INTO dimension_results VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    result.dimension,
                    result.plugin,
                    result.probe_set,
                    result.probe_set_version,
                    ev.metric,
                    *finite([ev.score, ev.ci_low, ev.ci_high]),
                    ev.n,
                    ev.n_errors,
                    result.status,
                    result.elapsed_s,
                    _dumps(summary),
                ),
            )
            self.db.executemany(
                "INSERT OR REPLACE INTO probe_records VALUES (?,?,?,?,?,?)",
                [
                    (run_id, result.dimension, r.probe_id, r.split, r.error, _dumps(r.__dict__))
                    for r in ev.records
                ],
            )

    def finish_run(self, run_id: str, status: str, error: str | None = None) -> None:
        with self._write():
            self.db.execute(
                "UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE run_id = ?",
                (status, time.time(), error, run_id),
            )

    # -- judges ----------------------------------------------------------------------------

    def judge_cache_put(
        self, key: str, judge_id: str, judge_model: str, rubric_sha256: str, verdict: Any
    ) -> None:
        """Cache one verdict (a :class:`~rho_audit.api.Verdict`) at once, in its own transaction
        (not in a read-only store, which serves its cached verdicts but keeps no new ones)."""
        if not self.writable:
            return
        with self._write():
            self.db.execute(
                "INSERT OR REPLACE INTO judge_cache VALUES (?,?,?,?,?,?,?,?)",
                (
                    key,
                    judge_id,
                    judge_model,
                    rubric_sha256,
                    verdict.label,
                    *finite([verdict.score]),
                    verdict.rationale,
                    time.time(),
                ),
            )

    def record_judge_usage(self, run_id: str, context: str, usage: dict[str, Any]) -> None:
        """Replace the usage row of (run, judge, context) with ``usage`` (see ``LLMJudge.usage``);
        not in a read-only store."""
        if not self.writable:
            return
        cost = usage.get("cost_usd") if usage.get("cost_known", True) else None
        with self._write():
            self.db.execute(
                "INSERT OR REPLACE INTO judge_usage VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    usage["judge_id"],
                    context,
                    usage["judge_model"],
                    usage.get("calls", 0),
                    usage.get("input_tokens", 0),
                    usage.get("output_tokens", 0),
                    *finite([cost]),
                    _dumps(usage),
                    time.time(),
                ),
            )

    # -- agent -----------------------------------------------------------------------------

    def add_agent_turn(
        self,
        run_id: str,
        turn: int,
        role: str,
        doc: dict[str, Any],
        input_tokens: int = 0,
        output_tokens: int = 0,
        cost_usd: float | None = None,
    ) -> None:
        """One turn of an auditing agent's conversation, written the moment it happens."""
        with self._write():
            self.db.execute(
                "INSERT OR REPLACE INTO agent_turns VALUES (?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    turn,
                    role,
                    input_tokens,
                    output_tokens,
                    *finite([cost_usd]),
                    _dumps(doc),
                    time.time(),
                ),
            )

    # -- diff ------------------------------------------------------------------------------

    def add_diff_result(self, run_id: str, doc: dict[str, Any]) -> None:
        """The results document of a ``rho-audit diff`` run (re-writing replaces it)."""
        with self._write():
            self.db.execute("INSERT OR REPLACE INTO diff_results VALUES (?, ?)", (run_id, _dumps(doc)))

    def delete_runs(self, run_ids: Iterable[str]) -> None:
        """Delete the runs and every row that belongs to them, in one transaction. Sweep cells
        keep their own copy of their scores, so a sweep card still shows a deleted run's cell."""
        ids = list(dict.fromkeys(run_ids))
        with self._write():
            for table in _RUN_TABLES:
                self.db.executemany(f"DELETE FROM {table} WHERE run_id = ?", [(i,) for i in ids])
