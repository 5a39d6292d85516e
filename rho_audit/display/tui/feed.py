"""The in-process feed of ``sweep --tui``: the sweep's ``run_event`` observer, which queues events
for the app and stops the sweep at a cell boundary when asked."""

from __future__ import annotations

import collections
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rho_audit.api.events import RunEvent
from rho_audit.api.hooks import hookimpl


class StopAfterCell(KeyboardInterrupt):
    """Raised in the sweep's thread at the start of the next cell once the user asked to stop:
    the sweep stops the way Ctrl-C stops it, before that cell wrote anything."""


class TuiDisplay:
    """The ``run_event`` observer of ``--display tui``: queues events for the app, which drains
    the queue on its own tick (so 10 events/s cost one screen update), and stops the sweep at the
    next cell boundary once asked to."""

    def __init__(self) -> None:
        self.events: collections.deque[RunEvent] = collections.deque(maxlen=5000)
        self.stop_requested = threading.Event()
        self.finished = threading.Event()
        self.failure: BaseException | None = None
        self.totals: dict[str, int] = {}  # train run id -> exact optimizer steps
        #: The cell the sweep stopped before, once it stopped because the user asked it to.
        self.stopped_before: str | None = None

    @property
    def stopped_on_request(self) -> bool:
        """The sweep stopped at a cell boundary as asked: not an interruption (the command exits 0)."""
        return self.stopped_before is not None

    @hookimpl
    def run_event(self, event: RunEvent) -> None:
        if event.kind == "cell_started" and self.stop_requested.is_set():
            self.stopped_before = event.cell or "the next cell"
            raise StopAfterCell
        if event.kind == "train_started" and event.total:
            self.totals[event.run_id] = event.total
        self.events.append(event)

    def stop(self) -> None:
        """The sweep command's display protocol; the app is closed by :meth:`follow`."""

    def drain(self) -> list[RunEvent]:
        out = []
        while self.events:
            out.append(self.events.popleft())
        return out

    def follow(self, work: Callable[[], Any], store: Path, sweep_id: str) -> Any:
        """Run ``work`` (the sweep) in a thread while the app shows it; return its result or raise
        its exception once both are done. Leaving the app lets the running cell finish first."""
        from rho_audit.api.errors import RhoAuditError
        from rho_audit.display.tui.app import SweepMonitor  # the app imports this module

        if not interactive():
            raise RhoAuditError(
                "--tui needs an interactive terminal; use --display rich or plain here, or follow the "
                "sweep from a terminal with `rho-audit monitor`."
            )
        result: dict[str, Any] = {}

        def target() -> None:
            try:
                result["value"] = work()
            except BaseException as err:
                result["error"] = err
                self.failure = err
            finally:
                self.finished.set()

        # Daemon: after the app closed, a second Ctrl-C ends the process; the store is safe (resumable).
        thread = threading.Thread(target=target, name="rho-audit-sweep", daemon=True)
        app = SweepMonitor(store, sweep_id, feed=self)
        with _logs_into(self):
            thread.start()
            app.run()
        if thread.is_alive():
            self.stop_requested.set()
            print(
                "finishing the current cell, then stopping (Ctrl-C stops at once; the sweep resumes "
                "where it stopped when you run the same command again)",
                file=sys.stderr,
                flush=True,
            )
            while thread.is_alive():
                thread.join(0.5)
        if "error" in result:
            raise result["error"]  # StopAfterCell too: the command prints the tables and exits 0
        return result["value"]


def interactive() -> bool:
    """Both ends of the terminal are a terminal (the app needs one)."""
    return sys.stdin.isatty() and sys.stdout.isatty()


class _LogRecordsToFeed(logging.Handler):
    def __init__(self, feed: TuiDisplay) -> None:
        super().__init__(logging.WARNING)
        self.feed = feed

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage().splitlines()[0] if record.getMessage() else record.name
            self.feed.events.append(RunEvent("warning", "", message=f"{record.levelname.lower()}: {message}"))
        except Exception:  # a log record must never break the sweep
            pass


@contextmanager
def _logs_into(feed: TuiDisplay) -> Iterator[None]:
    """While the app owns the terminal, log records go to its log pane instead of stderr."""
    root = logging.getLogger()
    saved = root.handlers[:]
    handler = _LogRecordsToFeed(feed)
    root.handlers = [h for h in saved if not isinstance(h, logging.StreamHandler)] + [handler]
    try:
        yield
    finally:
        root.handlers = saved
