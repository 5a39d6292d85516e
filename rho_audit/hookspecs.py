"""Compatibility: the plugin API now lives in :mod:`rho_audit.api`.

``from rho_audit.hookspecs import PairDimension, Thresholds, hookimpl`` keeps working for packages
written against the earlier documented API; new code imports from :mod:`rho_audit.api`.
"""

from rho_audit.api.dimensions import (
    ChoiceDimension,
    Dimension,
    GenerationDimension,
    MetricName,
    NumericDimension,
    PairDimension,
    Thresholds,
)
from rho_audit.api.hooks import (
    ENTRY_POINT_GROUP,
    PROJECT_NAME,
    hookimpl,
    hookspec,
    register_dimensions,
    register_executors,
    register_judges,
    register_probe_sets,
    register_report_sections,
    register_trainers,
    run_event,
)
from rho_audit.api.judges import Judge, JudgeItem, Verdict
from rho_audit.api.trainers import LossTerms, Trainer, TrainerOption

__all__ = [
    "ENTRY_POINT_GROUP",
    "PROJECT_NAME",
    "ChoiceDimension",
    "Dimension",
    "GenerationDimension",
    "Judge",
    "JudgeItem",
    "LossTerms",
    "MetricName",
    "NumericDimension",
    "PairDimension",
    "Thresholds",
    "Trainer",
    "TrainerOption",
    "Verdict",
    "hookimpl",
    "hookspec",
    "register_dimensions",
    "register_executors",
    "register_judges",
    "register_probe_sets",
    "register_report_sections",
    "register_trainers",
    "run_event",
]
