"""The run store: one SQLite file (WAL mode) holding runs, dimension results and probe records.

Results are written per dimension as soon as each finishes, in its own transaction, so Ctrl-C or
a crash keeps everything done so far. WAL lets a monitor read while a run writes. The schema
carries a version (``PRAGMA user_version``); :data:`MIGRATIONS` upgrades older files in place.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rho_audit.errors import RhoAuditError
from rho_audit.results import DimensionResult, finite

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
SCHEMA_VERSION = len(MIGRATIONS)


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


def _dumps(value: Any) -> str:
    return json.dumps(finite(value), allow_nan=False, sort_keys=True)


class RunStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as err:
            raise RhoAuditError(
                f"{self.path}: not a rho-audit run store ({err}). Pass another --store path."
            ) from None
        self._migrate()

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RhoAuditError(
                f"{self.path} has schema version {version}, newer than this rho-audit "
                f"({SCHEMA_VERSION}). Upgrade rho-audit or use another --store."
            )
        for target in range(version, SCHEMA_VERSION):
            with self.db:
                self.db.executescript(MIGRATIONS[target])
                self.db.execute(f"PRAGMA user_version = {target + 1}")

    def close(self) -> None:
        self.db.close()

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
    ) -> None:
        with self.db:
            self.db.execute(
                "INSERT INTO runs (run_id, created_at, status, model_id, model_path, adapter, seed,"
                " config_json, config_sha256, versions_json, git_revision)"
                " VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?)",
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
                ),
            )

    def add_result(self, run_id: str, result: DimensionResult) -> None:
        """Write one dimension's result and its probe records in one transaction."""
        ev = result.evaluation
        summary = result.to_json()
        summary["evaluation"].pop("records")
        with self.db:
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
        with self.db:
            self.db.execute(
                "UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE run_id = ?",
                (status, time.time(), error, run_id),
            )

    # -- reading ---------------------------------------------------------------------------

    def runs(self) -> list[RunRow]:
        rows = self.db.execute(
            "SELECT run_id, created_at, finished_at, status, model_id, seed, config_json,"
            " config_sha256, versions_json, git_revision, error FROM runs ORDER BY created_at"
        ).fetchall()
        return [
            RunRow(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7], json.loads(r[8]), r[9], r[10])
            for r in rows
        ]

    def run(self, run_id: str) -> RunRow:
        for row in self.runs():
            if row.run_id == run_id or row.run_id.startswith(run_id):
                return row
        raise RhoAuditError(f"no run {run_id!r} in {self.path}. `rho-audit runs` lists them.")

    def results(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT result_json FROM dimension_results WHERE run_id = ? ORDER BY rowid", (run_id,)
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def probe_records(self, run_id: str, dimension: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT record_json FROM probe_records WHERE run_id = ? AND dimension = ? ORDER BY rowid",
            (run_id, dimension),
        ).fetchall()
        return [json.loads(r[0]) for r in rows]
