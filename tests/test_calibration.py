"""Calibration (ECE, Brier) of pair and choice sets: the formulas on hand-built numbers, the
secondary figures of real audits on the tiny model, and the cards that show them."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.special import expit

from rho_audit.audit.calibration import (
    CALIBRATION_DEFINITION,
    choice_calibration,
    ece_bins,
    expected_calibration_error,
    pair_calibration,
)
from rho_audit.report.audit_card import build_audit_card
from rho_audit.report.render import render
from rho_audit.report.sweep_card import build_sweep_card
from rho_audit.store import RunStore

from . import test_sweep_cards
from .test_cli import rho_audit
from .test_reports import FACTUAL_GAPS, add_run, pair_result

try:
    from sklearn.metrics import brier_score_loss
except ImportError:  # not a dependency: the same definition in numpy
    brier_score_loss = None


def binary_brier(y_true, y_prob):
    if brier_score_loss is not None:
        return brier_score_loss(y_true, y_prob)
    return float(np.mean((np.asarray(y_true, dtype=float) - np.asarray(y_prob)) ** 2))


# ── ECE ─────────────────────────────────────────────────────────────────────────────────────


def test_ece_bin_count_rule():
    assert [ece_bins(n) for n in (0, 1, 4, 9, 10, 14, 15, 49, 50, 51, 1000)] == [
        1, 1, 1, 1, 2, 2, 3, 9, 10, 10, 10,
    ]  # fmt: skip


def test_ece_on_a_hand_built_example():
    # n = 10: two equal-mass bins of five, the lowest five confidences and the highest five.
    confidence = [0.55, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90, 0.95, 0.99]
    correct = [True, False, True, False, True, True, True, True, True, False]
    # low bin: mean confidence 0.65, accuracy 3/5 = 0.6  -> |0.6 - 0.65|  = 0.05
    # high bin: mean confidence 4.49/5 = 0.898, accuracy 0.8 -> |0.8 - 0.898| = 0.098
    expected = 0.5 * 0.05 + 0.5 * 0.098
    assert expected_calibration_error(confidence, correct) == pytest.approx(expected)
    # the bins follow confidence, not item order
    order = np.random.default_rng(0).permutation(10)
    shuffled = expected_calibration_error(np.array(confidence)[order], np.array(correct)[order])
    assert shuffled == pytest.approx(expected)


def test_ece_uneven_bins_and_one_bin():
    # n = 11: two bins, of six and five items (numpy.array_split puts the extra item first).
    confidence = [0.5] * 6 + [0.9] * 5
    correct = [True] * 6 + [False] * 5
    assert expected_calibration_error(confidence, correct) == pytest.approx((6 * 0.5 + 5 * 0.9) / 11)
    # n = 4: one bin, |accuracy - mean confidence| = |0.75 - 0.7|
    assert expected_calibration_error([0.6, 0.7, 0.7, 0.8], [True, True, False, True]) == pytest.approx(0.05)
    # a model sure and always right is perfectly calibrated; no items, no figure
    assert expected_calibration_error([1.0] * 12, [True] * 12) == 0.0
    assert expected_calibration_error([], []) is None


# ── pairs ───────────────────────────────────────────────────────────────────────────────────


def test_pair_probability_is_the_softmax_of_the_two_scores():
    pos = np.array([-1.0, -2.0, -3.0, -0.5, -4.0, -1.5])
    neg = np.array([-2.0, -1.0, -3.0, -2.5, -3.5, -1.0])
    p = expit(pos - neg)  # softmax over two scores = logistic of their difference
    # Brier: the desired text is always the right one; flipping half the pairs (label 0, 1 - p)
    # gives sklearn both classes and the same loss.
    flip = np.arange(len(p)) % 2 == 1
    expected_brier = binary_brier(np.where(flip, 0, 1), np.where(flip, 1 - p, p))
    assert expected_brier == pytest.approx(np.mean((1 - p) ** 2))
    figures = pair_calibration(pos, neg)
    assert figures["brier"] == pytest.approx(expected_brier)
    # six pairs: one bin; the tie (pair 3) has confidence 0.5 and counts as wrong
    confidence = np.maximum(p, 1 - p)
    assert confidence[2] == 0.5
    assert figures["ece"] == pytest.approx(abs(np.mean(pos > neg) - confidence.mean()))
    assert pair_calibration([], []) == {"ece": None, "brier": None}


# ── choices ─────────────────────────────────────────────────────────────────────────────────


def test_multiclass_brier_and_ece_over_all_choices():
    probs = [[0.7, 0.2, 0.1], [0.25, 0.5, 0.25], [0.1, 0.1, 0.8], [0.6, 0.4]]  # the last has 2 choices
    answers = [0, 0, 2, 1]
    figures = choice_calibration([np.log(p) for p in probs], answers)
    # sum over choices of (p_k - y_k)^2, by hand
    per_item = [
        0.3**2 + 0.2**2 + 0.1**2,
        0.75**2 + 0.5**2 + 0.25**2,
        0.1**2 + 0.1**2 + 0.2**2,
        0.6**2 + 0.6**2,
    ]
    assert figures["brier"] == pytest.approx(np.mean(per_item))
    # top-label: confidences 0.7, 0.5, 0.8, 0.6; right on items 1 and 3; n = 4 -> one bin
    assert figures["ece"] == pytest.approx(abs(0.5 - np.mean([0.7, 0.5, 0.8, 0.6])))
    # a two-choice set's multi-class Brier is twice the binary one
    two = choice_calibration([np.log(p) for p in [[0.7, 0.3], [0.4, 0.6]]], [0, 0])
    assert two["brier"] == pytest.approx(2 * binary_brier([1, 0], [0.7, 0.6]))
    assert choice_calibration([], []) == {"ece": None, "brier": None}


def test_choice_correctness_follows_the_scores_on_a_near_tie():
    # choices 0 and 1 have equal probabilities in float, not equal scores: the model's choice is
    # the record's (argmax of the scores, 1), so the item is right
    probs = np.exp([0.0, -1.0]) / np.exp([0.0, 0.0, -1.0]).sum()
    figures = choice_calibration([[0.0, 1e-17, -1.0]], [1])
    assert figures["ece"] == pytest.approx(1.0 - probs[0])


# ── cards ───────────────────────────────────────────────────────────────────────────────────


def _with_calibration(result, ece, brier):
    ev = result.evaluation
    return replace(result, evaluation=replace(ev, secondary=ev.secondary | {"ece": ece, "brier": brier}))


def test_audit_card_shows_calibration_and_old_runs_still_render(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    add_run(store, "new", [_with_calibration(pair_result("factual", FACTUAL_GAPS), 0.123, 0.234)])
    add_run(store, "old", [pair_result("factual", FACTUAL_GAPS)], created=1767225700.0)
    for fmt in ("md", "html"):
        text = render(build_audit_card(store, "new"), fmt).text
        assert "0.123" in text and "0.234" in text
        assert "Calibration (ece, brier)" in text and "equal-mass bins" in text
        old = render(build_audit_card(store, "old"), fmt).text
        assert "Calibration (ece, brier)" not in old and "factual" in old
    md = render(build_audit_card(store, "new"), "md").text
    assert "| ece | 0.123 |" in md and "| brier | 0.234 |" in md


def test_sweep_card_shows_calibration(tmp_path, monkeypatch):
    plain = test_sweep_cards.audit_results

    def calibrated(trainer, seed_index, split):
        first, *rest = plain(trainer, seed_index, split)
        return [_with_calibration(first, 0.1 + 0.01 * seed_index, 0.2), *rest]

    monkeypatch.setattr(test_sweep_cards, "audit_results", calibrated)
    card = build_sweep_card(test_sweep_cards.split_sweep_store(tmp_path / "runs.sqlite"), "paper-splits-1")
    rows = {(r.dimension, r.figure): r for r in card.splits[0].secondary[0].rows}
    assert rows[("factual", "ece")].values[0].mean == pytest.approx(0.1)  # the baseline cell
    assert rows[("factual", "brier")].values[1].mean == pytest.approx(0.2)
    md = render(card, "md").text
    assert "| factual | ece | 0.100 (n=1) | 0.110 ± 0.010 (n=3) |" in md and "Calibration (ece, brier)" in md
    assert "equal-mass bins" in CALIBRATION_DEFINITION


# ── end to end on the tiny model ────────────────────────────────────────────────────────────


def _plain_choice_set(folder: Path) -> Path:
    """Ten of the bias set's ambiguous records without unknown_answer: scored as plain choices."""
    folder.mkdir()
    source = Path(__file__).parents[1] / "probes" / "bias" / "probes.jsonl"
    records = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines()[:10]]
    for r in records:
        r.pop("unknown_answer")
        r["split"] = "eval"
    (folder / "probes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    (folder / "card.yaml").write_text(
        "name: plain-choices\ndimension: bias\nkind: choice\nversion: 1.0.0\nschema: 1\n"
        "description: ambiguous bias records scored as plain choices\n",
        encoding="utf-8",
    )
    return folder


