"""Run store: WAL, schema version and migrations, NaN never reaches JSON."""

import csv
import json
import math
import sqlite3

import pytest

from rho_audit.api.errors import RhoAuditError
from rho_audit.api.results import DimensionResult, Evaluation, ProbeRecord
from rho_audit.store import (
    SCHEMA_VERSION,
    AmbiguousId,
    CellDoc,
    DimensionScore,
    RunRow,
    RunStore,
    StoredCell,
    StoreError,
    StoreNotReady,
    TrainStep,
    resolve_id,
)


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


# --------------------------------------------------------------------------------------------
# The typed read side and the id rule
# --------------------------------------------------------------------------------------------


def two_runs(path, ids=("20260301-aa", "20260301-ab")):
    store = RunStore(path)
    for run_id in ids:
        start(store, run_id)
        store.add_result(run_id, make_result())
        store.add_train_step(run_id, 1, {"loss": 2.0})
        store.add_train_step(run_id, 2, {"loss": 1.5})
        store.finish_run(run_id, "complete")
    return store


def test_typed_reads(tmp_path):
    store = two_runs(tmp_path / "runs.sqlite")
    run = store.get_run("20260301-aa")
    assert isinstance(run, RunRow) and run.model_path == "/m" and run.adapter is None
    assert store.get_run("20260301") is None  # exact only
    [score] = store.dimension_scores("20260301-aa")
    assert score == DimensionScore("factual", "rank_biserial", 0.5, None, 0.9, 2, "PASS")
    assert score.to_json()["ci_low"] is None
    steps = store.train_steps("20260301-aa")
    assert steps == [TrainStep(1, {"loss": 2.0}), TrainStep(2, {"loss": 1.5})]
    assert store.train_steps("20260301-aa", after=1) == [TrainStep(2, {"loss": 1.5})]
    assert steps[0].flat() == {"step": 1, "loss": 2.0}
    store.set_cell("sw-1", "c1", "sha", "complete", {"spec": {"kind": "baseline"}, "result": {"scores": {}}})
    store.set_cell("sw-1", "c2", "sha", "pending", {"spec": {"kind": "train"}})
    [sweep] = store.sweeps()
    assert sweep.sweep_id == "sw-1" and sweep.n_cells == 2
    c1, c2 = store.cells("sw-1")
    assert isinstance(c1, StoredCell) and c1.spec == {"kind": "baseline"} and c1.result == {"scores": {}}
    assert c2.doc.result is None and c2.result == {}
    assert store.cell("sw-1", "c2").status == "pending" and store.cell("sw-1", "nope") is None


def test_one_parser_of_cell_json():
    assert CellDoc.parse('{"spec": {"a": 1}, "result": {"b": 2}}') == CellDoc({"a": 1}, {"b": 2})
    for broken in (None, "", "not json", "[1, 2]", '{"spec": 3}'):
        assert CellDoc.parse(broken) == CellDoc({}, None)
    assert CellDoc({"a": 1}, None).to_json() == {"spec": {"a": 1}}


def test_the_id_rule_exact_then_unique_prefix_then_ambiguous():
    known = ["abl", "abl-1111", "abl-2222", "other"]
    assert resolve_id("abl", known, "sweep", "s") == "abl"  # an exact id wins over its longer kin
    assert resolve_id("abl-1", known, "sweep", "s") == "abl-1111"
    assert resolve_id("zzz", known, "sweep", "s") is None
    with pytest.raises(AmbiguousId, match=r"'abl-' matches 2 sweeps in s: abl-1111, abl-2222"):
        resolve_id("abl-", known, "sweep", "s")


def test_run_lookup_uses_the_id_rule(tmp_path):
    store = two_runs(tmp_path / "runs.sqlite")
    assert store.run("20260301-ab").run_id == "20260301-ab"
    with pytest.raises(AmbiguousId, match="matches 2 runs"):
        store.run("20260301")
    with pytest.raises(RhoAuditError, match="`rho-audit runs` lists them"):
        store.run("nope")


def test_read_only_never_writes(tmp_path):
    path = tmp_path / "runs.sqlite"
    two_runs(path).close()
    before = path.stat().st_mtime_ns
    reader = RunStore.read_only(path)
    assert not reader.writable and [r.run_id for r in reader.runs()] == ["20260301-aa", "20260301-ab"]
    with reader.snapshot():
        assert reader.find_run("20260301-aa") == "20260301-aa"
        assert reader.find_sweep("nothing") is None
    reader.close()
    assert path.stat().st_mtime_ns == before
    with pytest.raises(StoreError, match="no run store"):
        RunStore.read_only(tmp_path / "missing.sqlite")


