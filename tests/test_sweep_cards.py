"""Cards for the paper's experiments: the pooled out-of-distribution accuracy (Table 8) on the audit
and sweep cards, one set of sweep tables per audit split (held-out first), the ablation contrasts
with rho-guided vs contrastive-only and item-level paired bootstrap CIs (Table 5), and the σ ratio
of the variance table (§4.3.1).

The stores are built by hand with the helpers of test_reports.py, so every expected number is
known; statistics are checked against hand computations.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from rho_audit.audit.metrics import rank_biserial
from rho_audit.report import stats as report_stats
from rho_audit.report.audit_card import build_audit_card
from rho_audit.report.ood import EVERY_SET, SetScore, pooled_accuracies
from rho_audit.report.render import render, write_report
from rho_audit.report.sweep_card import build_sweep_card
from rho_audit.store import RunStore
from rho_audit.train.sweep import CellResult, CellSpec
from tests.test_reports import (
    PAPER_BASELINE,
    ablation_store,
    add_run,
    assert_valid_markdown,
    chromium_binary,
    pair_result,
    parse_html,
)

OOD = ("ood-clinical", "ood-logic", "ood-social")

# --------------------------------------------------------------------------------------------
# The pooled accuracy, on hand-made numbers
# --------------------------------------------------------------------------------------------


def wilson(k, n, z=1.959963984540054):
    """The Wilson score interval written out, to check the implementation against."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_pooled_accuracy_weighs_each_set_by_its_pairs():
    scores = [
        SetScore("factual", "factual", "rank_biserial", 50, 0.9),  # the dimension's own set: left out
        SetScore("factual", "ood-clinical", "rank_biserial", 22, 11 / 22),  # first extra set, bare label
        SetScore("factual@ood-logic", "ood-logic", "rank_biserial", 21, 14 / 21),
        SetScore("factual@ood-social", "ood-social", "rank_biserial", 19, 10 / 19),
        SetScore("toxicity@other", "other", "rank_biserial", 30, 0.5),  # one extra set: no own aggregate
        SetScore("refusal@x", "x", "answer_rate", 10, None),
        SetScore("refusal@y", "y", "answer_rate", 10, None),
    ]
    pooled, every = pooled_accuracies(scores)
    # the paper's Table 8 aggregate spans dimensions: every rank-biserial extra set, pooled alike
    assert every.dimension == EVERY_SET and every.set_names == (*OOD, "other")
    assert (every.pooled.correct, every.pooled.n) == (35 + 15, 62 + 30)
    assert pooled_accuracies(scores[:4]) == (pooled,)  # one dimension: no cross-dimension aggregate
    assert pooled.dimension == "factual" and pooled.set_names == OOD
    assert [(s.accuracy.correct, s.accuracy.n) for s in pooled.sets] == [(11, 22), (14, 21), (10, 19)]
    assert (pooled.pooled.correct, pooled.pooled.n) == (35, 62)
    # count-weighted, not the mean of the three accuracies (0.5614...)
    assert pooled.pooled.value == pytest.approx(35 / 62) and 35 / 62 != pytest.approx(
        np.mean([0.5, 2 / 3, 10 / 19])
    )
    assert (pooled.pooled.ci_low, pooled.pooled.ci_high) == pytest.approx(wilson(35, 62))
    assert (pooled.sets[1].accuracy.ci_low, pooled.sets[1].accuracy.ci_high) == pytest.approx(wilson(14, 21))


def test_condition_difference_is_paired_on_items():
    ones, zeros = np.ones(10), np.zeros(10)
    diff = report_stats.condition_difference([ones, ones], [zeros], seed=0)
    assert (diff.delta, diff.ci_low, diff.ci_high, diff.n_paired) == (1.0, 1.0, 1.0, 10)
    # rho: perfect order in a, perfect inversion in b, whatever the resample
    pos, neg = np.arange(10.0) + 100, np.arange(10.0)
    diff = report_stats.condition_difference([(pos, neg)], [(neg, pos)], seed=0)
    assert (diff.delta, diff.ci_low, diff.ci_high) == (2.0, 2.0, 2.0)
    # Paired: a is b with four more items right, so no resample can put a below b, although the
    # items themselves range from always wrong to always right.
    rng = np.random.default_rng(3)
    b = (rng.random((3, 40)) < np.linspace(0, 1, 40)).astype(float)
    a = b.copy()
    a[:, :4] = 1.0
    diff = report_stats.condition_difference(list(a), list(b), seed=1)
    assert diff.delta == pytest.approx(np.mean(a) - np.mean(b))
    assert diff.ci_low <= diff.delta <= diff.ci_high and diff.ci_low >= 0
    few = report_stats.condition_difference([np.ones(1)], [np.zeros(1)], seed=0)
    assert few.delta is None and few.verdict == report_stats.NOT_TESTED


