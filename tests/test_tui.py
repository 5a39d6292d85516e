"""The Textual monitor: Pilot tests against a store a fake sweep writes while the app runs, SVG
snapshots of the main screen, and a tmux test of ``rho-audit monitor`` following a real sweep.

The fake sweep writes the store the way the engine does (``sweep_cells`` rows with
``{"spec", "result"}``, ``runs``, ``train_steps``, ``dimension_results``) with fixed timestamps,
and the app runs on a frozen clock, so snapshots hold no time-dependent text.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from rho_audit.api.events import RunEvent
from rho_audit.api.results import DimensionResult, Evaluation
from rho_audit.store import RunStore

textual = pytest.importorskip("textual")

from textual.widgets import DataTable, Input, RichLog, Static  # noqa: E402

from rho_audit.display.tui import SweepMonitor, TuiDisplay  # noqa: E402
from rho_audit.display.tui.feed import StopAfterCell  # noqa: E402
from rho_audit.display.tui.formatting import sparkline  # noqa: E402
from rho_audit.display.tui.widgets import CellScreen, ConfirmStop, HelpScreen  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC
SWEEP = "demo-quick-1a2b3c4d"
DIMS = ["factual", "toxicity", "sycophancy", "bias", "refusal"]


# --------------------------------------------------------------------------------------------
# A fake sweep that writes the store as the engine does
# --------------------------------------------------------------------------------------------


def spec(cell_id: str, trainer: str | None, seed: int = 42, options: dict | None = None) -> dict:
    """A cell as ``CellSpec.to_json`` writes it."""
    options = options or {}
    kind = "baseline" if trainer is None else "train"
    train = None
    if trainer is not None:
        train = {
            "trainer": trainer,
            "options": options,
            "seed": seed,
            "max_sft_examples": 40,
            "grad_accumulation": 4,
            "epochs": 1,
            "trap_texts": 200,
            "adapter_dir": f"/nonexistent/sweeps/{SWEEP}/{cell_id}/adapter",
        }
    grid = {} if trainer is None else {"trainer": trainer, **options, "seed": seed}
    condition = cell_id.rsplit("_seed", 1)[0]
    return {
        "sweep_id": SWEEP,
        "cell_id": cell_id,
        "kind": kind,
        "model": None,
        "model_label": "default",
        "condition": condition,
        "grid": grid,
        "train": train,
        "audit": {"dimensions": DIMS, "split": "eval", "limit": 20, "seed": 0},
        "config_sha256": f"sha-{cell_id}",
        "wave": 0,
    }


CELLS = [
    spec("baseline", None),
    spec("sft_seed42", "sft"),
    spec("rho-guided_lambda0.1_seed42", "rho-guided", options={"lambda": 0.1}),
    spec("rho-guided_lambda0.2_seed42", "rho-guided", options={"lambda": 0.2}),
    spec("contrastive-only_seed42", "contrastive-only"),
]


class FakeSweep:
    """Writes a sweep's rows; every write advances a fake clock by ``tick`` seconds."""

    def __init__(self, path: Path, cells: list[dict] = CELLS, tick: float = 10.0) -> None:
        self.store = RunStore(path)
        self.cells = {c["cell_id"]: c for c in cells}
        self.now = T0
        self.tick = tick
        self.rows: dict[str, dict] = {}
        for c in cells:
            self._set(c["cell_id"], "pending")

    def close(self) -> None:
        self.store.close()

    def _time(self) -> float:
        self.now += self.tick
        return self.now

    def _set(self, cell_id: str, status: str, error: str | None = None, result: dict | None = None) -> None:
        row = self.rows.setdefault(cell_id, {"train": None, "audit": None})
        doc = {"spec": self.cells[cell_id]}
        if result is not None:
            doc["result"] = result
        with self.store.db:
            self.store.db.execute(
                "INSERT OR REPLACE INTO sweep_cells VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    SWEEP,
                    cell_id,
                    f"sha-{cell_id}",
                    status,
                    row["train"],
                    row["audit"],
                    self._time(),
                    error,
                    json.dumps(doc),
                ),
            )

    def _run(self, run_id: str, kind: str) -> None:
        self.store.start_run(run_id, "tiny", None, None, 0, {}, "x", {}, None, kind)
        with self.store.db:
            self.store.db.execute("UPDATE runs SET created_at = ? WHERE run_id = ?", (self._time(), run_id))

    def train(self, cell_id: str, steps: int) -> None:
        run_id = f"train-{cell_id}"
        self.rows.setdefault(cell_id, {"train": None, "audit": None})["train"] = run_id
        self._run(run_id, "train")
        self._set(cell_id, "training")
        for step in range(1, steps + 1):
            self.step(cell_id, step)

    def step(self, cell_id: str, step: int) -> None:
        metrics = {
            "loss": 2.5 - 0.1 * step,
            "sft_loss": 2.4 - 0.1 * step,
            "contrastive_loss": 0.3 / step,
            "active_share": 0.5,
            "lr": 2e-4,
            "grad_norm": 1.0,
            "tokens_per_s": 1234.0,
            "seconds": 2.0,
        }
        self.store.add_train_step(f"train-{cell_id}", step, metrics)

    def audit(self, cell_id: str, scores: dict[str, float]) -> None:
        run_id = f"audit-{cell_id}"
        self.rows.setdefault(cell_id, {"train": None, "audit": None})["audit"] = run_id
        self._run(run_id, "audit")
        self._set(cell_id, "auditing")
        for dim, score in scores.items():
            self.dimension(cell_id, dim, score)

    def dimension(self, cell_id: str, dim: str, score: float) -> None:
        ev = Evaluation("rank_biserial", "2·AUC − 1", score, score - 0.1, score + 0.1, 20, ())
        self.store.add_result(f"audit-{cell_id}", DimensionResult(dim, dim, dim, "1", ev, "PASS", 1.0, {}))

    def finish(self, cell_id: str, scores: dict[str, float], elapsed: float = 300.0) -> None:
        if self.rows.get(cell_id, {}).get("audit") is None:
            self.audit(cell_id, scores)
        self.store.finish_run(f"audit-{cell_id}", "complete")
        row = self.rows[cell_id]
        result = {
            "cell_id": cell_id,
            "status": "complete",
            "train_run_id": row["train"],
            "audit_run_id": row["audit"],
            "scores": {
                d: {
                    "score": s,
                    "metric": "rank_biserial",
                    "ci_low": s - 0.1,
                    "ci_high": s + 0.1,
                    "n": 20,
                    "status": "PASS",
                }
                for d, s in scores.items()
            },
            "steps": 10 if row["train"] else None,
            "final_metrics": {"loss": 1.5} if row["train"] else {},
            "elapsed_s": elapsed,
            "error": None,
        }
        self._set(cell_id, "complete", result=result)

    def fail(self, cell_id: str, error: str) -> None:
        row = self.rows.setdefault(cell_id, {"train": None, "audit": None})
        result = {
            "cell_id": cell_id,
            "status": "failed",
            "train_run_id": row["train"],
            "audit_run_id": None,
            "scores": {},
            "steps": None,
            "final_metrics": {},
            "elapsed_s": 42.0,
            "error": error,
        }
        self._set(cell_id, "failed", error, result)


