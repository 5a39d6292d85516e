"""``rho-audit monitor``: follow a sweep live from its run store, in a Textual app, read-only.

Import-light like the rest of the CLI: Textual loads inside the command (``rho_audit.display.tui``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from rho_audit.cli._common import store_option

if TYPE_CHECKING:
    from rho_audit.store import RunStore, StoredSweep

EPILOG = """\b
Examples:
  rho-audit monitor                                  the latest sweep in rho-audit-runs/runs.sqlite
  rho-audit monitor paper-ablation-quick             a sweep by id or id prefix
  rho-audit monitor --store runs.sqlite my-sweep     another store
  rho-audit monitor --wait my-sweep                  wait for a sweep that has not started yet
\b
Start it from any terminal while `rho-audit sweep` runs, or after it finished. A sweep (or store)
that is not there yet is an error listing the sweeps there are; with --wait the monitor waits for
it instead (start it before the sweep). It only reads the store, so quitting it never stops the
sweep. Keys: ? help, f filter, enter cell details, r report card, q quit.
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
@click.option(
    "--wait",
    is_flag=True,
    help="If the store or the sweep is not there yet, wait for it to appear (without --wait: an error "
    "that lists the sweeps in the store).",
)
def monitor(sweep: str | None, store: Path, interval: float, wait: bool) -> None:
    """Watch a training sweep: the grid of cells with elapsed time and ETA, the running cell's
    training curves, the results as they land (rho coloured by its delta vs the base model), a
    dose-response view and a log of what happened.

    SWEEP is a sweep id or a prefix of one (default: the sweep updated last): an exact id wins;
    else the one id the prefix starts; a prefix of several sweeps is an error that lists them, and
    so is a SWEEP that names no sweep (unless --wait).
    The monitor reads the store read-only and survives the sweep being killed: the cell it was
    running is shown as stopped, with how to resume.
    """
    import sys

    from rho_audit.api.errors import RhoAuditError

    # Before the terminal check: a sweep that is not there is the more useful error.
    _check_sweep(store, sweep, wait=wait)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise RhoAuditError(
            "monitor needs an interactive terminal. In a script, `rho-audit sweep FILE --dry-run` "
            "lists the cells and their status."
        )
    from rho_audit.display.tui import run_monitor

    run_monitor(store, sweep, interval=interval)


#: How many sweeps the error for a SWEEP that names none lists.
LIST_AT_MOST = 20


def _start_hint(store: Path) -> str:
    return (
        f"Start one with `rho-audit sweep FILE --store {store}`, or pass --wait to wait for it "
        "(start the monitor before the sweep)."
    )


def _check_sweep(store: Path, sweep: str | None, *, wait: bool = False) -> None:
    """Refuse, before the app starts, what it would otherwise wait for: a store that does not
    exist, a store with no sweeps, a SWEEP that names none of its sweeps (the error lists them).
    An ambiguous prefix is an error with or without ``wait``; with ``wait`` the rest is waited for."""
    from rho_audit.store import AmbiguousId, RunStore, StoreError, StoreNotReady

    if not store.exists():
        if wait:
            return
        raise StoreError(f"no run store at {store}: no sweep has written it yet. {_start_hint(store)}")
    try:
        runs = RunStore.read_only(store, timeout=2, upgrade=False)
    except StoreError as err:
        if wait or err.retryable:
            return  # the app retries it, and says why
        raise
    try:
        try:
            found = runs.sweeps()
            if sweep is not None and runs.find_sweep(sweep) is not None:
                return
            listing = [_describe(runs, s) for s in found[:LIST_AT_MOST]]
        except AmbiguousId:
            raise
        except StoreNotReady:
            found, listing = [], []  # the file exists, its tables not yet
        except StoreError as err:
            if wait or err.retryable:
                return
            raise
    finally:
        runs.close()
    if wait or (sweep is None and found):
        return
    if not found:
        which = f"no sweep matches {sweep!r} in {store}" if sweep is not None else f"{store} has no sweep"
        raise StoreError(f"{which}; its sweeps: none yet. {_start_hint(store)}")
    more = f"; and {len(found) - LIST_AT_MOST} more" if len(found) > LIST_AT_MOST else ""
    raise StoreError(
        f"no sweep matches {sweep!r} in {store}. Its sweeps, updated last first: "
        + "; ".join(listing)
        + more
        + ". Pass one of these ids (or a prefix of one), or --wait to wait for a sweep that has not "
        "started yet."
    )


def _describe(runs: RunStore, found: StoredSweep) -> str:
    """``id (3 cells: 2 done, 1 running; updated 2026-12-07 13:59)``: one sweep, in one line."""
    import time
    from collections import Counter

    statuses = Counter(cell.status for cell in runs.cells(found.sweep_id))
    counts = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
    cells = f"{found.n_cells} cell{'s' if found.n_cells != 1 else ''}"
    updated = time.strftime("%Y-%m-%d %H:%M", time.localtime(found.updated_at))
    return f"{found.sweep_id} ({cells}: {counts}; updated {updated})"


__all__ = ["monitor"]
