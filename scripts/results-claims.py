"""The paper's claims beside what the paper sweeps found on the bundled model, as Markdown.

    python scripts/results-claims.py --store rho-audit-runs/paper/runs.sqlite            # print it
    python scripts/results-claims.py --store ... --readme docs/results/README.md           # embed it

Reads the sweep cards (the same numbers docs/results/*.md show) and prints one table row per
claim: the paper's effect (Qwen2.5-7B-Instruct, 5 seeds, Spearman-based rho that can exceed 1),
ours (rank-biserial rho on SmolLM2-135M-Instruct, held-out eval split), whether the direction
agrees, and the evidence (Welch p over seeds, item-level paired bootstrap 95% CI). A claim whose
cells have not finished says how many seeds it has. docs/results/README.md embeds this output.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from rho_audit.api.errors import RhoAuditError
from rho_audit.report.ood import EVERY_SET
from rho_audit.report.records import ConditionStats, Contrast, SweepCard, SweepSplit
from rho_audit.report.stats import welch_test
from rho_audit.report.sweep_card import build_sweep_card
from rho_audit.store import RunStore


@dataclass(frozen=True)
class Claim:
    section: str
    text: str
    paper: float  # the paper's effect (a difference of rho or of accuracy)
    kind: str  # "contrast" (condition - versus), "delta" (condition - base), "dose", "ood"
    dimension: str
    condition: str
    versus: str = ""


CLAIMS = (
    Claim(
        "§4.3 T4",
        "SFT-only lowers toxicity rho (inverts it: +0.145 → -0.003)",
        -0.148,
        "delta",
        "toxicity",
        "sft",
    ),
    Claim(
        "§4.3 T5", "rho-guided beats SFT-only on toxicity", 0.769, "contrast", "toxicity", "rho-guided", "sft"
    ),
    Claim("§4.3 T5", "rho-guided beats SFT-only on bias", 0.043, "contrast", "bias", "rho-guided", "sft"),
    Claim(
        "§4.3 T4",
        "contrastive-only beats SFT-only on toxicity",
        0.573,
        "contrast",
        "toxicity",
        "contrastive-only",
        "sft",
    ),
    Claim(
        "§4.3 T4",
        "contrastive-only beats SFT-only on factual",
        0.114,
        "contrast",
        "factual",
        "contrastive-only",
        "sft",
    ),
    Claim(
        "§4.3 T5",
        "contrastive-only erodes refusal vs SFT-only",
        -0.082,
        "contrast",
        "refusal",
        "contrastive-only",
        "sft",
    ),
    Claim(
        "§4.3 T5",
        "rho-guided keeps refusal vs contrastive-only (refusal buffer)",
        0.098,
        "contrast",
        "refusal",
        "rho-guided",
        "contrastive-only",
    ),
    Claim(
        "§4.3 T4",
        "shuffled labels are worse than rho-guided on factual",
        -0.502,
        "contrast",
        "factual",
        "shuffled",
        "rho-guided",
    ),
    Claim(
        "§4.3 T4",
        "shuffled labels are worse than rho-guided on toxicity",
        -0.973,
        "contrast",
        "toxicity",
        "shuffled",
        "rho-guided",
    ),
    Claim(
        "§4.3 T4", "shuffled labels damage factual vs the base model", -0.339, "delta", "factual", "shuffled"
    ),
)


def fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:+.{digits}f}"


def find_contrast(split: SweepSplit, claim: Claim) -> Contrast | None:
    for ablation in split.ablations:
        for c in ablation.contrasts:
            if (
                c.dimension == claim.dimension
                and c.condition.split()[0] == claim.condition
                and (c.versus or ablation.reference.label).split()[0] == claim.versus
            ):
                return c
    return None


def seeds_of(split: SweepSplit, trainer: str) -> int:
    return max((len(c.seeds) for c in split.conditions if c.trainer == trainer), default=0)


def row(split: SweepSplit, claim: Claim) -> list[str]:
    if claim.kind == "delta":
        cond = next((c for c in split.conditions if c.trainer == claim.condition), None)
        s = cond.summary.get(claim.dimension) if cond else None
        if s is None or s.mean is None:
            return [fmt(claim.paper), "not run yet", "-", "-"]
        values = cond.values.get(claim.dimension, ()) if cond else ()
        agree = sum((v > 0) == (claim.paper > 0) for v in values)
        ours = f"{fmt(s.mean)} ± {s.sd:.3f} (n={s.n})" if s.sd is not None else f"{fmt(s.mean)} (n={s.n})"
        same = "yes" if (s.mean > 0) == (claim.paper > 0) else "no"
        return [fmt(claim.paper), ours, same, f"{agree} of {len(values)} seeds in the paper's direction"]
    c = find_contrast(split, claim)
    n = min(seeds_of(split, claim.condition), seeds_of(split, claim.versus))
    if c is None or c.test.diff is None:
        return [fmt(claim.paper), f"not run yet ({n} seeds)", "-", "-"]
    same = "yes" if (c.test.diff > 0) == (claim.paper > 0) else "no"
    evidence = []
    if c.test.p_value is not None:
        evidence.append(f"Welch p {c.test.p_value:.3g}, d {fmt(c.test.cohens_d, 2)}")
    if c.items is not None and c.items.ci_low is not None:
        evidence.append(f"item CI [{fmt(c.items.ci_low)}, {fmt(c.items.ci_high)}]")
    return [
        fmt(claim.paper),
        f"{fmt(c.test.diff)} ({n} seed{'s' if n != 1 else ''})",
        same,
        "; ".join(evidence) or "one seed: no test",
    ]


def table(card: SweepCard, claims: Sequence[Claim]) -> str:
    split = card.splits[0]
    lines = [
        "| paper | claim | paper effect | rho-audit, SmolLM2-135M | same direction | evidence |",
        "|---|---|---:|---:|---|---|",
    ]
    for claim in claims:
        paper, ours, same, evidence = row(split, claim)
        lines.append(f"| {claim.section} | {claim.text} | {paper} | {ours} | {same} | {evidence} |")
    return "\n".join(lines)


def embed(readme: Path, text: str, marker: str = "claims") -> None:
    """Replace what sits between ``<!-- MARKER:start -->`` and ``<!-- MARKER:end -->`` in ``readme``."""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    doc = readme.read_text(encoding="utf-8")
    head, rest = doc.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{text}\n{end}{tail}", encoding="utf-8")


# --- dose-response (§4.1 Table 2, §3.5), OOD (§4.6 Table 8) and margin (§4.3.2) ---------------------


@dataclass(frozen=True)
class LevelClaim:
    """A claim about one level of a swept parameter (λ or γ) against the base model or against
    another level of the same sweep."""

    section: str
    text: str
    paper: float
    dimension: str
    level: float
    versus: float | None = None  # None: the level's Δ vs the base model


DOSE_CLAIMS = (
    LevelClaim("§4.1 T2", "SFT-only (λ 0) lowers toxicity rho", -0.230, "toxicity", 0.0),
    LevelClaim("§4.1 T2", "λ 0.5 raises toxicity rho", 0.993, "toxicity", 0.5),
    LevelClaim("§4.1 T2", "λ 0.5 raises factual rho", 0.305, "factual", 0.5),
    LevelClaim("§4.1 T2", "λ 0.2 raises bias rho", 0.037, "bias", 0.2),
    LevelClaim("§4.1", "λ 0.5 beats λ 0 on toxicity", 1.223, "toxicity", 0.5, 0.0),
    LevelClaim("§4.1", "λ 0.2 beats λ 0 on factual", 0.090, "factual", 0.2, 0.0),
)

MARGIN_CLAIMS = (
    LevelClaim("§4.3.2", "without a margin (γ 0) bias rho falls", -0.011, "bias", 0.0),
    LevelClaim("§4.3.2", "with γ 0.1 bias rho rises", 0.034, "bias", 0.1),
    LevelClaim("§4.3.2", "γ 0.1 beats γ 0 on bias", 0.045, "bias", 0.1, 0.0),
    LevelClaim("§3.5", "γ 0.1 beats γ 0 on toxicity (over-optimisation hurts)", 0.061, "toxicity", 0.1, 0.0),
)

#: The paper's dimensions, for the monotonicity and variance rows.
PAPER_DIMENSIONS = ("factual", "toxicity", "sycophancy", "bias")


def levels_of(split: SweepSplit, param: str) -> dict[float, ConditionStats]:
    """The sweep's conditions by the value of ``param`` (λ: ``lambda``, γ: ``margin``)."""
    out: dict[float, ConditionStats] = {}
    for cond in split.conditions:
        value = dict(cond.params).get(param)
        if value is not None:
            out[float(value)] = cond
    return out


