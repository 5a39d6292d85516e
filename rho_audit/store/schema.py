"""The store's schema: :data:`MIGRATIONS` and how a file is brought up to :data:`SCHEMA_VERSION`.

The version lives in ``PRAGMA user_version``; a file is created or upgraded in one
``BEGIN IMMEDIATE`` transaction, so processes that open a fresh store at once never race.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from rho_audit.store.errors import BUSY_TIMEOUT_S, is_busy, newer_schema

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
MIGRATIONS.append(
    """
    -- v4: the turns of an auditing agent (``rho-audit investigate``), one row per message.
    CREATE TABLE agent_turns (
        run_id TEXT NOT NULL REFERENCES runs(run_id),
        turn INTEGER NOT NULL,           -- from 1, in conversation order
        role TEXT NOT NULL,              -- assistant | tool
        input_tokens INTEGER NOT NULL,   -- the assistant request's usage (0 for tool results)
        output_tokens INTEGER NOT NULL,
        cost_usd REAL,                   -- estimated; NULL when the price is unknown or for tool results
        turn_json TEXT NOT NULL,         -- text, tool calls, tool results (is_error), budget left
        created_at REAL NOT NULL,
        PRIMARY KEY (run_id, turn)
    );
    """
)
MIGRATIONS.append(
    """
    -- v5: the results of an activation-difference lens (``rho-audit diff``), one document a run.
    CREATE TABLE diff_results (
        run_id TEXT PRIMARY KEY REFERENCES runs(run_id),
        result_json TEXT NOT NULL        -- layer, means, tokens per position, the alpha search, samples
    );
    """
)
SCHEMA_VERSION = len(MIGRATIONS)


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


def set_wal(db: sqlite3.Connection) -> None:
    """WAL mode, retried while another process holds the lock (the pragma does not always wait)."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL").fetchone()
            return
        except sqlite3.OperationalError as err:
            if not is_busy(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def schema_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection, path: Path) -> None:
    """Create or upgrade the schema in one ``BEGIN IMMEDIATE`` transaction: the version is read
    under the write lock, so of several processes opening a fresh store at once exactly one
    creates the tables and the others find them made. Also proves the store writable."""
    db.isolation_level = None  # explicit transaction control for the migration
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            version = schema_version(db)
            if version > SCHEMA_VERSION:
                raise newer_schema(path, version, SCHEMA_VERSION)
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


def quick_check(db: sqlite3.Connection) -> list[str]:
    """SQLite's ``quick_check`` findings (``["ok"]`` for a sound file), at most five."""
    return [str(row[0]) for row in db.execute("PRAGMA quick_check(5)")]
