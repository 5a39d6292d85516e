"""Sweep executors as plugins, one writer per store, and the Ray executor.

The first tests need no Ray: an in-process "remote" executor runs each cell through
``run_cell_payload`` (a scratch store, JSON back) with the fake trainer and audit of
test_sweep.py, and the driver's store must end up as the local executor leaves it. The Ray tests
start a local Ray (``ray.init(num_cpus=2)``, loopback only) and sweep the tiny model through it:
a worker killed mid-cell is retried, a killed driver resumes, Ctrl-C cancels the tasks. They skip
only where Ray is not installed (CI installs it: scripts/install.sh --dev).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pytest

from rho_audit.api import CellJob, Executor, ExecutorSettings, RhoAuditError, SweepSession, run_cell_payload
from rho_audit.api.errors import PluginError
from rho_audit.store import RunStore
from rho_audit.train import checkpoints
from rho_audit.train import sweep as sw
from rho_audit.train.sweep import remote
from rho_audit.train.sweep.transfer import export_cell, import_runs
from tests.processes import default_sigint
from tests.test_sweep import (  # noqa: F401  (fixtures)
    GOOD,
    TINY_SWEEP,
    Killed,
    fakes,
    host,
    model_dir,
    plan_of,
    statuses,
    write,
)

ROOT = Path(__file__).resolve().parent.parent


class InProcessRemote(Executor):
    """Every cell through the worker path, in this process: payload -> run_cell_payload ->
    finished. A ``Killed`` (our stand-in for SIGKILL) is a dead worker: the cell starts again."""

    name: ClassVar[str] = "in-process-remote"
    ship_model = False
    on_death: ClassVar = None
    #: As if this worker's --out were its own disk: the driver's copy of it is gone.
    own_out = False

    def run(self, jobs: Sequence[CellJob], session: SweepSession) -> None:
        for job in jobs:
            session.started(job)
            attempt = 1
            while True:
                payload = session.payload(job)
                if self.ship_model:  # as if this machine lacked the driver's model folder
                    payload["model"] = {**payload["model"], "path": "/nowhere/on/this/worker/Tiny"}
                if self.own_out:
                    payload["out_marker"] = "/nowhere/on/this/worker/sweep.json"
                try:
                    report = run_cell_payload(payload, None, attempt)
                    if report.get("needs_model"):
                        archive = session.model_archive(report["needs_model"])
                        report = run_cell_payload(payload, lambda data=archive: data, attempt)
                except Killed:
                    if self.on_death:
                        self.on_death()
                    if attempt > self.settings.retries:
                        session.lost(job, "its worker died", attempt)
                        break
                    attempt += 1
                    continue
                if self.own_out and job.spec["train"]:
                    shutil.rmtree(job.spec["train"]["adapter_dir"])
                session.finished(job, report, attempt)
                break


@pytest.fixture
def worker(tmp_path, monkeypatch, host):  # noqa: F811
    """The worker side in this process: its temp folder in tmp_path, the test's plugin host."""
    monkeypatch.setattr(remote, "work_dir", lambda: tmp_path / "worker")
    monkeypatch.setattr(remote, "_host", lambda: host)
    return tmp_path / "worker"


@pytest.fixture
def audits(fakes, monkeypatch):  # noqa: F811
    """The fake audit, also noting each audit's store and model."""
    _, audit = fakes
    seen: list[tuple[str, str | None]] = []

    def noting(config, plugins):
        seen.append((str(config.store), config.model))
        return audit(config, plugins)

    monkeypatch.setattr("rho_audit.audit.runner.run_audit", noting)
    return seen


def with_model(tmp_path: Path, text: str = GOOD) -> str:
    model = model_dir(tmp_path / "models" / "Tiny")
    (model / "model.safetensors").write_bytes(b"weights")
    return text.replace("models: [null]", f"models: [{model}]")


