"""The monitor following a sweep over time: the ETA between steps, the log's order and timing,
kills and resumes, report cards, and the clean stop of ``sweep --tui``. Pilot tests on the fake
sweep of ``test_tui`` (fixed timestamps, a clock the test moves)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("textual")

from textual.widgets import DataTable, Static

from rho_audit.display.tui import SweepMonitor
from rho_audit.display.tui.formatting import duration

from .test_sweep import GOOD as SWEEP_FILE
from .test_sweep import fakes, host  # noqa: F401  (fixtures)
from .test_sweep import write as write_sweep
from .test_tui import BASE, CELLS, SFT, SWEEP, FakeSweep, grid_rows


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def sweep(tmp_path, utc):
    fake = FakeSweep(tmp_path / "runs.sqlite")
    yield fake
    fake.close()


class Clock:
    """The app's clock, moved by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def monitor(sweep: FakeSweep, clock: Clock, **kw) -> SweepMonitor:
    kw.setdefault("interval", 60.0)  # the tests poll explicitly
    return SweepMonitor(sweep.store.path, clock=clock, **kw)


def running_panel(app) -> str:
    return str(app.query_one("#running", Static).render())


def eta_of(app) -> str:
    line = next(line for line in running_panel(app).splitlines() if "ETA" in line)
    return line.split("ETA", 1)[1].strip()


def test_the_eta_counts_down_between_optimizer_steps(sweep):
    """Steps of 2 s, 10 steps, an audit as long as the baseline's (120 s): at step 3, 7 steps and
    an audit are left (134 s); with no new step the ETA follows the clock, at most one step down."""
    sweep.finish("baseline", BASE, elapsed=120.0)
    sweep.train("sft_seed42", 3)
    clock = Clock(sweep.now + 5.0)

    async def run() -> None:
        app = monitor(sweep, clock)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            assert eta_of(app) == "2m14s"
            clock.now += 1.0
            app.poll()
            await pilot.pause()
            assert eta_of(app) == "2m13s"
            clock.now += 5.0  # a slow step: the ETA waits at one step less, not below
            app.poll()
            await pilot.pause()
            assert eta_of(app) == "2m12s"
            sweep.step("sft_seed42", 4)  # the step lands: 6 left, the countdown starts again
            app.poll()
            await pilot.pause()
            assert eta_of(app) == "2m12s"
            clock.now += 1.5
            app.poll()
            await pilot.pause()
            assert eta_of(app) == "2m10s"

    asyncio.run(run())


def test_every_dimension_is_logged_at_its_own_time_and_in_order(sweep):
    """Dimensions are stamped when they landed, not at the audit's start; those that land with the
    cell's finish between two reads (the last one, at a 1 s interval) are logged before "done"."""
    sweep.finish("baseline", BASE, elapsed=120.0)
    sweep.train("sft_seed42", 10)
    sweep.audit("sft_seed42", {"factual": 0.25, "toxicity": 0.22})
    clock = Clock(sweep.now + 5.0)

    async def run() -> None:
        app = monitor(sweep, clock)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            sweep.now += 30.0  # the store's writer and the monitor share one clock
            sweep.dimension("sft_seed42", "sycophancy", -0.12)
            clock.now = sweep.now + 1.0
            app.poll()
            await pilot.pause()
            sweep.dimension("sft_seed42", "bias", 0.05)
            sweep.dimension("sft_seed42", "refusal", 0.31)
            sweep.finish("sft_seed42", SFT)  # bias, refusal and the finish within one interval
            clock.now = sweep.now + 1.0
            app.poll()
            await pilot.pause()
        lines = [line for line in app.log_lines if "sft_seed42" in line]
        dims = {d: next(line for line in lines if f"sft_seed42: {d} " in line) for d in SFT}
        done = next(line for line in lines if "✓ sft_seed42 done" in line)
        assert "[PASS]" in dims["refusal"] and "+0.310" in dims["refusal"]
        started = next(line for line in lines if "audit started" in line)
        order = [started, *dims.values(), done]
        assert [lines.index(line) for line in order] == sorted(lines.index(line) for line in order)
        stamps = [line.split()[0] for line in app.log_lines]
        assert stamps == sorted(stamps), app.log_lines  # the log is in time order
        assert dims["sycophancy"].split()[0] != dims["factual"].split()[0]  # not the audit's start

    asyncio.run(run())


def dead_pid() -> int:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    return gone.pid


