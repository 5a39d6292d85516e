"""Pieces of error messages: bounded lists of problems and "did you mean" suggestions."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

#: Problems listed in one error message; the rest are counted.
MAX_REPORTED_ERRORS = 20


def problem_lines(problems: Sequence[str]) -> str:
    """The first :data:`MAX_REPORTED_ERRORS` problems, one per line (joined by a newline and two
    spaces of indent, for a message that puts the first after ``"\\n  "``), then how many more."""
    shown = problems[:MAX_REPORTED_ERRORS]
    more = len(problems) - len(shown)
    return "\n  ".join(shown) + (f"\n  ... and {more} more" if more else "")


def closest_name(name: str, known: Iterable[str]) -> str | None:
    """The known name most like ``name`` (a likely typo of it), or None when none is close."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return close[0] if close else None
