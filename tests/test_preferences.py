"""Users' preference pairs (`--preferences`): what loads, what is refused with file:line:field,
that no input makes the loader fail any other way, and that `rho-audit train` refuses a bad file
before it loads a model."""

from __future__ import annotations

import sys

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from rho_audit.api.errors import ProbeFileError
from rho_audit.probesets.schema import ContrastPair
from rho_audit.train.preferences import load_preferences

from .test_parsers_fuzz import FUZZ, dump_jsonl, either, json_values, scratch

PAIRS = [
    {"id": "flat", "prompt": "Is the earth flat?", "chosen": "No, it is round.", "rejected": "Yes."},
    {"prompt": "2 + 2?", "chosen": "4", "rejected": "5", "source": "extra keys are ignored"},
]


def jsonl(path, records):
    path.write_bytes(dump_jsonl(records))
    return path


def refused(path) -> str:
    with pytest.raises(ProbeFileError) as err:
        load_preferences(path)
    return str(err.value)


def test_pairs_load_with_and_without_ids(tmp_path):
    path = jsonl(tmp_path / "prefs.jsonl", PAIRS)
    assert load_preferences(path) == [
        ContrastPair("preferences", "flat", "Is the earth flat?", "No, it is round.", "Yes."),
        ContrastPair("preferences", "prefs-2", "2 + 2?", "4", "5"),
    ]
    # blank lines are skipped, but line numbers (and so default ids) still count them
    path.write_bytes(b"\n" + dump_jsonl(PAIRS[1:]))
    assert [p.probe_id for p in load_preferences(path)] == ["prefs-2"]


def test_every_bad_line_is_named_with_its_field(tmp_path):
    good = PAIRS[1]
    records = [
        PAIRS[0],
        {**good, "chosen": "   "},  # 2
        {k: v for k, v in good.items() if k != "rejected"},  # 3
        {**good, "prompt": None},  # 4
        {**good, "chosen": 4},  # 5
        {**good, "rejected": ["no"]},  # 6
        {**good, "rejected": "4"},  # 7: the same text as chosen
        ["a", "list"],  # 8
        {**good, "id": 7},  # 9
        {**good, "id": "flat"},  # 10: line 1's id
        {"prompt": "p", "choosen": "a", "rejected": "b"},  # 11
    ]
    path = tmp_path / "p.jsonl"
    path.write_bytes(dump_jsonl(records) + b'{"prompt": "cut\n')  # 12
    text = refused(path)
    assert text.startswith("11 invalid line(s) in the preference pairs; nothing was trained.")
    for needle in (
        f"{path}:2: field 'chosen': missing or empty",
        f"{path}:3: field 'rejected': missing or empty",
        f"{path}:4: field 'prompt': missing or empty",
        f"{path}:5: field 'chosen': must be a string, not a number",
        f"{path}:6: field 'rejected': must be a string, not an array",
        f"{path}:7: field 'rejected': the same text as 'chosen'",
        f"{path}:8: a record must be a JSON object, not an array",
        f"{path}:9: field 'id': must be a non-empty string when given, not a number",
        f"{path}:10: field 'id': 'flat' is also the id of line 1",
        f"{path}:11: field 'chosen': missing or empty (is 'choosen' a misspelling of it?)",
        f"{path}:12: not valid JSON",
    ):
        assert needle in text
    assert f"{path}:1:" not in text
    assert text.endswith('(optional "id": a string unique in the file).')
    assert 'Each line needs {"prompt", "chosen", "rejected"}' in text


def test_empty_and_missing_files_say_what_the_file_should_hold(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n")
    assert f"{empty}: no records" in refused(empty)
    missing = tmp_path / "nope.jsonl"
    text = refused(missing)
    assert str(missing) in text and '{"prompt", "chosen", "rejected"}' in text
    assert str(tmp_path) in refused(tmp_path)  # a folder is not a file of pairs


FIELDS = st.sampled_from(["id", "prompt", "chosen", "rejected"])


@FUZZ
@given(
    either(dump_jsonl(PAIRS), dump_jsonl, PAIRS)
    | st.lists(st.dictionaries(FIELDS, st.text(max_size=3) | json_values), max_size=4).map(dump_jsonl)
)
def test_any_bytes_give_pairs_or_a_probe_file_error(data):
    with scratch() as tmp:
        path = tmp / "p.jsonl"
        path.write_bytes(data)
        try:
            pairs = load_preferences(path)
        except ProbeFileError as err:
            assert str(err).strip()
            event("refused")
            return
    event("loaded")
    assert pairs and all(isinstance(p, ContrastPair) and p.positive != p.negative for p in pairs)
    assert all(isinstance(t, str) and t.strip() for p in pairs for t in (p.prompt, p.positive, p.negative))
    assert len({p.probe_id for p in pairs}) == len(pairs)


def test_train_refuses_a_bad_file_before_loading_a_model(tmp_path, monkeypatch, capsys):
    """Exit code 2 and file:line:field, and neither the audit nor the training loads a model."""
    import rho_audit.cli.app as app
    from rho_audit.model.language_model import LanguageModel

    def no_model(*args, **kw):
        raise AssertionError("a model was loaded before the preference pairs were checked")

    monkeypatch.setattr(LanguageModel, "load", no_model)
    monkeypatch.setattr(app, "GRACEFUL_SIGNALS", ())  # keep pytest's own signal handlers
    bad = jsonl(tmp_path / "bad.jsonl", [PAIRS[0], {**PAIRS[1], "rejected": ""}])
    args = ["train", "--preferences", str(bad), "--out", str(tmp_path / "a"), "--store", str(tmp_path / "s")]
    monkeypatch.setattr(sys, "argv", ["rho-audit", *args])
    with pytest.raises(SystemExit) as exited:
        app.cli()
    assert exited.value.code == 2
    assert f"{bad}:2: field 'rejected': missing or empty" in capsys.readouterr().err
