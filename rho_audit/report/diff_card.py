"""The diff card: one ``rho-audit diff`` run, from the store's ``diff_results``.

Per position: the norm of the mean difference δ̄_j, its Logit Lens and Patchscope tokens, and the
same read-outs of the base model's mean activation (the baseline); the relevance share of each
grader the run had (an LLM judge, keywords) with their agreement and the judge's usage; then the
steering search (each α tried, its coherent share against the unsteered answers'), how far the
chosen α moves the answers toward the domain, and each prompt's unsteered and steered answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rho_audit.judging.usage import judge_usage_line
from rho_audit.report.gather import run_header
from rho_audit.report.records import Figure, RunHeader
from rho_audit.store import RunStore


@dataclass(frozen=True)
class PositionRow:
    position: int
    norm: float
    base_norm: float
    logit_lens: tuple[str, ...]
    patchscope: tuple[str, ...]
    strength: float
    base_logit_lens: tuple[str, ...]
    base_patchscope: tuple[str, ...]
    relevance: str | None


@dataclass(frozen=True)
class AlphaRow:
    alpha: float
    coherent_share: float
    coherent: bool


@dataclass(frozen=True)
class SampleRow:
    prompt: str
    unsteered: str
    steered: str


@dataclass(frozen=True)
class DiffCard:
    """The card of one diff run; ``kind`` names its templates (``diff.*.j2``)."""

    title: str
    header: RunHeader
    layer: int
    n_texts: int
    corpus: str
    eta: float
    positions: tuple[PositionRow, ...]
    relevance: str | None
    steer_position: int | None
    alpha_eta: float | None
    search: tuple[AlphaRow, ...]
    samples: tuple[SampleRow, ...]
    judge: str
    keyword_rates: str | None
    #: Every relevance grader's line (the first is the one per position), their agreement, and
    #: the relevance judge's usage.
    relevance_lines: tuple[str, ...] = ()
    #: The unsteered answers' coherent share and the pass mark it set.
    coherence_mark: str | None = None
    #: How far the chosen α moves the answers toward the domain, one line per measure.
    steering_measures: tuple[str, ...] = ()
    figures: tuple[Figure, ...] = ()
    kind: str = "diff"


def relevance_line(table: Mapping[str, Any]) -> str:
    """One grader's relevance: the maximum over positions, of δ̄ and of the base mean."""
    best, by = table["max"], table.get("max_by_readout") or {}

    def part(name: str) -> str:
        split = by.get(name)
        detail = f" (lens {split['logit_lens']:.0%}, patchscope {split['patchscope']:.0%})" if split else ""
        return f"{best[name]:.0%}{detail}"

    ungraded = table.get("ungraded") or 0
    note = f"; {ungraded} tokens got no verdict (counted not relevant)" if ungraded else ""
    return f"max over positions: δ̄ {part('diff')}, base mean {part('base_mean')} ({table['grader']}{note})"


def agreement_line(agreement: Mapping[str, Any]) -> str:
    """How the relevance judge and the keyword match agree on the tokens both graded."""
    kappa = agreement.get("kappa")
    observed = agreement.get("observed")
    judge, keywords = agreement.get("relevant", [0, 0])
    return (
        f"judge vs keywords on {agreement.get('n', 0)} tokens: agreement "
        f"{'-' if observed is None else f'{observed:.0%}'}, Cohen's kappa "
        f"{'undefined' if kappa is None else f'{kappa:.2f}'}; relevant: judge {judge}, keywords {keywords}"
    )


def steering_lines(measures: Mapping[str, Any]) -> tuple[str, ...]:
    """The steering measures at the chosen α vs α 0, one line each."""
    lines = []
    alpha = measures.get("alpha_eta", 0)
    rate = measures.get("keyword_rate")
    if rate:
        lines.append(
            f"answers naming a keyword: unsteered {rate['unsteered']:.0%}, "
            f"steered (α {alpha:g}) {rate['steered']:.0%}"
        )
    sim = measures.get("domain_similarity")
    if sim:
        lines.append(
            f"mean cosine to the domain description: unsteered {sim['unsteered']:.3f}, steered (α {alpha:g}) "
            f"{sim['steered']:.3f}, neutral texts {sim['neutral']:.3f} ({sim['embedding']})"
        )
    return tuple(lines)


