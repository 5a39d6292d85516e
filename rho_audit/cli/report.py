"""``rho-audit report``: render an audit, comparison or sweep card from the run store.

Import-light like the rest of the CLI: Jinja2, numpy and scipy load inside the command.
"""

from __future__ import annotations

import webbrowser
from pathlib import Path

import click

from rho_audit.cli._common import store_option

EPILOG = """\b
Examples:
  rho-audit report 20260301-101500-ab12cd                    audit card of one run (HTML)
  rho-audit report BEFORE_RUN AFTER_RUN --format md          comparison card (first run = before)
  rho-audit report paper-ablation-quick --out ablation.html --open     sweep card (id or prefix)
  rho-audit report paper-dose-response --figures pdf,png      sweep card + PDF/PNG figures
\b
Run ids and sweep ids may be abbreviated: an exact id wins; else the one id the prefix starts;
a prefix of several runs or sweeps is an error that lists them (sweeps are matched first).
A Markdown card writes its figures as .svg files next to the .md; an HTML card is one
self-contained file (no scripts, no network). --figures pdf,png also writes each figure as
<card>-<figure>.pdf and a 300-dpi .png next to the card, for a paper.
"""


@click.command("report", epilog=EPILOG)
@click.argument("targets", nargs=-1, required=True, metavar="RUN_OR_SWEEP...")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "md"]),
    default="html",
    show_default=True,
    help="html: one self-contained file; md: GitHub Markdown with linked .svg figures.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Output file [rho-audit-runs/reports/<kind>-<id>.<format>, next to --store].",
)
@click.option(
    "--figures",
    "figure_formats",
    metavar="FORMATS",
    help="Also write every figure of the card as FORMATS (pdf,png: PDF and 300-dpi PNG) next to it. "
    "Needs pip install 'rho-audit[figures]'.",
)
@store_option("SQLite run store to read.")
@click.option("--open", "open_browser", is_flag=True, help="Open the HTML card in a browser when one exists.")
def report(
    targets: tuple[str, ...],
    fmt: str,
    out: Path | None,
    figure_formats: str | None,
    store: Path,
    open_browser: bool,
) -> None:
    """Render a report card from the run store.

    One run id gives the audit card (scores with CIs, a rho chart, the most inverted probes,
    sample outputs). Several run ids give the comparison card: each run against the first, with
    a paired bootstrap CI of every difference and McNemar's test, IMPROVED/DEGRADED/UNCHANGED by
    the CI. A sweep id gives the sweep card: dose-response, ablation with Welch's t-test and
    Cohen's d, variance across seeds, margin ablation.
    """
    from rho_audit.api.errors import RhoAuditError
    from rho_audit.plugins import load_host
    from rho_audit.report.cards import build_card, default_output
    from rho_audit.report.figures import export_figures, parse_figure_formats
    from rho_audit.report.gather import probe_texts_from_host
    from rho_audit.report.render import SectionTemplates, card_figures, write_report
    from rho_audit.store import RunStore

    formats = parse_figure_formats(figure_formats) if figure_formats is not None else ()
    run_store = RunStore.read_only(store)  # a store this user cannot write is still readable
    host = load_host()
    try:
        card = build_card(run_store, targets, probe_texts_from_host(host))
    finally:
        run_store.close()
    out = out or default_output(store, card, fmt)
    try:
        written = write_report(card, fmt, out, SectionTemplates.from_host(host))
        written += export_figures(card_figures(card), out.parent, out.stem, formats)
    except OSError as err:
        raise RhoAuditError(
            f"cannot write the report to {out} ({err.strerror or err}). Pass --out with a path you can write."
        ) from None
    click.echo(f"{card.title}: {written[0]}")
    for extra in written[1:]:
        click.echo(f"  figure: {extra}")
    if open_browser:
        _open(written[0], fmt)


def _open(path: Path, fmt: str) -> None:
    if fmt != "html":
        click.echo(
            "--open shows HTML cards only; open the Markdown file in your editor or on GitHub.", err=True
        )
        return
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        click.echo(f"no browser found; open {path} yourself.", err=True)
        return
    if not browser.open(path.resolve().as_uri()):
        click.echo(f"the browser did not start; open {path} yourself.", err=True)