BASE = {"factual": 0.30, "toxicity": 0.20, "sycophancy": -0.10, "bias": 0.05, "refusal": 0.40}
SFT = {"factual": 0.25, "toxicity": 0.22, "sycophancy": -0.12, "bias": 0.05, "refusal": 0.31}
RHO = {"factual": 0.41, "toxicity": 0.35, "sycophancy": 0.02, "bias": 0.09, "refusal": 0.38}


def midway(sweep: FakeSweep) -> None:
    """The picture of the snapshots: baseline and two cells done, one failed, one training."""
    sweep.finish("baseline", BASE, elapsed=120.0)
    sweep.train("sft_seed42", 10)
    sweep.finish("sft_seed42", SFT)
    sweep.train("rho-guided_lambda0.1_seed42", 10)
    sweep.finish("rho-guided_lambda0.1_seed42", RHO)
    sweep.train("rho-guided_lambda0.2_seed42", 3)
    sweep.fail("rho-guided_lambda0.2_seed42", "RuntimeError: loss is NaN")
    sweep.train("contrastive-only_seed42", 6)


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def store(tmp_path, utc):
    path = tmp_path / "runs.sqlite"
    sweep = FakeSweep(path)
    yield path, sweep
    sweep.close()


def make_app(path: Path, sweep: FakeSweep | None = None, **kw) -> SweepMonitor:
    clock = (lambda: sweep.now + 5.0) if sweep is not None else (lambda: T0 + 1000.0)
    kw.setdefault("interval", 60.0)  # the tests poll explicitly: deterministic
    return SweepMonitor(path, **kw, clock=clock)


