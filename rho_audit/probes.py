"""Probe sets: a versioned JSONL schema per probe kind, strict loading, seeded sampling.

A probe set is a folder holding ``card.yaml`` and ``probes.jsonl``. The card names the set, its
kind and version; every line of ``probes.jsonl`` is one record of that kind (schema version 1):

- ``pair``: ``id``, ``split``, optional ``prompt``, ``positive``, ``negative``
- ``choice``: ``id``, ``split``, ``prompt``, ``choices`` (≥ 2), ``answer`` (index), optional
  ``biased_answer`` (index)
- ``generation``: ``id``, ``split``, ``prompt``
- ``numeric``: ``id``, ``split``, ``prompt``, ``answer`` (number), optional ``misleading_prefix``

Every record may carry ``category`` (string) and ``meta`` (object). ``split`` is ``train`` or
``eval``: trainers draw contrast pairs from ``train``; audits after training report on ``eval``.
Loading validates everything first and reports every bad line with file, line and field, so
nothing ever runs on a half-valid set.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rho_audit.errors import ProbeFileError

SCHEMA_VERSION = 1
PROBE_FILE = "probes.jsonl"
CARD_FILE = "card.yaml"
MAX_REPORTED_ERRORS = 20

NonEmpty = Annotated[str, Field(min_length=1)]


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
    prompt: NonEmpty
    choices: list[NonEmpty] = Field(min_length=2)
    answer: int
    biased_answer: int | None = None

    @model_validator(mode="after")
    def _indices(self) -> ChoiceProbe:
        n = len(self.choices)
        if not 0 <= self.answer < n:
            raise ValueError(f"answer index {self.answer} is outside choices[0..{n - 1}]")
        if self.biased_answer is not None:
            if not 0 <= self.biased_answer < n:
                raise ValueError(f"biased_answer {self.biased_answer} is outside choices")
            if self.choices[self.biased_answer] == self.choices[self.answer]:
                raise ValueError("biased_answer and answer are the same text: no signal")
        if len(set(self.choices)) != n:
            raise ValueError("choices contain duplicates")
        return self


class GenerationProbe(_Record):
    prompt: NonEmpty


class NumericProbe(_Record):
    prompt: NonEmpty
    answer: float
    misleading_prefix: NonEmpty | None = None


Probe = PairProbe | ChoiceProbe | GenerationProbe | NumericProbe
PROBE_MODELS: dict[str, type[BaseModel]] = {
    "pair": PairProbe,
    "choice": ChoiceProbe,
    "generation": GenerationProbe,
    "numeric": NumericProbe,
}


class ProbeCard(BaseModel):
    """The ``card.yaml`` header of a probe set. Free-form documentation keys are allowed."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    name: NonEmpty
    kind: Literal["pair", "choice", "generation", "numeric"]
    version: NonEmpty
    schema_version: int = Field(default=SCHEMA_VERSION, alias="schema")
    #: The dimension that scores this set when it is run by name (``rho-audit run --probes NAME``).
    dimension: str | None = None
    description: str = ""
    licence: str = "unspecified"


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


def load_probe_set(folder: Path, name: str | None = None) -> ProbeSet:
    """Load and validate a probe-set folder (or a ``probes.jsonl`` inside one)."""
    folder = Path(folder)
    if folder.is_file():
        folder = folder.parent
    card = load_card(folder / CARD_FILE)
    probes = load_records(folder / PROBE_FILE, card.kind)
    return ProbeSet(name or card.name, card, folder, probes)


def load_card(path: Path) -> ProbeCard:
    if not path.is_file():
        raise ProbeFileError(
            f"{path}: probe-set card not found. A probe set is a folder with card.yaml "
            f"(name, kind, version) and {PROBE_FILE}; create the card next to the probes."
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return ProbeCard.model_validate(data)
    except yaml.YAMLError as err:
        raise ProbeFileError(f"{path}: not valid YAML ({err}). Fix the syntax.") from None
    except ValidationError as err:
        raise ProbeFileError(f"{path}: invalid card. {_describe(err)}") from None


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
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = model.model_validate(json.loads(line))
            except json.JSONDecodeError as err:
                errors.append(f"{path}:{lineno}: not valid JSON ({err.msg} at column {err.colno})")
                continue
            except ValidationError as err:
                errors.append(f"{path}:{lineno}: {_describe(err, kind)}")
                continue
            if record.id in seen:
                errors.append(
                    f"{path}:{lineno}: duplicate id {record.id!r} (first on line {seen[record.id]})"
                )
                continue
            seen[record.id] = lineno
            probes.append(record)  # type: ignore[arg-type]
    if not probes and not errors:
        errors.append(f"{path}: no records")
    if errors:
        shown = errors[:MAX_REPORTED_ERRORS]
        more = len(errors) - len(shown)
        tail = f"\n  ... and {more} more" if more else ""
        raise ProbeFileError(
            f"{len(errors)} invalid record(s) in a {kind!r} probe set; nothing was run.\n  "
            + "\n  ".join(shown)
            + tail
            + f"\nFix each line (schema: `rho-audit probes` docs, {kind} records need "
            f"{_required_fields(kind)})."
        )
    return tuple(probes)


def _describe(err: ValidationError, kind: str | None = None) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "record"
        parts.append(f"field {loc!r}: {e['msg']}")
    return "; ".join(parts)


def _required_fields(kind: str) -> str:
    model = PROBE_MODELS[kind]
    return ", ".join(n for n, f in model.model_fields.items() if f.is_required())


def pair_contrasts(probes: Iterable[Probe], dimension: str = "") -> Iterator[ContrastPair]:
    for p in probes:
        assert isinstance(p, PairProbe)
        yield ContrastPair(dimension, p.id, p.prompt, p.positive, p.negative)


def choice_contrasts(probes: Iterable[Probe], dimension: str = "") -> Iterator[ContrastPair]:
    for p in probes:
        assert isinstance(p, ChoiceProbe)
        if p.biased_answer is not None:
            yield ContrastPair(dimension, p.id, p.prompt, p.choices[p.answer], p.choices[p.biased_answer])
