"""Users' own preference pairs for pair objectives (DPO, ORPO, the contrastive term).

One JSON object a line: ``{"prompt": ..., "chosen": ..., "rejected": ...}`` with an optional
string ``id``. Each record becomes a :class:`ContrastPair` of dimension ``preferences``, drawn like
a dimension's contrast pairs. Loading validates every line and reports all bad lines with file,
line and field, like SFT corpora and probe files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rho_audit._util.messages import closest_name, problem_lines
from rho_audit.api.errors import ProbeFileError
from rho_audit.probesets.schema import ContrastPair, iter_json_lines

DIMENSION = "preferences"
TEXT_FIELDS = ("prompt", "chosen", "rejected")
_JSON_TYPES = {dict: "an object", list: "an array", bool: "a boolean", int: "a number", float: "a number"}


def load_preferences(path: Path) -> list[ContrastPair]:
    """Read a JSONL file of preference pairs; every bad line is reported before anything runs."""
    path = Path(path)
    if not path.is_file():
        raise ProbeFileError(
            f"{path}: preference pairs not found. Pass a JSONL file with "
            '{"prompt", "chosen", "rejected"} on each line.'
        )
    pairs: list[ContrastPair] = []
    first_line: dict[str, int] = {}  # probe id -> the line that gave it first
    errors: list[str] = []
    for lineno, record, problem in iter_json_lines(path):
        if problem is not None:
            errors.append(f"{path}:{lineno}: {problem}")
            continue
        try:
            pair = _pair(record, f"{path.stem}-{lineno}")
        except ValueError as err:
            errors.append(f"{path}:{lineno}: {err}")
            continue
        if pair.probe_id in first_line:
            errors.append(
                f"{path}:{lineno}: field 'id': {pair.probe_id!r} is also the id of line "
                f"{first_line[pair.probe_id]}; give each pair its own id"
            )
            continue
        first_line[pair.probe_id] = lineno
        pairs.append(pair)
    if not pairs and not errors:
        errors.append(f"{path}: no records")
    if errors:
        raise ProbeFileError(
            f"{len(errors)} invalid line(s) in the preference pairs; nothing was trained.\n  "
            + problem_lines(errors)
            + '\nEach line needs {"prompt", "chosen", "rejected"}: non-empty strings, chosen and '
            'rejected different (optional "id": a string unique in the file).'
        )
    return pairs


def _pair(record: Any, default_id: str) -> ContrastPair:
    if not isinstance(record, dict):
        raise ValueError(f"a record must be a JSON object, not {_json_type(record)}")
    rid = record.get("id", default_id)
    if not isinstance(rid, str) or not rid.strip():
        raise ValueError(f"field 'id': must be a non-empty string when given, not {_json_type(rid)}")
    for field in TEXT_FIELDS:
        value = record.get(field)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"field {field!r}: must be a string, not {_json_type(value)}")
        if value is None or not value.strip():
            typo = closest_name(field, [k for k in record if k not in TEXT_FIELDS and k != "id"])
            hint = f" (is {typo!r} a misspelling of it?)" if typo and field not in record else ""
            raise ValueError(f"field {field!r}: missing or empty{hint}")
    if record["chosen"] == record["rejected"]:
        raise ValueError(
            "field 'rejected': the same text as 'chosen', so the pair teaches nothing; "
            "give the reply you want avoided"
        )
    return ContrastPair(DIMENSION, rid, record["prompt"], record["chosen"], record["rejected"])


def _json_type(value: Any) -> str:
    if isinstance(value, str):
        return "a string" if value.strip() else "a blank string"
    return _JSON_TYPES.get(type(value), "null")