# --------------------------------------------------------------------------------------------
# The audit card
# --------------------------------------------------------------------------------------------


def ood_gaps(n, right):
    """``n`` pairs of which the first ``right`` are ordered right (gap > 0)."""
    return [0.5 + 0.1 * i if i < right else -0.5 - 0.1 * i for i in range(n)]


def test_audit_card_shows_each_extra_set_and_the_pooled_accuracy(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    results = [
        pair_result("factual", [0.9, -0.4, 1.3, 0.2, -1.1, 0.6]),
        pair_result("factual@ood-clinical", ood_gaps(6, 3), probe_set="ood-clinical"),
        pair_result("factual@ood-logic", ood_gaps(6, 4), probe_set="ood-logic"),
        pair_result("factual@ood-social", ood_gaps(5, 2), probe_set="ood-social"),
    ]
    add_run(store, "20260101-000000-ood000", results)
    card = build_audit_card(store, "20260101-000000-ood000")
    [pooled] = card.ood
    assert pooled.set_names == OOD and (pooled.pooled.correct, pooled.pooled.n) == (9, 17)
    assert any(s.name == "OOD pooled accuracy" for s in card.statistics)

    md = render(card, "md").text
    assert_valid_markdown(md)
    assert "## Out-of-distribution accuracy: factual" in md
    assert (
        "| pooled (3 sets) | | 9 / 17 | 0.529 |" in md
        and "| ood-logic | factual@ood-logic | 4 / 6 | 0.667 |" in md
    )
    html = render(card, "html").text
    parsed = parse_html(html)
    assert ("table", {"id": "ood-factual-table", "class": "ood-table"}) in parsed.tags
    assert html.count("<table") == html.count("</table>")

    plain = RunStore(tmp_path / "plain.sqlite")  # no extra sets: no section, no statistic
    add_run(plain, "20260101-000000-plain0", results[:2])
    card = build_audit_card(plain, "20260101-000000-plain0")
    assert card.ood == () and "Out-of-distribution" not in render(card, "md").text


# --------------------------------------------------------------------------------------------
# A sweep that audits two splits with three extra sets
# --------------------------------------------------------------------------------------------

SHIFT = {"sft": 0.0, "rho-guided": 1.0, "contrastive-only": 0.5}  # how far each condition moves the gaps
BONUS = {None: 0, "sft": 0, "rho-guided": 1, "contrastive-only": 1}  # extra OOD pairs right, per set
OOD_EVAL = {"ood-clinical": (6, 3), "ood-logic": (6, 4), "ood-social": (5, 2)}
OOD_TRAIN = {"ood-clinical": (5, 1), "ood-logic": (6, 2), "ood-social": (6, 3)}
FACTUAL = [0.9, -0.4, 1.3, 0.2, -1.1, 0.6, 0.8, -0.05, 0.3, -0.7, 1.0, -0.2]
SEEDS = (1, 2, 3)


def audit_results(trainer, seed_index, split):
    shift = (
        SHIFT.get(trainer, -0.3) + 0.1 * seed_index * (trainer is not None) + (0.4 if split == "train" else 0)
    )
    factual = pair_result("factual", [g + shift for g in FACTUAL])
    # a plugin's own further figures, stored as they are: one only the trained cells report
    secondary = {"spread": 0.1 * seed_index + SHIFT.get(trainer, 0.0)} | ({"late": 1.0} if trainer else {})
    results = [replace(factual, evaluation=replace(factual.evaluation, secondary=secondary))]
    counts = OOD_EVAL if split == "eval" else OOD_TRAIN
    for name, (n, right) in counts.items():
        results.append(pair_result(f"factual@{name}", ood_gaps(n, right + BONUS[trainer]), probe_set=name))
    return results


def add_split_cell(store, sweep_id, cell_id, trainer, seed, seed_index, grid, created):
    audit = {
        "dimensions": ["factual"],
        "split": ["eval", "train"],
        "probes": list(OOD),
        "limit": None,
        "seed": 0,
    }
    runs = {}
    for k, split in enumerate(("eval", "train")):
        run_id = f"audit-{cell_id}-{split}"
        add_run(store, run_id, audit_results(trainer, seed_index, split), created=created + k)
        store.db.execute(
            "UPDATE runs SET config_json = json_set(config_json, '$.split', ?) WHERE run_id = ?",
            (split, run_id),
        )
        store.db.commit()
        scores = {
            r.dimension: {"score": r.evaluation.score, "probe_set": r.probe_set}
            for r in audit_results(trainer, seed_index, split)
        }
        runs[split] = {"audit_run_id": run_id, "scores": scores}
    kind = "train" if trainer else "baseline"
    condition = cell_id.rsplit("_seed", 1)[0]
    train = {"trainer": trainer, "seed": seed, "options": dict(grid)} if trainer else None
    spec = CellSpec(
        sweep_id,
        cell_id,
        kind,
        None,
        "default",
        condition,
        {**grid, "seed": seed, "trainer": trainer} if trainer else {},
        train,
        audit,
        f"sha-{cell_id}",
    )
    result = CellResult(
        cell_id,
        "complete",
        None,
        runs["eval"]["audit_run_id"],
        runs["eval"]["scores"],
        4,
        {"loss": 1.0},
        1.0,
        splits=runs,
    )
    store.set_cell(
        sweep_id,
        cell_id,
        spec.config_sha256,
        "complete",
        {"spec": spec.to_json(), "result": result.to_json()},
        None,
        runs["eval"]["audit_run_id"],
    )


def split_sweep_store(path, sweep_id="paper-splits-1"):
    store = RunStore(path)
    add_split_cell(store, sweep_id, "baseline", None, None, 0, {}, 0)
    n = 1
    for i, seed in enumerate(SEEDS):
        for trainer in ("sft", "rho-guided", "contrastive-only"):
            grid = {"lambda": 0.2} if trainer == "rho-guided" else {}
            name = trainer + ("_lambda0.2" if grid else "")
            add_split_cell(store, sweep_id, f"{name}_seed{seed}", trainer, seed, i, grid, 10 * n)
            n += 1
    return store


def test_sweep_card_shows_every_table_per_split_held_out_first(tmp_path):
    store = split_sweep_store(tmp_path / "runs.sqlite")
    card = build_sweep_card(store, "paper-splits-1")
    assert [s.split for s in card.splits] == ["eval", "train"]
    assert [s.heading for s in card.splits] == [" — held-out (eval)", " — in-sample (train)"]
    eval_split, train_split = card.splits
    base_eval = eval_split.baselines["default"]["factual"]
    base_train = train_split.baselines["default"]["factual"]
    assert base_eval == pytest.approx(audit_results(None, 0, "eval")[0].evaluation.score)
    assert base_train == pytest.approx(audit_results(None, 0, "train")[0].evaluation.score) != base_eval
    guided = {c.label: c for c in train_split.conditions}["rho-guided λ=0.2"]
    expected = [audit_results("rho-guided", i, "train")[0].evaluation.score - base_train for i in range(3)]
    assert guided.summary["factual"].mean == pytest.approx(np.mean(expected))
    # each split has its own audit runs in its cells table
    cell = next(c for c in train_split.cells if c.cell_id == "sft_seed2")
    assert cell.audit_run_id == "audit-sft_seed2-train"

    md = render(card, "md", figure_prefix="s-").text
    assert_valid_markdown(md)
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    for name in ("Baseline", "Conditions", "Ablation contrasts", "Variance across seeds", "Cells"):
        found = [h for h in headings if h.startswith(f"## {name}")]
        assert found == [f"## {name} — held-out (eval)", f"## {name} — in-sample (train)"], name
    assert md.index("— held-out (eval)") < md.index("— in-sample (train)")
    figures = render(card, "md", figure_prefix="s-").figures
    assert {
        "s-ablation-eval.svg",
        "s-ablation-train.svg",
        "s-variance-eval.svg",
        "s-variance-train.svg",
    } <= set(figures)

    html = render(card, "html").text
    ids = [a["id"] for _, a in parse_html(html).tags if "id" in a]
    assert not [i for i, k in Counter(ids).items() if k > 1], "duplicate ids"
    assert {"ablation-eval-table", "ablation-train-table", "ood-factual-eval-table", "split-train"} <= set(
        ids
    )
    assert html.count("<table") == html.count("</table>")


def test_sweep_card_ood_table_per_condition_with_deltas(tmp_path):
    store = split_sweep_store(tmp_path / "runs.sqlite")
    card = build_sweep_card(store, "paper-splits-1")
    [table] = card.splits[0].ood
    assert table.dimension == "factual" and table.sets == OOD and table.has_baseline
    rows = {r.label: r for r in table.rows}
    assert list(rows) == ["baseline (base model)", "sft", "contrastive-only", "rho-guided λ=0.2"]
    base = rows["baseline (base model)"]
    assert (base.single.correct, base.single.n) == (9, 17) and base.pooled_delta is None
    assert (base.single.ci_low, base.single.ci_high) == pytest.approx(wilson(9, 17))
    guided = rows["rho-guided λ=0.2"]
    assert guided.n_audits == 3 and guided.pooled.mean == pytest.approx(12 / 17) and guided.pooled.sd == 0
    assert guided.pooled_delta == pytest.approx(3 / 17)
    assert guided.set_deltas == pytest.approx((1 / 6, 1 / 6, 1 / 5))
    assert rows["sft"].pooled_delta == pytest.approx(0.0)
    [train_table] = card.splits[1].ood
    assert next(r for r in train_table.rows if r.label.startswith("baseline")).single.correct == 6
    assert any(s.name == "OOD pooled accuracy" for s in card.statistics)
    md = render(card, "md").text
    assert "## Out-of-distribution accuracy: factual — held-out (eval)" in md
    assert (
        "| baseline (base model) | 1 | 0.500 (n=1) | 0.667 (n=1) | 0.400 (n=1) | "
        "0.529 (n=1) = 9/17 \\[0.310, 0.738\\] | - |" in md
    )
    assert (
        "| rho-guided λ=0.2 | 3 | 0.667 ± 0.000 (n=3) (Δ +0.167) |" in md
        and "| 0.706 ± 0.000 (n=3) | +0.176 |" in md
    )


def test_ablation_contrasts_include_the_papers_pairs_with_item_level_cis(tmp_path):
    store = split_sweep_store(tmp_path / "runs.sqlite")
    card = build_sweep_card(store, "paper-splits-1")
    [ab] = card.splits[0].ablations
    pairs = list(dict.fromkeys((x.condition, x.versus) for x in ab.contrasts))
    assert pairs == [
        ("contrastive-only", "sft"),
        ("rho-guided λ=0.2", "sft"),
        ("rho-guided λ=0.2", "contrastive-only"),
    ]
    x = next(
        x
        for x in ab.contrasts
        if (x.condition, x.versus, x.dimension) == ("rho-guided λ=0.2", "contrastive-only", "factual")
    )
    # Every seed scored the same 12 probes, so the item-level point estimate is the difference of
    # the mean stored scores, and its CI is a bootstrap around it.
    rho = {
        t: [audit_results(t, i, "eval")[0].evaluation.score for i in range(3)]
        for t in ("rho-guided", "contrastive-only")
    }
    assert x.items.n_paired == 12
    assert x.items.delta == pytest.approx(np.mean(rho["rho-guided"]) - np.mean(rho["contrastive-only"]))
    assert x.items.delta == pytest.approx(x.test.diff)
    assert x.items.ci_low <= x.items.delta <= x.items.ci_high
    # recomputed by hand on the stored probe records, with the documented resampling
    idx = np.random.default_rng(0).integers(0, 12, size=(report_stats.N_RESAMPLES, 12))  # the audits' seed
    boot = []
    for trainer, sign in (("rho-guided", 1), ("contrastive-only", -1)):
        per_seed = []
        for i in range(3):
            records = [r.values for r in audit_results(trainer, i, "eval")[0].evaluation.records]
            pos = np.array([v["confidence_positive"] for v in records])[idx]
            neg = np.array([v["confidence_negative"] for v in records])[idx]
            per_seed.append(rank_biserial(pos, neg))
        boot.append(sign * np.mean(per_seed, axis=0))
    low, high = np.quantile(boot[0] + boot[1], [0.025, 0.975])
    assert (x.items.ci_low, x.items.ci_high) == pytest.approx((low, high))
    md = render(card, "md").text
    assert "| rho-guided λ=0.2 | contrastive-only | factual |" in md


def test_paper_ablation_has_all_four_table5_contrasts_and_the_sigma_ratio(tmp_path):
    store = ablation_store(tmp_path / "runs.sqlite")
    card = build_sweep_card(store, "paper-ablation-0123abcd")
    assert len(card.splits) == 1 and card.splits[0].heading == "" and card.splits[0].tag == ""  # an old store
    [ab] = card.ablations
    pairs = set((x.condition, x.versus) for x in ab.contrasts)
    assert {
        ("rho-guided λ=0.2", "sft"),
        ("contrastive-only", "sft"),
        ("shuffled λ=0.2", "rho-guided λ=0.2"),
        ("rho-guided λ=0.2", "contrastive-only"),
    } <= pairs
    x = next(
        x
        for x in ab.contrasts
        if (x.condition, x.versus, x.dimension) == ("rho-guided λ=0.2", "contrastive-only", "toxicity")
    )
    from tests.test_reports import PAPER_DELTAS

    a, b = PAPER_DELTAS["rho-guided"]["toxicity"], PAPER_DELTAS["contrastive-only"]["toxicity"]
    welch = stats.ttest_ind(a, b, equal_var=False)
    assert x.test.p_value == pytest.approx(welch.pvalue) and x.test.diff == pytest.approx(
        np.mean(a) - np.mean(b)
    )
    assert x.items.delta is None and "no probe records" in x.items.note  # the store keeps scores only
    var = {(r.condition, r.dimension): r for r in card.variances[0].rows}
    sd = {t: np.std(PAPER_DELTAS[t]["factual"], ddof=1) for t in ("sft", "rho-guided")}
    assert var[("rho-guided λ=0.2", "factual")].ratio == pytest.approx(sd["rho-guided"] / sd["sft"])
    assert var[("sft", "factual")].ratio is None and card.variances[0].reference.label == "sft"
    assert PAPER_BASELINE  # the store's baseline, shared with test_reports


def test_sweep_card_with_splits_renders_in_headless_chromium(tmp_path):
    chromium = chromium_binary()
    store = split_sweep_store(tmp_path / "runs.sqlite")
    page = tmp_path / "sweep.html"
    write_report(build_sweep_card(store, "paper-splits-1"), "html", page)
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert '<table id="ood-factual-eval-table" class="ood-table">' in dom
    assert '<table id="ablation-train-table" class="ablation-table">' in dom and "<svg" in dom


def test_sweep_card_shows_secondary_figures_whatever_their_keys(tmp_path):
    store = split_sweep_store(tmp_path / "runs.sqlite")
    card = build_sweep_card(store, "paper-splits-1")
    [table] = card.splits[0].secondary
    assert table.columns == ("baseline", "sft", "contrastive-only", "rho-guided λ=0.2")
    rows = {(r.dimension, r.figure): r for r in table.rows}
    assert list(rows) == [("factual", "spread"), ("factual", "late")]
    spread = rows[("factual", "spread")].values
    assert [v.n for v in spread] == [1, 3, 3, 3]
    assert spread[0].mean == pytest.approx(0.0) and spread[3].mean == pytest.approx(1.1)
    assert spread[3].sd == pytest.approx(0.1)
    late = rows[("factual", "late")].values
    assert late[0].mean is None and late[1].mean == 1.0
    md = render(card, "md").text
    assert "| factual | late | - | 1.000 ± 0.000 (n=3) |" in md
    assert "## Secondary figures — in-sample (train)" in md
