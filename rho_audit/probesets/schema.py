"""Probe sets: a versioned JSONL schema per probe kind, strict loading, seeded sampling.

A probe set is a folder holding ``card.yaml`` and ``probes.jsonl``. The card names the set, its
kind and version; every line of ``probes.jsonl`` is one record of that kind (schema version 1):

- ``pair``: ``id``, ``split``, optional ``prompt``, ``positive``, ``negative``
- ``choice``: ``id``, ``split``, ``prompt``, ``choices`` (≥ 2), ``answer`` (index), optional
  ``biased_answer`` (index of the stereotype-consistent option) and ``unknown_answer`` (index of
  the "cannot be determined" option; BBQ-style sets, see :class:`ChoiceProbe`)
- ``generation``: ``id``, ``split``, ``prompt``
- ``numeric``: ``id``, ``split``, ``prompt``, ``answer`` (number), optional ``misleading_prefix``
- ``labelled``: ``id``, ``split``, ``text``, ``label`` (true/false), optional ``group`` (the group
  the text is about, e.g. ToxiGen's target group); the card's ``desired_label`` says which label the
  model should be more confident in (``false`` for ``is_toxic``)

Every record may carry ``category`` (string) and ``meta`` (object). ``split`` is ``train`` or
``eval``: trainers draw contrast pairs from ``train``; audits after training report on ``eval``.
Loading validates everything first and reports every bad line with file, line and field, so
nothing ever runs on a half-valid set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    model_validator,
)

from rho_audit._util.messages import problem_lines
from rho_audit._util.yaml_errors import yaml_error_message
from rho_audit.api.errors import ProbeFileError

SCHEMA_VERSION = 1
PROBE_FILE = "probes.jsonl"
CARD_FILE = "card.yaml"
#: Bounds of one JSONL line: longer or deeper lines are reported, never parsed.
MAX_LINE_BYTES = 1 << 20
MAX_JSON_DEPTH = 64
MAX_CARD_BYTES = 1 << 20
_BOM = "\ufeff"


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must contain text, not only whitespace")
    return text


NonEmpty = Annotated[str, Field(min_length=1), AfterValidator(_not_blank)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: NonEmpty
    split: Literal["train", "eval"]
    category: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)


class PairProbe(_Record):
    prompt: NonEmpty | None = None
    positive: NonEmpty
    negative: NonEmpty

    @model_validator(mode="after")
    def _differ(self) -> PairProbe:
        if self.positive == self.negative:
            raise ValueError("positive and negative are identical, so the pair carries no signal")
        return self


class ChoiceProbe(_Record):
    """A multiple-choice question; ``answer`` is the index of the correct choice.

    ``biased_answer`` (optional) is the stereotype-consistent choice. Without ``unknown_answer`` it
    must differ from ``answer``: the record contrasts the correct answer with the biased one.

    ``unknown_answer`` (optional) marks a BBQ-style record: the index of the "cannot be
    determined" choice, which must differ from ``biased_answer``. Then ``answer ==
    unknown_answer`` is an ambiguous context (no evidence for either person), and ``answer`` naming
    a person is a disambiguated one, which may be the stereotyped person (``answer ==
    biased_answer``: a pro-stereotypical item) or the other (anti-stereotypical).
    """

    prompt: NonEmpty
    choices: list[NonEmpty] = Field(min_length=2)
    answer: int
    biased_answer: int | None = None
    unknown_answer: int | None = None

    @property
    def other_person(self) -> int | None:
        """In a BBQ-style record (unknown option, stereotyped person, other person), the index of
        the counter-stereotyped person; None otherwise."""
        if self.unknown_answer is None or self.biased_answer is None or len(self.choices) != 3:
            return None
        return third_choice(self.unknown_answer, self.biased_answer)

    @model_validator(mode="after")
    def _indices(self) -> ChoiceProbe:
        n = len(self.choices)
        if not 0 <= self.answer < n:
            raise ValueError(f"answer index {self.answer} is outside choices[0..{n - 1}]")
        if self.unknown_answer is not None and not 0 <= self.unknown_answer < n:
            raise ValueError(f"unknown_answer {self.unknown_answer} is outside choices[0..{n - 1}]")
        if self.biased_answer is not None:
            if not 0 <= self.biased_answer < n:
                raise ValueError(f"biased_answer {self.biased_answer} is outside choices")
            if self.unknown_answer == self.biased_answer:
                raise ValueError(
                    "unknown_answer and biased_answer are the same choice; the unknown option "
                    "cannot be the stereotyped one"
                )
            if self.unknown_answer is None and self.choices[self.biased_answer] == self.choices[self.answer]:
                raise ValueError(
                    "biased_answer and answer are the same text: no signal (a disambiguated item "
                    "whose answer is the stereotyped person needs unknown_answer)"
                )
        if len(set(self.choices)) != n:
            raise ValueError("choices contain duplicates")
        return self


def third_choice(first: int, second: int) -> int:
    """Of three choices 0, 1, 2, the one that is neither ``first`` nor ``second``."""
    return 3 - first - second


class GenerationProbe(_Record):
    prompt: NonEmpty


class NumericProbe(_Record):
    prompt: NonEmpty
    answer: float = Field(allow_inf_nan=False)
    misleading_prefix: NonEmpty | None = None


class LabelledProbe(_Record):
    """One text with a binary label (ToxiGen-style ``text`` + ``is_toxic``), scored unpaired.

    ``label`` is a JSON boolean; which label is the desired one is a property of the set, so it is
    on the card (``desired_label``), not repeated per record. ``group`` (optional) is who or what the
    text is about; rho is also reported per group.
    """

    text: NonEmpty
    label: StrictBool
    group: NonEmpty | None = None


Probe = PairProbe | ChoiceProbe | GenerationProbe | NumericProbe | LabelledProbe
PROBE_MODELS: dict[str, type[BaseModel]] = {
    "pair": PairProbe,
    "choice": ChoiceProbe,
    "generation": GenerationProbe,
    "numeric": NumericProbe,
    "labelled": LabelledProbe,
}


class ProbeCard(BaseModel):
    """The ``card.yaml`` header of a probe set. Free-form documentation keys are allowed."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    name: NonEmpty
    kind: Literal["pair", "choice", "generation", "numeric", "labelled"]
    version: NonEmpty
    schema_version: int = Field(default=SCHEMA_VERSION, alias="schema")
    #: The dimension that scores this set when it is run by name (``rho-audit run --probes NAME``).
    dimension: str | None = None
    description: str = ""
    licence: str = "unspecified"
    #: ``labelled`` sets only: the label of the texts the model should be more confident in (rho > 0).
    desired_label: StrictBool | None = None
    #: ``labelled`` sets only: what the label means, e.g. the source's column name ``is_toxic``.
    label_name: NonEmpty | None = None

    @model_validator(mode="after")
    def _labelled_fields(self) -> ProbeCard:
        if self.kind == "labelled" and self.desired_label is None:
            raise ValueError(
                "a labelled set needs desired_label: true or false, the label of the texts the model "
                "should be more confident in (false for an is_toxic label)"
            )
        if self.kind != "labelled" and self.desired_label is not None:
            raise ValueError(f"desired_label applies to labelled sets only, and this set is {self.kind!r}")
        return self