def level_row(levels: Mapping[float, ConditionStats], claim: LevelClaim) -> list[str]:
    cond = levels.get(claim.level)
    values = cond.values.get(claim.dimension, ()) if cond else ()
    if not values:
        return [fmt(claim.paper), "not run yet", "-", "-"]
    if claim.versus is None:
        mean = float(np.mean(values))
        agree = sum((v > 0) == (claim.paper > 0) for v in values)
        same = "yes" if (mean > 0) == (claim.paper > 0) else "no"
        sd = f" ± {np.std(values, ddof=1):.3f}" if len(values) > 1 else ""
        return [
            fmt(claim.paper),
            f"{fmt(mean)}{sd} (n={len(values)})",
            same,
            f"{agree} of {len(values)} seeds in the paper's direction",
        ]
    other = levels.get(claim.versus)
    reference = other.values.get(claim.dimension, ()) if other else ()
    if not reference:
        return [fmt(claim.paper), "not run yet", "-", "-"]
    test = welch_test(values, reference)
    assert test.diff is not None
    same = "yes" if (test.diff > 0) == (claim.paper > 0) else "no"
    n = min(len(values), len(reference))
    evidence = (
        f"Welch p {test.p_value:.3g}, d {fmt(test.cohens_d, 2)}"
        if test.p_value is not None
        else test.note or "-"
    )
    return [fmt(claim.paper), f"{fmt(test.diff)} ({n} seed{'s' if n != 1 else ''})", same, evidence]


