"""Persona files: a user's personas (named system prompts), for ``rho-audit run --persona FILE``.

Two formats, chosen by the file's suffix:

* ``.jsonl``: one JSON object per line, ``{"name": ..., "system_prompt": ..., "category": ...}``.
* ``.yaml`` / ``.yml``: a list of such mappings, or a mapping whose ``personas:`` key holds one.

``name`` (lowercase letters, digits and hyphens) and ``system_prompt`` are required, ``category``
is optional; other keys are refused (a misspelt ``system-prompt`` must not pass as a persona
without one). Every problem is reported at once as ``file:line: field: what``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from rho_audit._util.messages import problem_lines
from rho_audit._util.yaml_errors import yaml_error_message
from rho_audit.api.errors import RhoAuditError
from rho_audit.api.personas import Persona
from rho_audit.probesets.schema import decode_utf8, iter_json_lines

#: The suffixes a persona file may have, by format.
JSONL_SUFFIXES = (".jsonl",)
YAML_SUFFIXES = (".yaml", ".yml")
FIELDS = ("name", "system_prompt", "category")
_REQUIRED = ("name", "system_prompt")
_FORMAT_HINT = (
    "A persona record is {name: lowercase letters, digits and hyphens; system_prompt: text; "
    "category: text (optional)}."
)


class PersonaFileError(RhoAuditError):
    """A persona file failed validation; the message names file, line and field."""


def is_persona_file(path: Path) -> bool:
    """Whether ``path`` names a file in a persona format (by suffix; the file need not exist)."""
    return path.suffix.lower() in (*JSONL_SUFFIXES, *YAML_SUFFIXES)


def load_persona_file(path: Path) -> tuple[Persona, ...]:
    """Every persona of ``path``, in file order. Raises :class:`PersonaFileError` listing every
    problem (``file:line: field: what``) when any record is bad; nothing is returned then."""
    path = Path(path)
    if not is_persona_file(path):
        raise PersonaFileError(
            f"{path}: a persona file ends in .jsonl, .yaml or .yml (got {path.suffix or 'no suffix'!r})."
        )
    if not path.is_file():
        raise PersonaFileError(f"{path}: no such persona file. {_FORMAT_HINT}")
    if path.suffix.lower() in JSONL_SUFFIXES:
        records = list(_jsonl_records(path))
    else:
        records = list(_yaml_records(path))
    personas: list[Persona] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for line, value, lines in records:
        if isinstance(value, str):  # the record could not be parsed: ``value`` says why
            errors.append(f"{path}:{line}: {value}")
            continue
        problems = _record_problems(value)
        if problems:
            errors.extend(f"{path}:{lines.get(f, line)}: {f}: {what}" for f, what in problems)
            continue
        persona = Persona(value["name"], value["system_prompt"], value.get("category"))
        if persona.name in seen:
            errors.append(
                f"{path}:{lines.get('name', line)}: name: duplicate persona {persona.name!r} "
                f"(first on line {seen[persona.name]})"
            )
            continue
        seen[persona.name] = lines.get("name", line)
        personas.append(persona)
    if not personas and not errors:
        errors.append(f"{path}:1: the file holds no personas")
    if errors:
        raise PersonaFileError(
            f"{len(errors)} problem(s) in persona file {path}; nothing was run.\n  "
            + problem_lines(errors)
            + f"\n{_FORMAT_HINT}"
        )
    return tuple(personas)


#: One record: (line, the parsed mapping or why it could not be read, field -> line).
_Record = tuple[int, Mapping[str, Any] | str, dict[str, int]]


def _jsonl_records(path: Path) -> Iterator[_Record]:
    for line, value, problem in iter_json_lines(path):
        if problem is not None:
            yield line, problem, {}
        elif not isinstance(value, dict):
            yield line, f"expected a JSON object, got {type(value).__name__}", {}
        else:
            yield line, value, {}


def _yaml_records(path: Path) -> Iterator[_Record]:
    try:
        text = decode_utf8(path, path.read_bytes())
    except OSError as err:
        raise PersonaFileError(f"{path}: cannot read it: {err}") from None
    except RhoAuditError as err:
        raise PersonaFileError(str(err)) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise PersonaFileError(f"{yaml_error_message(path, err)}. Fix the syntax there.") from None
    except RecursionError:
        raise PersonaFileError(f"{path}: YAML nested too deeply; write a flat list of personas.") from None
    except ValueError as err:  # a value YAML reads but Python refuses, e.g. a 5000-digit integer
        raise PersonaFileError(f"{path}: a value cannot be read: {err}. Quote it as text.") from None
    if isinstance(data, dict) and isinstance(root, yaml.MappingNode) and set(data) == {"personas"}:
        data = data["personas"]
        root = next(v for k, v in root.value if k.value == "personas")
    if not isinstance(data, list) or not isinstance(root, yaml.SequenceNode):
        line = root.start_mark.line + 1 if root is not None else 1
        yield line, "expected a list of personas, or a mapping with a `personas:` list", {}
        return
    for value, node in zip(data, root.value, strict=False):
        line = node.start_mark.line + 1
        if not isinstance(value, dict) or not isinstance(node, yaml.MappingNode):
            yield line, f"expected a mapping with name and system_prompt, got {type(value).__name__}", {}
            continue
        lines: dict[str, int] = {}
        duplicate = None
        for key, _ in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            if name in lines and duplicate is None:
                duplicate = (key.start_mark.line + 1, name)
            if isinstance(name, str):
                lines.setdefault(name, key.start_mark.line + 1)
        if duplicate is not None:
            yield duplicate[0], f"{duplicate[1]}: duplicate key (the earlier one would be ignored)", {}
            continue
        yield line, value, lines


def _record_problems(record: Mapping[Any, Any]) -> list[tuple[str, str]]:
    """(field, what is wrong) for each problem of one record."""
    problems = [
        (str(f), "unknown field (fields: " + ", ".join(FIELDS) + ")") for f in record if f not in FIELDS
    ]
    problems += [(f, "required field is missing") for f in _REQUIRED if f not in record]
    for field in FIELDS:
        if field not in record or (field == "category" and record[field] is None):
            continue
        value = record[field]
        if not isinstance(value, str) or not value.strip():
            problems.append((field, f"must be non-empty text (got {_shown(value)})"))
    if not problems:
        try:
            Persona(record["name"], record["system_prompt"], record.get("category"))
        except ValueError as err:
            problems.append(("name", str(err)))
    return problems


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"a {type(value).__name__}"
