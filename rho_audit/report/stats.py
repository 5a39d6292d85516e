"""The statistics of the report cards: paired tests for A-vs-B, seed-level tests for sweeps.

Everything is scipy.stats; this module fixes the definitions, the edge cases (too few probes
or seeds gives "not computed" with the reason, never a made-up number) and the wording each
card prints next to the figure, so no number appears without the name of its statistic.

Two runs on the same probes are compared *paired*: the bootstrap resamples probe ids and
recomputes both runs' scores on the same resample, and McNemar's test looks only at the probes
whose outcome changed. A difference is called IMPROVED / DEGRADED when its 95% CI excludes 0,
so the verdict follows the evidence rather than a fixed threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from rho_audit._util.stats import mean_and_sd
from rho_audit.audit.metrics import CONFIDENCE_LEVEL, N_RESAMPLES, rank_biserial

PAIRED_BOOTSTRAP = (
    f"paired percentile bootstrap ({N_RESAMPLES} resamples, seeded): probes present in both runs are "
    "resampled with replacement and both runs' scores recomputed on the same resample; the "
    f"{CONFIDENCE_LEVEL:.0%} CI is the 2.5th-97.5th percentile of the after − before difference"
)
MCNEMAR = (
    "McNemar exact test (scipy.stats.binomtest on the discordant probes, p = 0.5, two-sided): "
    "b = right before and wrong after, c = wrong before and right after"
)
VERDICT_RULE = (
    "IMPROVED when the 95% CI of the difference lies above 0, DEGRADED when it lies below 0, "
    "UNCHANGED when it contains 0; NOT TESTED when fewer than 2 shared probes could be paired or the "
    "metric has no paired test (a plugin's own metric)"
)
WELCH = "Welch's t-test (scipy.stats.ttest_ind, equal_var=False, two-sided) over seeds"
COHENS_D = "Cohen's d = (mean − mean of the reference) / pooled sample SD (ddof = 1)"
MEAN_SE = "mean ± standard error (sample SD / √n) over seeds"
MEAN_SD = "mean ± sample standard deviation (ddof = 1) over seeds"
MEAN_CI = (
    f"mean ± half-width of its {CONFIDENCE_LEVEL:.0%} t-interval over seeds: the t quantile with n − 1 "
    "degrees of freedom (scipy.stats.t.ppf) × standard error; none below 2 seeds"
)
SIGNIFICANCE = "*** p < 0.001, ** p < 0.01, * p < 0.05"
SD_REDUCTION = "σ reduction = 1 − σ(condition) / σ(reference), in %"
SD_RATIO = "σ ratio = σ(condition) / σ(reference); below 1 the seeds agree more than the reference's"
ITEM_BOOTSTRAP = (
    f"item-level paired percentile bootstrap ({N_RESAMPLES} resamples, seeded with the audits' seed): "
    "the probes scored by every seed of both conditions are resampled with replacement, every seed's "
    "score is recomputed on the same resample, and the difference of the two conditions' means over "
    f"seeds is taken; the {CONFIDENCE_LEVEL:.0%} CI is its 2.5th-97.5th percentile"
)

IMPROVED, DEGRADED, UNCHANGED, NOT_TESTED = "IMPROVED", "DEGRADED", "UNCHANGED", "NOT TESTED"


@dataclass(frozen=True)
class McNemar:
    """Paired outcomes: ``b`` right→wrong, ``c`` wrong→right, over ``n`` paired probes."""

    b: int
    c: int
    n: int
    p_value: float


@dataclass(frozen=True)
class PairedDifference:
    """after − before on the probes both runs scored, with its paired bootstrap CI."""

    n_paired: int
    before: float | None
    after: float | None
    delta: float | None
    ci_low: float | None
    ci_high: float | None
    verdict: str
    mcnemar: McNemar | None = None
    note: str = ""


@dataclass(frozen=True)
class Summary:
    """Seed-level summary of one condition on one dimension."""

    n: int
    mean: float | None
    sd: float | None  # sample SD, None below 2 values
    se: float | None


@dataclass(frozen=True)
class GroupTest:
    """A condition vs the reference condition: difference of means, Welch p, Cohen's d."""

    diff: float | None
    t: float | None
    p_value: float | None
    cohens_d: float | None
    marks: str
    note: str = ""


