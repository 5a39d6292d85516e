"""Personas: named system prompts an audit can put the model under.

A persona is data: a name, the system prompt that makes the model play it, and an optional
category (``professions``, ``villains``, ...). A package registers its personas through the
``register_personas`` hook (see :mod:`rho_audit.api.hooks`); a user can also keep them in a file
(:func:`rho_audit.api.load_persona_file`: JSONL or YAML, one record per persona), and a package
may keep its own library in such a file and register what that function returns::

    from rho_audit.api import Persona, hookimpl

    PIRATE = Persona("pirate", "You are a pirate captain. Answer as one.", category="fictional")

    @hookimpl
    def register_personas(register):
        register(PIRATE)

``rho-audit run --persona pirate`` (or ``--persona FILE``) audits the model under it: every prompt
the run asks, scored or generated, gets the system prompt as a system turn before the user's turn
(the chat template), or as a first paragraph (the raw template). A bare statement (a probe
without a prompt) has no turn to put it before and is scored as it is, as trainers treat bare
texts; the run's card says so. A sweep audits each cell once per persona with ``audit: {personas:
[pirate, ...]}``. A trainer that conditions examples on a persona passes :meth:`Persona.turn` as
the history of its examples (``LanguageModel.pair_tokens(..., history=[persona.turn()])``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Lowercase letters, digits and hyphens: a persona name is part of sweep cell ids.
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
#: The role of the turn a persona's system prompt is put in.
SYSTEM_ROLE = "system"
#: How an audit puts a persona to the model, as the run's message and card say it.
PERSONA_SCORING = (
    "its system prompt is the system turn of every prompt, scored and generated; bare statements "
    "(no prompt) are scored without it"
)


@dataclass(frozen=True)
class Persona:
    """A named system prompt. A bad record raises :class:`ValueError` naming the fix."""

    #: Lowercase letters, digits and hyphens (e.g. ``french-chef``); unique across installed plugins.
    name: str
    #: The text of the system turn that makes the model play the persona.
    system_prompt: str
    #: A group the persona belongs to (``professions``, ``villains``, ...), for reports.
    category: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(
                f"persona name {self.name!r} must be lowercase letters, digits and hyphens "
                "(e.g. 'french-chef')."
            )
        if not isinstance(self.system_prompt, str) or not self.system_prompt.strip():
            raise ValueError(f"persona {self.name!r}: system_prompt must be non-empty text.")
        if self.category is not None and (not isinstance(self.category, str) or not self.category.strip()):
            raise ValueError(f"persona {self.name!r}: category must be non-empty text, or left out.")

    def turn(self) -> tuple[str, str]:
        """The persona as a ``(role, content)`` history turn: ``("system", system_prompt)``."""
        return (SYSTEM_ROLE, self.system_prompt)

    def to_json(self) -> dict[str, str]:
        """The record as a run config stores it (``category`` only when set)."""
        data = {"name": self.name, "system_prompt": self.system_prompt}
        if self.category is not None:
            data["category"] = self.category
        return data