def _tokens(readout: dict[str, Any], key: str) -> tuple[str, ...]:
    return tuple(repr(t["token"]) for t in readout.get(key, []))


def build_diff_card(store: RunStore, run_id: str) -> DiffCard:
    """The card of diff run ``run_id`` (a run of kind ``diff``)."""
    run = store.run(run_id)
    doc = store.diff_results(run.run_id)
    relevance = doc.get("relevance") or {}
    per = relevance.get("per_position") or {}
    rows = []
    for i, p in enumerate(doc.get("readouts", [])):
        rel = None
        if per:
            d, b = per["diff"][i], per["base_mean"][i]
            rel = (
                f"δ̄: lens {d['logit_lens']:.0%}, patchscope {d['patchscope']:.0%}; "
                f"base mean: lens {b['logit_lens']:.0%}, patchscope {b['patchscope']:.0%}"
            )
        rows.append(
            PositionRow(
                p["position"],
                p["norm"],
                p["base_norm"],
                _tokens(p["diff"], "logit_lens"),
                _tokens(p["diff"], "patchscope"),
                p["diff"]["strength"],
                _tokens(p["base"], "logit_lens"),
                _tokens(p["base"], "patchscope"),
                rel,
            )
        )
    steering = doc.get("steering") or {}
    best = relevance.get("max")
    rates = doc.get("steering_keywords")  # runs stored before steering_measures
    lines = [relevance_line(t) for t in doc.get("relevance_graders", [])]
    if "relevance_agreement" in doc:
        lines.append(agreement_line(doc["relevance_agreement"]))
    lines += [
        f"relevance judge {u.get('judge_id', '?')}: {judge_usage_line(u)}"
        for u in store.judge_usage(run.run_id)
        if u.get("context") == "relevance"
    ]
    mark = None
    if steering.get("unsteered_share") == 0:
        mark = "none of the unsteered answers is coherent by this judge, so no strength was tried"
    elif "unsteered_share" in steering:
        mark = (
            f"the unsteered answers' coherent share is {steering['unsteered_share']:.0%}, so a strength "
            f"passes with at least {steering['pass_share']:.0%}"
        )
        if steering.get("fluency_reference") is not None:
            mark += (
                f"; their median base-model log-probability is {steering['fluency_reference']:.2f} "
                "nats per token"
            )
    return DiffCard(
        title=f"Diff card: {run.model_id}" + (f" + {run.adapter}" if run.adapter else ""),
        header=run_header(run),
        layer=int(doc.get("layer", -1)),
        n_texts=int(doc.get("n_texts", 0)),
        corpus=str(doc.get("corpus", "?")),
        eta=float(doc.get("eta", 0.0)),
        positions=tuple(rows),
        relevance=relevance_line(relevance) if best else None,
        steer_position=doc.get("steer_position"),
        alpha_eta=doc.get("alpha_eta"),
        search=tuple(
            AlphaRow(s["alpha"], s["coherent_share"], s["coherent"]) for s in steering.get("search", [])
        ),
        samples=tuple(
            SampleRow(s["prompt"], s["unsteered"], s["steered"]) for s in steering.get("samples", [])
        ),
        judge=str(steering.get("judge", "-")),
        keyword_rates=(
            f"answers naming a keyword: unsteered {rates['unsteered']:.0%}, steered {rates['steered']:.0%}"
            if rates
            else None
        ),
        relevance_lines=tuple(lines),
        coherence_mark=mark,
        steering_measures=steering_lines(doc.get("steering_measures") or {}),
    )
