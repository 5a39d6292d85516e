"""The run store under stress, through the CLI where a user meets it: processes opening a fresh
store at once, a busy store, a damaged one, one that refuses a result mid-run, read-only stores,
and SIGTERM / Ctrl-C during an audit."""

import json
import multiprocessing
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from rho_audit.cli import cli
from rho_audit.store import SCHEMA_VERSION, RunStore
from rho_audit.store import run_store as store_module
from tests.processes import default_sigint

from .test_plugins import install_fake_dist
from .test_store import make_result, start

# -- helpers ---------------------------------------------------------------------------------


def run_cli(monkeypatch, capsys, *args):
    """``rho-audit ARGS`` in this process, through the real entry point: (exit code, stdout, stderr)."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    monkeypatch.setattr(sys, "argv", ["rho-audit", *args])
    code = 0
    try:
        cli()
    except SystemExit as exit_:
        code = exit_.code
    finally:
        for signum, handler in handlers.items():  # cli() installs its own: give pytest's back
            signal.signal(signum, handler)
    out = capsys.readouterr()
    return code, out.out, out.err


def rho_audit(*args, prefix=(), env_extra=None, **popen):
    env = os.environ | {"COLUMNS": "160"} | (env_extra or {})
    return subprocess.run(
        [*prefix, sys.executable, "-m", "rho_audit.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        **popen,
    )


def assert_one_paragraph_error(code, err, *needles):
    assert code == 2, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err


def audit_args(tiny_model_path, store, *plugins, n="2"):
    return [
        "run",
        "--plugins",
        ",".join(plugins or ("factual",)),
        "--model",
        str(tiny_model_path),
        "-n",
        n,
        "--store",
        str(store),
        "--display",
        "plain",
    ]


def unprivileged():
    """A command prefix under which file permissions apply. Tests run as root, which ignores
    them: drop the capabilities that let root read and write anything (uid stays 0, so the
    interpreter and the checkout stay reachable)."""
    if os.geteuid() != 0:
        return ()
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: a read-only folder cannot be simulated")
    prefix = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner")
    probe = subprocess.run([*prefix, "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"setpriv cannot drop capabilities here: {probe.stderr.decode().strip()}")
    return prefix


# -- concurrent writers ----------------------------------------------------------------------


def _open_and_start(path, barrier, results):
    barrier.wait()  # every process opens the fresh store at the same moment
    try:
        s = RunStore(Path(path))
        start(s, f"run-{os.getpid()}")
        s.close()
        results.put("ok")
    except BaseException as err:  # report, never hang the parent
        results.put(f"{type(err).__name__}: {err}")


def test_processes_opening_a_fresh_store_at_once_all_get_it(tmp_path):
    """Before: `table runs already exists` / `duplicate column name` lost all but one run."""
    ctx = multiprocessing.get_context("spawn")
    for trial in range(3):
        path = tmp_path / f"fresh{trial}" / "runs.sqlite"
        n = 6
        barrier, results = ctx.Barrier(n), ctx.Queue()
        procs = [ctx.Process(target=_open_and_start, args=(str(path), barrier, results)) for _ in range(n)]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert outcomes == ["ok"] * n
        store = RunStore(path)
        assert len(store.runs()) == n
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        store.close()


def test_audits_started_together_on_a_fresh_store_all_complete(tmp_path, tiny_model_path):
    store = tmp_path / "new" / "runs.sqlite"
    env = os.environ | {"COLUMNS": "160"}
    cmd = [sys.executable, "-m", "rho_audit.cli", *audit_args(tiny_model_path, store)]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    procs += [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    runs = RunStore(store).runs()
    assert [r.status for r in runs] == ["complete"] * 3


def test_a_store_locked_too_long_says_it_is_busy(tmp_path, monkeypatch, capsys, tiny_model_path):
    path = tmp_path / "runs.sqlite"
    RunStore(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process mid-write, for longer than the timeout
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.3)
    try:
        code, out, err = run_cli(monkeypatch, capsys, *audit_args(tiny_model_path, path))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert_one_paragraph_error(code, err, "is busy", "another process", "--store")
    assert "not a rho-audit run store" not in err
    assert "model_loading" not in out  # it failed before the model loaded


# -- damaged stores --------------------------------------------------------------------------


def damaged_store(path: Path) -> None:
    """A store whose dimension_results index has a garbage page (found only by a write before)."""
    s = RunStore(path)
    for i in range(20):
        start(s, f"r{i}")
        s.add_result(f"r{i}", make_result())
    page = s.db.execute(
        "SELECT rootpage FROM sqlite_master WHERE name = 'sqlite_autoindex_dimension_results_1'"
    ).fetchone()[0]
    size = s.db.execute("PRAGMA page_size").fetchone()[0]
    s.close()  # checkpoints the WAL into the file
    data = bytearray(path.read_bytes())
    data[(page - 1) * size : (page - 1) * size + 16] = b"\x0d\xff\xff\xff\xff\xff\xff\xff" * 2
    path.write_bytes(bytes(data))


def test_a_damaged_store_fails_before_any_work(tmp_path, monkeypatch, capsys, tiny_model_path):
    path = tmp_path / "runs.sqlite"
    damaged_store(path)
    code, out, err = run_cli(monkeypatch, capsys, *audit_args(tiny_model_path, path))
    assert_one_paragraph_error(code, err, "is damaged", "quick_check", ".recover", "--store")
    assert "model_loading" not in out
    assert len(err.strip().splitlines()) == 1


def test_a_result_the_store_refuses_is_saved_as_json_next_to_it(
    tmp_path, monkeypatch, capsys, tiny_model_path
):
    """The store turns unwritable after the run started (a damaged page, a full disk, a remount):
    the scored result is kept in a JSON file, the error says where, the exit code is non-zero."""
    original = RunStore.start_run

    def start_then_refuse_writes(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.db.execute("PRAGMA query_only = 1")  # every later write fails inside SQLite

    monkeypatch.setattr(RunStore, "start_run", start_then_refuse_writes)
    path = tmp_path / "runs.sqlite"
    code, _, err = run_cli(monkeypatch, capsys, *audit_args(tiny_model_path, path, n="3"))
    assert_one_paragraph_error(code, err, "could not be stored", "saved in")
    [saved] = tmp_path.glob("runs.sqlite.*.unsaved.json")
    assert str(saved) in " ".join(err.split())
    doc = json.loads(saved.read_text())
    [result] = doc["results"]
    assert result["dimension"] == "factual" and len(result["evaluation"]["records"]) == 3
    assert doc["run_id"] in saved.name and doc["store"] == str(path)
    monkeypatch.setattr(RunStore, "start_run", original)
    [run] = RunStore(path).runs()
    assert run.run_id == doc["run_id"]


# -- read-only stores ------------------------------------------------------------------------


@pytest.fixture
def read_only_dir(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    yield folder
    folder.chmod(0o755)


def test_run_into_a_read_only_folder_names_the_permission_problem(read_only_dir, tiny_model_path):
    prefix = unprivileged()
    read_only_dir.chmod(0o555)
    proc = rho_audit(*audit_args(tiny_model_path, read_only_dir / "runs.sqlite"), prefix=prefix)
    assert_one_paragraph_error(proc.returncode, proc.stderr, "not writable", "permission denied")
    assert "not a rho-audit run store" not in proc.stderr
    # A folder that does not exist and cannot be created there: no traceback either.
    proc = rho_audit(*audit_args(tiny_model_path, read_only_dir / "sub" / "runs.sqlite"), prefix=prefix)
    assert_one_paragraph_error(proc.returncode, proc.stderr, "cannot create the run store's folder")
    # A store file that is read-only in a writable folder.
    read_only_dir.chmod(0o755)
    path = read_only_dir / "runs.sqlite"
    RunStore(path).close()
    path.chmod(0o444)
    proc = rho_audit(*audit_args(tiny_model_path, path), prefix=prefix)
    assert_one_paragraph_error(proc.returncode, proc.stderr, "the file is not writable")


def test_report_agree_and_monitor_read_a_store_they_cannot_write(read_only_dir, tmp_path, tiny_model_path):
    prefix = unprivileged()
    path = read_only_dir / "runs.sqlite"
    made = rho_audit(*audit_args(tiny_model_path, path, "overrefusal", n="3"))
    assert made.returncode in (0, 1), made.stderr  # 1: a dimension in ERROR; the run is stored
    made_store = RunStore(path)
    [run] = made_store.runs()
    made_store.close()
    assert not Path(f"{path}-wal").exists()  # closed cleanly: SQLite must create -shm to read it
    read_only_dir.chmod(0o555)

    card = tmp_path / "card.html"
    proc = rho_audit("report", run.run_id, "--store", str(path), "--out", str(card), prefix=prefix)
    assert proc.returncode == 0, proc.stderr
    assert run.run_id in card.read_text()

    args = ["judges", "agree", "--judges", "keyword-refusal,local", "--run", run.run_id]
    args += ["--judge-option", f"local.model={tiny_model_path}", "--store", str(path)]
    proc = rho_audit(*args, prefix=prefix)
    assert proc.returncode == 0, proc.stderr
    assert "Cohen's kappa" in proc.stdout
    assert "cannot write" in proc.stderr and "not cached" in proc.stderr

    # The monitor needs a terminal; its store reader is what opens the store.
    code = (
        "from rho_audit.display.tui import StoreReader; import sys; "
        "print(StoreReader(sys.argv[1]).read().problem)"
    )
    proc = subprocess.run(
        [*prefix, sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "waiting for a sweep in runs.sqlite" in proc.stdout, proc.stdout
    assert sorted(p.name for p in read_only_dir.iterdir()) == ["runs.sqlite"]  # nothing was written


# -- signals ---------------------------------------------------------------------------------

SLEEPER = """
import time

