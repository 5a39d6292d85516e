"""The sweep card's training table: first vs last quarter of each condition's logged losses."""

import numpy as np
import pytest
from scipy import stats

from rho_audit.report.records import SweepCell
from rho_audit.report.training_losses import loss_changes
from rho_audit.store import RunStore


def cell(
    condition: str, run_id: str | None, trainer: str | None = "sft", status: str = "complete"
) -> SweepCell:
    return SweepCell(
        cell_id=f"{condition}_{run_id}",
        condition=condition,
        label=condition,
        model_label="default",
        trainer=trainer,
        seed=1,
        params=(),
        status=status,
        train_run_id=run_id,
        audit_run_id=None,
        scores={},
        values={},
        final_loss=None,
        final_contrastive=None,
        error=None,
    )


def test_first_and_last_quarters_are_pooled_over_seeds_with_a_welch_ci(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    rng = np.random.default_rng(0)
    losses = {}
    for run_id in ("a", "b"):
        store.start_run(run_id, "m", None, f"/x/{run_id}", 1, {}, "sha", {}, None, "train")
        values = np.r_[rng.normal(3.0, 0.3, 10), rng.normal(2.5, 0.3, 20), rng.normal(2.0, 0.3, 10)]
        losses[run_id] = values
        for step, v in enumerate(values, 1):
            metrics = {
                "sft_loss": float(v),
                "contrastive_loss": 1.0 if step <= 10 else 0.2,
                "active_share": 0.5,
            }
            store.add_train_step(run_id, step, metrics)
    cells = [
        cell("sft", "a"),
        cell("sft", "b"),
        cell("baseline", None, trainer=None),
        cell("other", "c", status="failed"),
    ]
    (row,) = loss_changes(store, cells)
    first = np.r_[losses["a"][:10], losses["b"][:10]]
    last = np.r_[losses["a"][-10:], losses["b"][-10:]]
    expected = stats.ttest_ind(last, first, equal_var=False)
    assert row.seeds == 2 and row.steps == 40
    assert row.sft_first == pytest.approx(first.mean()) and row.sft_last == pytest.approx(last.mean())
    assert row.change == pytest.approx(last.mean() - first.mean())
    assert (row.ci_low, row.ci_high) == pytest.approx(tuple(expected.confidence_interval(0.95)))
    assert row.ci_high < 0 and row.p == pytest.approx(expected.pvalue)
    assert (row.hinge_first, row.hinge_last) == pytest.approx((1.0, 0.2))
    store.close()


def test_a_run_too_short_for_two_windows_gives_no_row(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    store.start_run("a", "m", None, "/x/a", 1, {}, "sha", {}, None, "train")
    store.add_train_step("a", 1, {"sft_loss": 2.0})
    assert loss_changes(store, [cell("sft", "a")]) == ()
    store.close()
