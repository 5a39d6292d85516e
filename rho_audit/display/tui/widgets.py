"""The monitor's widgets and modal screens: panels, cell tables, help, stop confirmation, cell details."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static


class Panel(Static):
    """A bordered Static whose text is re-rendered on resize from a builder, and only repainted
    when the text changed (its size is set by the CSS, so an update never needs a new layout)."""

    def __init__(self, builder: Callable[[int], Any], *, id: str, title: str) -> None:
        super().__init__(id=id)
        self.builder = builder
        self.border_title = title
        self._shown: str | None = None

    def redraw(self) -> None:
        width = max(10, self.content_size.width or (self.size.width - 2) or 38)
        content = self.builder(width)
        key = content.markup if isinstance(content, Text) else repr(content)
        if key != self._shown:
            self._shown = key
            self.update(content, layout=False)

    def on_resize(self) -> None:
        self._shown = None
        self.redraw()


class CellTable(DataTable):
    """A table of cells whose enter opens the highlighted cell's details (and says so in the footer)."""

    BINDINGS: ClassVar = [Binding("enter", "select_cursor", "details", key_display="⏎")]


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar = [Binding("escape,q,question_mark,enter", "dismiss", "close")]
    TEXT = """[b]rho-audit monitor[/b]: follows a sweep from its run store (read-only).

  [b]?[/b]        this help
  [b]f[/b]        filter the cells: text in the cell id, or a status
           (queued, train, audit, running, done, failed, stopped); empty = all
  [b]enter[/b]    details of the highlighted cell
  [b]r[/b]        write the highlighted cell's report card next to the store and open it
  [b]tab[/b]      move between the grid and the results
  [b]q[/b]        quit. The monitor never stops the sweep; in `sweep --tui`
           q asks whether to stop after the current cell.

Results: rho after training, [green]green[/] / [red]red[/] = better / worse than the
base model (bold: |Δ| ≥ 0.05). The dose view averages seeds.
"""

    def compose(self) -> ComposeResult:
        yield Static(self.TEXT, id="help-text")


class ConfirmStop(ModalScreen[str]):
    BINDINGS: ClassVar = [
        Binding("y", "choose('stop')", "stop after this cell"),
        Binding("n,escape", "choose('stay')", "keep running"),
    ]

    def __init__(self, cell: str | None) -> None:
        super().__init__()
        self.cell = cell

    def compose(self) -> ComposeResult:
        current = f" ({self.cell})" if self.cell else ""
        yield Static(
            f"Stop the sweep after the current cell{current}?\n\n"
            "  [b]y[/b]  yes: finish this cell, then stop and print the tables (exit 0; the same\n"
            "     command again continues the sweep)\n"
            "  [b]n[/b]  no: keep running and keep watching",
            id="confirm-text",
        )

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


class CellScreen(ModalScreen[None]):
    BINDINGS: ClassVar = [
        Binding("escape,q,enter", "dismiss", "back"),
        Binding("r", "report", "report card"),
    ]

    def __init__(self, body: Text, cell_id: str, open_report: Callable[[str], None]) -> None:
        super().__init__()
        self.body, self.cell_id, self.open_report = body, cell_id, open_report

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="cell-box"):
            yield Static(self.body, id="cell-text")
        yield Footer()

    def action_report(self) -> None:
        self.open_report(self.cell_id)
