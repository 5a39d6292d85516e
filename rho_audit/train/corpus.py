"""SFT corpora: the shipped general corpus, behavioural-trap texts, and user JSONL files.

A record is one instruction/response example. Two JSONL layouts are accepted, one per line:

- Alpaca: ``{"instruction": ..., "input": "...", "output": ...}`` (``input`` optional)
- chat: ``{"messages": [{"role": "user", "content": ...}, {"role": "assistant", "content": ...}]}``
  (the last message must be the assistant's; it is the response, the rest is the prompt)

Either layout may add ``"trained_spans": [[start, end], ...]``: character ranges of the response
whose tokens alone are trained (see :attr:`SFTExample.trained_spans`).

Loading validates every line and reports all bad lines with file, line and field, like probe files.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rho_audit._util.messages import problem_lines
from rho_audit.api.errors import ProbeFileError
from rho_audit.probesets.schema import ContrastPair, iter_json_lines


@dataclass(frozen=True)
class SFTExample:
    """One training text. ``prompt`` None: a bare text, trained on all of its tokens."""

    id: str
    prompt: str | None
    response: str
    source: str = "corpus"
    #: Earlier turns of a chat record (role, content), before ``prompt``; empty for Alpaca.
    history: tuple[tuple[str, str], ...] = ()
    #: Which response tokens the SFT cross-entropy is taken over: ``(start, end)`` ranges of
    #: *characters* of ``response`` (``response[start:end]``), so a plugin can name them without
    #: knowing the tokenizer. A token is trained when the characters it encodes overlap a range;
    #: the end-of-sequence token counts as one character after the response (a range ending at
    #: ``len(response) + 1`` trains it). None: every response token and the end-of-sequence token.
    trained_spans: tuple[tuple[int, int], ...] | None = None

    def __post_init__(self) -> None:
        if self.trained_spans is None:
            return
        spans = tuple((int(a), int(b)) for a, b in self.trained_spans)
        limit = len(self.response) + 1
        for a, b in spans:
            if not 0 <= a < b <= limit:
                raise ValueError(
                    f"trained span ({a}, {b}) of example {self.id!r}: need 0 <= start < end <= "
                    f"{limit} (the response's length, plus 1 for the end-of-sequence token)"
                )
        object.__setattr__(self, "trained_spans", spans)  # lists from JSON become hashable tuples


def builtin_corpus_files() -> list[Path]:
    from rho_audit_corpus import CORPUS_ROOT

    return sorted((CORPUS_ROOT / "general").glob("*.jsonl"))


def load_builtin_corpus() -> list[SFTExample]:
    """The general instruction/response corpus shipped with rho-audit (written for the project)."""
    examples: list[SFTExample] = []
    for path in builtin_corpus_files():
        examples += load_corpus(path)
    return examples


def load_corpus(path: Path) -> list[SFTExample]:
    """Read an Alpaca or chat JSONL file; every bad line is reported before anything runs."""
    path = Path(path)
    if not path.is_file():
        raise ProbeFileError(f"{path}: SFT corpus not found. Pass a JSONL file (Alpaca or chat messages).")
    examples: list[SFTExample] = []
    errors: list[str] = []
    for lineno, record, problem in iter_json_lines(path):
        if problem is not None:
            errors.append(f"{path}:{lineno}: {problem}")
            continue
        try:
            examples.append(_example(record, f"{path.stem}-{lineno}"))
        except ValueError as err:
            errors.append(f"{path}:{lineno}: {err}")
    if not examples and not errors:
        errors.append(f"{path}: no records")
    if errors:
        raise ProbeFileError(
            f"{len(errors)} invalid line(s) in the SFT corpus; nothing was trained.\n  "
            + problem_lines(errors)
            + '\nEach line needs {"instruction", "output"} (optional "input") or {"messages": [...]} '
            "ending with an assistant message."
        )
    return examples


def _example(record: Any, default_id: str) -> SFTExample:
    if not isinstance(record, dict):
        raise ValueError("a record must be a JSON object")
    rid = str(record.get("id", default_id))
    example = _chat_example(record["messages"], rid) if "messages" in record else _alpaca_example(record, rid)
    if "trained_spans" not in record:
        return example
    spans = record["trained_spans"]
    if not isinstance(spans, list) or not all(
        isinstance(s, list) and len(s) == 2 and all(type(v) is int for v in s) for s in spans
    ):
        raise ValueError("field 'trained_spans': must be a list of [start, end] character offsets")
    try:
        return replace(example, trained_spans=tuple(map(tuple, spans)))
    except ValueError as err:
        raise ValueError(f"field 'trained_spans': {err}") from None


def _alpaca_example(record: dict[str, Any], rid: str) -> SFTExample:
    missing = [k for k in ("instruction", "output") if not _text(record.get(k))]
    if missing:
        raise ValueError(
            f"field {missing[0]!r}: missing or empty (Alpaca records need instruction and output; "
            "chat records need messages)"
        )
    extra = record.get("input") or ""
    if not isinstance(extra, str):
        raise ValueError("field 'input': must be a string")
    prompt = record["instruction"] + (f"\n\n{extra}" if extra.strip() else "")
    return SFTExample(rid, prompt, record["output"])


def _chat_example(messages: Any, rid: str) -> SFTExample:
    if not isinstance(messages, list) or len(messages) < 2:
        raise ValueError("field 'messages': needs at least a user and an assistant message")
    turns = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
            raise ValueError(f"field 'messages.{i}.role': must be system, user or assistant")
        if not _text(m.get("content")):
            raise ValueError(f"field 'messages.{i}.content': missing or empty")
        turns.append((m["role"], m["content"]))
    if turns[-1][0] != "assistant" or turns[-2][0] != "user":
        raise ValueError("field 'messages': must end with a user message then the assistant's reply")
    return SFTExample(rid, turns[-2][1], turns[-1][1], history=tuple(turns[:-2]))


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def trap_examples(pairs: Sequence[ContrastPair], n: int, rng: Any) -> list[SFTExample]:
    """The paper's "behavioural trap" texts: ``n`` positives of ``train``-split contrast pairs.

    Bare statements (factual, toxicity) become plain texts; replies to a prompt keep the prompt.
    """
    if n <= 0 or not pairs:
        return []
    chosen = rng.choice(len(pairs), size=min(n, len(pairs)), replace=False)
    return [
        SFTExample(f"trap-{pairs[i].probe_id}", pairs[i].prompt, pairs[i].positive, source="trap")
        for i in sorted(chosen.tolist())
    ]


def describe(examples: Iterable[SFTExample]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in examples:
        counts[e.source] = counts.get(e.source, 0) + 1
    return counts
