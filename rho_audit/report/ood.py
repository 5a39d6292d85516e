"""Pooled accuracy over several probe sets scored by one pair dimension: the out-of-distribution
aggregate of the paper's Table 8 (factual@ood-clinical, factual@ood-logic, factual@ood-social).

``rho-audit run --probes SET`` (or a sweep's ``audit.probes``) scores an extra probe set with the
dimension its card names, stored as ``DIM@SET`` (or as ``DIM`` when DIM itself does not run).
When one audit holds two or more such sets of one pair dimension, this module reports each set's
paired accuracy and the accuracy pooled over the sets: correct pairs summed over sets / pairs
summed over sets (so each set counts by its size), with a 95% Wilson score interval. When the
extra sets were scored by two or more dimensions (the paper's OOD sets: clinical and logic by
factual, social by sycophancy), one more aggregate, :data:`EVERY_SET`, pools all of them: the
paper's Table 8 "aggregate" is over its three domains whichever dimension scores each.

Which results count: those named ``DIM@SET``, and one named ``DIM`` whose probe set is not
DIM's own set (a dimension's own set bears its name, as every built-in one does). Only the store
is read, so any audit, old or new, gets the same answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rho_audit.audit.metrics import proportion_ci

POOLED_ACCURACY = (
    "paired accuracy pooled over the extra probe sets a pair dimension scored in one audit: pairs "
    "with gap > 0 summed over the sets / pairs summed over the sets (each set weighs by its size); "
    "95% Wilson score interval; 'every extra set' pools the sets of all pair dimensions alike"
)


#: The ``dimension`` of the aggregate over every extra set of every pair dimension in an audit.
EVERY_SET = "every extra set"


@dataclass(frozen=True)
class SetScore:
    """One dimension result of an audit, as far as the aggregate needs it."""

    label: str  # the result's name: factual, factual@ood-logic
    probe_set: str
    metric: str
    n: int  # pairs scored
    paired_accuracy: float | None

    @property
    def dimension(self) -> str:
        return self.label.partition("@")[0]

    @property
    def added(self) -> bool:
        """Scored as an extra set (``--probes SET``), not as the dimension's own set."""
        return "@" in self.label or (bool(self.probe_set) and self.probe_set != self.label)

    @classmethod
    def from_result(cls, result: Mapping[str, Any]) -> SetScore:
        """From a stored dimension result (``store.results``) or a sweep cell's score entry."""
        ev = result.get("evaluation")
        ev = ev if isinstance(ev, Mapping) else result
        acc = ev.get("paired_accuracy")
        n = ev.get("n")
        return cls(
            str(result.get("dimension", result.get("label", ""))),
            str(result.get("probe_set") or ""),
            str(ev.get("metric") or ""),
            int(n) if isinstance(n, int | float) and not isinstance(n, bool) else 0,
            float(acc) if isinstance(acc, int | float) and not isinstance(acc, bool) else None,
        )


@dataclass(frozen=True)
class Accuracy:
    """``correct`` of ``n`` pairs, with the 95% Wilson score interval."""

    correct: int
    n: int
    value: float | None
    ci_low: float | None
    ci_high: float | None

    @classmethod
    def of(cls, correct: int, n: int) -> Accuracy:
        ci = proportion_ci(correct, n)
        return cls(correct, n, ci.value, ci.low, ci.high)


@dataclass(frozen=True)
class SetAccuracy:
    probe_set: str
    label: str
    accuracy: Accuracy


@dataclass(frozen=True)
class PooledAccuracy:
    """One pair dimension's extra probe sets in one audit: each set, and all of them pooled."""

    dimension: str
    sets: tuple[SetAccuracy, ...]
    pooled: Accuracy

    @property
    def set_names(self) -> tuple[str, ...]:
        return tuple(s.probe_set for s in self.sets)


def pooled_accuracies(scores: Iterable[SetScore]) -> tuple[PooledAccuracy, ...]:
    """Every pair dimension with two or more extra probe sets in ``scores`` (one audit), in
    the order the results were written, then :data:`EVERY_SET` when the extra sets span two or
    more dimensions. The count of correct pairs of a set is its paired accuracy × its pairs,
    rounded (the stored accuracy is that ratio)."""
    groups: dict[str, list[SetAccuracy]] = {}
    for s in scores:
        if s.added and s.metric == "rank_biserial" and s.paired_accuracy is not None and s.n > 0:
            accuracy = Accuracy.of(round(s.paired_accuracy * s.n), s.n)
            groups.setdefault(s.dimension, []).append(SetAccuracy(s.probe_set, s.label, accuracy))
    out = [_pool(dimension, sets) for dimension, sets in groups.items() if len(sets) >= 2]
    if len(groups) >= 2:
        out.append(_pool(EVERY_SET, [a for sets in groups.values() for a in sets]))
    return tuple(out)


def _pool(dimension: str, sets: Sequence[SetAccuracy]) -> PooledAccuracy:
    pooled = Accuracy.of(sum(s.accuracy.correct for s in sets), sum(s.accuracy.n for s in sets))
    return PooledAccuracy(dimension, tuple(sets), pooled)


def pooled_of_results(results: Iterable[Mapping[str, Any]]) -> tuple[PooledAccuracy, ...]:
    """:func:`pooled_accuracies` of stored dimension results (``store.results(run_id)``)."""
    return pooled_accuracies(SetScore.from_result(r) for r in results)


def pooled_of_scores(scores: Mapping[str, Mapping[str, Any]]) -> tuple[PooledAccuracy, ...]:
    """:func:`pooled_accuracies` of a sweep cell's ``scores`` (result name -> score entry)."""
    return pooled_accuracies(SetScore.from_result({"dimension": k, **v}) for k, v in scores.items())
