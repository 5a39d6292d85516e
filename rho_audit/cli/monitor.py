"""``rho-audit monitor``: follow a sweep live from its run store, in a Textual app, read-only.

Import-light like the rest of the CLI: Textual loads inside the command (``rho_audit.display.tui``).
"""

from __future__ import annotations

from pathlib import Path

import click

EPILOG = """\b
Examples:
  rho-audit monitor                                  the latest sweep in rho-audit-runs/runs.sqlite
  rho-audit monitor paper-ablation-quick             a sweep by id or id prefix
  rho-audit monitor --store runs.sqlite my-sweep     another store
\b
Start it from any terminal while `rho-audit sweep` runs (or after it finished, or before it
started: it waits for the store and the sweep). It only reads the store, so quitting it never
stops the sweep. Keys: ? help, f filter, enter cell details, r report card, q quit.
"""


@click.command("monitor", epilog=EPILOG)
@click.argument("sweep", required=False, metavar="[SWEEP]")
@click.option(
    "--store",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("rho-audit-runs/runs.sqlite"),
    show_default=True,
    help="SQLite run store the sweep writes (--store of `rho-audit sweep`).",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1, max=60),
    default=1.0,
    show_default=True,
    help="Seconds between reads of the store (each read is one screen update, however many events).",
)
def monitor(sweep: str | None, store: Path, interval: float) -> None:
    """Watch a training sweep: the grid of cells with elapsed time and ETA, the running cell's
    training curves, the results as they land (rho coloured by its delta vs the base model), a
    dose-response view and a log of what happened.

    SWEEP is a sweep id or a unique prefix of one (default: the sweep updated last). The
    monitor reads the store read-only and survives the sweep being killed: the cell it was
    running is shown as stopped, with how to resume.
    """
    import sys

    from rho_audit.api.errors import RhoAuditError

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise RhoAuditError(
            "monitor needs an interactive terminal. In a script, `rho-audit sweep FILE --dry-run` "
            "lists the cells and their status."
        )
    if sweep and store.exists():
        _check_sweep(store, sweep)
    from rho_audit.display.tui import run_monitor

    run_monitor(store, sweep, interval=interval)


def _check_sweep(store: Path, sweep: str) -> None:
    """An ambiguous prefix is an error now; an unknown id is waited for (the sweep may start later)."""
    import sqlite3

    from rho_audit.api.errors import RhoAuditError
    from rho_audit.store.run_store import connect_read_only

    try:
        db = connect_read_only(store, timeout=2)
        try:
            ids = [r[0] for r in db.execute("SELECT DISTINCT sweep_id FROM sweep_cells")]
        finally:
            db.close()
    except sqlite3.Error:
        return  # not a store with sweeps yet: the app says so and waits
    matches = [s for s in ids if s.startswith(sweep)]
    if sweep not in ids and len(matches) > 1:
        raise RhoAuditError(
            f"{sweep!r} matches {len(matches)} sweeps in {store}: {', '.join(sorted(matches))}. "
            "Give more of the id."
        )


__all__ = ["monitor"]

if __name__ == "__main__":  # `python -m rho_audit.cli.monitor` works before cli.py registers it
    monitor()
