"""A Textual app that follows a training sweep from its run store: ``rho-audit monitor`` and ``sweep --tui``.

This package is the only place that imports Textual. The engine never sees it: in
``sweep --tui`` the app is one more ``run_event`` observer (:class:`TuiDisplay`), and
``rho-audit monitor`` only reads the store.

How it stays light and flicker-free
    The app polls the store read-only (``mode=ro``, one consistent read transaction per tick,
    every ``interval`` seconds; SQLite WAL lets it read while the sweep writes). Events from an
    in-process sweep go into a queue that the same tick drains, so a burst of events costs one
    screen update, and a widget is only touched when its text changed. A locked or half-written
    store skips a tick; a store or sweep that does not exist yet is waited for.

What it shows
    A header (cells done / running / failed / queued, elapsed, ETA, whether the sweep process
    is alive), the grid of cells, the running cell (trainer, λ, γ, seed, step / total, SFT and
    contrastive loss sparklines from ``train_steps``, share of active pairs, tokens/s), the
    results (per-dimension rho coloured by its delta vs the baseline), a small dose-response
    view, and a log of what happened (cells started, finished and failed with their error,
    warnings). Keys: ``?`` help, ``f`` filter, ``enter`` details, ``r`` report card, ``q`` quit.

A sweep killed mid-cell leaves its row ``training`` or ``auditing``: the app reads the pid the
sweep wrote into its lock file and, when that process is gone, shows the cell as stopped and
says how to resume.

Modules: :mod:`.state` (the picture of a sweep and what the panels work out from it),
:mod:`.reader` (the store, read into that picture), :mod:`.formatting`, :mod:`.panels` (the
panels' text), :mod:`.widgets`, :mod:`.app` (the app), :mod:`.feed` (``sweep --tui``) and
:mod:`.report_card` (a cell's report card from the app).
"""

from rho_audit.display.tui.app import SweepMonitor, run_monitor
from rho_audit.display.tui.feed import TuiDisplay
from rho_audit.display.tui.reader import StoreReader

__all__ = ["StoreReader", "SweepMonitor", "TuiDisplay", "run_monitor"]