def verdict_for(ci_low: float | None, ci_high: float | None) -> str:
    if ci_low is None or ci_high is None:
        return NOT_TESTED
    if ci_low > 0:
        return IMPROVED
    if ci_high < 0:
        return DEGRADED
    return UNCHANGED


def _percentile_ci(samples: np.ndarray) -> tuple[float, float]:
    alpha = (1 - CONFIDENCE_LEVEL) / 2
    low, high = np.quantile(samples, [alpha, 1 - alpha])
    return float(low), float(high)


def _resample_indices(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(N_RESAMPLES, n))


def rho_difference(
    before: tuple[np.ndarray, np.ndarray], after: tuple[np.ndarray, np.ndarray], seed: int
) -> tuple[float | None, float | None, float | None]:
    """rho(after) − rho(before) on paired probes, with a paired percentile bootstrap CI.

    ``before``/``after`` are (positive, negative) confidences aligned on the same probe ids.
    """
    pos_a, neg_a = (np.asarray(x, dtype=float) for x in before)
    pos_b, neg_b = (np.asarray(x, dtype=float) for x in after)
    n = len(pos_a)
    if n < 2:
        return None, None, None
    delta = float(rank_biserial(pos_b, neg_b) - rank_biserial(pos_a, neg_a))
    idx = _resample_indices(n, seed)
    # mannwhitneyu is vectorised along the last axis, so all resamples go in one call.
    boot = rank_biserial(pos_b[idx], neg_b[idx]) - rank_biserial(pos_a[idx], neg_a[idx])
    low, high = _percentile_ci(np.asarray(boot))
    return delta, low, high


def rate_difference(
    before: np.ndarray, after: np.ndarray, seed: int
) -> tuple[float | None, float | None, float | None]:
    """mean(after) − mean(before) of paired 0/1 outcomes, paired percentile bootstrap CI."""
    a = np.asarray(before, dtype=float)
    b = np.asarray(after, dtype=float)
    if len(a) < 2:
        return None, None, None
    idx = _resample_indices(len(a), seed)
    boot = b[idx].mean(axis=1) - a[idx].mean(axis=1)
    low, high = _percentile_ci(boot)
    return float(b.mean() - a.mean()), low, high


def mcnemar_exact(before: Sequence[bool], after: Sequence[bool]) -> McNemar | None:
    """Exact McNemar test on paired right/wrong outcomes (binomial test of the discordant pairs)."""
    if len(before) == 0:
        return None
    b = sum(1 for x, y in zip(before, after, strict=True) if x and not y)
    c = sum(1 for x, y in zip(before, after, strict=True) if not x and y)
    p = 1.0 if b + c == 0 else float(stats.binomtest(c, b + c, 0.5).pvalue)
    return McNemar(b, c, len(before), p)


def summarize(values: Sequence[float]) -> Summary:
    vals = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return Summary(0, None, None, None)
    mean, sd = mean_and_sd(vals)
    if sd is None:
        return Summary(1, mean, None, None)
    return Summary(len(vals), mean, sd, sd / math.sqrt(len(vals)))


def t_half_width(summary: Summary) -> float | None:
    """Half-width of the t-interval of ``summary``'s mean (see :data:`MEAN_CI`); None below two
    values, where the interval is undefined."""
    if summary.se is None or summary.n < 2:
        return None
    return float(stats.t.ppf(0.5 + CONFIDENCE_LEVEL / 2, summary.n - 1) * summary.se)


def cohens_d(group: Sequence[float], reference: Sequence[float]) -> float | None:
    """Standardised mean difference with the pooled sample SD; None when it is undefined."""
    n1, n2 = len(group), len(reference)
    if n1 < 2 or n2 < 2:
        return None
    v1, v2 = np.var(group, ddof=1), np.var(reference, ddof=1)
    pooled = math.sqrt(((n1 - 1) * v1 + (n2 - 1) * v2) / (n1 + n2 - 2))
    if pooled == 0:
        return None
    return float((np.mean(group) - np.mean(reference)) / pooled)


def significance_marks(p: float | None) -> str:
    if p is None:
        return ""
    if p < 0.001:
        return "***"
    if p < 0.01:
        return "**"
    if p < 0.05:
        return "*"
    return "n.s."


