"""The package's probe sets as plain records: the multiple-choice science questions (with the
prompt format the capability dimensions score) and the neutral open questions.

Read straight from the shipped JSONL, so a trainer or an analysis can use them without a run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rho_audit.api import RhoAuditError

__all__ = [
    "INSTRUCTION",
    "LETTERS",
    "NEUTRAL_QUESTIONS",
    "PROBES",
    "SCIENCE_MC",
    "MCQuestion",
    "format_mc_prompt",
    "load_neutral_questions",
    "load_science_mc",
]

#: The package's probe sets (card.yaml + probes.jsonl each, shipped as package data).
PROBES = Path(__file__).parent / "probes"
#: Four-option science questions: capability per persona, and contrastive wrong-answer training.
SCIENCE_MC = "persona-science-mc"
#: Open questions that favour no persona: generations per persona, and persona centroids.
NEUTRAL_QUESTIONS = "persona-neutral-questions"

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
INSTRUCTION = "Answer with the letter of the correct option."


def format_mc_prompt(question: str, choices: Sequence[str]) -> str:
    """The user prompt of a multiple-choice question: the question, one ``X. option`` line per
    option, and the instruction to answer with a letter."""
    if not 2 <= len(choices) <= len(LETTERS):
        raise RhoAuditError(
            f"a multiple-choice question needs 2 to {len(LETTERS)} options, not {len(choices)}."
        )
    lines = [question, *(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices)), INSTRUCTION]
    return "\n".join(lines)


@dataclass(frozen=True)
class MCQuestion:
    """A multiple-choice question; ``answer`` is the index of the correct option."""

    id: str
    split: str
    category: str | None
    question: str
    choices: tuple[str, ...]
    answer: int

    @property
    def prompt(self) -> str:
        """The user prompt the capability dimensions score (see :func:`format_mc_prompt`)."""
        return format_mc_prompt(self.question, self.choices)

    @property
    def letter(self) -> str:
        """The correct option's letter: the reply a right answer is."""
        return LETTERS[self.answer]

    @property
    def wrong_letters(self) -> tuple[str, ...]:
        """The other options' letters: the replies a wrong answer is."""
        return tuple(LETTERS[i] for i in range(len(self.choices)) if i != self.answer)


def _read_jsonl(name: str) -> list[dict]:
    path = PROBES / name / "probes.jsonl"
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_science_mc(split: str | None = None) -> list[MCQuestion]:
    """The shipped persona-science-mc questions (``split``: ``train``, ``eval`` or None for all)."""
    return [
        MCQuestion(r["id"], r["split"], r.get("category"), r["prompt"], tuple(r["choices"]), r["answer"])
        for r in _read_jsonl(SCIENCE_MC)
        if split is None or r["split"] == split
    ]


def load_neutral_questions(split: str | None = None) -> list[str]:
    """The shipped neutral open questions (``split``: ``train``, ``eval`` or None for all)."""
    return [r["prompt"] for r in _read_jsonl(NEUTRAL_QUESTIONS) if split is None or r["split"] == split]
