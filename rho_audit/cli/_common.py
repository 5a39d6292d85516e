"""What the commands share: the ``--store`` option, the progress display, and stdout output.

Command output on stdout reads well on a terminal and can be read by a script. On a terminal,
tables are Rich tables (boxes, colours, columns fitted to the window). When stdout is not a
terminal (a pipe, a file, a CI log), a table is printed as plain rows instead: a header line,
then one line per row, cells separated by a tab, no markup, and no cell ever cut or wrapped, so
``rho-audit plugins | grep contrastive-only`` and ``cut -f2`` work. A table's title and caption,
when it has them, are a line above and below. Other text is printed without soft wrapping, so a
long path stays on one line. ``--json``, where a command has it, remains the machine format.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import click

from rho_audit.store import DEFAULT_STORE

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

F = TypeVar("F", bound=Callable[..., Any])

#: Between the cells of a plain row.
SEPARATOR = "\t"


def store_option(help: str = "SQLite run store.") -> Callable[[F], F]:
    """``--store PATH``, the run store a command reads or writes (one default for every command);
    trackers (``--track``) read finished runs from it."""
    return click.option(
        "--store",
        type=click.Path(path_type=Path, dir_okay=False),
        default=DEFAULT_STORE,
        show_default=True,
        help=help,
        callback=_note_store,
    )


def _note_store(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    from rho_audit.api.tracking import use_store

    use_store(value)
    return value


def display_option(
    help: str = "Progress display (plain for CI logs).",
    choices: tuple[str, ...] = ("auto", "rich", "plain", "none"),
) -> Callable[[F], F]:
    """``--display``, the name :func:`make_display` takes, and ``--track`` (every command that
    shows progress makes runs a tracker can record)."""
    display = click.option(
        "--display", type=click.Choice(choices), default="auto", show_default=True, help=help
    )
    track = click.option(
        "--track",
        metavar="NAME",
        expose_value=False,
        callback=_switch_tracking,
        help="Also record each run (each sweep cell) in an experiment tracker: mlflow (pip install "
        "'rho-audit[mlflow]'; MLFLOW_TRACKING_URI, default ./mlruns). Same as RHO_AUDIT_TRACKING=NAME.",
    )
    return lambda f: display(track(f))


def _switch_tracking(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """``--track NAME`` switches the tracker on for this process (as ``RHO_AUDIT_TRACKING`` does)."""
    if value:
        import importlib.util
        import os

        from rho_audit.api.tracking import TRACKING_ENV

        if value == "mlflow" and importlib.util.find_spec("mlflow") is None:
            raise click.BadParameter("MLflow is not installed: pip install 'rho-audit[mlflow]'.")
        os.environ[TRACKING_ENV] = value


def make_display(name: str, kind: Literal["run", "sweep"] = "run") -> object | None:
    """The ``run_event`` observer that shows progress on stderr, or None for ``none``.

    ``auto`` is Rich when both stdout and stderr are terminals, plain lines otherwise (CI logs,
    pipes): while Rich draws live bars it captures stdout, so output meant for a file or a pipe
    would reach the terminal instead. ``tui`` is the Textual app of ``sweep --tui`` (never picked by
    ``auto``; Textual loads only then). ``kind`` picks the run or the sweep form of Rich and plain.
    """
    if name == "none":
        return None
    if name == "tui":
        from rho_audit.display.tui import TuiDisplay

        return TuiDisplay()
    from rho_audit.display import live

    if name == "auto":
        name = "rich" if sys.stdout.isatty() and sys.stderr.isatty() else "plain"
    if kind == "sweep":
        return live.SweepRichDisplay() if name == "rich" else live.SweepPlainDisplay()
    return live.RichDisplay() if name == "rich" else live.PlainDisplay()


def stdout_console() -> Console:
    """The console for a command's output: Rich on a terminal; in a pipe, no colour, no wrapping."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(soft_wrap=True)


def print_table(renderable: Any, console: Console | None = None) -> None:
    """Print a Rich table, or a Group holding tables and text lines, the way :mod:`this module
    <rho_audit.cli._common>` describes: as drawn by Rich on a terminal, as plain rows otherwise."""
    console = console or stdout_console()
    if console.is_terminal:
        console.print(renderable)
        return
    for line in plain_lines(renderable):  # written as is: Rich would expand the tabs to spaces
        console.file.write(line + "\n")
    console.file.flush()


def plain_lines(renderable: Any) -> list[str]:
    """The lines :func:`print_table` prints when stdout is not a terminal."""
    from rich.console import Group
    from rich.table import Table

    if isinstance(renderable, Table):
        return plain_rows(renderable)
    if isinstance(renderable, Group):
        return [line for part in renderable.renderables for line in plain_lines(part)]
    text = plain_text(renderable)
    return [text] if text else []


def plain_rows(table: Table) -> list[str]:
    """Title, header, one line per row, caption: each cell whole, cells tab-separated."""
    columns = [[plain_text(cell) for cell in column.cells] for column in table.columns]
    lines = [plain_text(table.title)] if table.title else []
    if table.show_header:
        lines.append(SEPARATOR.join(plain_text(column.header) for column in table.columns))
    lines += [SEPARATOR.join(row) for row in zip(*columns, strict=True)]
    if table.caption:
        lines.append(plain_text(table.caption))
    return lines


def plain_text(renderable: Any) -> str:
    """A cell or line as plain text on one line: markup removed, newlines and tabs made spaces."""
    from rich.console import Console
    from rich.errors import MarkupError
    from rich.text import Text

    if isinstance(renderable, Text):
        text = renderable.plain
    elif isinstance(renderable, str):
        try:
            text = Text.from_markup(renderable).plain
        except MarkupError:  # brackets that are not markup: keep them as they are
            text = renderable
    elif renderable is None:
        text = ""
    else:  # anything else Rich can draw: draw it wide, without colour
        console = Console(width=10_000, no_color=True, highlight=False)
        with console.capture() as capture:
            console.print(renderable, soft_wrap=True)
        text = capture.get()
    return " ".join(text.replace("\t", " ").split("\n")).strip()
