"""The monitor following a sweep over time: the ETA between steps, the log's order and timing,
kills and resumes, report cards, and the clean stop of ``sweep --tui``. Pilot tests on the fake
sweep of ``test_tui`` (fixed timestamps, a clock the test moves)."""

from __future__ import annotations

import asyncio
import time

import pytest

pytest.importorskip("textual")

from textual.widgets import Static

from rho_audit.display.tui import SweepMonitor

from .test_tui import BASE, FakeSweep


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
