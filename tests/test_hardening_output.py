"""Command output a script can read: in a pipe, tables are plain tab-separated rows, never cut."""

import io
import os
import subprocess
import sys

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from rho_audit.cli._common import plain_lines, print_table


def rho_audit(*args):
    env = os.environ | {"COLUMNS": "80"}  # the width that cut names before
    proc = subprocess.run(
        [sys.executable, "-m", "rho_audit.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_plugins_in_a_pipe_keeps_every_name_whole():
    out = rho_audit("plugins")  # stdout is a pipe, as in `rho-audit plugins | grep contrastive-only`
    assert "…" not in out
    [row] = [line.split("\t") for line in out.splitlines() if "contrastive-only" in line]
    assert row[:2] == ["trainer", "contrastive-only"]
    assert row[4] == "The contrastive hinge alone, no SFT cross-entropy."


def test_models_in_a_pipe_keeps_a_long_path_whole(tmp_path):
    model = tmp_path / ("a-model-directory-with-a-name-far-longer-than-any-terminal-column-" * 2)
    model.mkdir()
    out = rho_audit("models", str(model))
    assert "…" not in out
    rows = [line.split("\t") for line in out.splitlines()]
    assert rows[0] == ["model", "source", "path"]
    [row] = [r for r in rows if r[0] == model.name]
    assert row[1] == "local" and row[2].startswith(str(model))


def test_probes_list_in_a_pipe_is_one_tab_separated_row_per_set():
    rows = [line.split("\t") for line in rho_audit("probes", "list").splitlines()]
    assert rows[0][:3] == ["set", "kind", "dimension"]
    assert all(len(r) == len(rows[0]) for r in rows)
    assert ["factual", "pair", "factual"] in [r[:3] for r in rows]


def _table() -> Table:
    table = Table(title="sweep s1", caption="rho: 0 = chance")
    table.add_column("cell")
    table.add_column("score")
    table.add_row("[red]a-very-long-cell-identifier-that-would-be-cut[/]", "+0.315 ±0.007\nΔ +0.215")
    return table


def test_plain_rows_drop_markup_and_keep_one_line_per_row():
    group = Group(Text("title line", style="bold"), _table(), Text("a note", style="dim"))
    assert plain_lines(group) == [
        "title line",
        "sweep s1",
        "cell\tscore",
        "a-very-long-cell-identifier-that-would-be-cut\t+0.315 ±0.007 Δ +0.215",
        "rho: 0 = chance",
        "a note",
    ]


def test_a_terminal_still_gets_the_rich_table():
    out = io.StringIO()
    print_table(_table(), Console(file=out, force_terminal=True, width=60))
    assert "┃" in out.getvalue() or "│" in out.getvalue()
    out = io.StringIO()
    print_table(_table(), Console(file=out, width=20))  # not a terminal: plain, whatever the width
    assert "a-very-long-cell-identifier-that-would-be-cut\t" in out.getvalue()


def test_progress_in_a_pipe_is_plain_lines(monkeypatch):
    """`--display auto` draws Rich bars only when stdout and stderr are both terminals."""
    from rho_audit.cli._common import make_display
    from rho_audit.display import live

    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    monkeypatch.setattr("sys.stdout.isatty", lambda: False)  # `rho-audit run > scores.txt`
    assert isinstance(make_display("auto"), live.PlainDisplay)
    assert isinstance(make_display("auto", kind="sweep"), live.SweepPlainDisplay)
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert isinstance(make_display("auto"), live.RichDisplay)
    assert isinstance(make_display("auto", kind="sweep"), live.SweepRichDisplay)
    assert make_display("none") is None
