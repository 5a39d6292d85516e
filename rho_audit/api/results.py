"""Typed records for what an audit produces: per-probe records, evaluations, dimension results."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ProbeRecord:
    """What happened to one probe. ``error`` set means it was not scored (and is counted)."""

    probe_id: str
    split: str
    category: str | None = None
    #: Named numbers, e.g. lp_positive, lp_negative, gap (nats), n_tokens_positive.
    values: dict[str, float] = field(default_factory=dict)
    correct: bool | None = None
    output: str | None = None
    verdict: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class CompatStat:
    """rho-eval's own statistic for the dimension, so users can compare the two tools."""

    statistic: str
    value: float | None
    note: str = ""


@dataclass(frozen=True)
class Evaluation:
    """A dimension's outcome, before the host adds timing and status."""

    metric: str
    definition: str
    score: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    records: tuple[ProbeRecord, ...]
    #: How texts were scored (e.g. "chat template; summed log-prob of the reply").
    scoring: str = ""
    paired_accuracy: float | None = None
    mean_gap: float | None = None
    #: Further named figures (clean accuracy, retention ratio, ...). A figure may carry its 95%
    #: CI under two more names (see :func:`figure_with_ci`); the report cards chart every family
    #: ``NAME[group]`` whose members all carry both bounds.
    secondary: dict[str, float | None] = field(default_factory=dict)
    rho_eval_compat: CompatStat | None = None
    #: Secondary figures that sweep cards also plot against the swept setting (the token budget),
    #: next to the headline: the quantity a study reports when it is not the headline (e.g.
    #: dark-triad's ``p_match``).
    trend: tuple[str, ...] = ()

    @property
    def n_errors(self) -> int:
        """Probes that could not be scored."""
        return sum(1 for r in self.records if r.error)


#: Suffixes of the names under which a secondary figure ``NAME`` stores its 95% CI.
CI_LOW_SUFFIX, CI_HIGH_SUFFIX = " ci_low", " ci_high"


def figure_with_ci(
    name: str, value: float | None, low: float | None, high: float | None
) -> dict[str, float | None]:
    """Secondary entries for figure ``name`` and its 95% CI: ``name``, ``name ci_low``,
    ``name ci_high``. Name per-group figures ``NAME[group]`` (e.g. ``p_match[narcissism]``) so
    the cards draw the family as one bar chart with CIs."""
    return {name: value, name + CI_LOW_SUFFIX: low, name + CI_HIGH_SUFFIX: high}


@dataclass(frozen=True)
class DimensionResult:
    """One dimension's outcome in a run, as stored and shown: the evaluation plus status and timing."""

    dimension: str
    plugin: str
    probe_set: str
    probe_set_version: str
    evaluation: Evaluation
    #: One of :data:`rho_audit.api.dimensions.STATUSES`: PASS/WARN/FAIL by the thresholds,
    #: CHANCE/INVERTED for correlations, MEASURED for a descriptive dimension, ERROR.
    status: str
    elapsed_s: float
    thresholds: dict[str, float]
    #: Set when the dimension itself crashed (status ERROR); per-probe errors live in records.
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (NaN and infinities become None)."""
        return finite(asdict(self))


def finite(value: Any) -> Any:
    """Replace NaN/inf by None recursively: NaN must never reach JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value
