"""Names derived from user text: file-name-safe slugs, and the symbols of trainer options."""

from __future__ import annotations

import re

#: How tables and charts write the trainer options that have a symbol in the paper.
OPTION_SYMBOLS: dict[str, str] = {"lambda": "λ", "margin": "γ"}


def slug(text: str, keep: str = "._-", *, lower: bool = True, strip: str = "-.", fallback: str = "x") -> str:
    """``text`` made safe as (part of) a file name: each run of characters other than ASCII
    letters, digits and ``keep`` becomes one ``-``; leading and trailing ``strip`` characters go
    (by default ``.`` too: no hidden files); lower-cased unless ``lower`` is false; ``fallback``
    when nothing is left."""
    out = re.sub(f"[^A-Za-z0-9{re.escape(keep)}]+", "-", text).strip(strip)
    return (out.lower() if lower else out) or fallback