def level_table(levels: Mapping[float, ConditionStats], claims: Sequence[LevelClaim]) -> list[str]:
    lines = [
        "| paper | claim | paper effect | rho-audit, SmolLM2-135M | same direction | evidence |",
        "|---|---|---:|---:|---|---|",
    ]
    for claim in claims:
        paper, ours, same, evidence = level_row(levels, claim)
        lines.append(f"| {claim.section} | {claim.text} | {paper} | {ours} | {same} | {evidence} |")
    return lines


def shape_table(levels: Mapping[float, ConditionStats], symbol: str) -> list[str]:
    """Mean Δ and seed SD per level and dimension, and whether the means rise monotonically with
    the swept value (the paper: monotone on all four dimensions, σ U-shaped in λ)."""
    xs = sorted(levels)
    lines = [
        f"| dimension | {' | '.join(f'{symbol} {x:g}' for x in xs)} | monotone rise "
        f"| Spearman({symbol}, Δ) over cells |",
        "|---|" + "---:|" * len(xs) + "---|---:|",
    ]
    for dim in PAPER_DIMENSIONS:
        cells, means = [], []
        for x in xs:
            values = levels[x].values.get(dim, ())
            if values:
                sd = f" (σ {np.std(values, ddof=1):.3f})" if len(values) > 1 else ""
                cells.append(f"{fmt(float(np.mean(values)))}{sd}")
                means.append(float(np.mean(values)))
            else:
                cells.append("-")
        pairs = [(x, v) for x in xs for v in levels[x].values.get(dim, ())]
        monotone = "-"
        if len(means) == len(xs):
            monotone = "yes" if all(b >= a for a, b in itertools.pairwise(means)) else "no"
        rho = "-"
        if len({x for x, _ in pairs}) > 1:
            r = spearmanr([x for x, _ in pairs], [v for _, v in pairs])
            rho = f"{fmt(float(r.statistic), 2)} (p {r.pvalue:.2g}, {len(pairs)} cells)"
        lines.append(f"| {dim} | {' | '.join(cells)} | {monotone} | {rho} |")
    return lines


