"""The neutral corpus of ``rho-audit diff``: short everyday sentences on no particular domain, on
which a fine-tune's activation differences are averaged.

Built deterministically from hand-written templates and small fact tables (written for this
project): every text is a template filled from the tables, the combinations taken in one
seeded shuffle, so the same ``count`` always gives the same texts. A user's own file (one text
a line, or JSONL with a ``text`` field) replaces it.
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

from rho_audit.api.errors import RhoAuditError

_PEOPLE = (
    "my neighbour", "the old teacher", "a young cyclist", "the baker", "my cousin", "a tired nurse",
    "the librarian", "a farmer", "the new student", "our postman", "a painter", "the shop owner",
)  # fmt: skip
_PLACES = (
    "the park", "the market", "the train station", "the library", "the harbour", "a small village",
    "the garden", "the museum", "the kitchen", "the bus stop", "the riverbank", "the town square",
)  # fmt: skip
_THINGS = (
    "a red umbrella", "an old bicycle", "a cup of tea", "a paper map", "a wooden chair", "a blue kite",
    "a loaf of bread", "a pair of boots", "a glass jar", "a notebook", "a basket of apples", "a lamp",
)  # fmt: skip
_TIMES = (
    "on Monday morning", "late in the evening", "after lunch", "before sunrise", "in early spring",
    "during the storm", "on a quiet Sunday", "at noon", "last winter", "in the autumn",
)  # fmt: skip
_WEATHER = ("rainy", "sunny", "windy", "foggy", "cold", "warm", "cloudy", "humid")
_ACTIVITIES = (
    "reading a book", "fixing a fence", "walking the dog", "baking bread", "planting tomatoes",
    "painting a wall", "washing the car", "sorting old letters", "learning to knit", "cleaning windows",
)  # fmt: skip
_TEMPLATES = (
    "{person} left {thing} at {place} {time}.",
    "It was {weather} {time}, so {person} stayed near {place}.",
    "{person} spent the afternoon {activity}.",
    "Somebody found {thing} near {place}.",
    "The weather at {place} was {weather} {time}.",
    "{person} enjoys {activity} {time}.",
    "There is {thing} on the table next to the window.",
    "{person} walked to {place} {time} to buy {thing}.",
    "The road to {place} is long but pleasant when it is {weather}.",
    "We met {person} at {place} and talked about {activity}.",
    "{time}, {person} was busy {activity}.",
    "I asked {person} whether {thing} belonged to them.",
    "The sign at {place} said it would stay {weather} all week.",
    "After {activity}, {person} went home to rest.",
    "Nobody at {place} remembered who brought {thing}.",
)


def neutral_texts(count: int, seed: int = 0) -> list[str]:
    """``count`` distinct neutral sentences (at most the templates' combinations)."""
    combos: list[str] = []
    for template in _TEMPLATES:
        fields = [
            f for f in ("person", "place", "thing", "time", "weather", "activity") if "{" + f in template
        ]
        tables = {
            "person": _PEOPLE, "place": _PLACES, "thing": _THINGS, "time": _TIMES,
            "weather": _WEATHER, "activity": _ACTIVITIES,
        }  # fmt: skip
        for values in itertools.product(*(tables[f] for f in fields)):
            text = template.format(**dict(zip(fields, values, strict=True)))
            combos.append(text[0].upper() + text[1:])
    unique = sorted(set(combos))
    random.Random(seed).shuffle(unique)
    if count > len(unique):
        raise RhoAuditError(
            f"--texts {count}: the built-in neutral corpus has {len(unique)} texts; ask for fewer."
        )
    return unique[:count]


def read_texts(path: Path, count: int | None = None) -> list[str]:
    """A user's neutral texts: one a line, or JSONL objects with a ``text`` field; blank lines skipped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise RhoAuditError(
            f"--corpus {path}: cannot read it ({err}); pass a UTF-8 text or JSONL file."
        ) from None
    texts: list[str] = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                text = json.loads(line).get("text")
            except (ValueError, AttributeError):
                text = None
            if not isinstance(text, str) or not text.strip():
                raise RhoAuditError(
                    f'{path}:{number}: a JSON line needs a non-empty "text" string; '
                    "or write plain text, one a line."
                )
            line = text.strip()
        texts.append(line)
    if not texts:
        raise RhoAuditError(f"--corpus {path}: no texts in it; write one text a line.")
    return texts[:count] if count else texts
