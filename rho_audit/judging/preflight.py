"""Before any model work: apply the run's judge budget and check the judge can do the run's job.

A wrong rubric, a missing key or an unreachable endpoint fails here in seconds, not after a full
generation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from rho_audit.api.errors import JudgeError
from rho_audit.api.judges import Judge


def configure_judge(
    judge: Judge, max_usd: float | None, max_calls: int | None, warn: Callable[[str], None] | None = None
) -> None:
    """Apply the run's budget, show the judge's warnings through ``warn``, and check the judge can
    run (rule-based judges accept all of it and have nothing to check)."""
    judge.set_budget(max_usd, max_calls)
    if warn is not None:
        judge.warn = warn
    judge.check_ready()


def check_judge_fits(judge: Judge, needs: Mapping[str, Sequence[str]]) -> None:
    """Before any model work: refuse a judge whose labels cannot express what a dimension
    counts, then preflight the judge once if any dimension uses it.

    ``needs`` maps each planned dimension to its ``judge_labels`` (empty: it uses no judge). A
    generation dimension counts ``refused``; with a rubric that has no such label every reply
    would silently count as answered.
    """
    labels = tuple(judge.labels)
    for dimension, needed in needs.items():
        missing = [label for label in needed if label not in labels]
        if missing:
            rubric = getattr(judge, "rubric", None)
            source = f"its rubric {rubric.name!r}" if rubric is not None else "it"
            raise JudgeError(
                f"dimension {dimension!r} counts the judge label(s) {', '.join(map(repr, missing))}, but "
                f"judge {judge.name!r} cannot give them: {source} has the labels {', '.join(labels)}. "
                "Choose a rubric that declares them (e.g. --judge-option rubric=refusal) or another judge."
            )
    if any(needs.values()):
        judge.preflight()
