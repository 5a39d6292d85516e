"""The marker-stripped persona discriminator: can a judge tell the source persona's completions from
a bystander's once the marker is removed from both?

A judge sees pairs (one source completion, one bystander completion to the same question, in a
seeded random order) through the ``persona-discriminator`` rubric shipped here
(:data:`RUBRIC_PATH`) and answers A or B. Accuracy over the judged pairs, with a Wilson 95% CI, is
compared with the seed's 70% threshold (chance is 50%).

A judge that prefers a position scores the share of pairs the order put the source there, which
can look like a measurement. ``orders="both"`` asks every pair in both orders (twice the calls):
a pair counts only when both answers pick the same completion, and the share of pairs answered by
position instead is reported beside the accuracy.

Any judge plugin that grades with a rubric works (``LLMJudge.judge_fields``: the built-in
``claude`` and ``local``, or a third party's), given this rubric, e.g. ``--judge local
--judge-option rubric=<RUBRIC_PATH>``; its verdicts are cached and budgeted as usual.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rho_audit.api import NON_VERDICTS, Judge, RhoAuditError
from rho_audit_personas.leakage_stats import Rate, wilson

__all__ = [
    "FIELDS",
    "LABELS",
    "RUBRIC_PATH",
    "THRESHOLD",
    "CompletionPair",
    "DiscriminatorResult",
    "discriminate",
    "judge_misfit",
    "sample_pairs",
]

#: The rubric, by path (judges know rubrics by name only in their own folder).
RUBRIC_PATH = Path(__file__).parent / "rubrics" / "persona-discriminator.j2"
#: The rubric fields this module fills, and the labels it reads.
FIELDS = frozenset({"prompt", "persona", "marker", "completion_a", "completion_b"})
LABELS = frozenset({"A", "B"})
#: The seed's bar: at or above it the source persona is still discriminable without the marker.
THRESHOLD = 0.70


@dataclass(frozen=True)
class CompletionPair:
    """A source completion and a bystander completion to the same question."""

    prompt: str
    source: str
    bystander: str
    bystander_persona: str


@dataclass(frozen=True)
class DiscriminatorResult:
    """Accuracy over the pairs the judge decided (errors and unreadable answers left out)."""

    accuracy: Rate
    pairs: int
    #: Share of the decided answers that were "A": far from 0.5, the judge leans on a position
    #: rather than the completions (the order is random, so A is right half the time).
    answered_a: float | None = None
    #: With both orders: the share of pairs (both answers readable) whose two answers named the
    #: same position, so followed the order, not the completions. None with one order.
    inconsistent: float | None = None
    threshold: float = THRESHOLD

    @property
    def above_threshold(self) -> bool | None:
        """Whether the accuracy reaches :attr:`threshold` (None when nothing was judged)."""
        return None if self.accuracy.value is None else self.accuracy.value >= self.threshold


def sample_pairs(
    source: Mapping[str, Sequence[str]],
    bystanders: Mapping[str, Mapping[str, Sequence[str]]],
    n: int,
    seed: int,
) -> list[CompletionPair]:
    """``n`` pairs, each a random question, one of the source's completions to it and one of a
    random bystander's (``source``: question → completions; ``bystanders``: persona → question →
    completions). Seeded; questions only the source answered are skipped."""
    import numpy as np

    rng = np.random.default_rng(seed)
    names = sorted(bystanders)
    questions = [q for q in source if source[q] and any(bystanders[b].get(q) for b in names)]
    if not questions or n <= 0:
        return []
    pairs = []
    for _ in range(n):
        q = questions[rng.integers(len(questions))]
        options = [b for b in names if bystanders[b].get(q)]
        b = options[rng.integers(len(options))]
        src, other = source[q], bystanders[b][q]
        pairs.append(CompletionPair(q, src[rng.integers(len(src))], other[rng.integers(len(other))], b))
    return pairs


def judge_misfit(judge: Judge) -> str | None:
    """Why ``judge`` cannot discriminate (None when it can): it must grade with a rubric whose
    labels are A and B and whose fields this module fills."""
    rubric = getattr(judge, "rubric", None)
    if rubric is None or not callable(getattr(judge, "judge_fields", None)):
        return f"judge {judge.name!r} does not grade with a rubric"
    if set(rubric.labels) != LABELS or not set(rubric.fields) <= FIELDS:
        return (
            f"judge {judge.name!r} grades with rubric {rubric.name!r} (labels {', '.join(rubric.labels)}), "
            f"not a persona discriminator; pass --judge-option rubric={RUBRIC_PATH}"
        )
    return None


def discriminate(
    judge: Judge,
    pairs: Sequence[CompletionPair],
    persona: str,
    marker: str,
    seed: int,
    orders: Literal["random", "both"] = "random",
) -> DiscriminatorResult:
    """Ask ``judge`` which completion of each pair is the source persona's (``persona``: its
    description, e.g. the system prompt), the marker stripped from both by the rubric; the source
    completion is A or B at random (seeded) per pair, or, with ``orders="both"``, each pair is asked
    both ways round and counts only when the two answers agree."""
    import numpy as np

    misfit = judge_misfit(judge)
    if misfit is not None:
        raise RhoAuditError(f"persona discriminator: {misfit}.")
    rng = np.random.default_rng(seed)
    source_first = rng.random(len(pairs)) < 0.5
    if orders == "both":
        return _both_orders(judge, pairs, persona, marker, source_first)
    verdicts = judge.judge_fields(_records(pairs, persona, marker, source_first)) if pairs else []  # type: ignore[attr-defined]
    decided = [
        (v.label, first)
        for v, first in zip(verdicts, source_first, strict=True)
        if v.label not in NON_VERDICTS and not v.error
    ]
    right = sum(label == ("A" if first else "B") for label, first in decided)
    answered_a = sum(label == "A" for label, _ in decided) / len(decided) if decided else None
    return DiscriminatorResult(wilson(right, len(decided)), len(pairs), answered_a)


def _both_orders(
    judge: Judge, pairs: Sequence[CompletionPair], persona: str, marker: str, source_first: Any
) -> DiscriminatorResult:
    """Each pair in its seeded order, then swapped: right when both answers pick the source, wrong
    when both pick the bystander, inconsistent (left out) when both name the same position."""
    flipped = [not first for first in source_first]
    records = _records(pairs, persona, marker, source_first) + _records(pairs, persona, marker, flipped)
    verdicts = judge.judge_fields(records) if pairs else []  # type: ignore[attr-defined]
    n = len(pairs)
    right = wrong = inconsistent = 0
    labels: list[str] = []
    for i, first in enumerate(source_first):
        one, two = verdicts[i], verdicts[n + i]
        if any(v.label in NON_VERDICTS or v.error for v in (one, two)):
            continue
        labels += [one.label, two.label]
        picked_source = (one.label == ("A" if first else "B"), two.label == ("B" if first else "A"))
        if all(picked_source):
            right += 1
        elif not any(picked_source):
            wrong += 1
        else:
            inconsistent += 1
    answered = right + wrong + inconsistent
    return DiscriminatorResult(
        wilson(right, right + wrong),
        n,
        answered_a=labels.count("A") / len(labels) if labels else None,
        inconsistent=inconsistent / answered if answered else None,
    )


def _records(
    pairs: Sequence[CompletionPair], persona: str, marker: str, source_first: Sequence[bool]
) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for pair, first in zip(pairs, source_first, strict=True):
        a, b = (pair.source, pair.bystander) if first else (pair.bystander, pair.source)
        records.append(
            {
                "prompt": pair.prompt,
                "persona": persona,
                "marker": marker,
                "completion_a": a,
                "completion_b": b,
            }
        )
    return records