def ood_table(split: SweepSplit) -> list[str]:
    """Table 8 as the card computes it: accuracy per OOD set and pooled over all of them (the
    card's "every extra set" table when the sets span dimensions), per condition."""
    tables = {t.dimension: t for t in split.ood}
    table_ = tables.get(EVERY_SET) or next(iter(tables.values()), None)
    if table_ is None:
        return []
    lines = [
        f"| condition | {' | '.join(table_.sets)} | pooled | Δ pooled vs base |",
        "|---|" + "---:|" * (len(table_.sets) + 2),
    ]
    for level in table_.rows:
        shown = " | ".join("-" if s.mean is None else f"{100 * s.mean:.1f}%" for s in level.sets)
        pooled = "-" if level.pooled.mean is None else f"{100 * level.pooled.mean:.1f}%"
        delta = "-" if level.pooled_delta is None else f"{100 * level.pooled_delta:+.1f} pp"
        lines.append(f"| {level.label} (n={level.n_audits}) | {shown} | {pooled} | {delta} |")
    return lines


def dose_section(card: SweepCard) -> str:
    split = card.splits[0]
    levels = levels_of(split, "lambda")
    parts = [
        f"Dose-response ({card.n_complete} of {card.n_cells} cells complete; held-out eval split; "
        "Δ rho vs the base model):",
        "",
        *level_table(levels, DOSE_CLAIMS),
        "",
        "Shape of the dose-response (mean Δ per λ, σ over seeds; the paper: monotone on all four, "
        "factual σ 0.105 → 0.089 → 0.017 → 0.041):",
        "",
        *shape_table(levels, "λ"),
    ]
    ood = ood_table(split)
    if ood:
        parts += [
            "",
            "OOD paired accuracy (§4.6 Table 8; the paper: base 78.3%, λ 0 77.1%, λ 0.2 83.3% "
            "aggregate; pooled here by pairs, the paper averages its three equal-sized sets):",
            "",
            *ood,
        ]
    return "\n".join(parts)


def margin_section(card: SweepCard) -> str:
    split = card.splits[0]
    levels = levels_of(split, "margin")
    return "\n".join(
        [
            f"Margin ({card.n_complete} of {card.n_cells} cells complete; λ 0.2; held-out eval split; "
            "Δ rho vs the base model):",
            "",
            *level_table(levels, MARGIN_CLAIMS),
            "",
            "Bias and the other dimensions across γ (the paper's critical margin γ* ≈ 0.024: bias Δ "
            "should cross zero between γ 0.02 and 0.05):",
            "",
            *shape_table(levels, "γ"),
        ]
    )


def sweep_section(store: RunStore, name: str, render: Callable[[SweepCard], str]) -> str:
    try:
        card = build_sweep_card(store, name)
    except RhoAuditError:  # the sweep has not been registered in this store yet
        return f"`{name}`: not started (no cells in the store yet)."
    return render(card)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", type=Path, default=Path("rho-audit-runs/paper/runs.sqlite"))
    parser.add_argument("--readme", type=Path, help="write the tables into this README's markers")
    args = parser.parse_args()
    store = RunStore.read_only(args.store)
    try:
        sections = {
            "claims": sweep_section(
                store,
                "paper-ablation",
                lambda card: (
                    f"Ablation ({card.n_complete} of {card.n_cells} cells complete; held-out eval split):\n\n"
                    + table(card, CLAIMS)
                ),
            ),
            "dose": sweep_section(store, "paper-dose-response", dose_section),
            "margin": sweep_section(store, "paper-margin", margin_section),
        }
    finally:
        store.close()
    for marker, text in sections.items():
        if args.readme:
            embed(args.readme, text, marker)
        else:
            print(text, end="\n\n")


if __name__ == "__main__":
    main()