@pytest.fixture
def locked(tmp_path, utc):
    """A fake sweep whose adapters (and lock file) are in a real folder, as a sweep's are."""
    out = tmp_path / "out" / SWEEP
    cells = [json.loads(json.dumps(c).replace(f"/nonexistent/sweeps/{SWEEP}", str(out))) for c in CELLS]
    fake = FakeSweep(tmp_path / "runs.sqlite", cells)
    out.mkdir(parents=True)
    yield fake, out
    fake.close()


def test_a_resumed_cell_is_logged_as_resumed_and_timed_over_every_process(locked):
    sweep, out = locked
    sweep.finish("baseline", BASE, elapsed=120.0)
    sweep.train("sft_seed42", 3)
    first_start = sweep.now - 10.0  # the train run's creation (the row was written one tick later)
    (out / ".lock").write_text(str(dead_pid()))  # the first process was killed
    clock = Clock(sweep.now + 5.0)

    async def run() -> None:
        app = monitor(sweep, clock)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            assert grid_rows(app)["sft_seed42"] == "■ stopped"
            adapter = out / "sft_seed42" / "adapter"
            adapter.mkdir(parents=True)
            (adapter / "latest.json").write_text(json.dumps({"step": 2, "folder": "checkpoint-2"}))
            (out / ".lock").write_text(str(os.getpid()))  # a new process took the sweep on
            sweep._set("sft_seed42", "training")
            for step in range(3, 11):
                sweep.step("sft_seed42", step)
            clock.now = sweep.now + 3.0
            app.poll()
            await pilot.pause()
            sweep.finish("sft_seed42", SFT, elapsed=4.0)  # the second process's share only
            clock.now = sweep.now + 1.0
            app.poll()
            await pilot.pause()
            whole = sweep.now - first_start
            assert grid_rows(app)["sft_seed42"] == "✓ done"
            assert app.query_one("#grid", DataTable).get_row("sft_seed42")[2].plain.strip() == duration(whole)
        lines = [line for line in app.log_lines if "sft_seed42" in line]
        resumed = [line for line in lines if "resumed" in line]
        assert len(resumed) == 1 and "sft_seed42: training resumed at step 2 (sft" in resumed[0]
        stopped = next(i for i, line in enumerate(lines) if "sft_seed42 stopped" in line)
        assert not any("training started" in line for line in lines[stopped:])  # not a fresh start
        assert any(f"✓ sft_seed42 done in {duration(whole)}" in line for line in lines)
        assert duration(whole) != duration(4.0)  # more than the last process's share

    asyncio.run(run())


def test_a_new_sweep_process_is_not_a_stop_and_its_own_kill_is_logged(locked):
    sweep, out = locked
    sweep.finish("baseline", BASE, elapsed=120.0)
    (out / ".lock").write_text(str(dead_pid()))  # the process that ran the baseline has exited
    sweep.tick = 0.1  # rows written within one lock check (LOCK_CHECK_S) of each other
    clock = Clock(sweep.now + 5.0)
    processes: list[subprocess.Popen] = []

    def new_process() -> int:
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        processes.append(proc)
        (out / ".lock").write_text(str(proc.pid))
        return proc.pid

    def kill(pid: int) -> None:
        proc = next(p for p in processes if p.pid == pid)
        proc.kill()
        proc.wait()

    async def tick(app, pilot, seconds: float) -> None:
        clock.now = max(clock.now, sweep.now) + seconds
        app.poll()
        await pilot.pause()

    def stops(app) -> list[str]:
        return [line for line in app.log_lines if "sft_seed42 stopped" in line]

    async def run() -> None:
        app = monitor(sweep, clock)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            first = new_process()  # a new sweep process starts the next cell within a lock check
            sweep.train("sft_seed42", 3)
            await tick(app, pilot, 0.5)
            assert grid_rows(app)["sft_seed42"] == "▶ train 30%"
            assert not stops(app)

            kill(first)
            await tick(app, pilot, 3.0)
            assert grid_rows(app)["sft_seed42"] == "■ stopped"
            assert len(stops(app)) == 1 and f"pid {first})" in stops(app)[0]

            second = new_process()  # the sweep is run again: it resumes the cell
            sweep._set("sft_seed42", "training")
            await tick(app, pilot, 0.5)
            assert grid_rows(app)["sft_seed42"] == "▶ train 30%"
            assert len(stops(app)) == 1

            kill(second)  # and that process is killed in turn
            await tick(app, pilot, 3.0)
            assert grid_rows(app)["sft_seed42"] == "■ stopped"
            assert len(stops(app)) == 2 and f"pid {second})" in stops(app)[1]

            third = new_process()  # restarted before the monitor saw it stop: still a resume
            await tick(app, pilot, 0.5)
            kill(third)
            new_process()
            await tick(app, pilot, 3.0)
        resumed = [line for line in app.log_lines if "sft_seed42: training resumed" in line]
        assert len(resumed) == 3, app.log_lines

    try:
        asyncio.run(run())
    finally:
        for proc in processes:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("writable", [True, False], ids=["next-to-the-store", "read-only-folder"])