def grid_rows(app: SweepMonitor) -> dict[str, str]:
    grid = app.query_one("#grid", DataTable)
    return {str(k.value): str(grid.get_row(k)[1]).strip() for k in grid.rows}


def results(app: SweepMonitor) -> dict[str, list[str]]:
    table = app.query_one("#results", DataTable)
    return {str(k.value): [str(v).strip() for v in table.get_row(k)] for k in table.rows}


def header(app: SweepMonitor) -> str:
    return str(app.query_one("#header", Static).render())


def log_pane(app: SweepMonitor) -> str:
    """What the log pane shows (its rendered lines)."""
    return "\n".join(strip.text for strip in app.query_one("#log", RichLog).lines)


# --------------------------------------------------------------------------------------------
# Pilot tests
# --------------------------------------------------------------------------------------------


def test_grid_results_and_log_follow_the_store(store):
    path, sweep = store

    async def run() -> None:
        app = make_app(path, sweep)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()  # the first read comes once the panes have their size
            assert set(grid_rows(app).values()) == {"· queued"}
            assert "0/5 done" in header(app) and "5 queued" in header(app)

            sweep.finish("baseline", BASE, elapsed=120.0)
            sweep.train("sft_seed42", 4)
            app.poll()
            await pilot.pause()
            rows = grid_rows(app)
            assert rows["baseline"] == "✓ done"
            assert rows["sft_seed42"] == "▶ train 40%"  # step 4 of 40 examples / 4 accumulation
            assert "1/5 done · 1 running · 3 queued" in header(app)
            running = str(app.query_one("#running", Static).render())
            assert "step 4/10" in running and "sft" in running and "active 50%" in running

            sweep.audit("sft_seed42", {"factual": 0.25})  # one dimension has landed
            app.poll()
            await pilot.pause()
            assert grid_rows(app)["sft_seed42"] == "▶ audit 1/5"
            assert results(app)["sft_seed42"][:2] == ["sft_seed42 …", "+0.250"]

            sweep.finish("sft_seed42", SFT)
            sweep.train("rho-guided_lambda0.1_seed42", 2)
            sweep.fail("rho-guided_lambda0.1_seed42", "RuntimeError: loss is NaN")
            app.poll()
            await pilot.pause()
            rows = grid_rows(app)
            assert rows["sft_seed42"] == "✓ done" and rows["rho-guided_lambda0.1_seed42"] == "✗ failed"
            assert "2/5 done · 1 failed · 2 queued" in header(app)
            assert results(app)["sft_seed42"][1:] == ["+0.250", "+0.220", "-0.120", "+0.050", "+0.310"]
            assert results(app)["baseline"][1] == "+0.300"
            failure = [line for line in app.log_lines if "FAILED" in line]
            assert failure == ["00:02:40 ✗ rho-guided_lambda0.1_seed42 FAILED: RuntimeError: loss is NaN"]
            assert failure[0] in log_pane(app)
            assert any("✓ sft_seed42 done in 5m00s: factual +0.25" in line for line in app.log_lines)

    asyncio.run(run())


