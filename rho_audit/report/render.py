"""Rendering a card with the Jinja2 templates of the ``rho_audit_reports`` package, as one
self-contained HTML file or as Markdown with its figures as SVG files next to it.

Everything that comes from a model, a probe file or a plugin is untrusted text: HTML cards are
autoescaped, and in Markdown cards every ``{{ }}`` output is escaped for Markdown (``|``,
newlines, backticks, ``<``, ...) by the environment's ``finalize`` hook, so a template cannot
forget it."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rho_audit._util.files import atomic_write_text
from rho_audit._util.naming import param_label, slug
from rho_audit.api.errors import RhoAuditError
from rho_audit.audit.calibration import CALIBRATION_DEFINITION
from rho_audit.report.diff_card import DiffCard
from rho_audit.report.investigation_card import InvestigationCard
from rho_audit.report.records import AuditCard, Card, ComparisonCard, DimensionSection, Figure
from rho_audit.report.stats import Summary, t_half_width

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import jinja2

    from rho_audit.plugins import PluginHost


class MdSafe(str):
    """Markdown the templates produce themselves (links, emphasis): not escaped again."""


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~#&!])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def md_escape(value: Any) -> str:
    """Text made inert for a Markdown table cell: every Markdown/HTML character backslash-escaped
    (GitHub renders ``\\<script>`` as the text ``<script>``), newlines shown as ↵ so a row stays
    one line, control characters dropped."""
    if isinstance(value, MdSafe):
        return value
    text = _CONTROL.sub("", str(value)).replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return text.replace("\n", " ↵ ")


def _md_finalize(value: Any) -> Any:
    if value is None:
        return ""
    return md_escape(value)


def fmt_num(value: float | None, digits: int = 3, signed: bool = False) -> str:
    """Numbers as printed on every card: fixed digits, '-' for missing, no '-0.000'."""
    if value is None or not math.isfinite(value):
        return "-"
    if abs(value) < 0.5 * 10**-digits:
        value = 0.0
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def fmt_ci(low: float | None, high: float | None, digits: int = 3, signed: bool = True) -> str:
    if low is None or high is None:
        return "-"
    return f"[{fmt_num(low, digits, signed)}, {fmt_num(high, digits, signed)}]"


def fmt_p(p: float | None) -> str:
    if p is None:
        return "-"
    return "< 0.0001" if p < 0.0001 else f"{p:.4f}"


def fmt_pct(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{fmt_num(value * 100, digits)}%"


def fmt_mean(s: Summary, spread: str = "sd", digits: int = 3, signed: bool = True) -> str:
    """'+0.123 ± 0.045 (n=5)'; the spread is the SD, the s.e. or ("ci") the half-width of the
    95% t-interval; '-' without values. Signed for scores and deltas (the sign is the finding),
    unsigned for rates."""
    if s.mean is None:
        return "-"
    err = s.sd if spread == "sd" else t_half_width(s) if spread == "ci" else s.se
    text = fmt_num(s.mean, digits, signed)
    if err is not None:
        text += f" ± {fmt_num(err, digits)}"
    return f"{text} (n={s.n})"


def templates_dir() -> Path:
    """The installed ``rho_audit_reports`` package; in a source checkout that is not (yet)
    installed with it, the ``reports/`` folder next to this package."""
    try:
        import rho_audit_reports
    except ImportError:
        source = Path(__file__).resolve().parents[2] / "reports"
        if (source / "base.html.j2").is_file():
            return source
        raise RhoAuditError(
            "the report templates (package rho_audit_reports) are not installed; reinstall rho-audit "
            "(pip install -e . in a checkout)."
        ) from None
    return Path(rho_audit_reports.__file__).parent


@dataclass(frozen=True)
class SectionTemplates:
    """Plugin-provided section folders: dimension -> folder holding ``<dimension>.html.j2`` and/or
    ``<dimension>.md.j2`` (see the ``register_report_sections`` hook)."""

    folders: Mapping[str, Path] = field(default_factory=dict)

    @classmethod
    def from_host(cls, host: PluginHost) -> SectionTemplates:
        return cls({name: Path(reg.obj) for name, reg in host.report_sections.items()})

    def template_for(self, dimension: str, fmt: str) -> str | None:
        folder = self.folders.get(dimension)
        if folder is not None and (folder / f"{dimension}.{fmt}.j2").is_file():
            return f"plugin-{dimension}/{dimension}.{fmt}.j2"
        return None


def make_environment(fmt: str, sections: SectionTemplates | None = None) -> jinja2.Environment:
    import jinja2

    sections = sections or SectionTemplates()
    prefixes = {f"plugin-{d}": jinja2.FileSystemLoader(str(p)) for d, p in sections.folders.items()}
    loader = jinja2.ChoiceLoader(
        [jinja2.FileSystemLoader(str(templates_dir())), jinja2.PrefixLoader(prefixes)]
    )
    env = jinja2.Environment(
        loader=loader,
        autoescape=fmt == "html",
        finalize=_md_finalize if fmt == "md" else None,
        undefined=jinja2.StrictUndefined,  # a typo in a template fails the test, not the card
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        num=fmt_num,
        ci=fmt_ci,
        pval=fmt_p,
        pct=fmt_pct,
        mean=fmt_mean,
        slug=slug,
        cell=md_escape,
        raw_md=MdSafe,
        path=_path_breaks if fmt == "html" else str,
        options=param_label,
    )
    env.globals.update(
        render_section=_section_renderer(env, fmt, sections), calibration_definition=CALIBRATION_DEFINITION
    )
    return env


def _path_breaks(path: object) -> str:
    """A file path that wraps after a ``/`` rather than mid-word (HTML: a ``<wbr>`` after each)."""
    import markupsafe

    return markupsafe.Markup("/<wbr>").join(markupsafe.escape(str(path)).split("/"))


def _section_renderer(env: jinja2.Environment, fmt: str, sections: SectionTemplates) -> Callable[..., str]:
    """``render_section(section)`` for the card templates: the plugin's template when it has one,
    else the built-in section for the shape of the records. A plugin template that fails is
    reported on the card and replaced by the built-in one: one plugin's bug never loses a card."""
    import markupsafe

    safe = markupsafe.Markup if fmt == "html" else MdSafe

    def render_section(section: DimensionSection) -> str:
        builtin = f"sections/{section.kind}.{fmt}.j2"
        custom = sections.template_for(section.row.dimension, fmt)
        if custom is not None:
            try:
                return safe(env.get_template(custom).render(section=section))
            except Exception as err:  # any template error: syntax, undefined, a filter's bug
                log.warning("report section of %s failed: %s", section.row.dimension, err)
                note = f"The plugin's section failed ({type(err).__name__}: {err}); built-in section shown."
                text = env.get_template(builtin).render(section=section)
                wrapped = (
                    f'<p class="note">{markupsafe.escape(note)}</p>\n'
                    if fmt == "html"
                    else f"{md_escape(note)}\n\n"
                )
                return safe(wrapped + text)
        return safe(env.get_template(builtin).render(section=section))

    return render_section


