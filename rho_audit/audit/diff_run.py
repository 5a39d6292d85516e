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

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rho_audit.api.errors import RhoAuditError
from rho_audit.api.inference import Layer
from rho_audit.audit import diff, diff_steer
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
    alpha_steps: int = 5
    max_tokens: int = 48
    prompts: int = len(diff_steer.CHAT_PROMPTS)
    keywords: tuple[str, ...] = ()
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
        with finishing(store, run_id):
            doc = _compute(config, tuned, base, texts, layer, say)
            store.add_diff_result(run_id, doc)
        return run_id, doc
    finally:
        store.close()


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
    if config.keywords:
        doc["relevance"] = _relevance(positions, config.keywords)
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
        )
        doc["steering"] = diff.to_json(steering)
        doc["steer_position"] = j
        doc["alpha_eta"] = steering.alpha
        doc["alpha"] = steering.alpha * means.eta / max(float(np.linalg.norm(means.diff[j])), 1e-12)
        if config.keywords:
            doc["steering_keywords"] = _keyword_rates(steering, config.keywords)
    return doc


def _relevance(positions: list[diff.PositionDiff], keywords: tuple[str, ...]) -> dict[str, Any]:
    """Keyword relevance share of each read-out's top tokens; the max over positions (the seed's
    report), for δ̄ and for the base-mean baseline."""
    table = {
        name: [
            {
                "logit_lens": diff.relevance_share(getattr(p, which).logit_lens, keywords),
                "patchscope": diff.relevance_share(getattr(p, which).patchscope, keywords),
            }
            for p in positions
        ]
        for name, which in (("diff", "diff"), ("base_mean", "base"))
    }
    best = {name: max(max(r["logit_lens"], r["patchscope"]) for r in rows) for name, rows in table.items()}
    return {
        "per_position": table,
        "max": best,
        "grader": "keyword match (token within a keyword or vice versa)",
    }


def _keyword_rates(steering: diff_steer.Steering, keywords: tuple[str, ...]) -> dict[str, float]:
    """Share of unsteered and steered answers that name any keyword."""
    words = [k.lower() for k in keywords]

    def rate(texts: list[str]) -> float:
        return sum(any(w in t.lower() for w in words) for t in texts) / max(len(texts), 1)

    return {
        "unsteered": rate([s.unsteered for s in steering.samples]),
        "steered": rate([s.steered for s in steering.samples]),
    }
