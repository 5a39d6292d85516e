"""The statistics against scipy on known inputs, including an inverted model."""

import numpy as np
import pytest
from scipy import stats

from rho_audit.audit import metrics


def test_rank_biserial_matches_auc_from_scipy():
    rng = np.random.default_rng(1)
    pos, neg = rng.normal(0.5, 1, 40), rng.normal(0, 1, 40)
    u = stats.mannwhitneyu(pos, neg).statistic
    assert metrics.rank_biserial(pos, neg) == pytest.approx(2 * u / (40 * 40) - 1)


def test_perfect_and_inverted_models():
    good = np.array([-1.0, -2.0, -3.0])
    bad = good - 10
    assert metrics.rank_biserial(good, bad) == pytest.approx(1.0)
    assert metrics.rank_biserial(bad, good) == pytest.approx(-1.0)


def test_inverted_model_gives_negative_rho_and_inverted_status():
    rng = np.random.default_rng(2)
    neg = rng.normal(0, 1, 60)
    pos = neg - 1.5 + rng.normal(0, 0.3, 60)  # the model prefers the undesired text
    interval = metrics.rank_biserial_ci(pos, neg, seed=0)
    assert interval.value < -0.5
    assert interval.low <= interval.value <= interval.high < 0
    assert metrics.status_for("rank_biserial", interval, 0.3, 0.1) == "INVERTED"


def test_chance_level_is_not_a_pass():
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, 80)
    interval = metrics.rank_biserial_ci(x, rng.permutation(x), seed=0)
    assert interval.low < 0 < interval.high
    assert metrics.status_for("rank_biserial", interval, 0.0, 0.0) == "CHANCE"


def test_bootstrap_ci_is_seeded():
    rng = np.random.default_rng(4)
    pos, neg = rng.normal(0.3, 1, 30), rng.normal(0, 1, 30)
    assert metrics.rank_biserial_ci(pos, neg, 7) == metrics.rank_biserial_ci(pos, neg, 7)


def test_too_few_probes_gives_no_score_not_zero():
    interval = metrics.rank_biserial_ci(np.array([1.0]), np.array([0.0]), 0)
    assert interval.value is None
    assert metrics.status_for("rank_biserial", interval, 0.3, 0.1) == "ERROR"


def test_wilson_interval_from_scipy():
    interval = metrics.proportion_ci(9, 10)
    ci = stats.binomtest(9, 10).proportion_ci(0.95, method="wilson")
    assert (interval.value, interval.low, interval.high) == pytest.approx((0.9, ci.low, ci.high))
    assert metrics.proportion_ci(0, 0).value is None


def test_spearman_is_none_not_nan_for_constant_input():
    assert metrics.spearman(np.ones(5), np.arange(5.0)) is None
    assert metrics.spearman(np.arange(5.0), np.arange(5.0)) == pytest.approx(1.0)


@pytest.mark.parametrize(("value", "expected"), [(0.5, "PASS"), (0.2, "WARN"), (0.05, "FAIL")])
def test_rate_status_thresholds(value, expected):
    assert metrics.status_for("answer_rate", metrics.Interval(value, 0, 1), 0.3, 0.1) == expected
