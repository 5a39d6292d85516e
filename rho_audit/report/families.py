"""Families of per-group secondary figures (``asr[dan]``, ``p_match[narcissism]``), charted as
bars with their 95% CIs.

A dimension stores a figure per group as ``NAME[group]`` with its CI under the names
:func:`rho_audit.api.results.figure_with_ci` gives; every family whose members all carry both
bounds becomes one bar chart on the audit card, so a third-party dimension gets its chart by
naming its figures, without code on the card side.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rho_audit._util.naming import slug
from rho_audit.api.results import CI_HIGH_SUFFIX, CI_LOW_SUFFIX
from rho_audit.report import charts
from rho_audit.report.records import DimensionRow, Figure

_MEMBER = re.compile(r"^(?P<name>[^\[\]]+)\[(?P<group>[^\[\]]+)\]$")
#: How the cards name the families of the built-in dimensions (others show their figure name).
FAMILY_LABELS = {
    "asr": "attack success rate (ASR; lower is better)",
    "p_match": "P(match)",
}


@dataclass(frozen=True)
class Member:
    """One group's figure and its 95% CI."""

    group: str
    value: float | None
    low: float | None
    high: float | None


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def families(secondary: Iterable[tuple[str, float | None]]) -> dict[str, tuple[Member, ...]]:
    """``NAME`` -> its members in stored order, for every family whose members all carry both CI
    bounds (a family with an unbounded member is left to the figures table)."""
    values = dict(secondary)
    found: dict[str, list[Member]] = {}
    complete: dict[str, bool] = {}
    for key, value in values.items():
        match = _MEMBER.match(key)
        if match is None:
            continue
        name = match["name"]
        low, high = values.get(key + CI_LOW_SUFFIX), values.get(key + CI_HIGH_SUFFIX)
        bounded = key + CI_LOW_SUFFIX in values and key + CI_HIGH_SUFFIX in values
        complete[name] = complete.get(name, True) and bounded
        found.setdefault(name, []).append(Member(match["group"], _number(value), _number(low), _number(high)))
    return {name: tuple(members) for name, members in found.items() if complete[name]}


def family_figures(rows: Sequence[DimensionRow]) -> tuple[Figure, ...]:
    """One bar chart with CIs per family of each dimension's secondary figures."""
    figures = []
    for row in rows:
        for name, members in families(row.secondary).items():
            label = FAMILY_LABELS.get(name, name)
            title = f"{row.dimension}: {label} with 95% CI"
            numbers = [v for m in members for v in (m.value, m.low, m.high) if v is not None]
            domain = (0.0, 1.0) if numbers and all(0.0 <= v <= 1.0 for v in numbers) else None
            bars = [charts.CIBar(m.group, m.value, m.low, m.high) for m in members]
            figures.append(
                Figure(
                    slug(f"{row.dimension}-{name}"),
                    title,
                    f"Bars: {label} per group; whiskers: its 95% CI, as the dimension defines it "
                    f"({row.dimension}'s section says how).",
                    charts.ci_bar_chart(bars, label, title, domain),
                )
            )
    return tuple(figures)
