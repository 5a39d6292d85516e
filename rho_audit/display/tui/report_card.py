"""A cell's audit card from the monitor: rendered from a read-only store, opened in a graphical browser."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import webbrowser
from dataclasses import dataclass
from pathlib import Path

from rho_audit.display.tui.state import CellView
from rho_audit.store import RunStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WrittenCard:
    """Where a card went; ``fallback`` says why that is not next to the store."""

    path: Path
    fallback: str | None = None

    def message(self, cell_id: str) -> str:
        where = self.fallback or "next to the store, as `rho-audit report` writes it"
        return f"report card of {cell_id}: {self.path} ({where})"


def render_cell_report(store_path: Path, cell: CellView) -> WrittenCard:
    """The cell's audit card as a self-contained HTML file where ``rho-audit report`` writes it
    (``reports/`` next to the store); in the temp folder when that folder cannot be written."""
    from rho_audit._util.naming import slug
    from rho_audit.report.audit_card import build_audit_card
    from rho_audit.report.cards import default_output
    from rho_audit.report.gather import probe_texts_from_host
    from rho_audit.report.render import SectionTemplates, write_report

    texts, sections = None, None
    try:  # probe texts and plugin sections make a fuller card; the card works without them
        from rho_audit.plugins import load_host

        host = load_host()
        texts, sections = probe_texts_from_host(host), SectionTemplates.from_host(host)
    except Exception:
        log.debug("report card without probe texts", exc_info=True)
    # The report builders only read, and the monitor never writes to a store a sweep is using.
    store = RunStore.read_only(store_path, timeout=5, upgrade=False)
    try:
        card = build_audit_card(store, str(cell.audit_run_id), texts)
    finally:
        store.close()
    out = default_output(store_path, card, "html")
    try:
        return WrittenCard(write_report(card, "html", out, sections)[0])
    except OSError as err:  # a store read from a folder this user cannot write
        spare = Path(tempfile.gettempdir()) / "rho-audit-monitor" / f"{slug(cell.cell_id)}-{out.name}"
        written = write_report(card, "html", spare, sections)[0]
        return WrittenCard(written, f"cannot write {out.parent} ({err.strerror or err}): in the temp folder")


def open_in_browser(url: str) -> bool:
    """Open a graphical browser only: a text browser would take over the terminal the app is in."""
    if sys.platform != "darwin" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return False
    if type(browser) is webbrowser.GenericBrowser:
        return False
    return bool(browser.open(url))
