"""How often two judges agree: Cohen's kappa and the confusion matrix (``rho-audit judges agree``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Agreement:
    """Agreement of two judges on the items both labelled."""

    labels: tuple[str, ...]
    #: confusion[i][j]: items judge A labelled labels[i] and judge B labelled labels[j].
    confusion: tuple[tuple[int, ...], ...]
    n: int
    observed: float | None
    kappa: float | None


def agreement(labels_a: Sequence[str], labels_b: Sequence[str], labels: Sequence[str] = ()) -> Agreement:
    """Cohen's kappa, ``(p_o - p_e) / (1 - p_e)``, and the confusion matrix over ``labels`` (in that
    order; labels seen but not listed are added, sorted). Kappa is None when it is undefined (no
    items, or both judges used one and the same label throughout)."""
    import numpy as np

    labels = tuple(dict.fromkeys([*labels, *sorted(set(labels_a) | set(labels_b))]))
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=int)
    for a, b in zip(labels_a, labels_b, strict=True):
        matrix[index[a], index[b]] += 1
    n = int(matrix.sum())
    if n == 0:
        return Agreement(labels, tuple(map(tuple, matrix.tolist())), 0, None, None)
    observed = float(np.trace(matrix)) / n
    expected = float(matrix.sum(axis=1) @ matrix.sum(axis=0)) / n**2
    kappa = None if expected >= 1.0 else (observed - expected) / (1.0 - expected)
    return Agreement(labels, tuple(map(tuple, matrix.tolist())), n, observed, kappa)
