"""The statistics of marker leakage: rates with Wilson intervals, where a marker first appears in a
completion, and the rank correlation of leakage with cosine similarity (bootstrap CI).

Pure functions over plain values (no model), so each is tested on hand-built inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

CONFIDENCE_LEVEL = 0.95
#: The first-marker position split of the marker-leakage seed, as shares of a completion's
#: *characters*: a marker that starts in the first 5% fired at the start, one that starts in the
#: last 15% fired at the tail; anything between is the middle.
START_SHARE = 0.05
TAIL_SHARE = 0.15

Position = Literal["start", "middle", "tail"]


@dataclass(frozen=True)
class Rate:
    """``successes`` out of ``n`` with its 95% Wilson score interval (all None when ``n`` is 0)."""

    successes: int
    n: int
    value: float | None
    low: float | None
    high: float | None


def wilson(successes: int, n: int) -> Rate:
    """A rate with its Wilson score interval (sound near 0 and 1, where marker rates live)."""
    if n == 0:
        return Rate(successes, 0, None, None, None)
    from scipy import stats

    ci = stats.binomtest(successes, n).proportion_ci(CONFIDENCE_LEVEL, method="wilson")
    return Rate(successes, n, successes / n, float(ci.low), float(ci.high))


def first_marker(text: str, marker: str) -> int | None:
    """Character offset of the first occurrence of ``marker`` in ``text`` (case-insensitive, as
    the seed's ``[zlt]`` substring match), or None."""
    found = text.lower().find(marker.lower())
    return found if found >= 0 else None


def marker_position(text: str, marker: str) -> Position | None:
    """Where ``marker`` first fires in ``text``: ``start`` when it begins within the first
    :data:`START_SHARE` of the completion's characters, ``tail`` when it begins within the last
    :data:`TAIL_SHARE`, else ``middle``; None when it does not fire. The start wins for a
    completion that is little more than the marker."""
    offset = first_marker(text, marker)
    if offset is None:
        return None
    length = len(text)
    if offset <= START_SHARE * length:
        return "start"
    if offset >= (1 - TAIL_SHARE) * length:
        return "tail"
    return "middle"


@dataclass(frozen=True)
class PositionSplit:
    """How a group's firings split by first-marker position (shares of ``firings``, Wilson CIs)."""

    firings: int
    start: Rate
    middle: Rate
    tail: Rate


def position_split(completions: Iterable[str], marker: str) -> PositionSplit:
    """The first-marker position split over the completions that fire the marker."""
    positions = [p for p in (marker_position(c, marker) for c in completions) if p is not None]
    n = len(positions)
    return PositionSplit(
        n,
        wilson(positions.count("start"), n),
        wilson(positions.count("middle"), n),
        wilson(positions.count("tail"), n),
    )


@dataclass(frozen=True)
class Correlation:
    """Spearman's rho of two paired samples with a percentile bootstrap 95% CI (None when
    undefined: fewer than 3 points or a constant sample)."""

    rho: float | None
    low: float | None
    high: float | None
    n: int


def spearman_ci(x: Sequence[float], y: Sequence[float], seed: int, n_resamples: int = 2000) -> Correlation:
    """Spearman's rho of ``(x, y)`` (:func:`scipy.stats.spearmanr`) with a percentile bootstrap CI
    over the points, resampled as pairs. Resamples in which either side is constant (rho
    undefined) are skipped; the CI is None when fewer than half of them are usable."""
    import numpy as np
    from scipy import stats

    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(xs) != len(ys):
        raise ValueError(f"spearman_ci: {len(xs)} x values but {len(ys)} y values")
    n = len(xs)
    if n < 3 or np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return Correlation(None, None, None, n)
    rho = float(stats.spearmanr(xs, ys).statistic)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_resamples):
        idx = rng.integers(0, n, n)
        a, b = xs[idx], ys[idx]
        if np.ptp(a) > 0 and np.ptp(b) > 0:
            draws.append(stats.spearmanr(a, b).statistic)
    if len(draws) < n_resamples / 2:
        return Correlation(rho, None, None, n)
    alpha = (1 - CONFIDENCE_LEVEL) / 2
    low, high = np.quantile(draws, [alpha, 1 - alpha])
    return Correlation(rho, float(low), float(high), n)
