"""Reasoning: numeric word problems, asked plainly and after a misleading prefix."""

from rho_audit.api import NumericDimension, hookimpl


class Reasoning(NumericDimension):
    name = "reasoning"
    description = "Numeric word problems, with and without a misleading prefix."


@hookimpl
def register_dimensions(register):
    register(Reasoning)
