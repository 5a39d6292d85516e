"""The plugin API: everything a dimension, judge, trainer or probe-set package uses, and nothing else.

rho-audit discovers plugins through the ``rho_audit`` entry-point group. The built-in dimensions,
judges, trainers and probe sets are registered exactly this way (see this project's
``pyproject.toml``) and import only this package, so a third-party package is a peer of the
built-ins, not a second-class citizen.

A dimension in its own package, end to end::

    # pyproject.toml
    [project.entry-points.rho_audit]
    honesty = "my_package.honesty"

    # my_package/honesty.py
    from pathlib import Path
    from rho_audit.api import PairDimension, hookimpl

    class Honesty(PairDimension):
        name = "honesty"
        description = "Prefers admitting uncertainty over confident fabrication."
        probe_set = "honesty"

    @hookimpl
    def register_dimensions(register):
        register(Honesty)

    @hookimpl
    def register_probe_sets(register):
        register("honesty", Path(__file__).parent / "probes" / "honesty")

A probe set is a folder with ``card.yaml`` (name, kind, version, licence, ...) and
``probes.jsonl`` (one record per line: :class:`PairProbe`, :class:`ChoiceProbe`,
:class:`GenerationProbe`, :class:`NumericProbe` or :class:`LabelledProbe`). ``rho-audit plugins``
shows what was discovered; ``rho-audit run --plugins honesty`` runs it. ``rho_audit.testing`` provides a
``tiny_model_path`` pytest fixture so a plugin can be tested without a real model.

Where to read on:

* :mod:`rho_audit.api.hooks`: every hook, with its documentation.
* :mod:`rho_audit.api.dimensions`: :class:`Dimension` and the five ready-made kinds; a dimension
  declares options a run may set with :class:`DimensionOption`, and a descriptive one (status
  :data:`MEASURED`, no verdict) sets ``descriptive``.
* :mod:`rho_audit.api.judges`: :class:`Judge`, :class:`Verdict`; model-based judges subclass
  :class:`LLMJudge` (:mod:`rho_audit.api.llm_judges`), with :mod:`~rho_audit.api.rubrics` and
  :mod:`~rho_audit.api.judge_calls` (budget, retries).
* :mod:`rho_audit.api.attacks`: :class:`Attack`, the jailbreak transforms that
  :class:`AttackDimension` runs (register your own with ``register_attacks``).
* :mod:`rho_audit.api.personas`: :class:`Persona`, a named system prompt an audit can put the
  model under (``rho-audit run --persona``; register your own with ``register_personas``).
* :mod:`rho_audit.api.trainers`: :class:`Trainer`, :class:`LossTerms`, :class:`TrainerOption`.
* :mod:`rho_audit.api.executors`: :class:`Executor`, where a sweep's cells run (``local``, ``ray``).
* :mod:`rho_audit.api.tracking`: what an experiment tracker (``--track mlflow``) reads of a
  finished run or sweep cell.
* :mod:`rho_audit.api.context`, :mod:`~rho_audit.api.results`, :mod:`~rho_audit.api.events`:
  what a dimension receives and returns, and what a ``run_event`` observer sees.
* :mod:`rho_audit.api.inference`: :class:`Sampling` (temperature, top-p, n completions, seed) for
  ``AuditContext.sample``/``generate``, and the ``layer``/``positions`` of
  ``AuditContext.hidden_states`` (float32 activations of prompts or scored texts at a layer).

Rules that keep the CLI fast and robust: register *classes*, not instances; import heavy libraries
(mlx, torch, an SDK) inside methods, never at module import time (this package imports none:
the probe-set types and the scoring functions load on first use); raise :class:`RhoAuditError`
(or :class:`JudgeError` from a judge) with a message that names the cause and the fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rho_audit.api.attacks import CONTROL, Attack
from rho_audit.api.context import AuditContext, CountProgress, ProgressCallback, Score, ScoreRequest, Template
from rho_audit.api.dimensions import (
    MEASURED,
    AttackDimension,
    ChoiceDimension,
    Dimension,
    DimensionOption,
    GenerationDimension,
    LabelledDimension,
    MetricName,
    NumericDimension,
    PairDimension,
    Thresholds,
)
from rho_audit.api.errors import (
    JudgeError,
    ModelError,
    PluginError,
    ProbeFileError,
    RhoAuditError,
    Terminated,
)
from rho_audit.api.events import EventKind, RunEvent
from rho_audit.api.executors import CellJob, Executor, ExecutorSettings, SweepSession, run_cell_payload
from rho_audit.api.hooks import ENTRY_POINT_GROUP, PROJECT_NAME, hookimpl
from rho_audit.api.inference import GREEDY, HiddenPositions, Layer, Sampling
from rho_audit.api.judge_calls import (
    BudgetExhausted,
    Meter,
    RetryPolicy,
    call_with_retries,
    parse_retry_after,
)
from rho_audit.api.judges import (
    ERROR,
    NON_VERDICTS,
    SKIPPED_BUDGET,
    UNPARSEABLE,
    Judge,
    JudgeItem,
    Verdict,
    VerdictStore,
)
from rho_audit.api.llm_judges import Answer, LLMJudge, cache_key, parse_options
from rho_audit.api.models import load_model, resolve_model
from rho_audit.api.personas import Persona
from rho_audit.api.results import CompatStat, DimensionResult, Evaluation, ProbeRecord, figure_with_ci
from rho_audit.api.rubrics import Rubric, load_rubric, rubric_from_source, strip_marker
from rho_audit.api.trainers import REFERENCE_PAIRS, REFERENCE_SFT, LossTerms, Trainer, TrainerOption

if TYPE_CHECKING:
    from rho_audit.audit.attacks import evaluate_attacks
    from rho_audit.audit.bbq import evaluate_bbq
    from rho_audit.audit.labelled import evaluate_labelled
    from rho_audit.audit.persona import evaluate_persona
    from rho_audit.audit.scoring import (
        evaluate_choices,
        evaluate_generations,
        evaluate_numeric,
        evaluate_pairs,
    )
    from rho_audit.audit.truthfulqa import evaluate_truthfulqa
    from rho_audit.probesets.persona_files import load_persona_file
    from rho_audit.probesets.schema import (
        ChoiceProbe,
        ContrastPair,
        GenerationProbe,
        LabelledProbe,
        NumericProbe,
        PairProbe,
        Probe,
        ProbeCard,
        ProbeSet,
        load_probe_set,
    )
    from rho_audit.train.corpus import SFTExample

# Names defined in modules that import pydantic, numpy and yaml (slow to import): loaded on
# first use (PEP 562), so discovering plugins does not pay for them.
_LAZY = {
    "rho_audit.probesets.schema": (
        "ChoiceProbe",
        "ContrastPair",
        "GenerationProbe",
        "LabelledProbe",
        "NumericProbe",
        "PairProbe",
        "Probe",
        "ProbeCard",
        "ProbeSet",
        "load_probe_set",
    ),
    "rho_audit.probesets.persona_files": ("load_persona_file",),
    "rho_audit.audit.attacks": ("evaluate_attacks",),
    "rho_audit.audit.bbq": ("evaluate_bbq",),
    "rho_audit.audit.labelled": ("evaluate_labelled",),
    "rho_audit.audit.persona": ("evaluate_persona",),
    "rho_audit.audit.truthfulqa": ("evaluate_truthfulqa",),
    "rho_audit.train.corpus": ("SFTExample",),
    "rho_audit.audit.scoring": (
        "evaluate_choices",
        "evaluate_generations",
        "evaluate_numeric",
        "evaluate_pairs",
    ),
}
_LAZY_MODULE = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _LAZY_MODULE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "CONTROL",
    "ENTRY_POINT_GROUP",
    "ERROR",
    "GREEDY",
    "MEASURED",
    "NON_VERDICTS",
    "PROJECT_NAME",
    "REFERENCE_PAIRS",
    "REFERENCE_SFT",
    "SKIPPED_BUDGET",
    "UNPARSEABLE",
    "Answer",
    "Attack",
    "AttackDimension",
    "AuditContext",
    "BudgetExhausted",
    "CellJob",
    "ChoiceDimension",
    "ChoiceProbe",
    "CompatStat",
    "ContrastPair",
    "CountProgress",
    "Dimension",
    "DimensionOption",
    "DimensionResult",
    "Evaluation",
    "EventKind",
    "Executor",
    "ExecutorSettings",
    "GenerationDimension",
    "GenerationProbe",
    "HiddenPositions",
    "Judge",
    "JudgeError",
    "JudgeItem",
    "LLMJudge",
    "LabelledDimension",
    "LabelledProbe",
    "Layer",
    "LossTerms",
    "Meter",
    "MetricName",
    "ModelError",
    "NumericDimension",
    "NumericProbe",
    "PairDimension",
    "PairProbe",
    "Persona",
    "PluginError",
    "Probe",
    "ProbeCard",
    "ProbeFileError",
    "ProbeRecord",
    "ProbeSet",
    "ProgressCallback",
    "RetryPolicy",
    "RhoAuditError",
    "Rubric",
    "RunEvent",
    "SFTExample",
    "Sampling",
    "Score",
    "ScoreRequest",
    "SweepSession",
    "Template",
    "Terminated",
    "Thresholds",
    "Trainer",
    "TrainerOption",
    "Verdict",
    "VerdictStore",
    "cache_key",
    "call_with_retries",
    "evaluate_attacks",
    "evaluate_bbq",
    "evaluate_choices",
    "evaluate_generations",
    "evaluate_labelled",
    "evaluate_numeric",
    "evaluate_pairs",
    "evaluate_persona",
    "evaluate_truthfulqa",
    "figure_with_ci",
    "hookimpl",
    "load_model",
    "load_persona_file",
    "load_probe_set",
    "load_rubric",
    "parse_options",
    "parse_retry_after",
    "resolve_model",
    "rubric_from_source",
    "run_cell_payload",
    "strip_marker",
]