@dataclass(frozen=True)
class ProbeSet:
    name: str
    card: ProbeCard
    path: Path
    probes: tuple[Probe, ...]

    @property
    def kind(self) -> str:
        return self.card.kind

    @property
    def version(self) -> str:
        return self.card.version

    def __len__(self) -> int:
        return len(self.probes)

    def __iter__(self) -> Iterator[Probe]:
        return iter(self.probes)

    def split(self, split: str) -> ProbeSet:
        """Only the records of ``split`` (``train``/``eval``); ``all`` returns the set itself."""
        if split == "all":
            return self
        return self._with([p for p in self.probes if p.split == split])

    def sample(self, n: int | None, seed: int | Sequence[int]) -> ProbeSet:
        """A seeded random subset of ``n`` probes, in file order.

        Uses numpy's PCG64 rather than ``hash()`` so the subset is the same in every process
        and on every machine.
        """
        if n is None or n >= len(self.probes):
            return self
        rng = np.random.default_rng(seed)
        keep = sorted(rng.choice(len(self.probes), size=n, replace=False).tolist())
        return self._with([self.probes[i] for i in keep])

    def _with(self, probes: Sequence[Probe]) -> ProbeSet:
        return ProbeSet(self.name, self.card, self.path, tuple(probes))


@dataclass(frozen=True)
class ContrastPair:
    """A (desired, undesired) text pair for contrastive training."""

    dimension: str
    probe_id: str
    prompt: str | None
    positive: str
    negative: str


