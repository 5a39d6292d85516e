"""Check rho_audit.model.convert against transformers' own GGUF loader (dev-only; not run in CI).

Loads the bundled SmolLM2 GGUF (or --gguf) with transformers + torch (their own GGUF dequantizer)
and converts it with rho_audit.model.convert, loaded by mlx_lm.load and by transformers (fp32, and fp64
as ground truth). Compares weights and tokenizers, feeds every model the same token ids, reports
teacher-forced log-prob differences per token and per sequence, and prints our greedy chat answer.

Measured (2-core x86_64, 2026-11): weights identical; transformers on our directory matches its
GGUF path exactly; MLX logits are as close to fp64 as torch fp32 (2.7e-5 vs 1.6e-5 nats/token),
but MLX's fp32 ``mx.logsumexp`` over the 49K vocabulary adds ~3e-4 nats/token (~4e-3/sequence):
its CPU reduction accumulates sequentially in fp32. The engine therefore takes the log-softmax
in NumPy with a pairwise sum (``rho_audit.model.scoring.token_logprobs``), which is what the "engine"
row measures.

Needs packages rho-audit does not depend on: ``pip install torch==2.13.0 gguf accelerate`` (CPU wheel).

    python bench/check_conversion.py [--gguf FILE]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from rho_audit.model.blas import ensure_fast_blas

ensure_fast_blas()

import mlx.core as mx  # noqa: E402
import numpy as np  # noqa: E402

from rho_audit.model.convert import convert_gguf  # noqa: E402
from rho_audit.model.paths import default_gguf  # noqa: E402

TEXTS = [
    "The capital of France is Paris. It is known for the Eiffel Tower.",
    "Water boils at 100 degrees Celsius at sea level, and freezes at 0.",
    "In 1969, Neil Armstrong became the first person to walk on the Moon.",
    "def add(a, b):\n    return a + b\n\nprint(add(2, 3))",
    "I'm sorry, but I can't help with that request.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "Ein kleiner Test auf Deutsch: Der Hund läuft schnell über die Straße.",
    "Prices rose 3.5% in 2023; the index went from 1,024 to 1,060 points!",
    "<|im_start|>user\nWhat is 12 * 7?<|im_end|>\n<|im_start|>assistant\n12 * 7 = 84.<|im_end|>\n",
    'She said, "Honesty is the best policy," and smiled.\tThen left.',
]


def picked(logits: np.ndarray, ids: list[int]) -> np.ndarray:
    """Teacher-forced log-prob of each next token, log-softmax taken in float64."""
    x = logits.astype(np.float64)
    x = x - x.max(-1, keepdims=True)
    lp = x - np.log(np.exp(x).sum(-1, keepdims=True))
    return lp[np.arange(len(ids) - 1), ids[1:]]


def mlx_forward(model, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Our model's logits, and the log-probs as the engine computes them."""
    from rho_audit.model.scoring import token_logprobs

    logits = model(mx.array([ids]))[0, :-1]
    return np.array(logits), token_logprobs([logits], np.array(ids[1:]))


def torch_logits(model, ids: list[int]) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0, :-1].double().numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", type=Path, default=None, help="default: the bundled SmolLM2 GGUF")
    args = ap.parse_args()
    gguf = args.gguf or default_gguf()

    import torch
    from mlx_lm import generate, load
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = tempfile.TemporaryDirectory()
    out = convert_gguf(gguf, Path(tmp.name) / "model")
    model, tok = load(str(out))
    ours = {k: np.array(v) for k, v in mx.load(str(out / "model.safetensors")).items()}
    # transformers' own GGUF path (its dequantizer and permutation handling): the reference.
    ref = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    ref_tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # Our directory in transformers: fp32 checks our config.json; fp64 is the ground truth that
    # tells fp32 rounding (on either side) from a conversion bug.
    ours32 = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32)
    ours64 = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float64)

    state = {k: v.float().numpy() for k, v in ref.state_dict().items()}
    shared = sorted(set(state) & set(ours))
    unmatched = sorted((set(state) ^ set(ours)) - {"lm_head.weight"})  # tied embeddings: only HF lists it
    w_diff = max(float(np.abs(state[k] - ours[k]).max()) for k in shared)
    print(f"weights: {len(shared)} tensors, max |ours - transformers GGUF| = {w_diff:.3g}; "
          f"unmatched names: {unmatched or 'none'}")  # fmt: skip

    same = sum(tok.encode(t) == ref_tok.encode(t) for t in TEXTS)
    print(f"tokenizer: {same}/{len(TEXTS)} texts get the same ids from transformers' GGUF tokenizer")

    rows: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {
        "MLX, engine logsumexp": [],
        "MLX logits, fp64 softmax": [],
        "torch fp32 (GGUF)": [],
        "torch fp32 (our dir)": [],
    }
    for text in TEXTS:
        ids = tok.encode(text)
        exact = picked(torch_logits(ours64, ids), ids)
        mlx_logits, mlx_lp = mlx_forward(model, ids)
        rows["MLX, engine logsumexp"].append((mlx_lp, exact))
        rows["MLX logits, fp64 softmax"].append((picked(mlx_logits, ids), exact))
        rows["torch fp32 (GGUF)"].append((picked(torch_logits(ref, ids), ids), exact))
        rows["torch fp32 (our dir)"].append((picked(torch_logits(ours32, ids), ids), exact))
    n_tokens = sum(len(a) for a, _ in rows["torch fp32 (GGUF)"])
    print(f"teacher-forced log-probs, {len(TEXTS)} texts, {n_tokens} tokens, same ids everywhere;")
    print("max |diff| in nats against the float64 forward of our converted weights:")
    print(f"  {'':26} {'per token':>10} {'per sequence':>13}")
    for name, pairs in rows.items():
        per_token = max(float(np.abs(a - b).max()) for a, b in pairs)
        per_seq = max(abs(float(a.sum() - b.sum())) for a, b in pairs)
        print(f"  {name:26} {per_token:10.2e} {per_seq:13.2e}")
    engine, theirs = rows["MLX, engine logsumexp"], rows["torch fp32 (GGUF)"]
    pairs = [(a, b) for (a, _), (b, _) in zip(engine, theirs, strict=True)]
    per_token = max(float(np.abs(a - b).max()) for a, b in pairs)
    per_seq = max(abs(float(a.sum() - b.sum())) for a, b in pairs)
    print(f"MLX (as the engine computes) vs transformers' GGUF model: {per_token:.2e} per token, "
          f"{per_seq:.2e} per sequence")  # fmt: skip

    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        tokenize=False,
    )
    print(f"greedy chat answer: {generate(model, tok, prompt, max_tokens=48)!r}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