def test_r_writes_the_card_next_to_the_store_and_says_where(sweep, writable):
    sweep.finish("baseline", BASE, elapsed=120.0)
    reports = sweep.store.path.parent / "reports"
    if not writable:
        reports.write_text("a file where the reports folder would go")  # mkdir fails, even as root
    opened: list[str] = []

    def open_url(url: str) -> bool:
        opened.append(url)
        return False

    async def run() -> None:
        app = monitor(sweep, Clock(sweep.now + 5.0), open_url=open_url)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await pilot.press("r")
            await app.workers.wait_for_complete()
            await pilot.pause()
        [said] = [line for line in app.log_lines if "report card of baseline" in line]
        [url] = opened
        card = Path(url.removeprefix("file://"))
        assert str(card) in said and "open it yourself" in said
        if writable:
            assert card == (reports / "audit-audit-baseline.html").resolve()
            assert "next to the store, as `rho-audit report` writes it" in said
        else:
            assert card.parent == Path(tempfile.gettempdir()).resolve() / "rho-audit-monitor"
            assert f"cannot write {reports}" in said
        assert "factual" in card.read_text(encoding="utf-8")

    asyncio.run(run())


# --------------------------------------------------------------------------------------------
# sweep --tui: the command's exit when the user asked to stop after the current cell
# --------------------------------------------------------------------------------------------


def tui_sweep(tmp_path, plugins, monkeypatch, app_run) -> tuple:
    """``rho-audit sweep --tui`` on the fake trainers of test_sweep, with ``app_run`` in place of
    the app (the user's keys) and a terminal assumed."""
    from click.testing import CliRunner

    from rho_audit.cli.sweep import sweep as sweep_command

    if plugins.pm.get_plugin("rho-audit-sweep-display") is not None:  # one host for every invocation
        plugins.pm.unregister(name="rho-audit-sweep-display")
    monkeypatch.setattr("rho_audit.plugins.load_host", lambda: plugins)
    monkeypatch.setattr("rho_audit.display.tui.feed.interactive", lambda: True)
    monkeypatch.setattr(SweepMonitor, "run", app_run)
    path, store = write_sweep(tmp_path, SWEEP_FILE), tmp_path / "runs.sqlite"
    args = [str(path), "--tui", "--store", str(store), "--out", str(tmp_path / "o")]
    return CliRunner().invoke(sweep_command, args), store


def test_sweep_tui_a_requested_stop_exits_0_and_says_how_to_go_on(tmp_path, host, fakes, monkeypatch):  # noqa: F811
    finished: list[str] = []

    def app_run(app: SweepMonitor) -> None:
        """The user presses q, y once the first cell is done; the app closes when the sweep stops."""
        feed = app.feed
        while not feed.finished.wait(0.01):
            finished.extend(e.cell for e in feed.drain() if e.kind == "cell_finished")
            if finished and not feed.stop_requested.is_set():
                feed.stop_requested.set()

    result, _ = tui_sweep(tmp_path, host, monkeypatch, app_run)
    assert result.exit_code == 0, result.output
    assert "interrupted" not in result.output
    assert "scores after training" in result.output  # the summary tables
    done = 1 + len(finished)  # the baseline ran first, then each cell that finished before the stop
    stopped = (
        f"stopped after the current cell, as asked: {done} of 7 cells complete, {7 - done} to run (next: "
    )
    assert stopped in result.output
    assert "Run the same command again to continue the sweep" in result.output

    result, _ = tui_sweep(tmp_path, host, monkeypatch, lambda app: app.feed.finished.wait(60))
    assert result.exit_code == 0, result.output  # the re-run goes on and finishes the sweep
    assert f"skipped {done} already complete, 0 failed" in result.output


def test_sweep_tui_an_interruption_still_exits_130(tmp_path, host, fakes, monkeypatch):  # noqa: F811
    feeds = []

    def app_run(app: SweepMonitor) -> None:
        feeds.append(app.feed)
        raise KeyboardInterrupt  # Ctrl-C reaching the process, not the app's q, y

    result, _ = tui_sweep(tmp_path, host, monkeypatch, app_run)
    feeds[0].finished.wait(60)  # the sweep thread (a daemon) is left to end before the next test
    assert result.exit_code == 130, result.output
    assert "interrupted: finished cells are saved" in result.output
    assert "stopped after the current cell" not in result.output
