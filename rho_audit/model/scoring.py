"""Teacher-forced scoring: the summed and mean log-probability of each continuation after its
context, computed in batches on an MLX model.

Requests are grouped by their context token ids; each distinct context is run once (left-padded
into a ``BatchKVCache``) and its cache rows are gathered for every continuation that shares it,
the way ``mlx_lm/evaluate.py`` reuses a context. Continuations are right-padded, which is exact
under a causal mask (a real token never attends to a later pad), and left padding of the
contexts is masked by the cache. Rows are ordered to cut padding (:func:`padding_order`), and
the prefix that many contexts share (a chat template's system turn) is run once per call.
:class:`~rho_audit.model.language_model.LanguageModel` turns texts into rows and calls these.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import mlx.core as mx
import numpy as np

from rho_audit.api.context import Score
from rho_audit.model import decoding
from rho_audit.model.blas import single_threaded_blas
from rho_audit.model.decoding import common_prefix_length
from rho_audit.model.layout import body_and_head

#: Each distinct context's token ids -> the shared prefix it is scored after (see :func:`prefix_groups`).
PrefixGroups = dict[tuple[int, ...], tuple[int, ...]]

#: Cap on continuation tokens per batch: bounds the (rows × tokens × vocab) logits buffer.
DEFAULT_BATCH_TOKENS = 2048
DEFAULT_MAX_ROWS = 64
#: Positions projected onto the vocabulary at once (bounds the logits buffer to ~50 MB).
LOGIT_CHUNK = 256
#: Positions a scoring KV cache grows by (mlx-lm's default, 256, is sized for generation).
CACHE_STEP = 16
#: A shared context prefix shorter than this is not worth a separate pass.
MIN_SHARED_PREFIX = 4


@dataclass(frozen=True)
class ScoreRow:
    """One request as tokens: ``continuation`` is scored after ``context``; ``index`` is the
    request's position in the caller's list."""

    index: int
    context: tuple[int, ...]
    continuation: tuple[int, ...]


@dataclass(frozen=True)
class SharedPrefix:
    tokens: tuple[int, ...]
    #: (keys, values) per layer, each (1, kv_heads, len(tokens), head_dim).
    states: list[tuple[mx.array, mx.array]]


def prefix_groups(model: Any, contexts: Iterable[tuple[int, ...]]) -> PrefixGroups:
    """Each distinct context's shared prefix: the token prefix common to all contexts that
    begin with the same :data:`MIN_SHARED_PREFIX` tokens (a chat template's system turn:
    24 of SmolLM2's ~50 context tokens), run once per call instead of once per context;
    ``()`` for a context that shares none (a bare statement's one token). Every context
    keeps at least one token of its own, whose position yields the logits of the
    continuation's first token."""
    if body_and_head(model) is None:  # the prefix's states are fed to the body alone
        return dict.fromkeys(contexts, ())
    groups: dict[tuple[int, ...], list[tuple[int, ...]]] = {}
    for context in dict.fromkeys(contexts):
        groups.setdefault(context[:MIN_SHARED_PREFIX], []).append(context)
    prefix_of: PrefixGroups = {}
    for members in groups.values():
        length = min(common_prefix_length(members), min(map(len, members)) - 1)
        shared = members[0][:length] if len(members) > 1 and length >= MIN_SHARED_PREFIX else ()
        prefix_of.update(dict.fromkeys(members, shared))
    return prefix_of


def shared_prefix(model: Any, tokens: tuple[int, ...]) -> SharedPrefix:
    """The KV states of ``tokens``, to seed the caches of every batch of their prefix group."""
    body = body_and_head(model)[0]  # only called where the model has the body/head layout
    return SharedPrefix(tokens, decoding.prefix_states(model, body, list(tokens)))


def padding_order(rows: list[ScoreRow], prefix_of: PrefixGroups) -> list[ScoreRow]:
    """Rows ordered so that consecutive ones pad little against each other in a batch.

    A batch runs each distinct context once (left-padded to the longest) and every
    continuation once (right-padded to the longest), so rows are grouped by context, groups
    sorted by their shared prefix (a batch runs one), their longest continuation, then their
    context length. On the built-in probe sets this runs 27 % fewer padded tokens than sorting
    rows by total length, which also split the rows of one context (a pair's two answers)
    across batches.
    """
    groups: dict[tuple[int, ...], list[ScoreRow]] = {}
    for row in rows:
        groups.setdefault(row.context, []).append(row)
    order = sorted(
        groups.items(),
        key=lambda g: (prefix_of[g[0]], max(len(r.continuation) for r in g[1]), len(g[0]), g[0]),
    )
    return [row for _, group in order for row in sorted(group, key=lambda r: len(r.continuation))]


def padded_tokens(batch: Sequence[ScoreRow]) -> int:
    """Positions a batch runs: its distinct contexts left-padded, its continuations right-padded."""
    contexts = {r.context for r in batch}
    return len(contexts) * max(map(len, contexts)) + len(batch) * max(len(r.continuation) for r in batch)


def make_batches(
    rows: list[ScoreRow], prefix_of: PrefixGroups, batch_tokens: int, max_rows: int | None
) -> list[list[ScoreRow]]:
    """Consecutive rows within the size limits; a batch's contexts share one prefix group."""
    batches: list[list[ScoreRow]] = []
    current: list[ScoreRow] = []
    longest = 0
    for row in rows:
        length = len(row.context) + len(row.continuation)
        if current and (
            max(longest, length) * (len(current) + 1) > batch_tokens
            or len(current) >= (max_rows or DEFAULT_MAX_ROWS)
            or prefix_of[row.context] != prefix_of[current[0].context]
        ):
            batches.append(current)
            current, longest = [], 0
        current.append(row)
        longest = max(longest, length)
    if current:
        batches.append(current)
    return batches


def score_batches(
    model: Any, batches: list[list[ScoreRow]], prefixes: list[SharedPrefix | None], workers: int
) -> Iterator[tuple[list[ScoreRow], list[Score]]]:
    """Score batches, on CPU two at a time: one MLX stream per worker thread and a
    one-thread BLAS (see :func:`rho_audit.model.blas.single_threaded_blas`). Yields in completion
    order; every batch's numbers are the same whichever worker scores it."""
    workers = min(workers, len(batches))
    if workers < 2:
        for batch, prefix in zip(batches, prefixes, strict=True):
            yield batch, score_batch(model, batch, prefix)
        return
    local = threading.local()

    def score_on_own_stream(batch: list[ScoreRow], prefix: SharedPrefix | None) -> list[Score]:
        if not hasattr(local, "stream"):
            local.stream = mx.new_stream(mx.cpu)
        with mx.stream(local.stream):
            return score_batch(model, batch, prefix)

    with single_threaded_blas() as single, ThreadPoolExecutor(workers if single else 1) as pool:
        # Costliest first, so that the streams finish together (longest-processing-time order).
        jobs = sorted(zip(batches, prefixes, strict=True), key=lambda job: -padded_tokens(job[0]))
        pending = {pool.submit(score_on_own_stream, batch, prefix): batch for batch, prefix in jobs}
        try:
            for future in as_completed(pending):
                yield pending[future], future.result()
        finally:
            for future in pending:
                future.cancel()


def score_batch(model: Any, rows: list[ScoreRow], prefix: SharedPrefix | None = None) -> list[Score]:
    """Scores of one batch of rows whose contexts share ``prefix`` (when given)."""
    distinct = list(dict.fromkeys(r.context for r in rows))
    position = {ctx: i for i, ctx in enumerate(distinct)}
    ctx_tokens, cache = _context_cache(model, distinct, prefix)
    # A model without mlx-lm's body/head layout runs whole: its "hidden states" are the logits.
    body, head = body_and_head(model) or (model, _unchanged)
    ctx_last = body(ctx_tokens, cache=cache)[:, -1:, :]

    # One cache row per continuation, gathered from its context's row.
    take = mx.array([position[r.context] for r in rows])
    _gather_rows(cache, take)

    cont_len = max(len(r.continuation) for r in rows)
    inputs = [list(r.continuation[:-1]) + [0] * (cont_len - len(r.continuation)) for r in rows]
    hidden = ctx_last[take]
    if cont_len > 1:
        hidden = mx.concatenate([hidden, body(mx.array(inputs), cache=cache)], axis=1)
    # The vocabulary projection and log-softmax only at real continuation positions.
    flat = np.concatenate([i * cont_len + np.arange(len(r.continuation)) for i, r in enumerate(rows)])
    hidden = hidden.reshape(-1, hidden.shape[-1])[mx.array(flat)]
    targets = np.concatenate([r.continuation for r in rows])
    logprobs = token_logprobs(
        (head(hidden[i : i + LOGIT_CHUNK]) for i in range(0, len(flat), LOGIT_CHUNK)), targets
    )
    return _row_scores(rows, logprobs)


def _unchanged(x: mx.array) -> mx.array:
    return x


def _context_cache(
    model: Any, distinct: list[tuple[int, ...]], prefix: SharedPrefix | None
) -> tuple[mx.array, list]:
    """Left-padded context tokens still to run, and a ``BatchKVCache`` per layer that already
    holds the shared prefix where one is given.

    Row i is laid out as ``[pad_i][prefix][own suffix_i]`` so all rows end together. The
    cache receives the first ``len(prefix)`` columns of that layout (the prefix's states
    shifted right by pad_i, i.e. zeros then its first ``len - pad_i`` states), the model
    runs the rest; a row therefore recomputes only the last ``pad_i`` prefix tokens.
    """
    from mlx_lm.models.cache import BatchKVCache

    skip = (
        len(prefix.tokens)
        if prefix is not None and all(c[: len(prefix.tokens)] == prefix.tokens for c in distinct)
        else 0
    )
    width = max(len(c) for c in distinct)
    left_pad = [width - len(c) for c in distinct]
    rows = [[0] * p + list(c) for p, c in zip(left_pad, distinct, strict=True)]
    cache = [BatchKVCache(left_pad) for _ in model.layers]
    for layer in cache:
        # mlx-lm grows a cache 256 positions at a time; scoring knows its lengths, and 256
        # spare positions per row of a 64-row batch would hold ~750 MB for the default model.
        layer.step = CACHE_STEP
    if skip:
        # Source index into [zeros(skip) ; prefix states] for each cached column of each row.
        index = mx.array(
            [[max(0, skip + col - p) if col >= p else 0 for col in range(skip)] for p in left_pad]
        )
        for layer, (keys, values) in zip(cache, prefix.states, strict=True):
            layer.keys = _shifted(keys, index)
            layer.values = _shifted(values, index)
            layer.offset = layer.offset + skip
            layer._idx = skip
    return mx.array([r[skip:] for r in rows]), cache


def _gather_rows(cache: list, take: mx.array) -> None:
    """One cache row per continuation, gathered from its context's row (filled columns only)."""
    for layer in cache:
        layer.keys = layer.keys[take, :, : layer._idx, :]
        layer.values = layer.values[take, :, : layer._idx, :]
        layer.offset = layer.offset[take]
        layer.left_padding = layer.left_padding[take]


def _shifted(states: mx.array, index: mx.array) -> mx.array:
    """Per row i, columns ``[zeros ; states]`` picked by ``index[i]`` (see ``_context_cache``)."""
    padded = mx.concatenate([mx.zeros_like(states), states], axis=2)[0]
    return mx.take(padded, index, axis=1).transpose(1, 0, 2, 3)


def token_logprobs(logit_chunks: Iterable[mx.array], targets: np.ndarray) -> np.ndarray:
    """log p(target) at each position, from logits that arrive in chunks of positions.

    The log-softmax runs in NumPy, whose vectorised exp is much faster than MLX's on CPU (see
    the README's performance section); its pairwise float32 sum over the 49K vocabulary is
    accurate to ~1e-7, so the slower float64 sum is not needed. It works in place in MLX's own
    buffer of the chunk, which nothing else reads, to save a copy. The next chunk's projection
    is queued on MLX's stream first, so the matmul and the exp overlap.
    """
    out = np.empty(len(targets), dtype=np.float64)
    chunks = iter(logit_chunks)
    current = next(chunks, None)
    if current is not None:
        mx.async_eval(current)
    start = 0
    while current is not None:
        following = next(chunks, None)
        if following is not None:
            mx.async_eval(following)
        logits = np.asarray(current.astype(mx.float32))  # a view, no copy
        if not logits.flags.writeable:  # a backend that exports its buffer read-only
            logits = logits.copy()
        n = len(logits)
        picked = logits[np.arange(n), targets[start : start + n]].astype(np.float64)
        top = logits.max(axis=1, keepdims=True)
        np.subtract(logits, top, out=logits)
        np.exp(logits, out=logits)
        total = logits.sum(axis=1).astype(np.float64)
        out[start : start + n] = picked - top[:, 0] - np.log(total)
        start += n
        current = following
    return out


def _row_scores(rows: Sequence[ScoreRow], logprobs: np.ndarray) -> list[Score]:
    scores, start = [], 0
    for row in rows:
        n = len(row.continuation)
        total = float(logprobs[start : start + n].sum())
        scores.append(Score(total, total / n, n))
        start += n
    return scores
