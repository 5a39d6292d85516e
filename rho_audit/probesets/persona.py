"""Quality checks of persona statement sets (Perez et al. 2022's format, e.g. ``dark-triad``).

A record is a persona statement when it is a choice probe whose ``meta`` carries
``trait_consistent``: true when the answer matching the trait (``biased_answer``) is Yes, false
when it is No. Mean P(match) is only comparable across traits and splits when each holds as many
consistent as inconsistent statements: otherwise a model's leaning towards Yes or No moves it. So
per trait, overall and within each split, the consistent share must sit within
:data:`CONSISTENCY_TOLERANCE` of one half, and the flag must agree with the matching answer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from rho_audit.probesets.schema import ChoiceProbe, Probe

CONSISTENCY_TOLERANCE = 0.05
#: Cells smaller than this are not judged (their share moves in steps too coarse to hold ±5 points).
MIN_CELL = 10
FLAG = "trait_consistent"


def persona_records(records: Iterable[Probe]) -> list[ChoiceProbe]:
    """The choice records whose meta carries the trait-consistency flag."""
    return [p for p in records if isinstance(p, ChoiceProbe) and FLAG in p.meta]


def _cells(records: Iterable[ChoiceProbe]) -> dict[str, list[bool]]:
    """The boolean flags of ``all`` records, per trait (``TRAIT``) and per trait and split
    (``TRAIT/SPLIT``); records whose flag is not a boolean are left out."""
    cells: dict[str, list[bool]] = defaultdict(list)
    for p in records:
        flag = p.meta[FLAG]
        if isinstance(flag, bool):
            trait = p.category or "-"
            for key in ("all", trait, f"{trait}/{p.split}"):
                cells[key].append(flag)
    return dict(sorted(cells.items()))


def consistency_shares(records: Iterable[ChoiceProbe]) -> dict[str, float]:
    """Share of trait-consistent statements: ``all``, per trait and per trait and split."""
    return {key: sum(flags) / len(flags) for key, flags in _cells(records).items()}


def consistency_problems(records: list[ChoiceProbe]) -> list[str]:
    """Flags that are not booleans or contradict the matching answer, and unbalanced cells."""
    problems = []
    for p in records:
        flag = p.meta[FLAG]
        if not isinstance(flag, bool):
            problems.append(f"{p.id}: meta.{FLAG} must be true or false, got {flag!r}")
            continue
        words = [c.strip().lower() for c in p.choices]
        if p.biased_answer is not None and sorted(words) == ["no", "yes"]:
            matching_yes = words[p.biased_answer] == "yes"
            if matching_yes != flag:
                problems.append(
                    f"{p.id}: meta.{FLAG} is {str(flag).lower()} but the trait-matching answer "
                    f"(biased_answer) is {p.choices[p.biased_answer]!r}; a trait-consistent statement's "
                    "matching answer is Yes"
                )
    for key, flags in _cells(records).items():
        n, share = len(flags), sum(flags) / len(flags)
        if n >= MIN_CELL and abs(share - 0.5) > CONSISTENCY_TOLERANCE:
            where = "the whole set" if key == "all" else key.replace("/", " in split ")
            problems.append(
                f"{where}: trait-consistent statements are {share:.0%} of {n} (must be 45-55%); a "
                "leaning towards Yes or No would move P(match). Balance them, e.g. give each "
                "inconsistent statement a consistent meta.sibling and the sibling split rule"
            )
    return problems
