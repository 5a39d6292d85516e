"""``rho-audit monitor``: follow a sweep live from its run store, in a Textual app, read-only.

Import-light like the rest of the CLI: Textual loads inside the command (``rho_audit.display.tui``).
"""

from __future__ import annotations

from pathlib import Path

import click

from rho_audit.cli._common import store_option

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
@store_option("SQLite run store the sweep writes (--store of `rho-audit sweep`).")
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

    SWEEP is a sweep id or a prefix of one (default: the sweep updated last): an exact id wins;
    else the one id the prefix starts; a prefix of several sweeps is an error that lists them.
    The monitor reads the store read-only and survives the sweep being killed: the cell it was
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
    from rho_audit.store import AmbiguousId, RunStore, StoreError

    try:
        runs = RunStore.read_only(store, timeout=2, upgrade=False)
        try:
            runs.find_sweep(sweep)
        finally:
            runs.close()
    except AmbiguousId:
        raise
    except StoreError:
        return  # not a store with sweeps yet: the app says so and waits


__all__ = ["monitor"]
