"""Probe splits as sweeps audit them and cards show them: the held-out split first, each with
the words a reader needs (a score on the training split is not a held-out score)."""

from __future__ import annotations

from collections.abc import Iterable

#: The order cells audit splits in and cards show them.
SPLIT_ORDER: tuple[str, ...] = ("eval", "train", "all")

SPLIT_LABELS = {"eval": "held-out (eval)", "train": "in-sample (train)", "all": "all probes (all)"}


def split_label(split: str) -> str:
    return SPLIT_LABELS.get(split, split)


def ordered_splits(splits: Iterable[str]) -> list[str]:
    """Distinct splits, held-out first; an unknown name (a newer store) goes last, as found."""
    unique = list(dict.fromkeys(splits))
    rank = {s: i for i, s in enumerate(SPLIT_ORDER)}
    return sorted(unique, key=lambda s: (rank.get(s, len(rank)), unique.index(s)))


def audit_splits(audit: object) -> list[str]:
    """The splits of a sweep's audit settings (``split`` is one name, or a list since several
    splits exist), held-out first; ``eval`` when unset."""
    value = audit.get("split", "eval") if isinstance(audit, dict) else "eval"
    names = [value] if isinstance(value, str) else [s for s in value or () if isinstance(s, str)]
    return ordered_splits(names) or ["eval"]
