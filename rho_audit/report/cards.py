"""Report cards: typed records gathered from the run store, rendered with Jinja2 as HTML or Markdown.

Three cards, each built only from what the run store holds (runs, dimension results, probe
records, sweep cells), so a card can be rendered at any time after the runs, on any machine:

* the **audit card** of one run (:func:`~rho_audit.report.audit_card.build_audit_card`),
* the **comparison card** of two or more runs on the same probes
  (:func:`~rho_audit.report.comparison_card.build_comparison_card`), with a paired bootstrap CI
  of each difference and McNemar's test,
* the **sweep card** of a training sweep (:func:`~rho_audit.report.sweep_card.build_sweep_card`):
  the paper's dose-response, ablation (seed-level Welch tests and item-level bootstrap CIs),
  variance-collapse, margin and out-of-distribution tables and figures for the user's own cells,
  once per audit split (held-out first).

An audit that scored two or more extra probe sets with one pair dimension (``--probes``) also
gets their pooled accuracy (:mod:`rho_audit.report.ood`), on the audit and the sweep card.

Gathering and rendering are separate: ``build_*`` return the frozen dataclasses of
:mod:`rho_audit.report.records` (tested on their own), and :func:`rho_audit.report.render.render`
turns one into text with the templates of the ``rho_audit_reports`` package. Probe texts are not
in the store; :func:`rho_audit.report.gather.probe_texts_from_host` looks them up in the installed
probe sets when the set's version matches the run's, and the card says so.

This module turns command-line targets (run ids, a sweep id) into the right card.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rho_audit._util.naming import slug
from rho_audit.api.errors import RhoAuditError
from rho_audit.report.audit_card import build_audit_card
from rho_audit.report.comparison_card import build_comparison_card
from rho_audit.report.diff_card import DiffCard, build_diff_card
from rho_audit.report.investigation_card import InvestigationCard, build_investigation_card
from rho_audit.report.records import AuditCard, Card, ComparisonCard, ProbeTexts
from rho_audit.report.sweep_card import build_sweep_card
from rho_audit.store import RunStore


def build_card(
    store: RunStore, targets: Sequence[str], texts: ProbeTexts | None = None
) -> Card | InvestigationCard:
    """One sweep id -> sweep card; one run -> audit card; several runs -> comparison card.

    A target is an id or a unique prefix of one (sweeps are looked up first); a prefix of
    several sweeps or runs is an error that lists them."""
    if not targets:
        raise RhoAuditError("give a run id (audit card), several run ids (comparison) or a sweep id.")
    sweeps = [s for s in (store.find_sweep(t) for t in targets) if s is not None]
    if sweeps:
        if len(targets) > 1:
            raise RhoAuditError(
                "a sweep card takes one sweep id alone; report the sweep and runs separately."
            )
        return build_sweep_card(store, sweeps[0])
    if len(targets) == 1:
        if store.run(targets[0]).kind == "diff":
            return build_diff_card(store, targets[0])  # type: ignore[return-value]
        if store.run(targets[0]).kind == "investigate":
            return build_investigation_card(store, targets[0])
        card = build_audit_card(store, targets[0], texts)
        if card.interrupted and not card.rows:
            run_id = card.header.run_id
            planned = ", ".join(card.missing) or "none recorded"
            raise RhoAuditError(
                f"run {run_id} was interrupted before any dimension finished, so it has no finished "
                f"dimension to show (planned: {planned}). `rho-audit runs show {run_id}` shows its state."
            )
        return card
    return build_comparison_card(store, targets)


def default_output(store_path: Path, card: Card, fmt: str) -> Path:
    if isinstance(card, AuditCard):
        name = f"audit-{card.header.run_id}"
    elif isinstance(card, InvestigationCard):
        name = f"investigate-{card.header.run_id}"
    elif isinstance(card, DiffCard):
        name = f"diff-{card.header.run_id}"
    elif isinstance(card, ComparisonCard):
        name = f"compare-{card.runs[0].run_id}-{card.runs[-1].run_id}"
    else:
        name = f"sweep-{card.sweep_id}"
    return Path(store_path).parent / "reports" / f"{slug(name)}.{fmt}"