def load_probe_set(path: Path, name: str | None = None) -> ProbeSet:
    """Load and validate a probe set: a folder, its ``card.yaml``, or a ``.jsonl`` records file.

    A ``.jsonl`` file is validated as the records of the set whose card sits next to it, even if
    it is not the folder's ``probes.jsonl`` (a draft, say). Such a set is named
    ``<card name>/<file name>``, so its results are never mistaken for the folder's own set.
    """
    path = Path(path)
    records = path / PROBE_FILE
    if path.is_file():
        if path.name == CARD_FILE:
            records = path.parent / PROBE_FILE
        elif path.suffix.lower() == ".jsonl":
            records = path
        else:
            raise ProbeFileError(
                f"{path}: not a probe file: expected a probe-set folder, its {CARD_FILE}, or a .jsonl "
                "file of records (one JSON object per line) next to a card.yaml."
            )
        path = path.parent
    card = load_card(path / CARD_FILE, records if records.name != PROBE_FILE else None)
    probes = load_records(records, card.kind)
    if name is None:
        name = card.name if records.name == PROBE_FILE else f"{card.name}/{records.name}"
    return ProbeSet(name, card, path, probes)


def load_card(path: Path, records: Path | None = None) -> ProbeCard:
    """Read and validate ``card.yaml``; every problem is reported as ``file:line: field: ...``."""
    if not path.is_file():
        owner = f" {records} is read as the records of the set in {path.parent}, so" if records else ""
        raise ProbeFileError(
            f"{path}: probe-set card not found.{owner} A probe set is a folder with card.yaml "
            f"(name, kind, version) and {PROBE_FILE}; create the card next to the probes."
        )
    raw = path.read_bytes()
    if len(raw) > MAX_CARD_BYTES:
        raise ProbeFileError(
            f"{path}: card is {len(raw)} bytes, more than the {MAX_CARD_BYTES} a card may have; "
            "keep card.yaml to the name, kind, version and documentation of the set."
        )
    text = decode_utf8(path, raw)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ProbeFileError(f"{yaml_error_message(path, err)}. Fix the syntax there.") from None
    except RecursionError:
        raise ProbeFileError(
            f"{path}: YAML nested too deeply to read; a card is a flat mapping of name, kind, version "
            "and documentation keys."
        ) from None
    if not isinstance(data, dict):
        raise ProbeFileError(
            f"{path}:1: card: expected a mapping with name, kind and version, got "
            f"{type(data).__name__ if data is not None else 'an empty file'}."
        )
    try:
        return ProbeCard.model_validate(data)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            key = str(e["loc"][0]) if e["loc"] else ""
            if not key and "desired_label" in e["msg"]:
                key = "desired_label"  # the labelled-set check sees the whole card
            msg = e["msg"].removeprefix("Value error, ")
            problems.append(f"{path}:{_key_line(root, key)}: {key or 'card'}: {msg}")
        raise ProbeFileError(
            "invalid probe-set card.\n  " + "\n  ".join(problems) + "\nFix each field; a card needs "
            "name (text), kind (pair, choice, generation, numeric or labelled) and version (text, e.g. "
            "'1'); a labelled set also desired_label (true or false)."
        ) from None


def _key_line(root: yaml.Node | None, key: str) -> int:
    """1-based line of top-level ``key`` in a composed YAML mapping (1 when it is absent)."""
    for k, _ in getattr(root, "value", None) or []:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return k.start_mark.line + 1
    return 1


def decode_utf8(path: Path, raw: bytes) -> str:
    """``raw`` (the bytes of ``path``) as text, without a leading byte-order mark.

    Bad UTF-8 raises :class:`ProbeFileError` naming the line and the byte offset in it.
    """
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1)
        raise ProbeFileError(
            f"{path}:{line}: not valid UTF-8 (byte 0x{raw[err.start]:02x} at byte offset {column} of the "
            "line); save the file as UTF-8."
        ) from None


