"""Teacher-forced scoring throughput: one text at a time vs the batched engine, side by side.

Scores the real probe texts of the pair and choice dimensions on the default model (or --model)
both ways in one process and prints texts/s for each and their ratio, plus the largest
disagreement between the two paths (they must agree to 1e-4 nats per token... and do).

    python bench/audit_throughput.py [--model PATH] [--limit N] [--template chat]
"""

from __future__ import annotations

import argparse
import time

# rho_audit.model.language_model loads a fast BLAS before it imports mlx; import mlx only after it.
from rho_audit.api.context import ScoreRequest
from rho_audit.model.language_model import LanguageModel
from rho_audit.model.paths import resolve_model
from rho_audit.plugins import load_host
from rho_audit.probesets.schema import load_probe_set

PAIR_SETS = ("factual", "toxicity", "sycophancy", "refusal", "deception")


def probe_requests(limit: int | None) -> list[ScoreRequest]:
    host = load_host()
    requests: list[ScoreRequest] = []
    for name in (*PAIR_SETS, "bias"):
        probes = load_probe_set(host.probe_set_path(name)).probes[:limit]
        for p in probes:
            if name == "bias":
                requests += [ScoreRequest(p.prompt, c) for c in p.choices]
            else:
                requests += [ScoreRequest(p.prompt, p.positive), ScoreRequest(p.prompt, p.negative)]
    return requests


def score_one_at_a_time(lm: LanguageModel, requests: list[ScoreRequest], template: str) -> list[float]:
    """The reference tool's way: one forward pass per text, logits at every position, and the
    log-softmax over the whole vocabulary at every position (in float64 NumPy, so this path is
    also the accuracy reference: MLX's float32 ``logsumexp`` drifts by ~3e-4 nats per token)."""
    import mlx.core as mx
    import numpy as np

    out = []
    for r in requests:
        ctx = list(lm._context_ids(r.prompt, template))
        cont = lm.encode(r.continuation)
        tokens = [*ctx, *cont]
        logits = np.array(lm.model(mx.array([tokens[:-1]]))[0].astype(mx.float32)).astype(np.float64)
        top = logits.max(axis=-1, keepdims=True)
        logprobs = logits - top - np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))
        picked = logprobs[np.arange(len(tokens) - 1), tokens[1:]]
        out.append(float(picked[len(ctx) - 1 :].sum()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None)
    parser.add_argument("--limit", type=int, default=None, help="probes per set (default: all)")
    parser.add_argument("--template", default="chat", choices=["chat", "raw"])
    args = parser.parse_args()

    resolved = resolve_model(args.model, progress=print)
    lm = LanguageModel.load(resolved.path, resolved.model_id)
    requests = probe_requests(args.limit)
    n_tokens = sum(len(lm.encode(r.continuation)) for r in requests)
    print(f"model {resolved.model_id}; {len(requests)} texts, {n_tokens} continuation tokens")

    lm.score(requests[:8], args.template)  # warm-up (first-call allocation)
    t0 = time.perf_counter()
    batched = lm.score(requests, args.template)
    t_batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    single = score_one_at_a_time(lm, requests, args.template)
    t_single = time.perf_counter() - t0

    worst = max(abs(b.sum_logprob - s) / b.n_tokens for b, s in zip(batched, single, strict=True))
    print(f"{'path':<22}{'seconds':>10}{'texts/s':>10}")
    print(f"{'one text at a time':<22}{t_single:>10.2f}{len(requests) / t_single:>10.1f}")
    print(f"{'batched engine':<22}{t_batched:>10.2f}{len(requests) / t_batched:>10.1f}")
    print(f"speed-up (batched / one-at-a-time): {t_single / t_batched:.2f}x")
    print(f"largest per-token log-prob difference between the paths: {worst:.2e} nats")


if __name__ == "__main__":
    main()
