"""Probe schema: every shipped set validates; bad files fail with file, line and field."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rho_audit.errors import ProbeFileError
from rho_audit.plugins import load_host
from rho_audit.probes import PairProbe, load_probe_set

from .test_plugins import BUILTIN_DIMENSIONS

CARD = "name: demo\nkind: pair\nversion: '1'\n"


def write_set(folder: Path, lines: list[str], card: str = CARD) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "card.yaml").write_text(card)
    (folder / "probes.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def pair(i: int, **kw) -> str:
    rec = {"id": f"p{i}", "split": "eval", "positive": f"good {i}", "negative": f"bad {i}"} | kw
    return json.dumps(rec)


def test_every_shipped_probe_set_validates():
    host = load_host()
    assert set(host.probe_sets) >= BUILTIN_DIMENSIONS  # each ships a set of the same name
    for name, reg in host.probe_sets.items():
        probes = load_probe_set(reg.obj, name)
        assert len(probes) >= 20, name
        assert {p.split for p in probes} == {"train", "eval"}, name


def test_errors_name_file_line_and_field(tmp_path):
    folder = write_set(tmp_path / "bad", [pair(1), '{"id": "p2", "split": "eval", "positive": "x"}', "{oops"])
    with pytest.raises(ProbeFileError) as info:
        load_probe_set(folder)
    text = str(info.value)
    assert f"{folder / 'probes.jsonl'}:2: field 'negative'" in text
    assert ":3: not valid JSON" in text
    assert "nothing was run" in text


def test_identical_pair_and_duplicate_ids_are_rejected(tmp_path):
    folder = write_set(tmp_path / "s", [pair(1), pair(1), pair(2, negative="good 2")])
    with pytest.raises(ProbeFileError) as info:
        load_probe_set(folder)
    assert "duplicate id 'p1'" in str(info.value)
    assert "identical" in str(info.value)


def test_bad_split_and_unknown_field(tmp_path):
    folder = write_set(tmp_path / "s", [pair(1, split="test"), pair(2, colour="red")])
    with pytest.raises(ProbeFileError) as info:
        load_probe_set(folder)
    text = str(info.value)
    assert ":1: field 'split'" in text and ":2: field 'colour'" in text


def test_choice_indices_are_checked(tmp_path):
    card = "name: c\nkind: choice\nversion: '1'\n"
    rec = {"id": "c1", "split": "eval", "prompt": "Who?", "choices": ["A", "B"], "answer": 2}
    folder = write_set(tmp_path / "c", [json.dumps(rec)], card)
    with pytest.raises(ProbeFileError, match="outside choices"):
        load_probe_set(folder)


def test_missing_card_names_the_fix(tmp_path):
    (tmp_path / "probes.jsonl").write_text(pair(1))
    with pytest.raises(ProbeFileError, match=r"card\.yaml"):
        load_probe_set(tmp_path)


def test_sampling_is_seeded_and_the_same_in_another_process(tmp_path):
    folder = write_set(tmp_path / "s", [pair(i) for i in range(50)])
    ids = [p.id for p in load_probe_set(folder).sample(10, [3, 99])]
    code = (
        "import sys; from rho_audit.probes import load_probe_set;"
        "print(','.join(p.id for p in load_probe_set(sys.argv[1]).sample(10, [3, 99])))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code, str(folder)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
    )
    assert other.stdout.strip().split(",") == ids
    assert ids != [p.id for p in load_probe_set(folder).sample(10, [4, 99])]


def test_split_filter(tmp_path):
    folder = write_set(tmp_path / "s", [pair(1), pair(2, split="train")])
    probes = load_probe_set(folder)
    assert [p.id for p in probes.split("train")] == ["p2"]
    assert isinstance(probes.probes[0], PairProbe)
