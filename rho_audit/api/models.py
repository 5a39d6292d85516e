"""Load a local model of one's own: for a model-based judge (``local``) or a dimension that needs a
second model. MLX is imported only when a model is loaded, never with this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rho_audit.model.language_model import LanguageModel
    from rho_audit.model.paths import ResolvedModel


def resolve_model(spec: str | None) -> ResolvedModel:
    """Where the model ``spec`` names lives: anything ``--model`` accepts (None: the bundled model),
    converted or downloaded once. Its ``path`` and ``model_id`` are what :func:`load_model` takes.

    Raises :class:`~rho_audit.api.errors.ModelError` naming the cause and the fix, before any
    weights are read.
    """
    from rho_audit.model.paths import resolve_model as resolve

    return resolve(spec)


def load_model(resolved: ResolvedModel) -> LanguageModel:
    """Load a resolved model: ``score``, ``generate``, ``sample``, ``hidden_states``, ``encode``,
    ``format_prompt`` and ``resolve_template`` as the audit's own model has them (each takes the
    template explicitly, where :class:`~rho_audit.api.context.AuditContext` passes the run's)."""
    from rho_audit.model.language_model import LanguageModel

    return LanguageModel.load(resolved.path, resolved.model_id)
