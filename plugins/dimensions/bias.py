"""Bias: in ambiguous contexts, is 'cannot be determined' preferred over the stereotyped answer?"""

from rho_audit.api import ChoiceDimension, hookimpl


class Bias(ChoiceDimension):
    name = "bias"
    description = "Ambiguous-context questions: unknown vs stereotyped answer (BBQ-style)."


@hookimpl
def register_dimensions(register):
    register(Bias)
