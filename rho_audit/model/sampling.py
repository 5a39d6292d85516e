"""Sampled decoding: temperature and nucleus (top-p) sampling with a random stream per row.

Every row (one completion of one prompt) has its own key per decoding step, derived from the
seed, the prompt's token ids and the completion index (:func:`row_seed`), never from MLX's
global random state. A row's tokens therefore depend on nothing but its prompt, its index, the
seed and the model: not on the batch it is decoded in, on the other rows, or on their order
(up to the float rounding of the logits, which a draw only notices at an exact tie).

A :class:`RowSampler` is the ``choose`` of :func:`rho_audit.model.decoding.greedy_decode`, and
:meth:`RowSampler.mlx_lm_samplers` gives mlx-lm's ``BatchGenerator`` one sampler per row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import mlx.core as mx
import numpy as np

from rho_audit.api.inference import Sampling

#: Most likely tokens among which a row's nucleus is looked for first: sorting a whole vocabulary
#: (SmolLM2's 49k tokens) every step took several times as long as drawing from it. A row whose
#: nucleus reaches beyond them is drawn from its whole vocabulary.
NUCLEUS_CANDIDATES = 1024
#: One draw per row, each with its own key: ``keys`` (rows, 2), ``logits`` (rows, vocab).
_categorical_per_row = mx.vmap(lambda key, logits: mx.random.categorical(logits, key=key))


def row_seed(seed: int, prompt: Sequence[int], index: int) -> bytes:
    """The digest that keys one row's random stream: (seed, prompt token ids, completion index)."""
    digest = hashlib.blake2b(digest_size=16, person=b"rho-audit-sample")
    digest.update(f"{seed}:{index}:".encode())
    digest.update(np.asarray(prompt, dtype=np.int64).tobytes())
    return digest.digest()


def step_keys(row_seeds: Sequence[bytes], step: int) -> mx.array:
    """(rows, 2) uint32 MLX keys of each row's draw at ``step`` (0: the answer's first token),
    laid out as ``mx.random.key`` lays out a 64-bit seed."""
    suffix = step.to_bytes(4, "little")
    words = np.empty((len(row_seeds), 2), dtype=np.uint32)
    for i, seed in enumerate(row_seeds):
        value = int.from_bytes(hashlib.blake2b(seed + suffix, digest_size=8).digest(), "little")
        words[i] = value >> 32, value & 0xFFFFFFFF
    return mx.array(words)


def _threshold(ranked: mx.array, log_total: mx.array, top_p: float) -> mx.array:
    """Each row's least logit in its nucleus, from its logits in descending order (all of them,
    or the most likely ones) and the log-sum-exp of all of them."""
    probs = mx.exp(ranked - log_total)
    before = mx.cumsum(probs, axis=-1) - probs
    return mx.min(mx.where(before < top_p, ranked, mx.inf), axis=-1, keepdims=True)


def nucleus(logits: mx.array, top_p: float) -> mx.array:
    """``logits`` with every token outside each row's nucleus set to -inf: the most likely tokens
    whose probabilities (before them) sum to less than ``top_p``. The most likely token always
    stays, and so does any token tied with the least likely one kept."""
    ranked = mx.sort(logits, axis=-1)[:, ::-1]
    threshold = _threshold(ranked, mx.logsumexp(logits, axis=-1, keepdims=True), top_p)
    return mx.where(logits >= threshold, logits, -mx.inf)


def sample_tokens(logits: mx.array, keys: mx.array, temperature: float, top_p: float) -> mx.array:
    """One token per row of ``logits`` (rows, vocab), drawn with that row's key.

    With ``top_p`` < 1 a row draws among its :data:`NUCLEUS_CANDIDATES` most likely tokens (in
    vocabulary order) when its nucleus lies among them, else among its whole vocabulary:
    either way from its nucleus, and which way depends on the row's logits alone."""
    scaled = logits.astype(mx.float32) / temperature
    if top_p >= 1:
        return _categorical_per_row(keys, scaled)
    if NUCLEUS_CANDIDATES >= scaled.shape[-1]:
        return _categorical_per_row(keys, nucleus(scaled, top_p))
    ids = mx.sort(mx.argpartition(-scaled, NUCLEUS_CANDIDATES - 1, axis=-1)[:, :NUCLEUS_CANDIDATES], axis=-1)
    candidates = mx.take_along_axis(scaled, ids, axis=-1)
    ranked = mx.sort(candidates, axis=-1)[:, ::-1]
    threshold = _threshold(ranked, mx.logsumexp(scaled, axis=-1, keepdims=True), top_p)
    # A token left out ties with (or beats) the least likely candidate: if that one is in the
    # nucleus (or the candidates hold less than top_p), the nucleus may reach beyond them.
    inside = ranked[:, -1] < threshold[:, 0]
    drawn = _categorical_per_row(keys, mx.where(candidates >= threshold, candidates, -mx.inf))
    tokens = mx.take_along_axis(ids, drawn[:, None], axis=-1)[:, 0]
    mx.eval(tokens, inside)
    beyond = [row for row, ok in enumerate(inside.tolist()) if not ok]
    if beyond:
        rows = mx.array(beyond)
        tokens[rows] = _categorical_per_row(keys[rows], nucleus(scaled[rows], top_p)).astype(tokens.dtype)
    return tokens


class RowSampler:
    """Draws tokens for rows ``0..len(prompts)-1``: row ``r`` is completion ``indices[r]`` of
    ``prompts[r]`` (token ids as the model reads them)."""

    def __init__(self, sampling: Sampling, prompts: Sequence[Sequence[int]], indices: Sequence[int]) -> None:
        if sampling.greedy:
            raise ValueError("RowSampler samples; greedy decoding takes the argmax (no sampler)")
        seed = sampling.seed if sampling.seed is not None else 0
        self.temperature = sampling.temperature
        self.top_p = sampling.top_p
        self.row_seeds = [row_seed(seed, p, i) for p, i in zip(prompts, indices, strict=True)]

    def __call__(self, logits: mx.array, rows: Sequence[int], step: int) -> mx.array:
        """The tokens of ``rows`` (indices into the prompts) at ``step``, from their logits."""
        keys = step_keys([self.row_seeds[r] for r in rows], step)
        return sample_tokens(logits, keys, self.temperature, self.top_p)

    def mlx_lm_samplers(self) -> list[Callable[[mx.array], mx.array]]:
        """One sampler per row for mlx-lm's ``BatchGenerator``, which calls a row's sampler once
        per token it generates (with that row's log-probabilities), first token first."""

        def for_row(row: int) -> Callable[[mx.array], mx.array]:
            step = 0

            def sample(logprobs: mx.array) -> mx.array:
                nonlocal step
                token = self(logprobs, [row], step)
                step += 1
                return token

            return sample

        return [for_row(r) for r in range(len(self.row_seeds))]