def welch_test(group: Sequence[float], reference: Sequence[float]) -> GroupTest:
    """Welch's t-test and Cohen's d of ``group`` against ``reference`` (seed-level values)."""
    g = [float(v) for v in group if v is not None]
    r = [float(v) for v in reference if v is not None]
    diff = float(np.mean(g) - np.mean(r)) if g and r else None
    if not g or not r:
        return GroupTest(diff, None, None, None, "", "no complete seeds yet")
    if len(g) < 2 or len(r) < 2:
        note = "needs ≥ 2 seeds in both conditions"
        return GroupTest(diff, None, None, None, "", note)
    if np.var(g) == 0 and np.var(r) == 0:
        return GroupTest(diff, None, None, None, "", "no variance across seeds in either condition")
    res = stats.ttest_ind(g, r, equal_var=False)
    t, p = float(res.statistic), float(res.pvalue)
    if not (math.isfinite(t) and math.isfinite(p)):
        return GroupTest(diff, None, None, cohens_d(g, r), "", "t-test undefined for these values")
    return GroupTest(diff, t, p, cohens_d(g, r), significance_marks(p))


def sd_ratio(sd: float | None, reference_sd: float | None) -> float | None:
    """σ / σ(reference): how much of the reference's spread across seeds is left."""
    if sd is None or reference_sd is None or reference_sd == 0:
        return None
    return sd / reference_sd


def sd_reduction(sd: float | None, reference_sd: float | None) -> float | None:
    """Percent by which ``sd`` is below the reference's (negative: more variable)."""
    if sd is None or reference_sd is None or reference_sd == 0:
        return None
    return 100.0 * (1.0 - sd / reference_sd)


#: One seed's probes aligned on shared ids: (positive, negative) confidences for rho, or 0/1
#: outcomes for a rate.
ItemScores = tuple[np.ndarray, np.ndarray] | np.ndarray


def _resample_weights(n: int, seed: int) -> np.ndarray:
    """How often each probe is drawn in each resample (N_RESAMPLES × n): the resamples of
    :func:`_resample_indices` as counts, so a score is one matrix product per seed."""
    idx = _resample_indices(n, seed)
    rows = np.arange(len(idx))[:, None] * n
    return np.bincount((idx + rows).ravel(), minlength=len(idx) * n).reshape(len(idx), n).astype(float)


def _item_scores(cell: ItemScores, weights: np.ndarray) -> tuple[float, np.ndarray]:
    """The score on all probes and on every resample (rows of ``weights``).

    rho on a resample is 2·U/n² − 1 with U = Σ_i Σ_j w_i w_j [pos_i > neg_j] (ties ½), the
    Mann-Whitney U of the resampled positives and negatives, computed as wᵀ H w."""
    n = weights.shape[1]
    if isinstance(cell, tuple):
        pos, neg = (np.asarray(x, dtype=float) for x in cell)
        wins = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        full = 2.0 * wins.sum() / n**2 - 1.0
        return float(full), 2.0 * np.einsum("ri,ri->r", weights @ wins, weights) / n**2 - 1.0
    x = np.asarray(cell, dtype=float)
    return float(x.mean()), weights @ x / n


def condition_difference(a: Sequence[ItemScores], b: Sequence[ItemScores], seed: int) -> PairedDifference:
    """mean over ``a``'s seeds − mean over ``b``'s seeds of a score, with an item-level paired
    bootstrap CI: every seed's items are aligned on the same probe ids and one resample of those
    ids is applied to all of them, so the probes' difficulty is shared and cancels.

    ``before``/``after`` of the result are ``b``'s and ``a``'s means."""
    cells = [*a, *b]
    n = len(cells[0][0] if isinstance(cells[0], tuple) else cells[0]) if cells else 0
    if not a or not b or n < 2:
        note = "no probe scored by every seed of both conditions" if a and b else "no complete seeds yet"
        return PairedDifference(n, None, None, None, None, None, NOT_TESTED, None, note)
    weights = _resample_weights(n, seed)
    scored_a = [_item_scores(c, weights) for c in a]
    scored_b = [_item_scores(c, weights) for c in b]
    mean_a = float(np.mean([full for full, _ in scored_a]))
    mean_b = float(np.mean([full for full, _ in scored_b]))
    boot = np.mean([r for _, r in scored_a], axis=0) - np.mean([r for _, r in scored_b], axis=0)
    low, high = _percentile_ci(np.asarray(boot))
    return PairedDifference(n, mean_b, mean_a, mean_a - mean_b, low, high, verdict_for(low, high))
