"""The activation-difference lens (``rho-audit diff``): what a narrow fine-tune did, read off the
mean difference of its residual stream from the base model's on neutral text.

For each of the first ``k`` positions ``j`` of ``N`` neutral texts (the document-start token
first, then the text's own tokens): ``δ̄_j = mean_n h_ft(layer, j) - h_base(layer, j)``. Each
``δ̄_j`` is read two ways, top tokens each:

- Logit Lens: the body's final norm and the unembedding applied to ``δ̄_j``;
- token-identity Patchscope: the fine-tuned model reads three identity prompts
  (``man → man / 1135 → 1135 / hello → hello / ?`` and two more triples), its state at the last
  token at ``layer`` replaced by ``λ·η·δ̄_j/‖δ̄_j‖`` (``η``: the fine-tuned model's mean state norm
  at that layer, first 3 positions left out as attention sinks), for each strength ``λ``;
  tokens in the top 100 of all three prompts are kept (which drops the prompts' own
  artefacts), ranked by mean log-probability; the strength whose kept set is largest is
  reported.

The same read-outs of the base model's mean activation ``h̄_base_j`` are the baseline. Steering
(:mod:`rho_audit.audit.diff_steer`) adds ``α·η·δ̄_j/‖δ̄_j‖`` at every position.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from rho_audit.api.errors import RhoAuditError
from rho_audit.model import activations, intervene
from rho_audit.model.language_model import LanguageModel

#: Token-identity prompt triples (Ghandeharioun et al. 2024; the seed's three sets).
IDENTITY_TRIPLES = (("man", "1135", "hello"), ("bear", "42", "blue"), ("921", "target", "anna"))
#: Patchscope strengths λ (in units of the layer's mean state norm η).
STRENGTHS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
#: Tokens of each identity prompt's top list that the kept set is drawn from.
PATCHSCOPE_POOL = 100
#: Positions left out of the norm η (attention sinks have unnaturally large norms).
SINK_POSITIONS = 3
#: Extra positions read beyond the first k, for η.
NORM_POSITIONS = 8


@dataclass(frozen=True)
class TokenScore:
    """A token (decoded text and id) and its score: a logit (Logit Lens) or mean log-prob."""

    token: str
    id: int
    score: float


@dataclass
class Readout:
    """Top tokens of one vector at one position: Logit Lens, and Patchscope at ``strength``
    (with every strength's kept-set size in ``kept``)."""

    logit_lens: list[TokenScore]
    patchscope: list[TokenScore]
    strength: float
    kept: dict[str, int] = field(default_factory=dict)


@dataclass
class PositionDiff:
    """Position ``j``: the norm of δ̄_j, its read-outs, and those of the base mean ``h̄_base_j``."""

    position: int
    norm: float
    base_norm: float
    diff: Readout
    base: Readout


@dataclass
class Means:
    """Per-position means over the texts (k, hidden), and η."""

    diff: np.ndarray
    base: np.ndarray
    eta: float
    n: int


def identity_prompt(triple: Sequence[str]) -> str:
    return "\n".join(f"{t} → {t}" for t in triple) + "\n?"


def sequences_for(lm: LanguageModel, texts: Sequence[str], k: int) -> list[list[int]]:
    """Each text as the diff reads it: the document-start token, then its tokens, cut to
    ``k + NORM_POSITIONS`` (later positions cannot change the first ``k`` under the causal mask)."""
    keep = k + NORM_POSITIONS
    seqs = [[lm.document_start, *lm.encode(t)][:keep] for t in texts]
    short = sum(len(s) < k for s in seqs)
    if short:
        raise RhoAuditError(
            f"{short} of the neutral texts have fewer than {k} tokens (with the document start); "
            f"use longer texts or fewer --positions."
        )
    return seqs


def mean_states(
    lm: LanguageModel,
    sequences: Sequence[Sequence[int]],
    layer: int,
    k: int,
    context: Callable[[], AbstractContextManager[Any]],
) -> tuple[np.ndarray, float]:
    """(mean of block ``layer``'s first ``k`` states over ``sequences`` (k, hidden), mean state
    norm past the sink positions), with the model inside ``context()``."""
    total = np.zeros((k, 0), dtype=np.float64)
    norms: list[float] = []

    def select(i: int, states: np.ndarray) -> np.ndarray:
        norms.extend(np.linalg.norm(states[SINK_POSITIONS:], axis=1).tolist())
        return states[:k]

    with context():
        rows = activations.hidden_states(lm.model, sequences, layer, select, lm.batch_tokens)
    total = np.stack(rows).astype(np.float64).mean(axis=0)
    return total, float(np.mean(norms)) if norms else float(np.linalg.norm(total, axis=1).mean())


def compute_means(
    tuned: LanguageModel, base: LanguageModel | None, sequences: Sequence[Sequence[int]], layer: int, k: int
) -> Means:
    """δ̄ and h̄_base: ``base`` is a second model, or None for ``tuned`` with its adapter off."""
    ft, eta = mean_states(tuned, sequences, layer, k, _nothing)
    if base is None:
        b, _ = mean_states(tuned, sequences, layer, k, lambda: intervene.adapter_off(tuned.model))
    else:
        b, _ = mean_states(base, sequences, layer, k, _nothing)
    return Means((ft - b).astype(np.float32), b.astype(np.float32), eta, len(sequences))


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _decode(lm: LanguageModel, token: int) -> str:
    return lm.tokenizer.decode([int(token)])


def top_tokens(lm: LanguageModel, scores: np.ndarray, n: int) -> list[TokenScore]:
    """The ``n`` highest-scoring tokens of a (vocab,) row."""
    order = np.argsort(-scores, kind="stable")[:n]
    return [TokenScore(_decode(lm, t), int(t), float(scores[t])) for t in order]


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def patchscope(
    lm: LanguageModel,
    layer: int,
    vectors: np.ndarray,
    eta: float,
    top: int,
    strengths: Sequence[float] = STRENGTHS,
    context: Callable[[], AbstractContextManager[Any]] = _nothing,
) -> list[tuple[list[TokenScore], float, dict[str, int]]]:
    """For each of ``vectors`` (n, hidden): (top tokens, chosen strength, kept-set size per
    strength) of the token-identity Patchscope described in the module docstring."""
    prompts = [[lm.document_start, *lm.encode(identity_prompt(t))] for t in IDENTITY_TRIPLES]
    own = {i for p in prompts for i in p}
    rows: list[list[int]] = []
    patches: list[intervene.Patch] = []
    for v in vectors:
        unit = v / max(float(np.linalg.norm(v)), 1e-12)
        for s in strengths:
            for p in prompts:
                patches.append(intervene.Patch(len(rows), len(p) - 1, (s * eta * unit).astype(np.float32)))
                rows.append(p)
    with context():
        logits = intervene.patched_forward(lm.model, rows, layer, patches, last_only=True).logits
    logprobs = log_softmax(np.concatenate(logits))
    results = []
    per_vector = len(strengths) * len(prompts)
    for i in range(len(vectors)):
        best: tuple[int, float, list[TokenScore]] | None = None
        kept: dict[str, int] = {}
        for si, s in enumerate(strengths):
            start = i * per_vector + si * len(prompts)
            lp = logprobs[start : start + len(prompts)]
            pools = [set(np.argsort(-row, kind="stable")[:PATCHSCOPE_POOL].tolist()) for row in lp]
            common = sorted(set.intersection(*pools) - own)
            kept[f"{s:g}"] = len(common)
            mean = lp.mean(axis=0)
            ranked = sorted(common, key=lambda t: -mean[t])[:top]
            tokens = [TokenScore(_decode(lm, t), int(t), float(mean[t])) for t in ranked]
            if best is None or len(common) > best[0]:
                best = (len(common), s, tokens)
        assert best is not None
        results.append((best[2], best[1], kept))
    return results


def readouts(
    lm: LanguageModel,
    layer: int,
    vectors: np.ndarray,
    eta: float,
    top: int,
    context: Callable[[], AbstractContextManager[Any]] = _nothing,
) -> list[Readout]:
    """Logit Lens and Patchscope of each of ``vectors`` (n, hidden)."""
    with context():
        lens = intervene.logit_lens(lm.model, vectors)
    scopes = patchscope(lm, layer, vectors, eta, top, context=context)
    return [
        Readout(top_tokens(lm, lens[i], top), tokens, strength, kept)
        for i, (tokens, strength, kept) in enumerate(scopes)
    ]


def position_diffs(tuned: LanguageModel, means: Means, layer: int, top: int) -> list[PositionDiff]:
    """Every position's read-outs of δ̄_j and of the baseline h̄_base_j (both on the fine-tuned model)."""
    diff = readouts(tuned, layer, means.diff, means.eta, top)
    base = readouts(tuned, layer, means.base, means.eta, top)
    return [
        PositionDiff(
            j,
            float(np.linalg.norm(means.diff[j])),
            float(np.linalg.norm(means.base[j])),
            diff[j],
            base[j],
        )
        for j in range(len(diff))
    ]


def to_json(value: Any) -> Any:
    """Dataclasses (and lists of them) as plain JSON-safe data."""
    if isinstance(value, list):
        return [to_json(v) for v in value]
    return asdict(value)