def snapshot(store_path: Path, sweep_id: str) -> dict:
    """What the store says of a sweep: each cell's status, scores and training steps."""
    store = RunStore(store_path)
    try:
        cells = {}
        for row in store.cells(sweep_id):
            steps = [s.step for s in store.train_steps(row.train_run_id)] if row.train_run_id else []
            scores = {d: s["score"] for d, s in row.result.get("scores", {}).items()}
            audit = store.get_run(row.audit_run_id) if row.audit_run_id else None
            cells[row.cell_id] = (row.status, scores, steps, audit.status if audit else None)
        return cells
    finally:
        store.close()


def test_the_worker_path_leaves_the_store_as_the_local_executor_does(tmp_path, host, audits, worker):  # noqa: F811
    text = with_model(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    local_plan, remote_plan = plan_of(tmp_path / "a", host, text), plan_of(tmp_path / "b", host, text)
    sw.run_sweep(local_plan, tmp_path / "local.sqlite", host)
    local_audits = len(audits)

    outcome = sw.run_sweep(remote_plan, tmp_path / "remote.sqlite", host, InProcessRemote())
    assert not outcome.failed and len(outcome.ran) == 7
    assert len(audits) == 2 * local_audits  # every cell audited once, here as there
    assert snapshot(tmp_path / "remote.sqlite", remote_plan.sweep_id) == snapshot(
        tmp_path / "local.sqlite", local_plan.sweep_id
    )
    # one writer: no cell's audit wrote the driver's store, and no scratch store is left behind
    assert str(tmp_path / "remote.sqlite") not in {store for store, _ in audits[local_audits:]}
    assert not list((worker / "cells").rglob("runs.sqlite"))
    rows = RunStore(tmp_path / "remote.sqlite").cells(remote_plan.sweep_id)
    assert {r.result["attempts"] for r in rows} == {1}


def test_a_dead_worker_is_retried_and_resumes_from_its_scratch_store(tmp_path, host, fakes, worker):  # noqa: F811
    train, _ = fakes
    plan = plan_of(tmp_path, host, with_model(tmp_path))
    cell = "fake-guided_lambda0.1_seed1"
    train.die[cell] = 4  # dies before step 4, after the checkpoint of step 3
    store = tmp_path / "runs.sqlite"
    executor = InProcessRemote(ExecutorSettings(retries=2))
    executor.on_death = train.die.clear  # the second start lives
    outcome = sw.run_sweep(plan, store, host, executor)
    assert not outcome.failed
    db = RunStore(store)
    row = db.cell(plan.sweep_id, cell)
    assert row.status == "complete" and row.result["attempts"] == 2
    assert [s.step for s in db.train_steps(row.train_run_id)] == [1, 2, 3, 4]  # steps of both starts
    assert train.calls.count(cell) == 2
    trained = [r.status for r in db.runs() if r.kind == "train" and r.adapter.endswith(f"{cell}/adapter")]
    assert trained == ["complete"]


def test_a_worker_that_keeps_dying_is_recorded_lost_and_a_rerun_resumes_it(tmp_path, host, fakes, worker):  # noqa: F811
    train, _ = fakes
    plan = plan_of(tmp_path, host, with_model(tmp_path))
    cell = "fake-sft_seed2"
    store = tmp_path / "runs.sqlite"
    train.die[cell] = 3  # every start dies there
    outcome = sw.run_sweep(plan, store, host, InProcessRemote(ExecutorSettings(retries=1)))
    [lost] = outcome.failed
    assert lost.cell_id == cell and lost.attempts == 2 and "died" in lost.error
    assert statuses(store, plan)[cell] == "failed"
    train.die.clear()
    again = sw.run_sweep(plan, store, host, InProcessRemote())
    assert [r.cell_id for r in again.ran] == [cell] and not again.failed
    db = RunStore(store)
    assert [s.step for s in db.train_steps(db.cell(plan.sweep_id, cell).train_run_id)] == [1, 2, 3, 4]


def test_a_model_missing_on_the_worker_is_shipped_and_unpacked(tmp_path, host, audits, worker):  # noqa: F811
    plan = plan_of(tmp_path, host, with_model(tmp_path))
    executor = InProcessRemote()
    executor.ship_model = True
    outcome = sw.run_sweep(plan, tmp_path / "runs.sqlite", host, executor)
    assert not outcome.failed
    [copy] = (worker / "models").glob("*/Tiny")
    assert (copy / "model.safetensors").read_bytes() == b"weights"
    assert {model for _, model in audits} == {str(copy)}  # every audit loaded the unpacked copy
    assert remote.folder_sha256(copy) == remote.folder_sha256(tmp_path / "models" / "Tiny")


def test_a_worker_that_does_not_share_out_sends_the_finished_adapter_back(
    tmp_path,
    host,  # noqa: F811
    fakes,  # noqa: F811
    worker,
    monkeypatch,
):
    train, _ = fakes

    def with_adapter_files(config, host, store, say=None, resume=True, reference_cache=None):
        outcome = train(config, host, store, say, resume)
        out = Path(config.adapter_dir)
        (out / checkpoints.ADAPTER_FILE).write_bytes(f"weights of seed {config.seed}".encode())
        (out / checkpoints.ADAPTER_CONFIG).write_text("{}")
        (out / checkpoints.DONE_FILE).write_text(json.dumps({"run_id": outcome.run_id}))
        return outcome

    monkeypatch.setattr("rho_audit.train.loop.train", with_adapter_files)
    plan = plan_of(tmp_path, host, with_model(tmp_path))
    executor = InProcessRemote()
    executor.own_out = True
    outcome = sw.run_sweep(plan, tmp_path / "runs.sqlite", host, executor)
    assert not outcome.failed
    store = RunStore(tmp_path / "runs.sqlite")
    for cell in plan.train_cells:
        adapter = Path(cell.adapter_dir)
        weights = f"weights of seed {cell.train['seed']}".encode()
        assert (adapter / checkpoints.ADAPTER_FILE).read_bytes() == weights
        row = store.cell(plan.sweep_id, cell.cell_id)
        assert checkpoints.finished_run(adapter)["run_id"] == row.train_run_id


def test_a_user_error_on_a_worker_stops_the_sweep(tmp_path, host, fakes, worker, monkeypatch):  # noqa: F811
    def bad_train(config, host, store, say=None, resume=True, reference_cache=None):
        raise RhoAuditError("corpus.jsonl:3: missing 'output'")

    monkeypatch.setattr("rho_audit.train.loop.train", bad_train)
    plan, store = plan_of(tmp_path, host, with_model(tmp_path)), tmp_path / "runs.sqlite"
    with pytest.raises(RhoAuditError, match=r"corpus\.jsonl:3"):
        sw.run_sweep(plan, store, host, InProcessRemote())
    state = statuses(store, plan)
    assert state["baseline"] == "complete" and state["fake-sft_seed1"] == "failed"
    assert state["fake-sft_seed2"] == "pending"


def test_exported_runs_import_unchanged_and_twice_is_once(tmp_path, host, fakes):  # noqa: F811
    plan, store_path = plan_of(tmp_path, host), tmp_path / "runs.sqlite"
    sw.run_sweep(plan, store_path, host)
    store = RunStore(store_path)
    cell = next(c for c in plan.train_cells)
    doc = json.loads(json.dumps(export_cell(store, cell)))  # through JSON, as a worker gets it
    row = store.cell(plan.sweep_id, cell.cell_id)
    other = RunStore(tmp_path / "other.sqlite")
    assert sorted(import_runs(other, doc["runs"])) == sorted([row.train_run_id, row.audit_run_id])
    assert import_runs(other, doc["runs"]) == []  # complete runs are never written twice
    for run_id in (row.train_run_id, row.audit_run_id):
        a, b = store.get_run(run_id), other.get_run(run_id)
        assert (a.status, a.config, a.config_sha256, a.kind, a.adapter) == (
            b.status,
            b.config,
            b.config_sha256,
            b.kind,
            b.adapter,
        )
        assert store.results(run_id) == other.results(run_id)
        assert store.train_steps(run_id) == other.train_steps(run_id)
        for result in store.results(run_id):
            dim = result["dimension"]
            assert store.probe_records(run_id, dim) == other.probe_records(run_id, dim)


def test_executors_are_plugins_and_unknown_or_missing_ones_say_the_fix(monkeypatch, host):  # noqa: F811
    assert {"local", "ray"} <= set(host.executors)
    assert host.executors["local"].source.entry_point == "executor-local"
    with pytest.raises(PluginError, match=r"unknown executor 'rya'.*Did you mean 'ray'"):
        host.executor("rya")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(RhoAuditError, match=r"pip install 'rho-audit\[ray\]'"):
        host.executor("ray")(ExecutorSettings()).check()
    with pytest.raises(RhoAuditError, match="--address is for a distributed executor"):
        host.executor("local")(ExecutorSettings(address="10.0.0.1:6379")).check()


def test_the_command_refuses_ray_without_ray_before_any_work(tmp_path, host, fakes, monkeypatch):  # noqa: F811
    from click.testing import CliRunner

    from rho_audit.cli.sweep import sweep

    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setattr("rho_audit.plugins.load_host", lambda: host)
    path = write(tmp_path, GOOD)
    args = [str(path), "--store", str(tmp_path / "s.sqlite"), "--executor", "ray"]
    result = CliRunner().invoke(sweep, args)
    assert result.exit_code != 0 and "pip install 'rho-audit[ray]'" in str(result.exception)
    assert not (tmp_path / "s.sqlite").exists()


# --------------------------------------------------------------------------------------------
# On a local Ray: the tiny model, a killed worker, a killed driver, Ctrl-C
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray of 2 CPUs on loopback, shared by this module's tests."""
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing beyond loopback
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", _node_ip_address="127.0.0.1")
    yield ray
    ray.shutdown()


def tiny_plan(tmp_path: Path, model: Path, name: str, examples: int = 80):
    from rho_audit.plugins import load_host

    path = write(tmp_path, TINY_SWEEP.format(model=model, examples=examples), f"{name}.yaml")
    plan = sw.plan_sweep(path, load_host(), out=tmp_path / "out")
    return path, plan, plan.train_cells[0]


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def checkpointed_worker(cell) -> int | None:
    """The pid of the worker training ``cell``, once it saved a checkpoint (and has not finished)."""
    adapter = Path(cell.adapter_dir)
    pid_file = remote.scratch_dir(cell) / "worker.pid"
    if (adapter / "latest.json").exists() and pid_file.exists():
        assert not (adapter / "training_complete.json").exists(), "training ended before the kill"
        return int(pid_file.read_text())
    return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def assert_complete_once(store_path: Path, plan, cell, examples: int) -> None:
    """Every cell complete; one training run with every step once; each audit ran to completion once."""
    db = RunStore(store_path)
    rows = {r.cell_id: r for r in db.cells(plan.sweep_id)}
    assert {r.status for r in rows.values()} == {"complete"}, rows
    train_runs = [r for r in db.runs() if r.kind == "train"]
    assert [r.status for r in train_runs] == ["complete"]
    assert train_runs[0].run_id == rows[cell.cell_id].train_run_id
    assert [s.step for s in db.train_steps(train_runs[0].run_id)] == list(range(1, examples + 1))
    audits = [r for r in db.runs() if r.kind == "audit" and r.status == "complete"]
    assert sorted(r.run_id for r in audits) == sorted(r.audit_run_id for r in rows.values())
    db.close()


def test_ray_sweep_retries_a_killed_worker_and_records_it(tmp_path, tiny_model_path, ray_cluster):
    from rho_audit.plugins import load_host

    examples = 80
    _, plan, cell = tiny_plan(tmp_path, tiny_model_path, "killed-worker", examples)
    killed: list[int] = []

    def kill_the_worker() -> None:
        pid = wait_for(lambda: checkpointed_worker(cell), 300, "the first checkpoint")
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    killer = threading.Thread(target=kill_the_worker, daemon=True)
    killer.start()
    plugins = load_host()
    store = tmp_path / "runs.sqlite"
    outcome = sw.run_sweep(plan, store, plugins, plugins.executor("ray")(ExecutorSettings(retries=2)))
    killer.join(timeout=1)
    assert killed and not outcome.failed
    row = RunStore(store).cell(plan.sweep_id, cell.cell_id)
    assert row.result["attempts"] == 2  # the retry is recorded with the cell
    assert RunStore(store).cell(plan.sweep_id, "baseline").result["attempts"] == 1
    assert_complete_once(store, plan, cell, examples)


def sweep_cli(path: Path, tmp_path: Path, address: str) -> subprocess.Popen:
    args = [
        sys.executable,
        "-m",
        "rho_audit.cli",
        "sweep",
        str(path),
        "--store",
        str(tmp_path / "runs.sqlite"),
    ]
    args += ["--out", str(tmp_path / "out"), "--executor", "ray", "--address", address, "--display", "plain"]
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint
    )


