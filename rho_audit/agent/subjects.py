"""What the agent's tools act on: the base and fine-tuned models, the dimensions, the diff run.

The fine-tuned model is the base with a LoRA adapter, or a second model directory (``--model-b``);
each is loaded the first time a tool needs it. Answers are greedy, so an investigation can be
replayed. A dimension runs through the audit runner's own planning and evaluation (the keyword
judge), on a seeded sample of its probes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rho_audit.api.errors import RhoAuditError

if TYPE_CHECKING:
    from rho_audit.model.language_model import LanguageModel
    from rho_audit.plugins import PluginHost
    from rho_audit.store import RunRow, RunStore

#: The judge ``run_dimension`` scores generation dimensions with: it needs no key or model.
DIMENSION_JUDGE = "keyword-refusal"
#: Longer lists of numbers in a diff document are vectors, left out of what the agent reads.
MAX_VECTOR = 32


@dataclass
class Subjects:
    """The two models of an investigation, loaded on first use."""

    base_path: Path
    model_id: str
    adapter: Path | None
    model_b: Path | None
    template: str = "auto"
    seed: int = 0
    _loaded: dict[str, LanguageModel] = field(default_factory=dict, init=False, repr=False)

    def model(self, which: str) -> LanguageModel:
        """``finetuned`` or ``base``, loaded once."""
        if which not in self._loaded:
            from rho_audit.model.language_model import LanguageModel

            if which == "base":
                lm = LanguageModel.load(self.base_path, self.model_id)
            elif self.model_b is not None:
                lm = LanguageModel.load(self.model_b, self.model_b.name)
            else:
                lm = LanguageModel.load(self.base_path, self.model_id, self.adapter)
            self._loaded[which] = lm
        return self._loaded[which]

    def ask(self, which: str, question: str, max_tokens: int) -> str:
        """The model's greedy answer to ``question`` (a user turn)."""
        lm = self.model(which)
        return lm.generate([question], max_tokens, lm.resolve_template(self.template))[0]

    def run_dimension(self, host: PluginHost, name: str, probes: int, which: str) -> str:
        """Run dimension ``name`` on ``probes`` seeded probes of its set; its score, as a sentence."""
        from rho_audit.api.context import AuditContext
        from rho_audit.audit.runner import AuditConfig, evaluate_dimension, plan

        planned = plan(AuditConfig(dimensions=(name,), limit=probes, seed=self.seed), host)[0]
        lm = self.model(which)
        judge = host.judge(DIMENSION_JUDGE).obj()
        ctx = AuditContext(lm, judge, lm.resolve_template(self.template), self.seed)
        result = evaluate_dimension(planned, ctx, lambda event: None, "investigate")
        ev = result.evaluation
        if ev.score is None:
            return f"{name} ({which} model) could not be scored: {result.error or 'no probe scored'}"
        ci = (
            f" [{ev.ci_low:.3f}, {ev.ci_high:.3f}]"
            if ev.ci_low is not None and ev.ci_high is not None
            else ""
        )
        return (
            f"{name} on {ev.n} probes of {result.probe_set} ({which} model): {ev.metric} = "
            f"{ev.score:.3f}{ci}, status {result.status}"
        )


def find_diff_run(
    store: RunStore, base_path: Path, adapter: Path | None, model_b: Path | None
) -> RunRow | None:
    """The newest complete ``rho-audit diff`` run of exactly this base and adapter (or model B)."""
    run = store.latest_run("diff", str(base_path), str(adapter) if adapter else None)
    given = run.config.get("model_b") if run is not None else None
    if run is not None and model_b is not None and (not given or Path(given).resolve() != model_b):
        return None
    return run


def diff_document(store: RunStore, run: RunRow) -> dict[str, Any]:
    """What a diff run stored (``diff_results``: layer, η, δ̄ per position, read-outs per position,
    the α search and steered samples), with the run's id and settings."""
    return {"run_id": run.run_id, "config": run.config, **store.diff_results(run.run_id)}


def _readable(value: Any) -> Any:
    """``value`` without its vectors (lists of more than :data:`MAX_VECTOR` numbers): an agent
    reads tokens and samples, not activations."""
    if isinstance(value, dict):
        return {k: _readable(v) for k, v in value.items() if not _is_vector(v)}
    if isinstance(value, list):
        return [_readable(v) for v in value if not _is_vector(v)]
    return value


def _is_vector(value: Any) -> bool:
    if not isinstance(value, list) or not value:
        return False
    if all(isinstance(v, list) for v in value):
        return all(_is_vector(v) for v in value)
    return len(value) > MAX_VECTOR and all(isinstance(v, int | float) for v in value)


#: What a diff run knows about the answer, left out of the agent's view: the settings that describe
#: the domain (keywords, the --domain text, the relevance judge) and everything graded against them.
HIDDEN_CONFIG = ("keywords", "domain", "relevance_judge", "judge_options")
HIDDEN_RESULTS = (
    "relevance",
    "relevance_graders",
    "relevance_agreement",
    "steering_measures",
    "steering_keywords",
)


def diff_text(store: RunStore, run: RunRow | None) -> str | None:
    """The diff run as the agent reads it (JSON, vectors left out, and nothing that describes the
    fine-tuning domain: :data:`HIDDEN_CONFIG`, :data:`HIDDEN_RESULTS`), or None when there is
    none or it holds nothing."""
    if run is None:
        return None
    doc = diff_document(store, run)
    doc = {k: v for k, v in doc.items() if k not in HIDDEN_RESULTS}
    doc["config"] = {k: v for k, v in (doc.get("config") or {}).items() if k not in HIDDEN_CONFIG}
    if not any(v for k, v in doc.items() if k not in ("run_id", "config")):
        return None
    return json.dumps(_readable(doc), indent=1, ensure_ascii=False, default=str)


def steering_vector(doc: dict[str, Any], position: int) -> tuple[Any, Any, float]:
    """(δ̄_j scaled to the mean state norm η, the layer, the α its search chose for that scale),
    exactly as ``rho-audit diff`` steers; a :class:`RhoAuditError` when the run has no such δ̄_j."""
    import numpy as np

    deltas = doc.get("deltas") or []
    if not 0 <= position < len(deltas):
        raise RhoAuditError(
            f"position {position} is not one of the diff run's positions 0..{len(deltas) - 1}"
        )
    delta = np.asarray(deltas[position], dtype=np.float32)
    unit = delta / max(float(np.linalg.norm(delta)), 1e-12) * float(doc.get("eta", 1.0))
    alpha = doc.get("alpha_eta")
    return unit.astype(np.float32), doc.get("layer", "middle"), float(alpha) if alpha is not None else 1.0


def steering_api() -> tuple[Any, str]:
    """The model layer's steered generation (``rho_audit.model.intervene.steer_generate``), or
    None and why it is not available."""
    try:
        from rho_audit.model import intervene  # type: ignore[attr-defined]
    except ImportError:
        return None, "this rho-audit has no steering API (rho_audit.model.intervene)"
    steer = getattr(intervene, "steer_generate", None)
    if steer is None:
        return None, "rho_audit.model.intervene has no steer_generate"
    return steer, ""


def require_model_b(model_b: Path) -> Path:
    """``--model-b`` as a resolved directory, or a :class:`RhoAuditError` saying what to pass."""
    if not (model_b / "config.json").is_file():
        raise RhoAuditError(
            f"--model-b {model_b}: no config.json there. Pass the directory of the fine-tuned model "
            "(Hugging Face layout), or use --adapter for a LoRA adapter of BASE."
        )
    return model_b.resolve()