from rho_audit.api import PairDimension, hookimpl

class Sleeper(PairDimension):
    name = "sleeper"
    probe_set = "factual"
    def evaluate(self, probes, ctx):
        time.sleep(300)
        raise AssertionError("the signal should have stopped this dimension")

@hookimpl
def register_dimensions(register):
    register(Sleeper)
"""


def _stored_dimensions(path: Path) -> list[str]:
    if not path.exists():
        return []
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return [r[0] for r in db.execute("SELECT dimension FROM dimension_results")]
        finally:
            db.close()
    except sqlite3.Error:
        return []


def audit_then_signal(tmp_path, tiny_model_path, signum):
    """Start factual then a dimension that sleeps; signal once factual is stored."""
    site = tmp_path / "site"
    install_fake_dist(site, "sleeper-plugin", {"sleeper_mod": SLEEPER}, {"sleeper": "sleeper_mod"})
    path = tmp_path / "runs.sqlite"
    env = os.environ | {"PYTHONPATH": str(site), "COLUMNS": "160"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rho_audit.cli", *audit_args(tiny_model_path, path, "factual", "sleeper")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    deadline = time.monotonic() + 300
    while _stored_dimensions(path) != ["factual"]:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "factual was never stored"
        time.sleep(0.2)
    time.sleep(0.5)  # into the sleeper
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err, path


def test_sigterm_marks_the_run_interrupted_and_keeps_finished_dimensions(tmp_path, tiny_model_path):
    code, _, err, path = audit_then_signal(tmp_path, tiny_model_path, signal.SIGTERM)
    assert code == 143, err
    assert "Traceback" not in err
    assert "interrupted (terminated by SIGTERM); finished dimensions are saved" in err
    store = RunStore(path)
    [run] = store.runs()
    assert run.status == "interrupted" and run.error == "terminated by SIGTERM"
    assert run.finished_at is not None
    assert [r["dimension"] for r in store.results(run.run_id)] == ["factual"]


def test_ctrl_c_ends_with_the_tools_message(tmp_path, tiny_model_path):
    code, _, err, path = audit_then_signal(tmp_path, tiny_model_path, signal.SIGINT)
    assert code == 130, err
    assert "Aborted" not in err and "aborted" not in err and "Traceback" not in err
    assert "interrupted (Ctrl-C); finished dimensions are saved" in err
    [run] = RunStore(path).runs()
    assert run.status == "interrupted" and run.error == "interrupted by the user (Ctrl-C)"


def test_sigterm_during_training_marks_the_training_run_interrupted(tmp_path, tiny_model_path):
    """The CLI's SIGTERM handling covers every command: here `train`, which keeps its steps."""
    corpus = tmp_path / "sft.jsonl"
    rows = [{"instruction": f"Count to {i}.", "output": f"The number is {i}."} for i in range(16)]
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = tmp_path / "runs.sqlite"
    args = ["train", "--model", str(tiny_model_path), "--corpus", str(corpus), "--trap-texts", "0"]
    args += ["--dimensions", "factual", "--epochs", "200", "--grad-accumulation", "1", "--no-audit"]
    args += ["--out", str(tmp_path / "adapter"), "--store", str(path), "--display", "none"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "rho_audit.cli", *args],
        env=os.environ | {"COLUMNS": "160"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def steps() -> int:
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                return db.execute("SELECT count(*) FROM train_steps").fetchone()[0]
            finally:
                db.close()
        except sqlite3.Error:
            return 0

    deadline = time.monotonic() + 300
    while steps() < 3:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "training never stored a step"
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "terminated by SIGTERM" in err
    store = RunStore(path)
    [run] = store.runs()
    assert run.kind == "train" and run.status == "interrupted"
    assert len(store.train_steps(run.run_id)) >= 3


def test_sigterm_during_a_sweep_exits_143_after_the_sweeps_own_message(tmp_path, monkeypatch, capsys):
    """`sweep` reports an interrupt itself and exits 130; a SIGTERM still exits 128 + 15."""
    import rho_audit.train.sweep as sweep_module

    def run_until_terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(60)
        raise AssertionError("SIGTERM did not stop the sweep")

    monkeypatch.setattr(sweep_module, "plan_sweep", lambda *a, **k: SimpleNamespace(sweep_id="grid"))
    monkeypatch.setattr(sweep_module, "run_sweep", run_until_terminated)
    args = ["sweep", str(tmp_path / "grid.yaml"), "--quiet", "--store", str(tmp_path / "runs.sqlite")]
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 143, err
    assert "interrupted" in err and "saved" in err and "Traceback" not in err
