"""Probe schema: every shipped set validates; bad files fail with file, line and field."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rho_audit.api.errors import ProbeFileError
from rho_audit.plugins import load_host
from rho_audit.probesets.schema import PairProbe, load_probe_set

from .test_plugins import OWN_SET_DIMENSIONS

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
    assert set(host.probe_sets) >= OWN_SET_DIMENSIONS  # each ships a set of the same name
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
        "import sys; from rho_audit.probesets.schema import load_probe_set;"
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


# ── hardening: unreadable files answer with file:line and the fix, never a traceback ─────────


def validate(*paths: Path):
    """`rho-audit probes validate PATHS` in-process: (exit code, output)."""
    from click.testing import CliRunner

    from rho_audit.cli import main

    result = CliRunner().invoke(main, ["probes", "validate", *map(str, paths)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def write_bytes_set(folder: Path, data: bytes) -> Path:
    write_set(folder, [])
    (folder / "probes.jsonl").write_bytes(data)
    return folder


GOOD = "\n".join(pair(i) for i in range(3)).encode() + b"\n"


def test_invalid_utf8_names_line_and_byte_offset(tmp_path):
    folder = write_bytes_set(tmp_path / "s", GOOD + b'{"id": "x\xff\xfe", "split": "eval"}\n' + GOOD[:0])
    code, out = validate(folder)
    assert code == 1
    assert f"{folder / 'probes.jsonl'}:4: not valid UTF-8 (byte 0xff at byte offset 9 of the line)" in out
    assert "save the file as UTF-8" in out and "Traceback" not in out


def test_deep_nesting_and_long_lines_are_bounded(tmp_path):
    from rho_audit.probesets.schema import MAX_LINE_BYTES

    deep = b'{"id": "d", "split": "eval", "meta": {"x": ' + b"[" * 5000 + b"]" * 5000 + b"}}\n"
    long = b'{"id": "' + b"a" * (MAX_LINE_BYTES + 10) + b'"}\n'
    folder = write_bytes_set(tmp_path / "s", GOOD + deep + long + b"oops\n")
    code, out = validate(folder)
    assert code == 1
    assert ":4: JSON nested more than 64 levels deep; flatten the record" in out
    assert f":5: line is {MAX_LINE_BYTES + 21} bytes long, over the limit of {MAX_LINE_BYTES}" in out
    assert ":6: not valid JSON: Expecting value at column 1" in out  # numbering resumes after the long line


def test_json_syntax_messages_point_at_the_right_line_and_column(tmp_path):
    raw_cr = b'{"id": "a\rb", "split": "eval", "positive": "x", "negative": "y"}\n'
    truncated = b'{"id": "t", "split": "eval", "positive": "x"'  # last record, cut off, no newline
    folder = write_bytes_set(tmp_path / "s", GOOD + raw_cr + truncated)
    code, out = validate(folder)
    assert code == 1
    assert ":4: not valid JSON: raw control character '\\r' inside a string at column 10" in out
    cut = ":5: not valid JSON: Expecting ',' delimiter at the end of the line, column 45 (is it cut off?)"
    assert cut in out
    assert "at at" not in out and ":6:" not in out  # the file has five lines


def test_crlf_and_byte_order_mark_are_accepted(tmp_path):
    folder = write_bytes_set(tmp_path / "s", b"\xef\xbb\xbf" + GOOD.replace(b"\n", b"\r\n"))
    assert len(load_probe_set(folder)) == 3
    (folder / "card.yaml").write_bytes(b"\xef\xbb\xbf" + CARD.encode())
    _, out = validate(folder)
    assert "demo: 3 pair probes" in out


def test_whitespace_only_texts_and_non_finite_answers_are_rejected(tmp_path):
    folder = write_set(tmp_path / "s", [pair(1, positive="  \t"), pair(2, id=" ")])
    code, out = validate(folder)
    assert code == 1
    assert ":1: field 'positive': must contain text, not only whitespace" in out
    assert ":2: field 'id': must contain text, not only whitespace" in out
    numeric = "name: n\nkind: numeric\nversion: '1'\n"
    nan = '{"id": "a", "split": "eval", "prompt": "2+2=", "answer": NaN}'
    folder = write_set(tmp_path / "n", [nan], numeric)
    code, out = validate(folder)
    assert code == 1 and ":1: field 'answer': Input should be a finite number" in out


def test_card_errors_name_file_line_and_field(tmp_path):
    folder = write_set(tmp_path / "s", [pair(1)], card="name: demo\nversion: '1'\nkind: pairs\n")
    code, out = validate(folder)
    assert code == 1 and f"{folder / 'card.yaml'}:3: kind: Input should be 'pair'" in out
    (folder / "card.yaml").write_bytes(b"name: demo\nkind: pair\nversion: '\xff'\n")
    code, out = validate(folder)
    assert f"{folder / 'card.yaml'}:3: not valid UTF-8 (byte 0xff at byte offset 10 of the line)" in out
    (folder / "card.yaml").write_text("name: [demo\nkind: pair\n")
    code, out = validate(folder)
    assert f"{folder / 'card.yaml'}:2: not valid YAML" in out
    (folder / "card.yaml").write_text("[" * 3000)
    code, out = validate(folder)
    assert "YAML nested too deeply" in out
    (folder / "card.yaml").write_text("- pair\n")
    code, out = validate(folder)
    assert f"{folder / 'card.yaml'}:1: card: expected a mapping with name, kind and version, got list" in out


def test_bad_probe_file_exits_2_without_a_traceback(tmp_path):
    from .test_cli import rho_audit

    folder = write_bytes_set(tmp_path / "s", b'{"id": "x\xff"}\n' + b"[" * 100000 + b"\n")
    proc = rho_audit("run", "--probes", f"factual={folder}", "--store", str(tmp_path / "s.sqlite"))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"{folder / 'probes.jsonl'}:1: not valid UTF-8" in proc.stderr
    assert f"{folder / 'probes.jsonl'}:2: JSON nested more than 64 levels deep" in proc.stderr
