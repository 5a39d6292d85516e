"""Persona geometry: where each persona puts the model's representations.

A persona's centroid is the mean hidden state, at one layer, of the last token of each neutral
question asked under that persona (the position the reply's first token is predicted from). The
leakage studies read what training a source persona does to the others against the cosine of
their centroids to the source's. Raw cosines, not centred: the seed reports raw cosines (about
0.87 to 0.998 on a 7B model), so all personas sit close together and the spread is what matters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from rho_audit.api import AuditContext, Layer, Persona, RhoAuditError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["NO_PERSONA", "centroids", "cosine_matrix", "cosines_to", "label"]

#: The label of "no persona" (no system turn) among persona names.
NO_PERSONA = "none"


def label(persona: Persona | None) -> str:
    """A persona's name, or :data:`NO_PERSONA`."""
    return persona.name if persona is not None else NO_PERSONA


def centroids(
    ctx: AuditContext,
    personas: Sequence[Persona | None],
    prompts: Sequence[str],
    layer: Layer = "middle",
) -> dict[str, np.ndarray]:
    """Each persona's centroid: the mean over ``prompts`` of the hidden state at ``layer`` of the
    prompt's last token, with the model under the persona (None: under none). Float64 vectors,
    keyed by :func:`label`."""
    import numpy as np

    if not prompts:
        raise RhoAuditError("persona centroids need at least one prompt.")
    out: dict[str, np.ndarray] = {}
    for persona in personas:
        with ctx.using_persona(persona):
            states = ctx.hidden_states(list(prompts), layer=layer, positions="last")
        out[label(persona)] = np.asarray(states, dtype=np.float64).mean(axis=0)
    return out


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    import numpy as np

    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / denom if denom > 0 else float("nan")


def cosines_to(vectors: Mapping[str, np.ndarray], source: str) -> dict[str, float]:
    """Cosine of every centroid to the ``source`` centroid (the source's own is 1)."""
    if source not in vectors:
        raise RhoAuditError(f"no centroid for source persona {source!r}; have: {', '.join(vectors)}.")
    return {name: _cosine(v, vectors[source]) for name, v in vectors.items()}


def cosine_matrix(vectors: Mapping[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """The names and the symmetric matrix of pairwise cosines of ``vectors``."""
    import numpy as np

    names = list(vectors)
    stacked = np.stack([vectors[n] for n in names])
    unit = stacked / np.linalg.norm(stacked, axis=1, keepdims=True)
    return names, unit @ unit.T
