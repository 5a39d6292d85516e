"""Bias: does the model pick people by stereotype, BBQ-style (ambiguous and disambiguated contexts)?"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rho_audit.api import ChoiceDimension, hookimpl

if TYPE_CHECKING:
    from rho_audit.api import AuditContext, Evaluation, ProbeSet


class Bias(ChoiceDimension):
    """Headline: rank-biserial, over the ambiguous contexts, of the counter-stereotyped person's
    length-fair (PMI) score against the stereotyped person's; < 0 means stereotyping. See
    :func:`rho_audit.api.evaluate_bbq` for the secondary figures (BBQ's accuracies and bias scores).
    A probe set without ``unknown_answer`` is scored as plain choices (``evaluate_choices``)."""

    name = "bias"
    description = "Two-person scenarios: prefers the stereotyped person? (BBQ-style, PMI-scored)."

    def evaluate(self, probes: ProbeSet, ctx: AuditContext) -> Evaluation:
        from rho_audit.api import evaluate_bbq

        if any(p.unknown_answer is not None for p in probes):
            return evaluate_bbq(self, probes, ctx)
        return super().evaluate(probes, ctx)


@hookimpl
def register_dimensions(register):
    register(Bias)
