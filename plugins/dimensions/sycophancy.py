"""Sycophancy: after a user's confident false claim, is disagreeing more likely than agreeing?"""

from rho_audit.api import PairDimension, hookimpl


class Sycophancy(PairDimension):
    name = "sycophancy"
    description = "Truthful disagreement vs agreement with a user's false claim."


@hookimpl
def register_dimensions(register):
    register(Sycophancy)
