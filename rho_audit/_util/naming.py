"""Names derived from user text: file-name-safe slugs, and the symbols of trainer options."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

#: How tables and charts write the trainer options that have a symbol in the paper.
OPTION_SYMBOLS: dict[str, str] = {"lambda": "λ", "margin": "γ"}


def param_label(params: Sequence[tuple[str, Any]]) -> str:
    """``λ=0.2 γ=0.1``: settings as the cards write them, with the paper's symbols."""
    parts = []
    for key, value in params:
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        parts.append(f"{OPTION_SYMBOLS.get(key, key)}={shown}")
    return " ".join(parts)


def slug(text: str, keep: str = "._-", *, lower: bool = True, strip: str = "-.", fallback: str = "x") -> str:
    """``text`` made safe as (part of) a file name: each run of characters other than ASCII
    letters, digits and ``keep`` becomes one ``-``; leading and trailing ``strip`` characters go
    (by default ``.`` too: no hidden files); lower-cased unless ``lower`` is false; ``fallback``
    when nothing is left."""
    out = re.sub(f"[^A-Za-z0-9{re.escape(keep)}]+", "-", text).strip(strip)
    return (out.lower() if lower else out) or fallback
