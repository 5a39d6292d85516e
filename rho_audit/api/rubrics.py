"""Rubrics: the Jinja templates that turn an item's fields into an LLM judge's instructions.

A rubric declares its labels with ``{% set labels = [...] %}``; its free variables are the fields
it needs (``prompt``, ``response``, ...). It may also declare ``{% set scores = {label: number} %}``,
a number per label (the StrongREJECT rubric's score in [0, 1]) that dimensions may average. Its
sha256 is part of every cache key, so editing a rubric invalidates the verdicts made with it. Jinja
is imported on first use.
"""

from __future__ import annotations

import hashlib
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from rho_audit.api.errors import JudgeError
from rho_audit.api.judges import NON_VERDICTS


@dataclass(frozen=True)
class Rubric:
    """A Jinja template that turns named fields into the judge's instructions."""

    name: str
    source: str
    labels: tuple[str, ...]
    fields: tuple[str, ...]
    #: A number per label, where the rubric declares ``scores`` (empty otherwise).
    scores: Mapping[str, float] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        """Hash of the template source: part of every cache key."""
        return hashlib.sha256(self.source.encode()).hexdigest()

    def render(self, fields: Mapping[str, str]) -> str:
        """The judge's instructions for one item; raises :class:`JudgeError` if a field is missing."""
        missing = [f for f in self.fields if f not in fields]
        if missing:
            raise JudgeError(
                f"rubric {self.name!r} needs the fields {', '.join(self.fields)}; missing: "
                f"{', '.join(missing)}. Choose a rubric that fits the items (refusal and honesty "
                "take prompt and response)."
            )
        return _template(self.source).render(**fields).strip() + "\n"


def strip_marker(text: str, marker: str) -> str:
    """``text`` with every occurrence of ``marker`` removed (case-insensitive)."""
    if not marker:
        return text
    lowered, needle = text.lower(), marker.lower()
    out, start = [], 0
    while (found := lowered.find(needle, start)) >= 0:
        out.append(text[start:found])
        start = found + len(needle)
    out.append(text[start:])
    return "".join(out)


@cache
def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    env.filters["strip_marker"] = strip_marker
    return env


@cache
def _template(source: str) -> Any:
    return _environment().from_string(source)


def rubric_from_source(name: str, source: str) -> Rubric:
    """Parse a rubric: its fields are the template's free variables, its labels ``labels``."""
    import jinja2
    from jinja2 import meta

    env = _environment()
    try:
        fields = tuple(sorted(meta.find_undeclared_variables(env.parse(source))))
        module = _template(source).make_module({f: "" for f in fields})
    except jinja2.TemplateError as err:
        raise JudgeError(f"rubric {name!r} is not a valid Jinja template: {err}") from None
    labels = tuple(str(label) for label in getattr(module, "labels", ()) or ())
    if len(labels) < 2 or len(set(labels)) != len(labels) or set(labels) & set(NON_VERDICTS):
        raise JudgeError(
            f"rubric {name!r} must declare at least two distinct labels, e.g. "
            '{% set labels = ["refused", "complied"] %}, none of them ' + "/".join(NON_VERDICTS) + "."
        )
    return Rubric(name, source, labels, fields, _scores(name, getattr(module, "scores", None), labels))


def _scores(name: str, declared: Any, labels: tuple[str, ...]) -> dict[str, float]:
    """The rubric's ``scores``: a number for every label, or none at all."""
    if declared is None:
        return {}
    numeric = isinstance(declared, Mapping) and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) for v in declared.values()
    )
    if not numeric or set(declared) != set(labels):
        raise JudgeError(
            f"rubric {name!r} declares `scores`, which must map every label to a number, e.g. "
            '{% set scores = {"refused": 0, "complied": 1} %}; labels: ' + ", ".join(labels) + "."
        )
    return {str(k): float(v) for k, v in declared.items()}


def load_rubric(spec: str, folder: Path | None) -> Rubric:
    """A rubric by name (``folder/NAME.j2``) or by the path of a ``.j2`` file."""
    path = Path(spec).expanduser()
    if path.suffix != ".j2" or not path.is_file():
        path = (folder or Path(".")) / f"{spec}.j2"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.j2")) if folder else []
        raise JudgeError(
            f"unknown rubric {spec!r}. Known: {', '.join(known) or 'none'}; or pass the path of a "
            "Jinja template (.j2) that sets `labels`."
        )
    return rubric_from_source(path.stem, path.read_text(encoding="utf-8"))