def test_a_killed_driver_resumes_like_the_local_executor(tmp_path, tiny_model_path, ray_cluster):
    examples = 80
    path, plan, cell = tiny_plan(tmp_path, tiny_model_path, "killed-driver", examples)
    address = ray_cluster.get_runtime_context().gcs_address
    driver = sweep_cli(path, tmp_path, address)
    worker = wait_for(lambda: checkpointed_worker(cell) or driver.poll() is not None, 300, "a checkpoint")
    assert driver.poll() is None, driver.communicate()
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=30)
    interrupted = checkpoints.latest_checkpoint(Path(cell.adapter_dir))["run_id"]
    wait_for(lambda: not alive(worker), 60, "Ray to stop the dead driver's task")

    again = sweep_cli(path, tmp_path, address)
    _, stderr = again.communicate(timeout=600)
    assert again.returncode == 0, stderr[-3000:]
    assert_complete_once(tmp_path / "runs.sqlite", plan, cell, examples)
    # the training went on from its checkpoint, under its run id (a fresh start takes a new one)
    assert RunStore(tmp_path / "runs.sqlite").cell(plan.sweep_id, cell.cell_id).train_run_id == interrupted


def test_ctrl_c_cancels_the_outstanding_tasks(tmp_path, tiny_model_path, ray_cluster):
    path, plan, cell = tiny_plan(tmp_path, tiny_model_path, "ctrl-c")
    driver = sweep_cli(path, tmp_path, ray_cluster.get_runtime_context().gcs_address)
    worker = wait_for(lambda: checkpointed_worker(cell) or driver.poll() is not None, 300, "a checkpoint")
    assert driver.poll() is None, driver.communicate()
    driver.send_signal(signal.SIGINT)
    _, stderr = driver.communicate(timeout=60)
    assert driver.returncode == 130 and "Run the same command again to resume" in stderr
    wait_for(lambda: not alive(worker), 30, "the cancelled task's worker to stop")
    assert statuses(tmp_path / "runs.sqlite", plan)[cell.cell_id] != "complete"
    shutil.rmtree(remote.scratch_dir(cell))  # kept for a rerun that this test does not make


def test_without_the_local_executor_plugin_the_command_still_runs_cells_here(tmp_path, fakes, monkeypatch):  # noqa: F811
    from click.testing import CliRunner

    from rho_audit.cli.sweep import sweep
    from rho_audit.plugins import load_host
    from tests.test_sweep import FakeTrainers

    disabled = "trainers,six-objectives,example-calibration,personas,personas-leakage,executor-local"
    monkeypatch.setenv("RHO_AUDIT_DISABLE_PLUGINS", disabled)
    plugins = load_host(extra_plugins=[FakeTrainers()])
    assert "local" not in plugins.executors
    monkeypatch.setattr("rho_audit.plugins.load_host", lambda: plugins)
    store = tmp_path / "s.sqlite"
    args = [str(write(tmp_path, GOOD)), "--store", str(store), "--out", str(tmp_path / "out"), "--quiet"]
    result = CliRunner().invoke(sweep, args)
    assert result.exit_code == 0, result.output
    db = RunStore(store)
    assert {r.status for r in db.cells(db.sweep_ids()[0])} == {"complete"}
