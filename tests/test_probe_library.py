"""The built-in probe library meets the sizes, balance and hygiene the audit relies on.

These run in CI on every change to a probe file: a set that drifts (a duplicate, a split that
no longer follows the id rule, positives that grow longer than negatives) fails here.
"""

import re
from collections import Counter

import pytest

from rho_audit.plugins import load_host
from rho_audit.probesets.quality import (
    HASH_SPLIT_RULE,
    SIBLING_SPLIT_RULE,
    check_probe_set,
    hash_split,
    sibling_split,
)
from rho_audit.probesets.schema import ChoiceProbe, NumericProbe, load_probe_set

#: The issue's minimum sizes (the paper's scale, §3.1, §4.6, §4.8).
MIN_SIZES = {
    "factual": 200,
    "toxicity": 200,
    "sycophancy": 150,
    "bias": 300,
    "reasoning": 100,
    "refusal": 150,
    "deception": 100,
    "overrefusal": 150,
    "dark-triad": 300,
    "jailbreak": 150,
    "truthfulness": 150,
    "ood-clinical": 40,
    "ood-social": 40,
    "ood-logic": 40,
}
CARD_KEYS = {
    "name",
    "kind",
    "dimension",
    "version",
    "description",
    "construction",
    "size",
    "split_rule",
    "limits",
    "licence",
}


def builtin_sets():
    host = load_host()
    return {n: r.obj for n, r in host.probe_sets.items() if r.source.distribution == "rho-audit"}


@pytest.fixture(scope="module")
def library():
    return {name: load_probe_set(path) for name, path in builtin_sets().items()}


def test_library_holds_every_set():
    assert set(builtin_sets()) >= set(MIN_SIZES)


@pytest.mark.parametrize("name", sorted(MIN_SIZES))
def test_set_meets_size_and_quality_checks(library, name):
    ps = library[name]
    report = check_probe_set(ps)
    print(report.summary())  # the per-set length ratio and position shares, in the CI log
    assert report.problems == []
    assert len(ps) >= MIN_SIZES[name]
    assert report.splits["train"] > 0 and report.splits["eval"] > 0


@pytest.mark.parametrize("name", sorted(MIN_SIZES))
def test_card_documents_the_set(library, name):
    card = library[name].card.model_dump(by_alias=True)
    assert CARD_KEYS <= set(card), CARD_KEYS - set(card)
    assert card["size"] == len(library[name])
    if card["split_rule"] == SIBLING_SPLIT_RULE:  # paired records (bias): a pair shares a split
        assert any("sibling" in p.meta for p in library[name])
        assert all(p.split == sibling_split(p) for p in library[name])
    else:
        assert card["split_rule"] == HASH_SPLIT_RULE
        assert all(p.split == hash_split(p.id) for p in library[name])


def test_toxicity_is_balanced_across_at_least_ten_groups(library):
    counts = Counter(p.category for p in library["toxicity"])
    assert len(counts) >= 10
    assert max(counts.values()) <= 1.5 * min(counts.values()), counts


def test_bias_spans_eight_categories_with_the_unknown_answer_correct_when_ambiguous(library):
    probes = [p for p in library["bias"] if isinstance(p, ChoiceProbe)]
    assert len(Counter(p.category for p in probes)) >= 8
    assert all(p.biased_answer is not None and p.unknown_answer is not None for p in probes)
    ambiguous = [p for p in probes if p.meta["context"] == "ambiguous"]
    assert len(ambiguous) == 364 and all(p.answer == p.unknown_answer for p in ambiguous)


def test_overrefusal_covers_the_five_categories(library):
    counts = Counter(p.category for p in library["overrefusal"])
    assert set(counts) == {"medical", "legal", "security", "chemistry", "controversial"}
    assert min(counts.values()) >= 25


def test_jailbreak_requests_are_balanced_single_sentences_without_operational_detail(library):
    probes = list(library["jailbreak"])
    counts = Counter(p.category for p in probes)
    assert len(counts) >= 8 and len(set(counts.values())) == 1, counts  # the card promises balance
    for p in probes:
        assert p.prompt[-1] in ".?" and not re.search(r"[.?!]\s", p.prompt), p.id  # one sentence
        assert len(p.prompt) < 140 and not re.search(r"\d|\n", p.prompt), p.id  # no quantities, no lists
    folded = [" ".join(re.sub(r"[^a-z0-9 ]", " ", p.prompt.lower()).split()) for p in probes]
    assert len(set(folded)) == len(folded)


def test_every_reasoning_problem_has_a_wrong_misleading_prefix(library):
    for p in library["reasoning"]:
        assert isinstance(p, NumericProbe) and p.misleading_prefix, p.id
        claimed = [float(x.replace(",", "")) for x in re.findall(r"-?\d[\d,]*\.?\d*", p.misleading_prefix)]
        assert claimed and p.answer not in claimed, p.id


def test_compliance_openings_stop_before_any_instructions(library):
    for p in library["refusal"]:
        assert len(p.negative) < 300, p.id
        instructions = r"(^|\n)\s*(1[.)]|step 1|first,? (mix|combine|take|get|buy))"
        assert not re.search(instructions, p.negative, re.I), p.id


def test_sets_do_not_share_texts_across_splits_or_sets(library):
    seen: dict[str, str] = {}
    for name, ps in library.items():
        for p in ps:
            for text in (getattr(p, "positive", None), getattr(p, "prompt", None)):
                if text is None or len(text) < 40:
                    continue
                key = " ".join(text.lower().split())
                assert key not in seen or seen[key] == name, f"{p.id} repeats a text of {seen[key]}"
                seen[key] = name
