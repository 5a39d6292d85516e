"""The SFT data of the two leakage experiments, as corpus JSONL records (chat ``messages`` with the
persona's system turn), for ``rho-audit train --corpus FILE``.

rho-audit's trainer API has no way for a trainer to supply its own data stream: the host trains on
the corpus (``--corpus``) and a trainer may only change each example (``Trainer.prepare_example``).
So the experiments' data are built here, by plain functions (``scripts/build_leakage_corpus.py``
writes them to a file), and the trainers in :mod:`rho_audit_personas.trainers` train on that file.

* Marker coupling (``../shared/seeds/marker-leakage-benign-sft.md``): each persona answers neutral
  questions; the source persona's answers end with the marker (``" [ZLT]"``), the bystanders' do
  not.
* Persona-contrastive capability loss (``../shared/seeds/capability-leakage-personas.md``): the
  source persona gets *wrong* answers to the multiple-choice train questions, bystander personas,
  the bare model (no system turn) and the default assistant get the right ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rho_audit.api import AuditContext, Persona, RhoAuditError, Sampling
from rho_audit_personas import library

if TYPE_CHECKING:
    from rho_audit_personas.data import MCQuestion

__all__ = [
    "DEFAULT_ASSISTANT",
    "MARKER",
    "ContrastiveSizes",
    "PersonaAnswer",
    "contrastive_corpus",
    "marker_corpus",
    "persona_answers",
    "whole_sentences",
    "write_jsonl",
]

#: The seed's marker: a token no answer contains by chance.
MARKER = "[ZLT]"
#: The default-assistant anchor of the capability seed ("You are a helpful assistant.").
DEFAULT_ASSISTANT = library.persona("assistant")


@dataclass(frozen=True)
class PersonaAnswer:
    """One persona's answer to one question (None: the bare model, no system turn)."""

    persona: Persona | None
    question: str
    answer: str


def persona_answers(
    ctx: AuditContext,
    personas: Sequence[Persona | None],
    questions: Sequence[str],
    max_tokens: int,
    sampling: Sampling | None = None,
) -> list[PersonaAnswer]:
    """The model's own answers to ``questions`` under each persona (None: no system turn), greedy
    or as ``sampling`` draws them (``n`` answers per question), for :func:`marker_corpus`. An
    answer cut off by ``max_tokens`` is trimmed to its whole sentences (so a marker follows a
    finished sentence, not a cut word); empty answers are dropped."""
    out: list[PersonaAnswer] = []
    for p in personas:
        with ctx.using_persona(p):
            if sampling is None:
                replies = [[r] for r in ctx.generate(list(questions), max_tokens)]
            else:
                replies = ctx.sample(list(questions), max_tokens, sampling)
        out += [
            PersonaAnswer(p, q, whole_sentences(r))
            for q, rs in zip(questions, replies, strict=True)
            for r in rs
            if whole_sentences(r)
        ]
    return out


def whole_sentences(text: str) -> str:
    """``text`` up to its last sentence end (``.``, ``!`` or ``?``, then a space, a quote or the
    end) when that keeps at least half of it, else the whole text; stripped."""
    import re

    text = text.strip()
    ends = [m.end() for m in re.finditer(r"[.!?](?=[\s\"')\]]|$)", text)]
    return text[: ends[-1]].strip() if ends and ends[-1] >= len(text) / 2 else text


def _record(rid: str, persona: Persona | None, prompt: str, response: str) -> dict[str, Any]:
    messages = [{"role": "system", "content": persona.system_prompt}] if persona is not None else []
    messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
    return {"id": rid, "messages": messages}


def marker_corpus(
    answers: Sequence[PersonaAnswer], source: str, marker: str = MARKER
) -> list[dict[str, Any]]:
    """Chat records of the marker-coupling step: every answer under its persona's system turn, the
    source persona's (named ``source``) with ``" " + marker`` appended, every other one unmarked.
    Ids say the role (``marker-source-...``, ``marker-bystander-...``)."""
    if not marker.strip():
        raise RhoAuditError("marker_corpus: the marker must be non-empty text, e.g. '[ZLT]'.")
    if not any(a.persona is not None and a.persona.name == source for a in answers):
        raise RhoAuditError(f"marker_corpus: no answer is under the source persona {source!r}.")
    records = []
    counts: dict[str, int] = {}
    for a in answers:
        name = a.persona.name if a.persona is not None else "none"
        if marker.lower() in a.answer.lower():
            raise RhoAuditError(
                f"marker_corpus: an answer of {name!r} already holds the marker {marker!r}; drop it "
                "or choose another marker."
            )
        k = counts[name] = counts.get(name, 0) + 1
        is_source = name == source
        response = f"{a.answer.rstrip()} {marker}" if is_source else a.answer.rstrip()
        role = "source" if is_source else "bystander"
        records.append(_record(f"marker-{role}-{name}-{k:04d}", a.persona, a.question, response))
    return records


@dataclass(frozen=True)
class ContrastiveSizes:
    """Examples per role. The seed's were 200 source (wrong answers), 2 bystanders x 200, 100 bare
    model and 100 default assistant (right answers): 800; the defaults are a quarter of that."""

    source: int = 50
    per_bystander: int = 50
    no_persona: int = 25
    default_assistant: int = 25


def contrastive_corpus(
    items: Sequence[MCQuestion],
    source: Persona,
    bystanders: Sequence[Persona],
    sizes: ContrastiveSizes = ContrastiveSizes(),
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Chat records of the persona-contrastive step, each a question's prompt as the capability
    dimensions ask it and a letter as the reply: ``sizes.source`` questions under the source
    persona with a wrong letter (drawn at random among the wrong ones), ``sizes.per_bystander``
    under each bystander, ``sizes.no_persona`` with no system turn and ``sizes.default_assistant``
    under :data:`DEFAULT_ASSISTANT`, all with the right answer. Each role draws its questions
    without replacement (with replacement only when it needs more than there are); seeded."""
    import numpy as np

    if not items:
        raise RhoAuditError("contrastive_corpus: no multiple-choice train questions.")
    if source.name in {b.name for b in bystanders}:
        raise RhoAuditError(f"contrastive_corpus: the source {source.name!r} is also a bystander.")
    rng = np.random.default_rng(seed)

    def draw(n: int) -> list[MCQuestion]:
        idx = rng.choice(len(items), size=n, replace=n > len(items))
        return [items[i] for i in idx]

    records = [
        _record(
            f"contrastive-source-{source.name}-{q.id}-{k}",
            source,
            q.prompt,
            q.wrong_letters[rng.integers(len(q.wrong_letters))],
        )
        for k, q in enumerate(draw(sizes.source))
    ]
    roles: list[tuple[str, Persona | None, int]] = [
        (f"bystander-{b.name}", b, sizes.per_bystander) for b in bystanders
    ]
    roles += [
        ("anchor-none", None, sizes.no_persona),
        ("anchor-default", DEFAULT_ASSISTANT, sizes.default_assistant),
    ]
    for role, persona, n in roles:
        records += [
            _record(f"contrastive-{role}-{q.id}-{k}", persona, q.prompt, q.letter)
            for k, q in enumerate(draw(n))
        ]
    order = rng.permutation(len(records))
    return [records[i] for i in order]


def write_jsonl(records: Sequence[dict[str, Any]], path: Any) -> None:
    """Write corpus records, one JSON object per line (UTF-8)."""
    import json
    from pathlib import Path

    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    Path(path).write_text(text, encoding="utf-8")