def iter_json_lines(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """``(line number, value, problem)`` for every non-blank line of a JSONL file.

    ``problem`` is None when the line parsed, else what was wrong (bad UTF-8 with its byte
    offset, a line over :data:`MAX_LINE_BYTES`, nesting over :data:`MAX_JSON_DEPTH`, a JSON
    syntax error with its column). Lines end at ``\\n`` only, so a raw CR inside a record is
    reported on the line where it is; a UTF-8 byte-order mark is skipped.
    """
    with open(path, "rb") as handle:
        lineno = 0
        while True:
            raw = handle.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            lineno += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                size = len(raw)
                while raw and not raw.endswith(b"\n"):  # skip the rest of the long line
                    raw = handle.readline(MAX_LINE_BYTES)
                    size += len(raw)
                yield (
                    lineno,
                    None,
                    f"line is {size} bytes long, over the limit of {MAX_LINE_BYTES}; "
                    "put one record per line (is a newline missing?)",
                )
                continue
            raw = raw.rstrip(b"\n").removesuffix(b"\r")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                yield (
                    lineno,
                    None,
                    f"not valid UTF-8 (byte 0x{raw[err.start]:02x} at byte offset {err.start} of the "
                    "line); save the file as UTF-8",
                )
                continue
            text = text.removeprefix(_BOM)
            if not text.strip():
                continue
            value, problem = parse_json_line(text)
            yield lineno, value, problem


def parse_json_line(text: str) -> tuple[Any, str | None]:
    """Parse one JSON record (a line without its newline): ``(value, None)`` or ``(None, problem)``."""
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and nesting_depth(text) > MAX_JSON_DEPTH:
        return None, f"JSON nested more than {MAX_JSON_DEPTH} levels deep; flatten the record"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as err:
        if err.msg.startswith("Invalid control character"):
            return None, (
                f"not valid JSON: raw control character {text[err.pos]!r} inside a string at column "
                f"{err.colno} (escape it, e.g. as \\n, \\r or \\t)"
            )
        msg = err.msg.removesuffix(" at")
        if err.pos >= len(text.rstrip()):
            return None, f"not valid JSON: {msg} at the end of the line, column {err.colno} (is it cut off?)"
        return None, f"not valid JSON: {msg} at column {err.colno}"
    except RecursionError:
        return None, f"JSON nested too deeply; flatten the record (at most {MAX_JSON_DEPTH} levels)"
    except ValueError as err:  # e.g. an integer of more than 4300 digits
        return None, f"not valid JSON: {err}"


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(r"[][{}]")


def nesting_depth(text: str) -> int:
    """How deeply JSON ``text`` nests arrays and objects (brackets inside strings do not count)."""
    depth = deepest = 0
    for m in _BRACKET.finditer(_JSON_STRING.sub("", text)):
        depth += 1 if m.group() in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def load_records(path: Path, kind: str) -> tuple[Probe, ...]:
    """Parse every line; collect all errors before raising so the user can fix them at once."""
    if kind not in PROBE_MODELS:
        raise ProbeFileError(f"{path}: unknown probe kind {kind!r}; use one of {list(PROBE_MODELS)}")
    if not path.is_file():
        raise ProbeFileError(f"{path}: probe file not found. Put one JSON record per line there.")
    model = PROBE_MODELS[kind]
    probes: list[Probe] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for lineno, value, problem in iter_json_lines(path):
        if problem is not None:
            errors.append(f"{path}:{lineno}: {problem}")
            continue
        try:
            record = model.model_validate(value)
        except ValidationError as err:
            errors.append(f"{path}:{lineno}: {_describe(err, kind)}")
            continue
        if record.id in seen:
            errors.append(f"{path}:{lineno}: duplicate id {record.id!r} (first on line {seen[record.id]})")
            continue
        seen[record.id] = lineno
        probes.append(record)  # type: ignore[arg-type]
    if not probes and not errors:
        errors.append(f"{path}: no records")
    if errors:
        raise ProbeFileError(
            f"{len(errors)} invalid record(s) in a {kind!r} probe set; nothing was run.\n  "
            + problem_lines(errors)
            + f"\nFix each line (schema: `rho-audit probes` docs, {kind} records need "
            f"{_required_fields(kind)})."
        )
    return tuple(probes)


def _describe(err: ValidationError, kind: str | None = None) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "record"
        parts.append(f"field {loc!r}: {e['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def _required_fields(kind: str) -> str:
    model = PROBE_MODELS[kind]
    return ", ".join(n for n, f in model.model_fields.items() if f.is_required())


def pair_contrasts(probes: Iterable[Probe], dimension: str = "") -> Iterator[ContrastPair]:
    for p in probes:
        assert isinstance(p, PairProbe)
        yield ContrastPair(dimension, p.id, p.prompt, p.positive, p.negative)


def choice_contrasts(probes: Iterable[Probe], dimension: str = "") -> Iterator[ContrastPair]:
    """(correct, biased) for each record with ``biased_answer``. In a BBQ-style set only the
    ambiguous records (answer = unknown) train: a disambiguated record's answer may be the
    stereotyped person itself, and training on evidence-reading is not the behaviour sought."""
    for p in probes:
        assert isinstance(p, ChoiceProbe)
        if p.biased_answer is None:
            continue
        if p.unknown_answer is not None and p.answer != p.unknown_answer:
            continue
        yield ContrastPair(dimension, p.id, p.prompt, p.choices[p.answer], p.choices[p.biased_answer])
