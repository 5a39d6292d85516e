"""Each quality check catches the defect it exists for (and passes a clean set)."""

import json

from rho_audit.probesets.quality import HASH_SPLIT_RULE, SIBLING_SPLIT_RULE, check_probe_set, hash_split
from rho_audit.probesets.schema import load_probe_set


def make_set(tmp_path, kind, records, split_rule=HASH_SPLIT_RULE):
    folder = tmp_path / "s"
    folder.mkdir(exist_ok=True)
    (folder / "card.yaml").write_text(
        f"name: s\nkind: {kind}\nversion: '1'\nsplit_rule: '{split_rule}'\n", encoding="utf-8"
    )
    lines = [json.dumps({"split": hash_split(r["id"]), **r}) for r in records]
    (folder / "probes.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return check_probe_set(load_probe_set(folder))


def pairs(n, pos="Statement number {i} is true.", neg="Statement number {i} is false."):
    return [{"id": f"p{i}", "positive": pos.format(i=i), "negative": neg.format(i=i)} for i in range(n)]


def test_clean_pair_set_passes(tmp_path):
    report = make_set(tmp_path, "pair", pairs(30))
    assert report.ok, report.problems
    assert 0.95 < report.length_ratio < 1.05


def test_longer_positives_are_flagged(tmp_path):
    longer = "Statement {i} is true, as any careful reader of the record sees."
    report = make_set(tmp_path, "pair", pairs(30, pos=longer))
    assert any("systematically longer" in p for p in report.problems)


def test_duplicate_texts_are_flagged(tmp_path):
    records = pairs(30)
    records[5]["positive"] = records[3]["positive"].upper()  # case and spacing do not hide a duplicate
    report = make_set(tmp_path, "pair", records)
    assert any("p5: positive duplicates that of p3" in p for p in report.problems)


def test_split_that_breaks_the_rule_is_flagged(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "card.yaml").write_text(f"name: s\nkind: pair\nversion: '1'\nsplit_rule: '{HASH_SPLIT_RULE}'\n")
    lines = [json.dumps({"split": "train", **r}) for r in pairs(30)]
    (folder / "probes.jsonl").write_text("\n".join(lines) + "\n")
    report = check_probe_set(load_probe_set(folder))
    assert any("break the card's split rule" in p for p in report.problems)
    assert any("train share 100%" in p for p in report.problems)


def choice(i, answer, biased, k=3):
    opts = [f"Option {c} for {i}" for c in "ABC"[:k]]
    return {"id": f"c{i}", "prompt": f"Q {i}?", "choices": opts, "answer": answer, "biased_answer": biased}


def test_answer_always_first_is_flagged(tmp_path):
    report = make_set(tmp_path, "choice", [choice(i, 0, 1 + i % 2) for i in range(30)])
    assert report.position_shares["answer@A"] == 1.0
    assert any("answer@A holds 100%" in p for p in report.problems)


def test_balanced_choices_pass_and_biased_order_is_checked(tmp_path):
    rows = [choice(i, i % 3, (i % 3 + 1 + (i // 3) % 2) % 3) for i in range(36)]
    balanced = make_set(tmp_path, "choice", rows)
    assert balanced.ok, (balanced.problems, balanced.position_shares)
    skewed = make_set(tmp_path, "choice", [choice(i, 2, 0) if i % 2 else choice(i, 1, 0) for i in range(30)])
    assert any("biased before other" in p for p in skewed.problems)


def test_sibling_split_rule_keeps_each_pair_in_one_split(tmp_path):
    records = pairs(30) + [
        {**r, "id": f"d{i}", "meta": {"sibling": f"p{i}"}} for i, r in enumerate(pairs(30))
    ]
    for r in records[30:]:
        r["positive"], r["negative"] = r["positive"] + " Again.", r["negative"] + " Again."
    lines = [json.dumps({"split": sibling_split_of(r), **r}) for r in records]
    report = make_set_lines(tmp_path, "pair", lines, SIBLING_SPLIT_RULE)
    assert report.ok, report.problems
    # The same records under the plain rule: the siblings whose own id hashes the other way break it.
    plain = make_set_lines(tmp_path, "pair", lines, HASH_SPLIT_RULE)
    assert any("break the card's split rule (e.g. d" in p for p in plain.problems)


def test_bbq_stereotyped_answers_do_not_skew_the_position_shares(tmp_path):
    # Ambiguous items (unknown at i % 3, the stereotyped person before the other one in half), each
    # with a disambiguated twin answering the stereotyped person (odd i) or the other one.
    rows = []
    for i in range(36):
        unknown, biased = i % 3, (i % 3 + 1 + (i // 3) % 2) % 3
        other = 3 - unknown - biased
        rows.append(choice(i, unknown, biased) | {"unknown_answer": unknown})
        twin = choice(100 + i, biased if i % 2 else other, biased) | {"unknown_answer": unknown}
        rows.append(twin)
    report = make_set(tmp_path, "choice", rows)
    # Taking "the other person" as 3 - answer - biased would put it at 42% here (a twin's answer
    # is a person, not the unknown option) and flag a balanced set.
    assert report.position_shares["biased before other"] == 0.5
    assert not any("biased before other" in p for p in report.problems)


def requests(counts):
    return [
        {"id": f"r-{c}-{i}", "category": c, "prompt": f"Request {i} about {c}?"}
        for c, n in counts.items()
        for i in range(n)
    ]


def test_duplicates_are_found_across_case_spacing_and_punctuation(tmp_path):
    rows = requests({"a": 12})
    rows[4]["prompt"] = "  request 2 ABOUT a ... "
    report = make_set(tmp_path, "generation", rows)
    assert any("r-a-4: prompt duplicates that of r-a-2" in p for p in report.problems)


def test_categories_must_match_the_card_and_stay_balanced_when_promised(tmp_path):
    rows = requests({"a": 16, "b": 16, "c": 8})
    folder = tmp_path / "s"
    folder.mkdir()
    card = f"name: s\nkind: generation\nversion: '1'\nsplit_rule: '{HASH_SPLIT_RULE}'\n"
    lines = [json.dumps({"split": hash_split(r["id"]), **r}) for r in rows]
    (folder / "probes.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")

    def check(extra):
        (folder / "card.yaml").write_text(card + extra, encoding="utf-8")
        return check_probe_set(load_probe_set(folder)).problems

    assert check("") == []  # no promise, no account: an uneven set is the author's choice
    assert check("categories: {a: 16, b: 16, c: 8}\n") == []
    [wrong] = check("categories: {a: 16, b: 16, c: 16}\n")
    assert "do not match the records (a 16, b 16, c 8)" in wrong
    [unbalanced] = check("balanced_categories: true\n")
    assert "largest holds 2.0x the smallest" in unbalanced
    assert check("balanced_categories: false\n") == []


def make_set_lines(tmp_path, kind, lines, split_rule):
    folder = tmp_path / "s"
    folder.mkdir(exist_ok=True)
    (folder / "card.yaml").write_text(f"name: s\nkind: {kind}\nversion: '1'\nsplit_rule: \"{split_rule}\"\n")
    (folder / "probes.jsonl").write_text("\n".join(lines) + "\n")
    return check_probe_set(load_probe_set(folder))


def sibling_split_of(record):
    return hash_split(record.get("meta", {}).get("sibling", record["id"]))