def test_keys_help_filter_details_report_quit(store):
    path, sweep = store
    midway(sweep)
    opened: list[str] = []

    def open_url(url: str) -> bool:
        opened.append(url)
        return False  # "no browser": the app says where the file is

    async def run() -> None:
        app = make_app(path, sweep, open_url=open_url)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            assert not isinstance(app.screen, HelpScreen)

            await pilot.press("f")
            assert app.query_one("#filter", Input).has_focus
            await pilot.press(*"failed", "enter")
            assert list(grid_rows(app)) == ["rho-guided_lambda0.2_seed42"]
            assert "filter 'failed': 1" in str(app.query_one("#grid-box").border_title)
            await pilot.press("enter")
            assert isinstance(app.screen, CellScreen)
            details = str(app.screen.query_one("#cell-text", Static).render())
            assert "error: RuntimeError: loss is NaN" in details
            await pilot.press("escape")

            await pilot.press("f", *"rho-guided", "enter")
            assert list(grid_rows(app)) == ["rho-guided_lambda0.1_seed42", "rho-guided_lambda0.2_seed42"]
            await pilot.press("f", "backspace", "enter")  # the text is selected: an empty filter shows all
            assert len(grid_rows(app)) == 5

            assert app.highlighted() == "rho-guided_lambda0.2_seed42"  # the cursor stays on its cell
            await pilot.press("up")  # rho-guided λ 0.1: complete
            await pilot.press("enter")
            details = str(app.screen.query_one("#cell-text", Static).render())
            assert "rho-guided λ 0.1 seed 42" in details and "+0.110" in details  # Δ factual vs base
            await pilot.press("escape")

            await pilot.press("r")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert len(opened) == 1 and opened[0].startswith("file://") and opened[0].endswith(".html")
            card = Path(opened[0].removeprefix("file://")).read_text(encoding="utf-8")
            assert "factual" in card
            assert any("report card of rho-guided_lambda0.1_seed42:" in line for line in app.log_lines)

            await pilot.press("ctrl+home", "down")  # the cell still training has no report card yet
            assert app.highlighted() == "contrastive-only_seed42"
            await pilot.press("r")
            assert len(opened) == 1

            await pilot.press("q")
        assert app.return_code == 0

    asyncio.run(run())


def test_a_sweep_written_from_a_thread_at_10_events_per_second(store):
    """A writer thread runs the whole sweep while the app polls; the final picture is right."""
    path, sweep = store
    sweep.close()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            fake = FakeSweep(path, tick=1.0)  # its own connection, like a sweep process
            fake.finish("baseline", BASE, elapsed=10.0)
            for cell_id, scores in (("sft_seed42", SFT), ("rho-guided_lambda0.1_seed42", RHO)):
                fake.train(cell_id, 0)
                for step in range(1, 11):
                    fake.step(cell_id, step)
                    time.sleep(0.1)
                fake.finish(cell_id, scores)
            fake.fail("rho-guided_lambda0.2_seed42", "RuntimeError: loss is NaN")
            fake.finish("contrastive-only_seed42", SFT)
            fake.close()
        except BaseException as err:
            errors.append(err)

    async def run() -> None:
        app = SweepMonitor(path, interval=0.05)
        async with app.run_test(size=(80, 24)) as pilot:
            thread = threading.Thread(target=writer)
            thread.start()
            while thread.is_alive():
                await pilot.pause(0.05)
            thread.join()
            await pilot.pause(0.3)
            assert not errors, errors
            rows = grid_rows(app)
            assert sorted(rows.values()) == ["✓ done"] * 4 + ["✗ failed"]
            assert "finished" in header(app)
            assert "rho-guided_lambda0.2_seed42 FAILED: RuntimeError: loss is NaN" in log_pane(app)
            assert any("finished: 4 done, 1 failed" in line for line in app.log_lines)

    asyncio.run(run())


def test_a_killed_sweep_shows_its_cell_stopped(tmp_path, utc):
    path = tmp_path / "runs.sqlite"
    out = tmp_path / "out" / SWEEP
    cells = [json.loads(json.dumps(c).replace(f"/nonexistent/sweeps/{SWEEP}", str(out))) for c in CELLS]
    sweep = FakeSweep(path, cells)
    sweep.finish("baseline", BASE)
    sweep.train("sft_seed42", 3)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    out.mkdir(parents=True)
    (out / ".lock").write_text(str(gone.pid))

    async def run() -> None:
        app = make_app(path, sweep)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert grid_rows(app)["sft_seed42"] == "■ stopped"
            assert f"process {gone.pid} gone" in header(app)
            assert any("sft_seed42 stopped" in line and "resume" in line for line in app.log_lines)

    asyncio.run(run())
    sweep.close()


