"""The Textual app that follows one sweep: polls the store, drains the feed, updates what changed."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widgets import DataTable, Footer, Input, RichLog, Static

from rho_audit.api.events import RunEvent
from rho_audit.display.tui.feed import StopAfterCell, TuiDisplay
from rho_audit.display.tui.formatting import (
    STATUS_LABEL,
    STATUS_MARK,
    STATUS_STYLE,
    cell_label,
    clock_text,
    delta_style,
    duration,
    score_text,
)
from rho_audit.display.tui.panels import cell_details, dose_text, running_text
from rho_audit.display.tui.reader import StoreReader
from rho_audit.display.tui.report_card import open_in_browser, render_cell_report
from rho_audit.display.tui.state import (
    FINAL,
    RUNNING,
    CellView,
    SweepState,
    dose_response,
    sweep_eta,
    sweep_started,
    train_progress,
)
from rho_audit.display.tui.widgets import CellScreen, CellTable, ConfirmStop, HelpScreen, Panel

#: From this many columns on, the side panels widen and the results show full names, 3 decimals.
WIDE = 110


class SweepMonitor(App[None]):
    """Follows one sweep of a run store. ``feed`` is set by ``sweep --tui`` (events, stop)."""

    TITLE = "rho-audit monitor"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    Screen { layout: vertical; }
    #header { height: 1; background: $panel; padding: 0 1; }
    #top { height: 2fr; min-height: 9; }
    #middle { height: 1fr; min-height: 7; }
    #grid-box, #results-box { width: 1fr; border: round $primary 50%; border-title-color: $text; }
    #grid-box:focus-within, #results-box:focus-within { border: round $accent; }
    #running { width: 36; height: 100%; border: round $primary 50%; padding: 0 1; }
    #dose { width: 28; height: 100%; border: round $primary 50%; padding: 0 1; }
    .wide #running { width: 50; }
    .wide #dose { width: 44; }
    #grid, #results { height: 1fr; scrollbar-size-vertical: 1; }
    #log { height: 1fr; min-height: 6; border: round $primary 50%; scrollbar-size-vertical: 1;
        overflow-x: hidden; }
    #filter { height: 1; border: none; padding: 0; display: none; }
    #filter.shown { display: block; }
    HelpScreen, ConfirmStop, CellScreen { align: center middle; }
    #help-text, #confirm-text { width: auto; max-width: 90%; height: auto; border: round $accent;
        padding: 0 1; background: $surface; }
    #cell-box { width: 90%; height: 90%; border: round $accent; padding: 0 1; background: $surface; }
    """
    BINDINGS: ClassVar = [
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("f", "filter", "filter"),
        Binding("enter", "details", "details", key_display="⏎", show=False),
        Binding("r", "report", "report"),
        Binding("q", "request_quit", "quit"),
        Binding("ctrl+c", "request_quit", "quit", show=False, priority=True),
    ]

    def __init__(
        self,
        store: Path,
        sweep: str | None = None,
        *,
        feed: TuiDisplay | None = None,
        interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        open_url: Callable[[str], bool] | None = None,
    ) -> None:
        super().__init__()
        self.reader = StoreReader(Path(store), sweep)
        self.feed = feed
        self.interval = interval
        self.clock = clock
        self.open_url = open_url or open_in_browser
        self.state = SweepState(Path(store))
        self.filter_text = ""
        self.log_lines: list[str] = []  # plain text of what the log pane shows (tests read it)
        self.stopping = False
        self._seen: dict[str, tuple[str, frozenset[str]]] = {}
        self._grid_ids: list[str] = []
        self._grid_rows: dict[str, tuple[str, ...]] = {}
        self._grid_width = 0
        self._results_key: tuple | None = None
        self._said_problem: str | None = None
        self._said_stale: set[tuple[str, int | None]] = set()  # (cell, the process that left it)
        self._cell_pid: dict[str, int] = {}  # cell -> the live sweep process last seen running it
        self._said_done = False
        self._logged_finish = False
        self._progress: dict[str, tuple[str, int, int]] = {}  # audit progress from events

    # -- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="header")
        with Horizontal(id="top"):
            with Vertical(id="grid-box"):
                yield Input(placeholder="filter: text of a cell id or a status; empty = all", id="filter")
                yield CellTable(id="grid", cursor_type="row", cell_padding=0)
            yield Panel(self._running_text, id="running", title="running cell")
        with Horizontal(id="middle"):
            with Vertical(id="results-box"):
                yield CellTable(id="results", cursor_type="row", cell_padding=0)
            yield Panel(self._dose_text, id="dose", title="dose-response")
        yield RichLog(id="log", max_lines=2000, wrap=True, markup=False, auto_scroll=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#grid-box").border_title = "cells"
        self.query_one("#results-box").border_title = "results"
        self.query_one("#results-box").border_subtitle = "ρ · green/red: Δ vs base"
        self.query_one("#log", RichLog).border_title = "log"
        self.query_one("#grid", DataTable).focus()
        self._layout_for(self.size.width)
        self.call_after_refresh(self.poll)  # once the panes have their size (the log wraps to it)
        self.set_interval(self.interval, self.poll)

    # -- the tick --------------------------------------------------------------------------

    def poll(self) -> None:
        """One tick: read the store, drain the event queue, update what changed."""
        try:
            self._poll()
        except NoMatches:  # a tick that lands while the app closes: its widgets are gone
            pass

    def _poll(self) -> None:
        now = self.clock()
        state = self.reader.read(now)
        if state.problem and not state.cells and self.state.cells:
            self.state.problem = state.problem  # a failed read keeps the last picture, and says why
            state = self.state
        self.state = state
        if self.feed is not None:
            self._take_events(self.feed.drain())
            if self.feed.finished.is_set() and not self._said_done:
                self._said_done = True
                err = self.feed.failure
                if isinstance(err, StopAfterCell) or self.stopping:
                    self.exit()
                    return
                if err is not None and not isinstance(err, KeyboardInterrupt):
                    self.log_line(f"sweep stopped by an error: {type(err).__name__}: {err}", "bold red")
                    self.notify(f"the sweep stopped: {err}", severity="error", timeout=30)
                else:
                    self.notify("sweep finished; q shows the final tables", timeout=30)
        self._log_changes(state, now)
        self._update_header(state, now)
        self._update_grid(state, now)
        self._update_results(state)
        for panel in self.query(Panel):
            panel.redraw()

    def _take_events(self, events: list[RunEvent]) -> None:
        for e in events:
            if e.kind == "warning":
                self.log_line(f"warning: {e.message}", "yellow")
            elif e.kind == "dimension_failed":
                self.log_line(f"{self._current_id()}: audit {e.dimension} failed: {e.message}", "bold red")
            elif e.kind == "run_interrupted" and e.message:
                self.log_line(f"{self._current_id()}: {e.message}", "yellow")
            elif e.kind == "dimension_started" and e.dimension:
                self._progress[e.run_id] = (e.dimension, 0, e.total or 0)
            elif e.kind == "progress" and e.dimension:
                self._progress[e.run_id] = (e.dimension, e.done or 0, e.total or 0)

    def _current_id(self) -> str:
        running = self.state.running
        return running.cell_id if running else "sweep"

    # -- log -------------------------------------------------------------------------------

    def log_line(self, text: str, style: str = "", at: float | None = None) -> None:
        stamp = clock_text(self.clock() if at is None else at)
        self.log_lines.append(f"{stamp} {text}")
        line = Text(f"{stamp} ", style="dim")
        line.append(text, style=style)
        pane = self.query_one("#log", RichLog)
        width = pane.scrollable_content_region.width
        pane.write(line, width=width if width > 10 else None)  # wrap to the pane, not the console

    def _log_changes(self, state: SweepState, now: float) -> None:
        if state.problem and state.problem != self._said_problem and not state.cells:
            self._said_problem = state.problem
            self.log_line(state.problem, "dim")
        first = not self._seen
        cells = sorted(state.cells, key=lambda c: c.updated_at) if first else state.cells
        for c in cells:
            before = self._seen.get(c.cell_id)
            dims = frozenset(c.partial)
            if c.status in RUNNING and state.alive and state.pid is not None:
                # Another live process on a cell that never showed stopped: it was restarted quickly.
                ran = self._cell_pid.get(c.cell_id)
                self._cell_pid[c.cell_id] = state.pid
                if ran not in (None, state.pid) and before is not None and before[0] == c.status:
                    self._log_resume(c, now)
            if before == (c.status, dims):
                continue
            self._seen[c.cell_id] = (c.status, dims)
            old_status, old_dims = before or ("pending", frozenset())
            at = c.updated_at
            if c.status in FINAL and before is not None and old_status in RUNNING:
                # Dimensions that landed since the last read, the cell finishing in between: the
                # finish time is the nearest the store has to theirs.
                self._log_dimensions(c, c.scores, old_dims, at)
            if c.status == "complete":
                scores = " ".join(f"{d} {score_text(s)}" for d, s in c.scores.items())
                self.log_line(f"✓ {c.cell_id} done in {duration(c.elapsed(now))}: {scores}", "green", at)
            elif c.status == "failed":
                self.log_line(f"✗ {c.cell_id} FAILED: {c.error or 'no error recorded'}", "bold red", at)
            elif c.status == "stopped":
                if (c.cell_id, state.pid) not in self._said_stale:
                    self._said_stale.add((c.cell_id, state.pid))
                    self.log_line(
                        f"■ {c.cell_id} stopped: the sweep process (pid {state.pid}) is gone. Run the same "
                        "sweep command again to resume it.",
                        "yellow",
                        at,
                    )
            elif c.status in RUNNING:
                if old_status == "stopped":
                    self._log_resume(c, at)
                elif old_status != c.status:
                    what = "training" if c.status == "training" else "audit"
                    if c.kind == "baseline" or c.status == "training" or old_status == "pending":
                        self.log_line(f"▶ {c.cell_id}: {what} started ({c.describe()})", "cyan", at)
                    else:
                        self.log_line(f"  {c.cell_id}: training done, audit started", "cyan", at)
                # A dimension's row carries no time: it is stamped when this read first saw it.
                self._log_dimensions(c, c.partial, old_dims, now)
        if state.finished and not self._logged_finish:
            self._logged_finish = True
            failed = state.count("failed")
            self.log_line(
                f"sweep {state.sweep_id} finished: {state.count('complete')} done, {failed} failed",
                "bold red" if failed else "bold green",
            )

    def _log_resume(self, c: CellView, at: float) -> None:
        if c.status == "auditing":
            self.log_line(f"▶ {c.cell_id}: audit resumed (a new sweep process)", "cyan", at)
            return
        step = self.reader.resume_step(c)
        if step is None:
            steps = self.state.steps.get(c.train_run_id or "", [])
            where = f"after step {steps[-1]['step']} (the last one recorded)" if steps else "from its start"
        else:
            where = f"at step {step}"
        self.log_line(f"▶ {c.cell_id}: training resumed {where} ({c.describe()})", "cyan", at)

    def _log_dimensions(
        self, c: CellView, scores: dict[str, dict[str, Any]], logged: frozenset[str], at: float
    ) -> None:
        """One line per dimension of ``scores`` not in ``logged``, in the order they finished."""
        for dim in [d for d in scores if d not in logged]:
            s = scores[dim]
            self.log_line(f"  {c.cell_id}: {dim} {score_text(s, 3)} [{s.get('status')}]", "", at)

    # -- header ----------------------------------------------------------------------------

    def _update_header(self, state: SweepState, now: float) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        if state.cells:
            done, failed = state.count("complete"), state.count("failed")
            running, queued = state.count(*RUNNING), state.count("pending")
            text.append(f"{done}/{len(state.cells)} done", style="bold green")
            if running:
                text.append(f" · {running} running", style="cyan")
            if failed:
                text.append(f" · {failed} failed", style="bold red")
            if queued:
                text.append(f" · {queued} queued", style="dim")
            started = sweep_started(state)
            eta = sweep_eta(state, now, self._totals()) if not state.finished else None
            if state.finished:
                text.append("  finished", style="bold green" if not failed else "bold red")
            elif state.alive is False:
                text.append(f"  process {state.pid} gone: stopped", style="bold yellow")
            else:
                if started:
                    text.append(f"  elapsed {duration(now - started)}")
                text.append(f"  ETA {duration(eta) if eta is not None else '?'}")
            if self.stopping:
                text.append("  stopping after this cell", style="bold yellow")
            text.append(f"  {state.sweep_id}", style="bold")
        else:
            text.append(state.sweep_id or "rho-audit monitor", style="bold")
            if state.problem:
                text.append(f"  {state.problem}", style="dim")
        if state.problem and state.cells:
            text.append(f"  ({state.problem})", style="dim")
        self._set_static("#header", text)

    def _set_static(self, selector: str, text: Text) -> None:
        widget = self.query_one(selector, Static)
        if getattr(widget, "_last", None) != text.markup:
            widget._last = text.markup  # type: ignore[attr-defined]
            widget.update(text, layout=False)

    def _totals(self) -> dict[str, int]:
        return self.feed.totals if self.feed is not None else {}

    # -- grid ------------------------------------------------------------------------------

    def visible(self, cells: Sequence[CellView]) -> list[CellView]:
        wanted = self.filter_text.strip().lower()
        if not wanted:
            return list(cells)
        words = {"running": RUNNING, "queued": ("pending",), "done": ("complete",)}
        out = []
        for c in cells:
            label = STATUS_LABEL.get(c.status, c.status)
            if (
                wanted in c.cell_id.lower()
                or wanted in (c.status, label)
                or c.status in words.get(wanted, ())
            ):
                out.append(c)
        return out

    def _status_cell(self, c: CellView, state: SweepState) -> Text:
        label = STATUS_LABEL.get(c.status, c.status)
        if c.status == "training":
            prog = train_progress(state, c, self._totals())
            if prog.step is not None and prog.total:
                label = f"train {min(100, 100 * prog.step // prog.total)}%"
        elif c.status == "auditing":
            dims = len((c.spec.get("audit") or {}).get("dimensions") or []) or None
            label = f"audit {len(c.partial)}/{dims}" if dims else "audit"
        return Text(f" {STATUS_MARK.get(c.status, ' ')} {label}", style=STATUS_STYLE.get(c.status, ""))

    def _update_grid(self, state: SweepState, now: float) -> None:
        grid = self.query_one("#grid", DataTable)
        cells = self.visible(state.cells)
        ids = [c.cell_id for c in cells]
        counts = f"{state.count('complete')}/{len(state.cells)}" if state.cells else ""
        shown = f" · filter {self.filter_text!r}: {len(cells)}" if self.filter_text else ""
        self.query_one("#grid-box").border_title = f"cells {counts}{shown}"
        width = max(12, self.query_one("#grid-box").content_size.width - len(" ▶ train 40%  12m04s") - 2)
        rows = {}
        for c in cells:
            elapsed = c.elapsed(now)
            rows[c.cell_id] = (
                Text(cell_label(c.cell_id, width)),
                self._status_cell(c, state),
                Text(f"{duration(elapsed) if elapsed else '':>7}"),
            )
        if ids != self._grid_ids or width != self._grid_width:
            current = self._grid_ids[grid.cursor_row] if 0 <= grid.cursor_row < len(self._grid_ids) else None
            grid.clear(columns=True)
            grid.add_column("cell", key="cell", width=width)
            grid.add_column(" status", key="status", width=12)
            grid.add_column("   time", key="time", width=7)
            self._grid_width = width
            for cid in ids:
                grid.add_row(*rows[cid], key=cid)
            self._grid_ids = ids
            if current in ids:
                grid.move_cursor(row=ids.index(current), animate=False)
            self._grid_rows = {cid: tuple(t.markup for t in rows[cid]) for cid in ids}
            return
        for cid in ids:
            marks = tuple(t.markup for t in rows[cid])
            old = self._grid_rows.get(cid)
            if old != marks:
                for column, value, was in zip(
                    ("cell", "status", "time"), rows[cid], old or (None,) * 3, strict=True
                ):
                    if value.markup != was:
                        grid.update_cell(cid, column, value)
                self._grid_rows[cid] = marks

    # -- results ---------------------------------------------------------------------------

    def _update_results(self, state: SweepState) -> None:
        table = self.query_one("#results", DataTable)
        dims = state.dimensions()
        wide = self.size.width >= WIDE
        digits = 3 if wide else 2
        room = self.query_one("#results-box").content_size.width
        full = [max(7 if wide else 6, len(d) + 1) for d in dims]
        named = wide or sum(full) + 20 <= room  # full dimension names when they leave room for the ids
        value_w = full if named else [6] * len(dims)
        width = max(12, room - sum(value_w) - 1)
        rows = []
        for c in self.visible(state.cells):
            if not c.scores:
                continue
            base = state.baseline_scores(c) if c.kind == "train" else {}
            values = []
            for d in dims:
                s = c.scores.get(d)
                delta = None
                if s and s.get("score") is not None and (base.get(d) or {}).get("score") is not None:
                    delta = s["score"] - base[d]["score"]
                values.append(Text(score_text(s, digits), style=delta_style(delta), justify="right"))
            name = (
                cell_label(c.cell_id, width) if c.status in FINAL else cell_label(c.cell_id, width - 2) + " …"
            )
            rows.append((c.cell_id, Text(name, style="" if c.kind == "train" else "bold"), values))
        key = (tuple(dims), width, tuple((r[0], r[1].markup, *(v.markup for v in r[2])) for r in rows))
        if key == self._results_key:
            return
        self._results_key = key
        current = table.cursor_row
        table.clear(columns=True)
        table.add_column("cell", key="cell", width=width)
        for d, w in zip(dims, value_w, strict=True):
            table.add_column(Text(d if named else d[:5], justify="right"), key=d, width=w)
        for cid, name, values in rows:
            table.add_row(name, *values, key=cid)
        if rows:
            table.move_cursor(row=min(current, len(rows) - 1), animate=False)

    # -- panels ----------------------------------------------------------------------------

    def _running_text(self, width: int) -> Text:
        c = self.state.running
        panel = self.query_one("#running", Panel)
        panel.border_title = (
            "running cell" if c is None else f"running cell · {STATUS_LABEL.get(c.status, c.status)}"
        )
        return running_text(self.state, self.clock(), width, self._totals(), self._progress)

    def _dose_text(self, width: int) -> Text:
        view = dose_response(self.state)
        if view is not None:
            self.query_one("#dose", Panel).border_title = view.title
        return dose_text(view, width)

    # -- size ------------------------------------------------------------------------------

    def on_resize(self, event: Any) -> None:
        self._layout_for(event.size.width)
        self.call_after_refresh(self.poll)

    def _layout_for(self, width: int) -> None:
        self.set_class(width >= WIDE, "wide")

    # -- actions ---------------------------------------------------------------------------

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = self.filter_text
        box.add_class("shown")
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.filter_text = event.value.strip()
        self._close_filter()
        self.poll()

    def on_key(self, event: Any) -> None:
        box = self.query_one("#filter", Input)
        if event.key == "escape" and box.has_class("shown"):
            self._close_filter()
            event.stop()

    def _close_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.remove_class("shown")
        self.query_one("#grid", DataTable).focus()

    def highlighted(self) -> str | None:
        focused = self.focused
        table = focused if isinstance(focused, DataTable) else self.query_one("#grid", DataTable)
        if table.row_count == 0:
            return None
        try:
            key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key
        except Exception:
            return None
        return str(key.value) if key is not None and key.value is not None else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_details()

    def action_details(self) -> None:
        cell_id = self.highlighted()
        cell = next((c for c in self.state.cells if c.cell_id == cell_id), None)
        if cell is None:
            self.notify("no cell highlighted", severity="warning")
            return
        self.push_screen(CellScreen(self.cell_details(cell), cell.cell_id, self.open_report))

    def cell_details(self, c: CellView) -> Text:
        steps = self.reader.steps(c.train_run_id, self.clock()) if c.train_run_id else []
        return cell_details(c, self.state, self.clock(), steps)

    def action_report(self) -> None:
        cell_id = self.highlighted()
        if cell_id is None:
            self.notify("no cell highlighted", severity="warning")
            return
        self.open_report(cell_id)

    def open_report(self, cell_id: str) -> None:
        cell = next((c for c in self.state.cells if c.cell_id == cell_id), None)
        if cell is None or not cell.audit_run_id or cell.status != "complete":
            self.notify(
                f"{cell_id} has no finished audit yet: its report card comes when it is done.",
                severity="warning",
            )
            return
        self.notify(f"rendering the report card of {cell_id}…", timeout=3)
        self._render_report(cell)

    @work(thread=True, exclusive=True, group="report", exit_on_error=False)
    def _render_report(self, cell: CellView) -> None:
        try:
            card = render_cell_report(self.reader.path, cell)
        except ImportError:
            self.call_from_thread(
                self.notify,
                "report cards need rho_audit.report, which this install lacks.",
                severity="warning",
            )
            return
        except Exception as err:  # the card is optional: say why, keep monitoring
            self.call_from_thread(self.notify, f"report card failed: {err}", severity="error", timeout=15)
            return
        try:
            opened = self.open_url(card.path.resolve().as_uri())
        except Exception:
            opened = False
        message = card.message(cell.cell_id)
        if not opened:
            message += "; no graphical browser here: open it yourself"
        self.call_from_thread(self.notify, message, timeout=20)
        self.call_from_thread(self.log_line, message, "")

    def action_request_quit(self) -> None:
        sweep_running = self.feed is not None and not self.feed.finished.is_set()
        if not sweep_running:
            self.exit()
            return
        if self.stopping:
            self.notify("already stopping after the current cell", timeout=5)
            return

        def chosen(choice: str | None) -> None:
            if choice == "stop" and self.feed is not None:
                self.stopping = True
                self.feed.stop_requested.set()
                self.log_line(f"stopping after the current cell ({self._current_id()})", "bold yellow")
                self.poll()

        self.push_screen(ConfirmStop(self.state.running.cell_id if self.state.running else None), chosen)

    def on_unmount(self) -> None:
        self.reader.close()


def run_monitor(store: Path, sweep: str | None = None, interval: float = 1.0) -> None:
    SweepMonitor(store, sweep, interval=interval).run()
