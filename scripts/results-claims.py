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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rho_audit.report.records import Contrast, SweepCard, SweepSplit
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", type=Path, default=Path("rho-audit-runs/paper/runs.sqlite"))
    parser.add_argument("--readme", type=Path, help="write the table into this README's claims markers")
    args = parser.parse_args()
    store = RunStore.read_only(args.store)
    try:
        card = build_sweep_card(store, "paper-ablation")
        text = (
            f"Ablation ({card.n_complete} of {card.n_cells} cells complete; held-out eval split):\n\n"
            + table(card, CLAIMS)
        )
    finally:
        store.close()
    if args.readme:
        embed(args.readme, text)
    else:
        print(text)


if __name__ == "__main__":
    main()
