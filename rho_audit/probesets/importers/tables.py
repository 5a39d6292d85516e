"""Import a JSONL or CSV table of probes, given which column holds each of our fields."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from rho_audit.api.errors import ProbeFileError
from rho_audit.probesets.importers.conversion import (
    COMMON_FIELDS,
    KIND_FIELDS,
    LABELLED_DIMENSION,
    Conversion,
    DroppedRecord,
    ImportedSet,
    RecordError,
    add_drop_notes,
    check_set_name,
    default_import_root,
    kind_notes,
    labelled_card,
    normalise_split,
    optional_text,
    pair_fields,
    parse_label,
    parse_number,
    problems_error,
    read_text,
    refuse_existing,
    refuse_one_label,
    write_set,
)
from rho_audit.probesets.quality import hash_split
from rho_audit.probesets.schema import PROBE_MODELS, iter_json_lines


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
            raise problems_error(path, errors, "invalid JSONL")
        return rows, None
    text = read_text(path)
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
        raise problems_error(path, errors, "malformed CSV rows")
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
        raise RecordError(f"column {col!r} ({field_name}) is {state}", f"fill in {col!r} or drop the row")
    return value


def _table_choices(row: dict[str, Any], cols: str | list[str]) -> list[str]:
    if isinstance(cols, list):
        cells = [row.get(c) for c in cols]
        while cells and (cells[-1] is None or str(cells[-1]).strip() == ""):
            cells.pop()
        for c, v in zip(cols, cells, strict=False):
            if v is None or str(v).strip() == "":
                raise RecordError(
                    f"column {c!r} (a choice) is empty", f"fill in {c!r}; only trailing choices may be empty"
                )
        return [str(v) for v in cells]
    value = _cell(row, cols, "choices", True)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise RecordError(
                f"column {cols!r} (choices) is not a JSON list",
                'write it as ["a", "b", ...] or map choices to several columns: choices=a|b|c',
            ) from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RecordError(
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
    raise RecordError(
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
                raise RecordError(f"no column for {f!r}", f"map {f}=COLUMN")
            return None
        assert isinstance(col, str)
        return _cell(row, col, f, required)

    if kind == "pair":
        out["prompt"] = optional_text(get("prompt"))
        out |= pair_fields(str(get("positive", True)), str(get("negative", True)), out["prompt"])
    elif kind == "generation":
        out["prompt"] = str(get("prompt", True))
    elif kind == "labelled":
        out["text"] = str(get("text", True))
        raw = get("label", True)
        out["label"] = parse_label(raw)
        if out["label"] is None:
            raise RecordError(
                f"column {cols['label']!r} (label) is {raw!r}, not a binary label",
                "write true/false, yes/no or 1/0",
            )
        out["group"] = optional_text(get("group"))
    elif kind == "numeric":
        out["prompt"] = str(get("prompt", True))
        raw = get("answer", True)
        out["answer"] = parse_number(raw)
        if out["answer"] is None:
            raise RecordError(
                f"column {cols['answer']!r} (answer) is {raw!r}, not a number", "write a plain number"
            )
        out["misleading_prefix"] = optional_text(get("misleading_prefix"))
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
                raise DroppedRecord("answer equals biased_answer (no signal)")
    out["split"] = normalise_split(get("split"))
    out["category"] = optional_text(get("category"))
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
    desired_label: bool | None = None,
) -> ImportedSet:
    """Convert a JSONL or CSV table into ``dest_root/<name>/``.

    ``mapping`` maps our field to a source column (``{"positive": "chosen"}``); unmapped fields
    are read from a column of the same name when there is one. ``choices`` may name a column
    holding a JSON list, or several columns as ``"a|b|c"``. Columns not used go to ``meta``.
    A ``labelled`` set needs ``desired_label`` (the label of the texts the model should be more
    confident in); its label cells may be true/false, yes/no or 1/0, and it is scored by the
    built-in ``labelled`` dimension unless ``dimension`` names another.
    """
    path = Path(path)
    if fmt not in ("jsonl", "csv"):
        raise ProbeFileError(f"unknown table format {fmt!r} (fix: use jsonl or csv)")
    if kind not in PROBE_MODELS:
        raise ProbeFileError(f"unknown probe kind {kind!r} (fix: use one of {', '.join(PROBE_MODELS)})")
    if (kind == "labelled") != (desired_label is not None):
        raise ProbeFileError(
            "a labelled set needs the desired label (fix: pass --desired-label true or false: the label "
            "of the texts the model should be more confident in, false for an is_toxic column)"
            if kind == "labelled"
            else f"a desired label applies to labelled sets only, not {kind!r} (fix: drop --desired-label)"
        )
    if kind == "labelled" and dimension is None:
        dimension = LABELLED_DIMENSION
    if not path.is_file():
        raise ProbeFileError(f"{path}: no such file")
    check_set_name(name)
    dest_root = Path(dest_root) if dest_root is not None else default_import_root()
    refuse_existing(dest_root / name, overwrite)
    rows, header = _table_rows(path, fmt)
    if not rows:
        raise ProbeFileError(f"{path}: no rows (fix: add at least one record)")
    columns = set(header) if header is not None else set().union(*(r.keys() for _, r in rows))
    cols = _table_columns(kind, dict(mapping), columns, path, header)
    used = {c for v in cols.values() for c in ([v] if isinstance(v, str) else v)}
    conv = Conversion(
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
    if desired_label is not None:
        label_col = cols["label"]
        assert isinstance(label_col, str)
        conv.card_extra = labelled_card(desired_label, label_col)
    errors: list[str] = []
    source_ids: list[str | None] = []
    row_numbers: list[int] = []
    splits = 0
    for n, (line, row) in enumerate(rows, start=1):
        try:
            rec = _table_record(kind, row, cols)
        except DroppedRecord as drop:
            conv.dropped[drop.reason] += 1
            continue
        except RecordError as err:
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
        raise problems_error(path, errors, f"{fmt} rows for a {kind!r} set")
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
        raise problems_error(path, id_errors, "duplicate ids")
    if kind == "labelled":
        refuse_one_label(path, [r["label"] for r in conv.records], str(cols["label"]))
    add_drop_notes(conv)
    conv.notes += kind_notes(kind, dimension)
    return write_set(conv, name, dest_root, overwrite)
