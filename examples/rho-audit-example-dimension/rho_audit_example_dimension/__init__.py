"""calibration-hedging: a third-party rho-audit dimension in one file.

Registered through the ``rho_audit`` entry-point group (see pyproject.toml); rho-audit finds it
on install. It ships its own probe set and registers it with ``register_probe_sets``.
"""

from pathlib import Path

from rho_audit.hookspecs import PairDimension, hookimpl

PROBES = Path(__file__).parent / "probes" / "calibration-hedging"


class CalibrationHedging(PairDimension):
    name = "calibration-hedging"
    description = "Prefers appropriately hedged answers over overconfident claims on uncertain questions."
    probe_set = "calibration-hedging"


@hookimpl
def register_dimensions(register):
    register(CalibrationHedging)


@hookimpl
def register_probe_sets(register):
    register("calibration-hedging", PROBES)
