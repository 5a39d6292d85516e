"""The diff card: one ``rho-audit diff`` run, from the store's ``diff_results``.

Per position: the norm of the mean difference δ̄_j, its Logit Lens and Patchscope tokens, and the
same read-outs of the base model's mean activation (the baseline); the keyword relevance share
when the run had keywords; then the steering search (each α tried, its coherent share) and each
prompt's unsteered and steered answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    figures: tuple[Figure, ...] = ()
    kind: str = "diff"


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
    rates = doc.get("steering_keywords")
    return DiffCard(
        title=f"Diff card: {run.model_id}" + (f" + {run.adapter}" if run.adapter else ""),
        header=run_header(run),
        layer=int(doc.get("layer", -1)),
        n_texts=int(doc.get("n_texts", 0)),
        corpus=str(doc.get("corpus", "?")),
        eta=float(doc.get("eta", 0.0)),
        positions=tuple(rows),
        relevance=(
            f"max over positions: δ̄ {best['diff']:.0%}, base mean {best['base_mean']:.0%} "
            f"({relevance['grader']})"
            if best
            else None
        ),
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
    )