@dataclass(frozen=True)
class Rendered:
    text: str
    #: file name -> standalone SVG (Markdown cards link them; HTML cards inline them)
    figures: Mapping[str, str]


def card_figures(card: Card) -> list[Figure]:
    if isinstance(card, DiffCard):
        return list(card.figures)
    if isinstance(card, AuditCard | InvestigationCard):
        return list(card.figures)
    if isinstance(card, ComparisonCard):
        return [c.figure for c in card.comparisons if c.figure is not None]
    return [f for split in card.splits for f in split.figures]


def render(
    card: Card, fmt: str, sections: SectionTemplates | None = None, figure_prefix: str = ""
) -> Rendered:
    """Render ``card`` as ``html`` (one self-contained file) or ``md`` (+ SVG files to write
    next to it, named ``<figure_prefix><figure>.svg``)."""
    if fmt not in ("html", "md"):
        raise RhoAuditError(f"unknown report format {fmt!r}; use html or md.")
    env = make_environment(fmt, sections)
    figures = (
        {f"{figure_prefix}{f.name}.svg": f.standalone for f in card_figures(card)} if fmt == "md" else {}
    )
    text = env.get_template(f"{card.kind}.{fmt}.j2").render(card=card, figure_prefix=figure_prefix)
    return Rendered(text, figures)


def write_report(card: Card, fmt: str, out: Path, sections: SectionTemplates | None = None) -> list[Path]:
    """Write the card (and, for Markdown, its figures next to it); returns the files written."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rendered = render(card, fmt, sections, figure_prefix=f"{out.stem}-" if fmt == "md" else "")
    written = []
    for name, svg in sorted(rendered.figures.items()):
        written.append(atomic_write_text(out.parent / name, svg))
    written.insert(0, atomic_write_text(out, rendered.text))
    return written
