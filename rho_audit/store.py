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
        kind: str = "audit",
    ) -> None:
        with self.db:
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
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO train_steps VALUES (?, ?, ?)", (run_id, step, _dumps(metrics))
            )

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
        with self.db:
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
            " config_sha256, versions_json, git_revision, error, kind FROM runs ORDER BY created_at"
        ).fetchall()
        return [RunRow(*r[:6], json.loads(r[6]), r[7], json.loads(r[8]), *r[9:]) for r in rows]

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

    # -- judges ----------------------------------------------------------------------------

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
        """Cache one verdict (a :class:`~rho_audit.hookspecs.Verdict`) at once, in its own transaction."""
        with self.db:
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
        """Replace the usage row of (run, judge, context) with ``usage`` (see ``LLMJudge.usage``)."""
        cost = usage.get("cost_usd") if usage.get("cost_known", True) else None
        with self.db:
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

    def judge_usage(self, run_id: str) -> list[dict[str, Any]]:
        """Judge usage rows of a run (each ``usage_json`` plus ``context``), for reports."""
        rows = self.db.execute(
            "SELECT context, usage_json FROM judge_usage WHERE run_id = ? ORDER BY rowid", (run_id,)
        ).fetchall()
        return [{"context": context, **json.loads(usage)} for context, usage in rows]
