"""MLflow tracking (``--track mlflow``): each audit run and each sweep cell becomes an MLflow run in
a real local file store, read back with ``mlflow.search_runs``; a failing or hanging tracker never
fails, changes or holds up an audit. Skipped only where MLflow is not installed (CI installs it)."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from click.testing import CliRunner

from rho_audit.api import tracking
from rho_audit.store import RunStore
from rho_audit.train import sweep as sw
from tests.test_sweep import fakes, host, plan_of  # noqa: F401  (fixtures)

mlflow = pytest.importorskip("mlflow")

from rho_audit_plugins.tracking import mlflow_runs  # noqa: E402  (after the skip)


@pytest.fixture
def tracked(tmp_path, monkeypatch):
    """Tracking on, into a file store under tmp_path; a fresh tracker for the test."""
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("RHO_AUDIT_TRACKING", "mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 reads a file store only so
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.setattr(mlflow_runs, "_TRACKER", [])
    return uri


def runs(uri: str):
    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(experiment_names=["rho-audit"], output_format="list")


def test_an_audit_run_is_an_mlflow_run_with_params_metrics_and_artifacts(tmp_path, tiny_model_path, tracked):
    from rho_audit.cli.app import main

    store = tmp_path / "runs.sqlite"
    args = ["run", "--model", str(tiny_model_path), "--plugins", "factual,toxicity", "-n", "6"]
    args += ["--store", str(store), "--display", "none", "--track", "mlflow"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert mlflow_runs.tracker().flush(60)

    [run] = runs(tracked)
    [audit] = RunStore(store).runs()
    params, metrics = run.data.params, run.data.metrics
    assert run.data.tags["rho_audit.key"] == audit.run_id and run.info.status == "FINISHED"
    assert params["model"] == audit.model_id and params["seed"] == "0"
    assert params["config_sha256"] == audit.config_sha256 and params["limit"] == "6"
    for row in RunStore(store).dimension_scores(audit.run_id):
        assert metrics[f"{row.dimension}.score"] == pytest.approx(row.score)
        assert metrics[f"{row.dimension}.ci_low"] == pytest.approx(row.ci_low)
        assert metrics[f"{row.dimension}.ci_high"] == pytest.approx(row.ci_high)
    version = RunStore(store).results(audit.run_id)[0]["probe_set_version"]
    assert params["probe_set.factual"] == f"factual@{version}"
    assert "factual.accuracy" in metrics  # the pair dimensions' paired accuracy
    client = mlflow.MlflowClient(tracked)
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert names == {"result.json", "card.html"}
    card = client.download_artifacts(run.info.run_id, "card.html", str(tmp_path))
    assert audit.run_id in open(card, encoding="utf-8").read()


def test_each_sweep_cell_is_one_run_with_its_training_curve(tmp_path, host, fakes, tracked):  # noqa: F811
    plan, store = plan_of(tmp_path, host), tmp_path / "runs.sqlite"
    sw.run_sweep(plan, store, host)
    assert mlflow_runs.tracker().flush(60)

    found = {r.data.tags["rho_audit.key"]: r for r in runs(tracked)}
    assert set(found) == {f"{plan.sweep_id}/{c.cell_id}" for c in plan.cells}  # cells only, once each
    run = found[f"{plan.sweep_id}/fake-guided_lambda0.2_seed2"]
    params, metrics = run.data.params, run.data.metrics
    assert params["train.trainer"] == "fake-guided" and params["train.options.lambda"] == "0.2"
    assert params["train.seed"] == "2" and params["audit.dimensions"] == "factual,toxicity"
    assert metrics["factual.score"] == pytest.approx(0.32) and metrics["attempts"] == 1
    assert {"factual.ci_low", "factual.ci_high", "final.loss"} <= set(metrics)
    history = mlflow.MlflowClient(tracked).get_metric_history(run.info.run_id, "train.loss")
    assert sorted((m.step, m.value) for m in history) == [(s, pytest.approx(1 / s)) for s in (1, 2, 3, 4)]


def scores(store, plan) -> dict:
    db = RunStore(store)
    try:
        return {r.cell_id: (r.status, r.result.get("scores")) for r in db.cells(plan.sweep_id)}
    finally:
        db.close()


def test_a_failing_tracker_never_fails_changes_or_holds_up_the_sweep(
    tmp_path,
    host,  # noqa: F811
    fakes,  # noqa: F811
    tracked,
    monkeypatch,
    caplog,
):
    (tmp_path / "plain").mkdir()
    plain = plan_of(tmp_path / "plain", host)
    monkeypatch.setenv("RHO_AUDIT_TRACKING", "none")
    sw.run_sweep(plain, tmp_path / "plain.sqlite", host)
    monkeypatch.setenv("RHO_AUDIT_TRACKING", "mlflow")

    server_down = threading.Event()

    def unreachable(self):  # a tracking server that hangs, then refuses
        server_down.wait(30)
        raise ConnectionError("tracking server at http://mlflow.invalid:5000 refused the connection")

    monkeypatch.setattr(mlflow_runs.MlflowTracker, "_mlflow", unreachable)
    plan = plan_of(tmp_path, host)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger=mlflow_runs.__name__):
        outcome = sw.run_sweep(plan, tmp_path / "runs.sqlite", host)
        elapsed = time.monotonic() - started
        tracker = mlflow_runs.tracker()
        assert tracker.queue.unfinished_tasks  # the sweep finished while the tracker still hung
        server_down.set()
        assert tracker.flush(30)
        (tmp_path / "again").mkdir()
        sw.run_sweep(plan_of(tmp_path / "again", host), tmp_path / "again.sqlite", host)
        assert tracker.flush(30)  # a second sweep: tracking stays off, no second warning
    assert elapsed < 30 and not outcome.failed
    assert scores(tmp_path / "runs.sqlite", plan) == scores(tmp_path / "plain.sqlite", plain)
    failures = [r for r in caplog.records if "MLflow tracking failed" in r.getMessage()]
    assert len(failures) == 1 and "refused the connection" in failures[0].getMessage()


def test_tracking_is_off_unless_asked_and_the_flag_checks_mlflow(monkeypatch):
    monkeypatch.delenv("RHO_AUDIT_TRACKING", raising=False)
    assert not tracking.tracking_enabled("mlflow")
    monkeypatch.setenv("RHO_AUDIT_TRACKING", "none")
    assert not tracking.tracking_enabled("mlflow")
    monkeypatch.setenv("RHO_AUDIT_TRACKING", "mlflow")
    assert tracking.tracking_enabled("mlflow")