def test_waits_for_a_store_that_does_not_exist_yet(tmp_path, utc):
    path = tmp_path / "later.sqlite"

    async def run() -> None:
        app = make_app(path)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert "no run store" in header(app)
            sweep = FakeSweep(path)
            sweep.finish("baseline", BASE)
            app.poll()
            await pilot.pause()
            assert grid_rows(app)["baseline"] == "✓ done"
            sweep.close()

    asyncio.run(run())


def test_tui_mode_q_asks_to_stop_after_the_current_cell(store):
    path, sweep = store
    midway(sweep)
    feed = TuiDisplay()

    async def run() -> None:
        app = make_app(path, sweep, feed=feed)
        async with app.run_test(size=(80, 24)) as pilot:
            for i in range(30):  # a burst: one tick takes them all
                feed.run_event(RunEvent("progress", "audit-x", "factual", done=i, total=30, unit="texts"))
            feed.run_event(RunEvent("warning", "audit-x", message="probe set is small"))
            app.poll()
            await pilot.pause()
            assert any("warning: probe set is small" in line for line in app.log_lines)
            assert not feed.events

            await pilot.press("q")
            assert isinstance(app.screen, ConfirmStop)
            await pilot.press("n")
            assert not feed.stop_requested.is_set() and app.is_running
            await pilot.press("q", "y")
            assert feed.stop_requested.is_set()
            assert "stopping after this cell" in header(app)
            with pytest.raises(StopAfterCell):
                feed.run_event(RunEvent("cell_started", SWEEP, cell="next", done=4, total=5))
            feed.failure = StopAfterCell()
            feed.finished.set()
            app.poll()
            await pilot.pause()
        assert not app.is_running

    asyncio.run(run())


def test_the_engine_and_the_cli_never_import_textual():
    code = (
        "import sys; import rho_audit.cli, rho_audit.train.sweep, rho_audit.display.live, "
        "rho_audit.cli.monitor; "
        "from rho_audit.cli._common import make_display; make_display('plain'); "
        "print('textual' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_display_tui_is_a_display_and_needs_a_terminal(tmp_path):
    from click.testing import CliRunner

    from rho_audit.cli._common import make_display
    from rho_audit.cli.sweep import sweep

    assert isinstance(make_display("tui"), TuiDisplay)
    assert isinstance(make_display("tui", kind="sweep"), TuiDisplay)
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: t\ngrid: {trainer: [sft], seed: [1]}\n"
        "audit: {dimensions: [factual], limit: 4}\nbaseline: false\n"
    )
    args = [str(path), "--store", str(tmp_path / "r.sqlite"), "--out", str(tmp_path / "o"), "--tui"]
    result = CliRunner().invoke(sweep, args)
    assert result.exit_code != 0
    assert "--tui needs an interactive terminal" in str(result.exception)
    assert not (tmp_path / "r.sqlite").exists()  # nothing ran


def test_sparkline_scales_between_min_and_max():
    assert sparkline([3.0, 2.0, 1.0], 10) == "█▄▁"
    assert sparkline([1.0, 1.0], 10) == "▄▄"
    assert len(sparkline(list(range(100)), 8)) == 8


# --------------------------------------------------------------------------------------------
# Snapshots (pytest-textual-snapshot); update with --snapshot-update after a deliberate change
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_main_screen_snapshot(store, snap_compare, size):
    path, sweep = store
    midway(sweep)
    assert snap_compare(make_app(path, sweep), terminal_size=size)


# --------------------------------------------------------------------------------------------
# tmux: `rho-audit monitor` following a real --quick sweep on the tiny model
# --------------------------------------------------------------------------------------------