def test_a_store_without_tables_is_not_ready(tmp_path):
    path = tmp_path / "empty.sqlite"
    path.write_bytes(b"")  # a file a writer has created but not migrated yet
    reader = RunStore.read_only(path, upgrade=False)
    with pytest.raises(StoreNotReady):
        reader.sweeps()
    reader.close()


def test_delete_runs_removes_every_row_in_one_transaction(tmp_path):
    store = two_runs(tmp_path / "runs.sqlite")
    store.delete_runs(["20260301-aa"])
    assert [r.run_id for r in store.runs()] == ["20260301-ab"]
    assert store.results("20260301-aa") == [] and store.train_steps("20260301-aa") == []
    assert store.probe_records("20260301-aa", "factual") == []
    assert len(store.probe_records("20260301-ab", "factual")) == 2


# --------------------------------------------------------------------------------------------
# rho-audit runs list | show | rm | export
# --------------------------------------------------------------------------------------------


def runs_cli(*args, input=None):
    from click.testing import CliRunner

    from rho_audit.cli import main

    return CliRunner().invoke(main, ["runs", *map(str, args)], input=input)


def test_runs_list(tmp_path):
    path = tmp_path / "runs.sqlite"
    two_runs(path).close()
    res = runs_cli("list", "--store", path)
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].split("\t") == ["run", "kind", "date", "model", "adapter", "dimensions", "status"]
    assert [line.split("\t")[0] for line in lines[1:]] == ["20260301-aa", "20260301-ab"]
    assert lines[1].split("\t")[3:] == ["m", "-", "factual", "complete"]
    doc = json.loads(runs_cli("list", "--store", path, "--json").output)
    assert doc[0]["run_id"] == "20260301-aa" and doc[0]["dimensions"] == ["factual"]
    res = runs_cli("--help")
    assert "a prefix of several runs is an error" in " ".join(res.output.split())


def test_runs_show(tmp_path):
    path = tmp_path / "runs.sqlite"
    two_runs(path).close()
    res = runs_cli("show", "20260301-ab", "--store", path)
    assert res.exit_code == 0, res.output
    assert "20260301-ab (audit, complete)" in res.output and '"a": 1' in res.output
    assert "factual\trank_biserial\t0.500" in res.output
    doc = json.loads(runs_cli("show", "20260301-ab", "--store", path, "--json").output)
    assert doc["config"] == {"a": 1} and doc["results"][0]["dimension"] == "factual"
    res = runs_cli("show", "20260301", "--store", path)  # a prefix of both runs
    assert isinstance(res.exception, AmbiguousId) and "20260301-aa, 20260301-ab" in str(res.exception)


def test_runs_rm(tmp_path):
    path = tmp_path / "runs.sqlite"
    two_runs(path, ("20260301-aa", "20260301-ab", "20260302-xx")).close()
    res = runs_cli("rm", "20260301", "--store", path, "--yes")
    assert isinstance(res.exception, AmbiguousId)  # nothing deleted
    res = runs_cli("rm", "20260301-aa", "20260302", "--store", path, input="n\n")
    assert res.exit_code == 1 and "Delete 2 runs?" in res.output
    assert len(RunStore(path).runs()) == 3
    res = runs_cli("rm", "20260301-aa", "20260302", "--store", path, input="y\n")
    assert res.exit_code == 0 and "deleted 2 runs" in res.output
    assert [r.run_id for r in RunStore(path).runs()] == ["20260301-ab"]
    res = runs_cli("rm", "20260301", "--store", path, "--yes")  # now a unique prefix
    assert res.exit_code == 0 and RunStore(path).runs() == []


def test_runs_export(tmp_path):
    path = tmp_path / "runs.sqlite"
    two_runs(path).close()
    out = tmp_path / "probes.csv"
    res = runs_cli("export", "20260301-aa", "--store", path, "--format", "csv", "--out", out)
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["probe_id"] for r in rows] == ["a", "b"]
    assert rows[0]["dimension"] == "factual" and rows[0]["values.gap"] == "" and rows[1]["error"] == "boom"
    res = runs_cli("export", "20260301-aa", "--store", path)  # json to stdout
    records = json.loads(res.output)
    assert records[0]["run_id"] == "20260301-aa" and records[1]["error"] == "boom"
    res = runs_cli("export", "2026", "--store", path)
    assert isinstance(res.exception, AmbiguousId) and "matches 2 runs" in str(res.exception)