def test_pair_and_choice_dimensions_on_the_tiny_model_carry_calibration(tiny_model_path, tmp_path):
    store, out = tmp_path / "runs.sqlite", tmp_path / "out.json"
    plain = _plain_choice_set(tmp_path / "plain-choices")
    proc = rho_audit(
        "run", "--model", str(tiny_model_path), "--plugins", "factual,bias", "--probes", str(plain),
        "--split", "eval", "-n", "10", "--store", str(store), "--json", str(out), "--display", "none",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text(encoding="utf-8"))
    results = {r["dimension"]: r["evaluation"] for r in doc["results"]}
    assert len(results) == 3, list(results)
    for name, ev in results.items():
        s = ev["secondary"]
        assert 0.0 <= s["ece"] <= 1.0, name
        upper = 1.0 if ev["records"][0]["values"].get("logprob_choice_0") is None else 2.0
        assert 0.0 <= s["brier"] <= upper, name
    # the pair figure is the softmax of the records' own confidences
    factual = results["factual"]
    p = expit([r["values"]["gap"] for r in factual["records"] if not r["error"]])
    assert factual["secondary"]["brier"] == pytest.approx(np.mean((1 - p) ** 2))
    card = tmp_path / "card.md"
    proc = rho_audit(
        "report", doc["run"]["run_id"], "--format", "md", "--out", str(card), "--store", str(store)
    )
    assert proc.returncode == 0, proc.stderr
    text = card.read_text(encoding="utf-8")
    assert text.count("| ece |") == 3 and text.count("Calibration (ece, brier)") == 3
