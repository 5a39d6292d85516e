"""Calibration of pair and choice probe sets: expected calibration error (ECE) and Brier score
(the rho-guided paper, §4.5 Table 7), reported as secondary figures beside the headline.

Each item's probabilities are the softmax over its alternatives' scores: the scores the dimension
already ranks by (its ``scoring`` line says which), so calibration never changes what the model
is said to prefer. See :data:`CALIBRATION_DEFINITION` for the exact formulas.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import softmax

#: At most this many ECE bins ...
MAX_BINS = 10
#: ... and at least this many items in each (fewer items: fewer bins, down to one).
MIN_PER_BIN = 5

CALIBRATION_DEFINITION = (
    "each item's probabilities are the softmax over its alternatives' scores (the scores of the "
    "Scoring line: for a pair the two texts, for a choice set every choice); confidence = the "
    "probability of the alternative the model prefers, correct = that alternative is the right "
    "one. ece: expected calibration error = sum over bins of (n_b / n) * |accuracy_b - mean "
    f"confidence_b|, equal-mass bins: items sorted by confidence, split into min({MAX_BINS}, "
    f"max(1, floor(n / {MIN_PER_BIN}))) bins whose sizes differ by at most one. brier: pair sets, "
    "mean of (1 - p)^2 with p the probability of the desired text (in [0, 1]); choice sets, the "
    "multi-class Brier score, sum over all choices of (p_k - y_k)^2 averaged over items (in [0, 2])"
)


def ece_bins(n: int) -> int:
    """How many equal-mass bins ECE uses for ``n`` items (see :data:`CALIBRATION_DEFINITION`)."""
    return max(1, min(MAX_BINS, n // MIN_PER_BIN))


def expected_calibration_error(confidence: Sequence[float], correct: Sequence[bool]) -> float | None:
    """ECE over equal-mass bins of the confidences; None with no items."""
    conf = np.asarray(confidence, dtype=float)
    hit = np.asarray(correct, dtype=float)
    if conf.size == 0:
        return None
    # A stable sort keeps tied confidences in item order, so the bins are reproducible.
    bins = np.array_split(np.argsort(conf, kind="stable"), ece_bins(conf.size))
    weighted = sum(len(b) * abs(hit[b].mean() - conf[b].mean()) for b in bins)
    return float(weighted / conf.size)


def pair_calibration(positive: Sequence[float], negative: Sequence[float]) -> dict[str, float | None]:
    """``ece`` and ``brier`` of pairs from the desired and undesired texts' scores.

    The model is right on a pair when it scores the desired text higher (as the pair's
    ``correct``); a tie gives confidence 0.5 and counts as wrong."""
    pos = np.asarray(positive, dtype=float)
    neg = np.asarray(negative, dtype=float)
    if pos.size == 0:
        return {"ece": None, "brier": None}
    p_desired = softmax(np.stack([pos, neg], axis=1), axis=1)[:, 0]
    confidence = np.maximum(p_desired, 1.0 - p_desired)
    return {
        "ece": expected_calibration_error(confidence, pos > neg),
        "brier": float(np.mean((1.0 - p_desired) ** 2)),
    }


def choice_calibration(scores: Sequence[Sequence[float]], answers: Sequence[int]) -> dict[str, float | None]:
    """``ece`` and multi-class ``brier`` of choice items from every choice's score; items may
    have different numbers of choices. The model's choice is the first highest score."""
    confidence, correct, brier = [], [], []
    for item, answer in zip(scores, answers, strict=True):
        item_scores = np.asarray(item, dtype=float)
        probs = softmax(item_scores)
        confidence.append(float(probs.max()))
        # argmax of the scores, not of the rounded probabilities: the same choice as the record's.
        correct.append(int(np.argmax(item_scores)) == answer)
        truth = np.zeros_like(probs)
        truth[answer] = 1.0
        brier.append(float(np.sum((probs - truth) ** 2)))
    return {
        "ece": expected_calibration_error(confidence, correct),
        "brier": float(np.mean(brier)) if brier else None,
    }
