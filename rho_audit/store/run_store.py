"""The run store: one SQLite file (WAL mode) holding runs, dimension results and probe records.

Results are written per dimension as soon as each finishes, in its own transaction, so Ctrl-C or
a crash keeps everything done so far. WAL lets a monitor read while a run writes. The schema
carries a version (``PRAGMA user_version``); :data:`MIGRATIONS` upgrades older files in place.

Opening for writing creates and migrates the schema inside one ``BEGIN IMMEDIATE`` transaction,
so processes that open a fresh store at once never race, and runs ``PRAGMA quick_check`` so a
damaged file fails before any work rather than when the first result is written. Readers
(``report``, ``monitor``, ``judges agree``) open with ``read_only=True``: a ``mode=ro``
connection, or an immutable one when the folder cannot hold SQLite's ``-shm`` file, so a store
on read-only media or in a folder the user cannot write is still readable. Every SQLite failure
becomes a :class:`StoreError` that names the cause (busy, not writable, damaged) and the fix.
"""

from __future__ import annotations

import errno
import functools
import json
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import quote

from rho_audit.api.errors import RhoAuditError
from rho_audit.api.results import DimensionResult, finite

DEFAULT_STORE = Path("rho-audit-runs") / "runs.sqlite"

#: MIGRATIONS[i] upgrades a store from schema version i to i + 1.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        finished_at REAL,
        status TEXT NOT NULL,            -- running | complete | interrupted | failed
        model_id TEXT NOT NULL,
        model_path TEXT,
        adapter TEXT,
        seed INTEGER NOT NULL,
        config_json TEXT NOT NULL,
        config_sha256 TEXT NOT NULL,
        versions_json TEXT NOT NULL,
        git_revision TEXT,
        error TEXT
    );
    CREATE TABLE dimension_results (
        run_id TEXT NOT NULL REFERENCES runs(run_id),
        dimension TEXT NOT NULL,
        plugin TEXT NOT NULL,
        probe_set TEXT NOT NULL,
        probe_set_version TEXT NOT NULL,
        metric TEXT NOT NULL,
        score REAL,
        ci_low REAL,
        ci_high REAL,
        n INTEGER NOT NULL,
        n_errors INTEGER NOT NULL,
        status TEXT NOT NULL,
        elapsed_s REAL NOT NULL,
        result_json TEXT NOT NULL,       -- the whole DimensionResult minus probe records
        PRIMARY KEY (run_id, dimension)
    );
    CREATE TABLE probe_records (
        run_id TEXT NOT NULL,
        dimension TEXT NOT NULL,
        probe_id TEXT NOT NULL,
        split TEXT NOT NULL,
        error TEXT,
        record_json TEXT NOT NULL,
        PRIMARY KEY (run_id, dimension, probe_id)
    );
    """,
]
MIGRATIONS.append(
    """
    -- v2: training runs and sweeps.
    ALTER TABLE runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'audit';   -- audit | train
    CREATE TABLE train_steps (
        run_id TEXT NOT NULL REFERENCES runs(run_id),
        step INTEGER NOT NULL,           -- optimizer step, from 1
        metrics_json TEXT NOT NULL,      -- sft_loss, contrastive_loss, active_share, lr, grad_norm, ...
        PRIMARY KEY (run_id, step)
    );
    CREATE TABLE sweep_cells (
        sweep_id TEXT NOT NULL,          -- the sweep file's name + a hash of its expanded grid
        cell_id TEXT NOT NULL,
        config_sha256 TEXT NOT NULL,
        status TEXT NOT NULL,            -- pending | training | auditing | complete | failed
        train_run_id TEXT,
        audit_run_id TEXT,
        updated_at REAL NOT NULL,
        error TEXT,
        cell_json TEXT NOT NULL,
        PRIMARY KEY (sweep_id, cell_id)
    );
    """
)
MIGRATIONS.append(
    """
    -- v3: LLM judges. A verdict cache shared by every run in the store, and per-run judge usage.
    CREATE TABLE judge_cache (
        cache_key TEXT PRIMARY KEY,      -- sha256 of (judge id, judge model, rubric sha256, prompt, response)
        judge_id TEXT NOT NULL,          -- name@version
        judge_model TEXT NOT NULL,
        rubric_sha256 TEXT NOT NULL,
        label TEXT NOT NULL,
        score REAL,
        rationale TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX judge_cache_by_judge ON judge_cache (judge_id, judge_model, rubric_sha256);
    CREATE TABLE judge_usage (
        run_id TEXT NOT NULL REFERENCES runs(run_id),
        judge_id TEXT NOT NULL,
        context TEXT NOT NULL,           -- audit | agree
        judge_model TEXT NOT NULL,
        calls INTEGER NOT NULL,          -- requests sent, retries included
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        cost_usd REAL,                   -- estimated; NULL when the model's price is unknown
        usage_json TEXT NOT NULL,        -- everything: cache hits, skipped, unparseable, budget, rubric
        updated_at REAL NOT NULL,
        PRIMARY KEY (run_id, judge_id, context)
    );
    """
)
SCHEMA_VERSION = len(MIGRATIONS)

#: How long an open or a write waits for another process's write lock before giving up.
BUSY_TIMEOUT_S = 30.0


class StoreError(RhoAuditError):
    """The run store cannot be opened, read or written; the message names the cause and the fix."""


class StoreNotWritable(StoreError):
    """The store (or its folder) cannot be written by this user or on this file system."""


class StoreBusy(StoreError):
    """Another process held the store's write lock for longer than :data:`BUSY_TIMEOUT_S`."""


@dataclass(frozen=True)
class RunRow:
    run_id: str
    created_at: float
    finished_at: float | None
    status: str
    model_id: str
    seed: int
    config: dict[str, Any]
    config_sha256: str
    versions: dict[str, str]
    git_revision: str | None
    error: str | None
    kind: str = "audit"


def _dumps(value: Any) -> str:
    return json.dumps(finite(value), allow_nan=False, sort_keys=True)


def _errorname(err: sqlite3.Error) -> str:
    return getattr(err, "sqlite_errorname", "") or ""  # Python 3.11+


def _cannot_write_or_open(err: sqlite3.Error) -> bool:
    """SQLite could not open the file, or not write it (or its folder, for -wal and -shm)."""
    if _errorname(err).startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")):
        return True
    return any(s in str(err) for s in ("readonly database", "unable to open"))  # Python 3.10


def _statements(script: str) -> list[str]:
    """The statements of a migration script, so they can run inside one explicit transaction
    (``executescript`` would commit it first)."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    return statements


def _os_reason(err: OSError, what: str) -> str:
    if err.errno == errno.EROFS:
        return f"{what}: it is on a read-only file system"
    if err.errno in (errno.EACCES, errno.EPERM):
        return f"{what} (permission denied for this user)"
    return f"{what} ({err.strerror or err})"


def unwritable_reason(path: Path) -> str | None:
    """Why the store file ``path`` (existing or not) cannot be written here, or None if it can.

    SQLite in WAL mode writes ``-wal`` and ``-shm`` files next to the store, so its folder must be
    writable too, not only the file."""
    path = Path(path)
    if path.exists():
        try:
            with open(path, "r+b"):
                pass
        except OSError as err:
            return _os_reason(err, "the file is not writable")
    try:
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as err:
        return _os_reason(
            err, f"its folder {path.parent} is not writable (SQLite keeps -wal and -shm files there)"
        )
    return None


def store_error(path: Path, err: sqlite3.Error, doing: str = "open") -> StoreError:
    """The :class:`StoreError` for a SQLite failure on the store at ``path``: busy, not writable,
    damaged, not a store, disk full, or else the SQLite message itself."""
    name, text = _errorname(err), str(err)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in text:
        return StoreBusy(
            f"the run store {path} is busy: another process held its write lock for over "
            f"{BUSY_TIMEOUT_S:.0f}s, so rho-audit could not {doing} it ({text}). Wait for the other "
            "rho-audit command to finish (or stop it) and retry, or pass another --store."
        )
    if _cannot_write_or_open(err):
        reason = unwritable_reason(path)
        if reason:
            return StoreNotWritable(
                f"cannot {doing} the run store {path}: {reason}. Fix its permissions (or remount "
                "the disk read-write), or pass --store with a path you can write; `rho-audit report`, "
                "`rho-audit monitor` and `rho-audit judges agree` can still read it as it is."
            )
    if name.startswith("SQLITE_CORRUPT") or "malformed" in text:
        return StoreError(_damaged(path, text))
    if name == "SQLITE_NOTADB" or "not a database" in text:
        return StoreError(f"{path}: not a rho-audit run store ({text}). Pass another --store path.")
    if name.startswith("SQLITE_FULL") or "disk is full" in text:
        return StoreError(
            f"cannot {doing} the run store {path}: the disk is full ({text}). Free some space, or "
            "pass --store on another disk."
        )
    return StoreError(
        f"cannot {doing} the run store {path} ({text}). Check the path and the disk, or pass another --store."
    )


def _damaged(path: Path, detail: str) -> str:
    return (
        f"the run store {path} is damaged ({detail}). Recover what it holds with "
        f"`sqlite3 {path} .recover | sqlite3 recovered.sqlite` and pass --store recovered.sqlite, "
        "or pass a new --store."
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
        if not (Path(path).is_file() and _cannot_write_or_open(err)):
            raise
    return sqlite3.connect(_uri(path, "immutable=1"), uri=True, timeout=timeout, **options)


def _set_wal(db: sqlite3.Connection) -> None:
    """WAL mode, retried while another process holds the lock (the pragma does not always wait)."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL").fetchone()
            return
        except sqlite3.OperationalError as err:
            busy = _errorname(err).startswith("SQLITE_BUSY") or "database is locked" in str(err)
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    """Create or upgrade the schema in one ``BEGIN IMMEDIATE`` transaction: the version is read
    under the write lock, so of several processes opening a fresh store at once exactly one
    creates the tables and the others find them made. Also proves the store writable."""
    db.isolation_level = None  # explicit transaction control for the migration
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise _newer(path, version)
            for target in range(version, SCHEMA_VERSION):
                for statement in _statements(MIGRATIONS[target]):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {target + 1}")
            db.execute("COMMIT")
        finally:
            if db.in_transaction:
                db.execute("ROLLBACK")
    finally:
        db.isolation_level = "IMMEDIATE"


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _reading(method: _Method) -> _Method:
    """A read of the store: a SQLite failure becomes a :class:`StoreError` naming the cause."""

    @functools.wraps(method)
    def read(self: RunStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as err:
            raise store_error(self.path, err, "read") from err

    return cast(_Method, read)


def _newer(path: Path, version: int) -> RhoAuditError:
    return RhoAuditError(
        f"{path} has schema version {version}, newer than this rho-audit "
        f"({SCHEMA_VERSION}). Upgrade rho-audit or use another --store."
    )


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


class RunStore:
    """The run store at ``path``.

    Opened for writing (the default), the folder is created, the schema created or migrated in
    one ``BEGIN IMMEDIATE`` transaction and the file's integrity checked, so any problem surfaces
    here, before work starts. ``read_only=True`` never writes the file (no migration, no
    journal-mode change; see :func:`connect_read_only`), unless its schema is older than this
    rho-audit's and it can be upgraded; such a store serves cached judge verdicts but keeps no new
    ones. Every SQLite failure is raised as a :class:`StoreError`."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.db = self._open_reader() if read_only else self._open_writer()

    def _open_writer(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreNotWritable(
                "cannot create the run store's folder: "
                + _os_reason(err, str(self.path.parent))
                + ". Pass --store with a path in a folder you can write."
            ) from None
        db = None
        try:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level="IMMEDIATE")
            _set_wal(db)
            _migrate(db, self.path)
            problems = [row[0] for row in db.execute("PRAGMA quick_check(5)")]
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
            found = "; ".join(" ".join(str(p).split()) for p in problems)  # one paragraph
            raise StoreError(_damaged(self.path, f"SQLite quick_check: {found}"))
        self.read_only = False
        return db

    def _open_reader(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise StoreError(f"no run store at {self.path}. Pass --store, or run `rho-audit run` first.")
        db = None
        try:
            db = connect_read_only(self.path)
            version = db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.Error as err:
            if db is not None:
                db.close()
            raise store_error(self.path, err, "read") from None
        if version == SCHEMA_VERSION:
            return db
        db.close()
        if version > SCHEMA_VERSION:
            raise _newer(self.path, version)
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

    @_reading
    def train_steps(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT step, metrics_json FROM train_steps WHERE run_id = ? ORDER BY step", (run_id,)
        ).fetchall()
        return [{"step": step, **json.loads(m)} for step, m in rows]

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

    @_reading
    def cells(self, sweep_id: str) -> list[dict[str, Any]]:
        cols = (
            "sweep_id",
            "cell_id",
            "config_sha256",
            "status",
            "train_run_id",
            "audit_run_id",
            "updated_at",
            "error",
            "cell_json",
        )
        rows = self.db.execute(
            f"SELECT {', '.join(cols)} FROM sweep_cells WHERE sweep_id = ? ORDER BY rowid", (sweep_id,)
        ).fetchall()
        out = []
        for row in rows:
            rec = dict(zip(cols, row, strict=True))
            rec["cell"] = json.loads(rec.pop("cell_json"))
            out.append(rec)
        return out

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

    # -- reading ---------------------------------------------------------------------------

    @_reading
    def runs(self) -> list[RunRow]:
        rows = self.db.execute(
            "SELECT run_id, created_at, finished_at, status, model_id, seed, config_json,"
            " config_sha256, versions_json, git_revision, error, kind FROM runs ORDER BY created_at"
        ).fetchall()
        return [RunRow(*r[:6], json.loads(r[6]), r[7], json.loads(r[8]), *r[9:]) for r in rows]

    def run(self, run_id: str) -> RunRow:
        for row in self.runs():
            if row.run_id == run_id or row.run_id.startswith(run_id):
                return row
        raise RhoAuditError(f"no run {run_id!r} in {self.path}. `rho-audit runs` lists them.")

    @_reading
    def results(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT result_json FROM dimension_results WHERE run_id = ? ORDER BY rowid", (run_id,)
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    @_reading
    def probe_records(self, run_id: str, dimension: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT record_json FROM probe_records WHERE run_id = ? AND dimension = ? ORDER BY rowid",
            (run_id, dimension),
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    # -- judges ----------------------------------------------------------------------------

    @_reading
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

    def judge_cache_put(
        self, key: str, judge_id: str, judge_model: str, rubric_sha256: str, verdict: Any
    ) -> None:
        """Cache one verdict (a :class:`~rho_audit.api.hooks.Verdict`) at once, in its own transaction
        (not in a read-only store, which serves its cached verdicts but keeps no new ones)."""
        if self.read_only:
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
        if self.read_only:
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

    @_reading
    def judge_usage(self, run_id: str) -> list[dict[str, Any]]:
        """Judge usage rows of a run (each ``usage_json`` plus ``context``), for reports."""
        rows = self.db.execute(
            "SELECT context, usage_json FROM judge_usage WHERE run_id = ? ORDER BY rowid", (run_id,)
        ).fetchall()
        return [{"context": context, **json.loads(usage)} for context, usage in rows]
