"""Run store: WAL, schema version and migrations, NaN never reaches JSON."""

import json
import math
import sqlite3

import pytest

from rho_audit.api.errors import RhoAuditError
from rho_audit.api.results import DimensionResult, Evaluation, ProbeRecord
from rho_audit.store import SCHEMA_VERSION, RunStore


def make_result(score=0.5) -> DimensionResult:
    ev = Evaluation(
        "rank_biserial",
        "def",
        score,
        math.nan,
        0.9,
        2,
        (ProbeRecord("a", "eval", values={"gap": math.inf}), ProbeRecord("b", "eval", error="boom")),
    )
    return DimensionResult(
        "factual", "rho-audit 0.1.0", "factual", "0.1.0", ev, "PASS", 1.0, {"pass_at": 0.3, "warn_at": 0.1}
    )


def start(store, run_id="r1"):
    store.start_run(run_id, "m", "/m", None, 0, {"a": 1}, "sha", {"mlx": "1"}, None)


def test_results_round_trip_without_nan(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    start(store)
    store.add_result("r1", make_result())
    store.finish_run("r1", "complete")
    [summary] = store.results("r1")
    assert summary["evaluation"]["ci_low"] is None and summary["evaluation"]["score"] == 0.5
    records = store.probe_records("r1", "factual")
    assert records[0]["values"]["gap"] is None and records[1]["error"] == "boom"
    raw = store.db.execute("SELECT result_json FROM dimension_results").fetchone()[0]
    assert "NaN" not in raw and "Infinity" not in raw
    json.loads(raw)
    assert store.run("r1").status == "complete"


def test_wal_mode_and_schema_version(tmp_path):
    path = tmp_path / "runs.sqlite"
    RunStore(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "runs.sqlite"
    RunStore(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    with pytest.raises(RhoAuditError, match="newer"):
        RunStore(path)


def test_a_reader_sees_results_while_the_writer_is_open(tmp_path):
    path = tmp_path / "runs.sqlite"
    writer = RunStore(path)
    start(writer)
    writer.add_result("r1", make_result())
    reader = RunStore(path)
    assert reader.results("r1")[0]["dimension"] == "factual"
    assert reader.run("r1").status == "running"


def test_not_a_database_is_a_user_error(tmp_path):
    path = tmp_path / "runs.sqlite"
    path.write_text("hello, this is not sqlite" * 100)
    with pytest.raises(RhoAuditError, match="--store"):
        RunStore(path)
