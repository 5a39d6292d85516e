"""One ``rho-audit diff`` run: load the fine-tuned model (BASE + adapter, or model B) and its base,
compute the activation-difference lens (:mod:`rho_audit.audit.diff`), steer
(:mod:`rho_audit.audit.diff_steer`) and store everything as a ``diff`` run.

The stored document (``RunStore.add_diff_result``) holds ``layer`` (the block index),
``positions``, ``eta``, ``deltas`` (δ̄_j, one list per position), per-position read-outs
(``readouts``: Logit Lens and Patchscope tokens of δ̄_j and of the base mean), the steering
search and samples, and ``alpha``: the raw multiplier of ``deltas[steer_position]`` that the
search chose (``alpha_eta`` times ``eta / |δ̄_j|``), so ``steer_generate(lm, prompts,
deltas[j], layer, alpha, ...)`` reproduces the steered samples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rho_audit.api.errors import RhoAuditError
from rho_audit.api.inference import Layer
from rho_audit.audit import diff, diff_relevance, diff_steer
from rho_audit.audit.neutral import neutral_texts, read_texts
from rho_audit.model import activations
from rho_audit.model.language_model import LanguageModel
from rho_audit.store import RunStore


@dataclass(frozen=True)
class DiffConfig:
    """The settings of one ``rho-audit diff`` run."""

    base: str | None
    store: Path
    adapter: Path | None = None
    model_b: Path | None = None
    layer: Layer = "middle"
    positions: int = 5
    texts: int = 2000
    corpus: Path | None = None
    top: int = 20
    steer_position: int | None = None
    alpha_high: float = 4.0
    alpha_steps: int = 7
    max_tokens: int = 48
    prompts: int = len(diff_steer.CHAT_PROMPTS)
    keywords: tuple[str, ...] = ()
    #: A description of the fine-tuning domain: what the relevance judge grades tokens against and
    #: what steered answers are compared with.
    domain: str | None = None
    #: A judge plugin (``claude``, ``local``) that grades token relevance against ``domain``.
    relevance_judge: str | None = None
    judge_options: tuple[tuple[str, str], ...] = ()
    judge_max_usd: float | None = None
    judge_max_calls: int | None = None
    seed: int = 0
    steer: bool = True

    def record(self) -> dict[str, Any]:
        return {
            "command": "diff",
            "adapter": str(self.adapter) if self.adapter else None,
            "model_b": str(self.model_b) if self.model_b else None,
            "layer": self.layer,
            "positions": self.positions,
            "texts": self.texts,
            "corpus": str(self.corpus) if self.corpus else "built-in neutral templates",
            "top": self.top,
            "steer_position": self.steer_position,
            "alpha_high": self.alpha_high,
            "alpha_steps": self.alpha_steps,
            "max_tokens": self.max_tokens,
            "prompts": self.prompts,
            "keywords": list(self.keywords),
            "domain": self.domain,
            "relevance_judge": self.relevance_judge,
            "judge_options": dict(self.judge_options),
            "judge_max_usd": self.judge_max_usd,
            "judge_max_calls": self.judge_max_calls,
        }


def _steer_position(means: diff.Means, chosen: int | None) -> int:
    """``chosen``, else the position past the document start whose δ̄_j is largest relative to
    the base mean there (position 0 is the same token in every text)."""
    k = len(means.diff)
    if chosen is not None:
        if not 0 <= chosen < k:
            raise RhoAuditError(f"--steer-position {chosen}: pass one of 0..{k - 1} (--positions {k}).")
        return chosen
    ratios = [np.linalg.norm(means.diff[j]) / max(np.linalg.norm(means.base[j]), 1e-12) for j in range(k)]
    return int(np.argmax(ratios[1:]) + 1) if k > 1 else 0


def run_diff(config: DiffConfig, say: Callable[[str], None] = lambda m: None) -> tuple[str, dict[str, Any]]:
    """Compute and store one diff run; returns (run id, the stored document)."""
    from rho_audit.audit.runner import finishing, start_recorded_run
    from rho_audit.model.paths import resolve_model

    if (config.adapter is None) == (config.model_b is None):
        raise RhoAuditError("diff needs exactly one of --adapter A or --model-b DIR.")
    if config.positions < 1:
        raise RhoAuditError(f"--positions {config.positions}: pass 1 or more.")
    judge = _relevance_judge(config, say)  # a missing key or endpoint fails before any model work
    texts = read_texts(config.corpus, config.texts) if config.corpus else neutral_texts(config.texts)
    resolved = resolve_model(config.base, progress=say)
    adapter = config.adapter.resolve() if config.adapter else None
    if config.model_b is not None:
        if not (config.model_b / "config.json").is_file():
            raise RhoAuditError(f"--model-b {config.model_b}: no config.json there; pass a model directory.")
        tuned = LanguageModel.load(config.model_b, config.model_b.name)
        base: LanguageModel | None = LanguageModel.load(resolved.path, resolved.model_id)
    else:
        tuned = LanguageModel.load(resolved.path, resolved.model_id, adapter)
        base = None
    layer = activations.resolve_layer(tuned.model, config.layer, tuned.model_id)
    if adapter is not None:
        _check_adapter_reaches(adapter, len(tuned.model.layers), layer)
    store = RunStore(config.store)
    try:
        record = {**config.record(), "layer_index": layer}
        run_id = start_recorded_run(
            store, "diff", resolved.model_id, resolved.path, adapter, config.seed, record
        )
        if judge is not None:
            judge.attach(store, run_id, context="relevance")
        with finishing(store, run_id):
            doc = _compute(config, tuned, base, texts, layer, say, judge)
            store.add_diff_result(run_id, doc)
        return run_id, doc
    finally:
        store.close()


def _relevance_judge(config: DiffConfig, say: Callable[[str], None]) -> Any:
    """The relevance judge, configured and preflighted, or None (keyword relevance only)."""
    if config.relevance_judge is None:
        return None
    if not config.domain:
        raise RhoAuditError(
            f"--relevance-judge {config.relevance_judge} grades tokens against a description of the "
            'fine-tuning domain: pass --domain "..." (e.g. --domain "a kettle made of volcanic glass").'
        )
    from rho_audit.audit.diff_relevance import relevance_judge
    from rho_audit.plugins import load_host

    return relevance_judge(
        load_host(),
        config.relevance_judge,
        dict(config.judge_options),
        config.judge_max_usd,
        config.judge_max_calls,
        warn=lambda m: say(f"warning: {m}"),
    )


def _check_adapter_reaches(adapter: Path, n_blocks: int, layer: int) -> None:
    """mlx-lm puts LoRA on the last ``num_layers`` blocks: at an earlier block the adapter changes
    nothing, so δ̄ would be exactly 0 and every read-out of it noise. Refuse before any work."""
    import json

    try:
        adapted = int(json.loads((Path(adapter) / "adapter_config.json").read_text())["num_layers"])
    except (OSError, ValueError, KeyError, TypeError):
        return  # not mlx-lm's layout: nothing to check
    first = n_blocks - min(adapted, n_blocks) if adapted > 0 else 0
    if layer < first:
        raise RhoAuditError(
            f"--layer {layer}: the adapter {adapter} changes only blocks {first}..{n_blocks - 1} (LoRA on "
            f"the last {adapted} of {n_blocks}), so at block {layer} the fine-tuned and base activations "
            f"are identical and δ̄ is 0. Pass --layer {first} or later (e.g. --layer -1)."
        )


def _compute(
    config: DiffConfig,
    tuned: LanguageModel,
    base: LanguageModel | None,
    texts: list[str],
    layer: int,
    say: Callable[[str], None],
    judge: Any = None,
) -> dict[str, Any]:
    k = config.positions
    sequences = diff.sequences_for(tuned, texts, k)
    say(f"mean activation differences at layer {layer} over {len(texts)} texts, first {k} positions")
    means = diff.compute_means(tuned, base, sequences, layer, k)
    say("Logit Lens and Patchscope of each position")
    positions = diff.position_diffs(tuned, means, layer, config.top)
    doc: dict[str, Any] = {
        "layer": layer,
        "positions": k,
        "n_texts": means.n,
        "corpus": str(config.corpus) if config.corpus else "built-in neutral templates",
        "eta": means.eta,
        "deltas": means.diff.astype(float).tolist(),
        "readouts": diff.to_json(positions),
        "strengths": list(diff.STRENGTHS),
        "identity_prompts": [diff.identity_prompt(t) for t in diff.IDENTITY_TRIPLES],
    }
    graders: list[diff_relevance.Grader] = []
    if judge is not None:
        assert config.domain is not None
        graders.append(diff_relevance.JudgeGrader(judge, config.domain))
    if config.keywords:
        graders.append(diff_relevance.KeywordGrader(config.keywords))
    if graders:
        say(f"token relevance ({', '.join(g.name for g in graders)})")
        tables = [diff_relevance.relevance_table(positions, g) for g in graders]
        doc["relevance"] = tables[0]  # the LLM judge's when there is one; keywords are the fallback
        doc["relevance_graders"] = tables
        if len(tables) > 1:
            doc["relevance_agreement"] = diff_relevance.grader_agreement(
                tables[0]["labels"], tables[1]["labels"]
            )
    if config.steer:
        j = _steer_position(means, config.steer_position)
        prompts = diff_steer.CHAT_PROMPTS[: config.prompts]
        say(f"steering search at position {j} on {len(prompts)} prompts")
        steering = diff_steer.search_alpha(
            tuned,
            layer,
            means.diff[j],
            means.eta,
            j,
            prompts,
            config.alpha_high,
            config.alpha_steps,
            config.max_tokens,
            fluency=_base_fluency(tuned, base),
        )
        doc["steering"] = diff.to_json(steering)
        doc["steer_position"] = j
        doc["alpha_eta"] = steering.alpha
        doc["alpha"] = steering.alpha * means.eta / max(float(np.linalg.norm(means.diff[j])), 1e-12)
        doc["steering_measures"] = _steering_measures(config, steering, tuned, base, texts)
    return doc


def _base_fluency(tuned: LanguageModel, base: LanguageModel | None) -> diff_steer.Fluency:
    """Mean log-probability per token of each answer after its prompt (chat template) under the
    base model: ``base``, or ``tuned`` with its adapter off. An answer that cannot be scored (no
    tokens) gets -inf, so it is never fluent."""
    from rho_audit.api.context import ScoreRequest
    from rho_audit.model import intervene

    scorer = base or tuned

    def score(prompts: Sequence[str], answers: Sequence[str]) -> list[float]:
        requests = [ScoreRequest(p, a) for p, a in zip(prompts, answers, strict=True)]
        with intervene.adapter_off(tuned.model) if base is None else nullcontext():
            scores = scorer.score(requests, scorer.resolve_template("chat"))
        return [s.mean_logprob if s.mean_logprob is not None else float("-inf") for s in scores]

    return score


def _steering_measures(
    config: DiffConfig,
    steering: diff_steer.Steering,
    tuned: LanguageModel,
    base: LanguageModel | None,
    texts: list[str],
) -> dict[str, Any]:
    """How far the chosen α moves the answers toward the domain, vs α 0: the share naming a
    keyword (with --keywords) and the mean cosine to the --domain description (with --domain),
    embedded by the base model at its middle block."""
    from rho_audit.model import intervene

    out: dict[str, Any] = {"alpha_eta": steering.alpha}
    if config.keywords:
        out["keyword_rate"] = {
            "unsteered": diff_steer.keyword_rate([s.unsteered for s in steering.samples], config.keywords),
            "steered": diff_steer.keyword_rate([s.steered for s in steering.samples], config.keywords),
        }
    if config.domain:
        embedder = base or tuned
        middle = activations.resolve_layer(embedder.model, "middle", embedder.model_id)
        neutral = texts[: diff_steer.CENTRE_TEXTS]
        with intervene.adapter_off(tuned.model) if base is None else nullcontext():
            out["domain_similarity"] = diff_steer.domain_similarity(
                embedder, steering, config.domain, middle, neutral
            )
    return out