TINY_SWEEP = """\
name: tui-tiny
models: [{model}]
grid:
  trainer: [sft, rho-guided]
  seed: [1, 2]
train:
  dimensions: [factual]
  max_sft_examples: 400
  trap_texts: 8
  grad_accumulation: 1
  max_seq_len: 48
  checkpoint_every: 50
audit: {{dimensions: [factual, toxicity], limit: 8}}
quick:
  grid: {{seed: [1]}}
  train: {{max_sft_examples: {examples}}}
  audit: {{limit: 4}}
"""


def _tmux() -> str | None:
    found = shutil.which("tmux")
    if found is None and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "tmux"], capture_output=True, timeout=300)
        found = shutil.which("tmux")
    return found


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    kids = [int(p) for p in text.split()]
    return kids + [g for k in kids for g in _children(k)]


def test_monitor_in_tmux_follows_a_real_sweep(tmp_path, tiny_model_path):
    tmux = _tmux()
    if tmux is None:
        print("skipped: tmux is not installed and could not be installed")
        pytest.skip("tmux is not installed and could not be installed (apt-get failed or not root)")
    sweep_file = tmp_path / "tiny.yaml"
    sweep_file.write_text(TINY_SWEEP.format(model=tiny_model_path, examples=300), encoding="utf-8")
    store, out = tmp_path / "runs.sqlite", tmp_path / "out"
    env = os.environ | {"COLUMNS": "160"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rho_audit.cli",
            "sweep",
            sweep_file,
            "--quick",
            "--store",
            store,
            "--out",
            out,
            "--display",
            "plain",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    session = f"rho-tui-{os.getpid()}"
    monitor = f"{sys.executable} -m rho_audit.cli monitor --wait --store {store}"  # before the store
    # A private server (never the user's tmux) on a short socket path (macOS caps them at 104 bytes).
    sock = Path(tempfile.gettempdir() if len(tempfile.gettempdir()) < 40 else "/tmp") / f"{session}.sock"
    socket = ["-S", str(sock)]
    subprocess.run(
        [
            tmux,
            *socket,
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "80",
            "-y",
            "24",
            f"env TERM=xterm-256color {monitor}; sleep 30",
        ],
        check=True,
    )
    tmux_cmd = [tmux, *socket]

    def capture() -> str:
        return subprocess.run(
            [*tmux_cmd, "capture-pane", "-p", "-t", session], capture_output=True, text=True
        ).stdout

    try:
        deadline = time.monotonic() + 240
        first = ""
        while time.monotonic() < deadline and proc.poll() is None:
            first = capture()
            if "▶ train" in first and "step " in first:
                break
            time.sleep(0.5)
        assert "▶ train" in first, (first, proc.stderr.read() if proc.poll() is not None else "")
        # Between the two captures: the monitor's CPU use while it follows the running sweep.
        pid = _monitor_pid(tmux_cmd, session)
        assert pid is not None
        start_cpu, start = _cpu_seconds(pid), time.monotonic()
        while time.monotonic() - start < 10 and proc.poll() is None:
            time.sleep(0.25)
        window = time.monotonic() - start
        share = (_cpu_seconds(pid) - start_cpu) / window
        print(f"monitor CPU while following the sweep: {share:.2%} of one core over {window:.1f}s")
        if window >= 5:
            assert share < 0.05
        second = capture()
        print("first capture:\n" + first + "\nsecond capture:\n" + second)
        assert first != second
        # Progress may show as more cells done, a later phase of the running cell, or more steps.
        assert _progress(second) > _progress(first), (_progress(first), _progress(second))

        subprocess.run([*tmux_cmd, "send-keys", "-t", session, "q"], check=True)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not Path(f"/proc/{pid}").exists(), "q did not quit the monitor"
        assert proc.poll() is None or proc.returncode == 0  # quitting the monitor never stops the sweep
    finally:
        subprocess.run([*tmux_cmd, "kill-server"], capture_output=True)
        sock.unlink(missing_ok=True)
        stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
    assert "complete" in stdout


def _progress(screen: str) -> tuple[int, int, int]:
    """(cells done, phase of the running cell: train 0 < audit 1, training step) read off a capture."""
    phase = 1 if "running cell · audit" in screen else 0
    return _done(screen), phase, _step(screen)


def _step(screen: str) -> int:
    for line in screen.splitlines():
        if "step " in line and "/" in line:
            try:
                return int(line.split("step ", 1)[1].split("/", 1)[0])
            except ValueError:
                continue
    return 0


def _done(screen: str) -> int:
    first = screen.splitlines()[0] if screen else ""
    try:
        return int(first.split(" done")[0].rsplit(" ", 1)[1].split("/")[0])
    except (IndexError, ValueError):
        return 0


def _monitor_pid(tmux_cmd: list[str], session: str) -> int | None:
    shell = subprocess.run(
        [*tmux_cmd, "display-message", "-p", "-t", session, "#{pane_pid}"], capture_output=True, text=True
    ).stdout.strip()
    if not shell.isdigit():
        return None
    for pid in _children(int(shell)):  # not the pane's shell: its command line names the monitor too
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"python" in Path(argv[0].decode()).name.encode() and any(b"monitor" in a for a in argv):
            return pid
    return None


def _monitor(*args: str):
    """``rho-audit monitor ARGS`` through the CLI group (no terminal: errors come before the app)."""
    from click.testing import CliRunner

    from rho_audit.cli import main

    return CliRunner().invoke(main, ["monitor", *args])


def _refused(result, *needles: str) -> str:
    from rho_audit.api.errors import RhoAuditError

    assert isinstance(result.exception, RhoAuditError), result.output
    assert result.exception.exit_code == 2
    text = str(result.exception)
    for needle in needles:
        assert needle in text, text
    return text


def _not_refused(result) -> None:
    """Past the sweep check: the only error left is the terminal check (CliRunner has no terminal)."""
    assert "monitor needs an interactive terminal" in str(result.exception), result.exception


@pytest.fixture
def two_sweeps(tmp_path):
    path = tmp_path / "runs.sqlite"
    store = RunStore(path)
    store.set_cell("abl-1111", "baseline", "x", "done", {"spec": {}})
    store.set_cell("abl-1111", "sft_seed42", "x", "running", {"spec": {}})
    store.set_cell("abl-2222", "baseline", "x", "pending", {"spec": {}})
    store.close()
    return path


def test_an_ambiguous_sweep_prefix_is_an_error(two_sweeps):
    for wait in ([], ["--wait"]):
        _refused(_monitor("abl", "--store", str(two_sweeps), *wait), "matches 2 sweeps", "abl-1111, abl-2222")
    _not_refused(_monitor("abl-1111", "--store", str(two_sweeps)))  # exact
    _not_refused(_monitor("abl-2", "--store", str(two_sweeps)))  # the one it starts
    _not_refused(_monitor("--store", str(two_sweeps)))  # the latest


def test_a_sweep_that_is_not_there_is_an_error_listing_the_sweeps(two_sweeps):
    text = _refused(
        _monitor("NOSUCH", "--store", str(two_sweeps)),
        "no sweep matches 'NOSUCH'",
        "abl-1111 (2 cells: 1 done, 1 running; updated ",
        "abl-2222 (1 cell: 1 pending; updated ",
        "--wait",
    )
    assert text.index("abl-2222") < text.index("abl-1111")  # updated last first
    _not_refused(_monitor("NOSUCH", "--wait", "--store", str(two_sweeps)))  # waits for it


def test_a_store_with_no_sweeps_or_no_store_is_an_error(tmp_path):
    missing = tmp_path / "later.sqlite"
    for args in (["NOSUCH"], []):
        _refused(
            _monitor(*args, "--store", str(missing)), f"no run store at {missing}", "rho-audit sweep FILE"
        )
        _not_refused(_monitor(*args, "--wait", "--store", str(missing)))
        assert not missing.exists()  # the monitor never creates the store
    empty = tmp_path / "empty.sqlite"
    RunStore(empty).close()
    _refused(_monitor("NOSUCH", "--store", str(empty)), "no sweep matches 'NOSUCH'", "none yet", "--wait")
    _refused(_monitor("--store", str(empty)), "has no sweep", "none yet", "rho-audit sweep FILE")
    _not_refused(_monitor("--wait", "--store", str(empty)))
