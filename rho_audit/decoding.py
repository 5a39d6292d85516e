"""Greedy decoding of many prompts in batches: token for token what mlx-lm's one-prompt
``generate`` returns, at a fraction of the cost.

Hand-written rather than mlx-lm's ``BatchGenerator`` (which the model layer still uses for
architectures not listed in :data:`SUPPORTED_MODEL_TYPES`) because, for greedy answers:

- ``BatchGenerator`` normalises every step's logits over the whole vocabulary (a log-softmax
  that an argmax does not need): on the 2-core CPU box, at 96 rows, that costs more than the
  vocabulary projection itself (247 vs 63 ms a step);
- it grows each KV cache in steps of 256 positions, so the audit's ~190-position answers hold a
  third more memory than they use and fewer rows fit the memory budget;
- it prefills the prompts' shared chat-template prefix (the default model's system turn, 24
  tokens, a third of a short prompt) once per prompt; here it runs once per call.

A row of a layer's cache is laid out ``[shared prefix | gap | the row's own tokens]``: the gap
(masked padding) makes every row's tokens end at the same position, so one step writes one
column for the whole batch. Rows are taken in order of prompt length so that gaps stay short,
and rows whose answer has ended leave the batch once enough of them have.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import mlx.core as mx

from rho_audit.blas import single_threaded_blas

#: mlx-lm architectures whose attention uses exactly the cache protocol implemented below
#: (``offset`` for RoPE, ``update_and_fetch``, ``make_mask`` without a sliding window).
SUPPORTED_MODEL_TYPES = frozenset({"llama", "qwen2"})
#: Rows prefilled in one forward pass (larger passes ran no faster per token on CPU).
PREFILL_ROWS = 16
#: Rows a batch needs before a second stream pays: on the 2-core box two calls of 16 prompts
#: decoded in 45.6 s as one batch of 16 rows on one stream, 55.2 s as two batches of 8 on two;
#: 96 prompts in 69.9 s as two batches of 48 on two streams, 94.1 s as one of 89 on one.
MIN_ROWS_PER_STREAM = 24
#: Finished rows are dropped from the batch (a copy of every cache) once they are this share
#: of it; until then they ride along, their tokens ignored.
DROP_FINISHED_SHARE = 1 / 8


def supports(model: Any) -> bool:
    """Whether :func:`greedy_decode` can run ``model`` (an mlx-lm model with a body/head split)."""
    args = getattr(model, "args", None)
    return getattr(args, "model_type", None) in SUPPORTED_MODEL_TYPES and not getattr(
        args, "sliding_window", None
    )


class SharedPrefixCache:
    """One layer's keys and values for a batch of rows laid out ``[prefix | gap | own tokens]``.

    Implements the part of mlx-lm's cache protocol that its attention layers use: ``offset``
    (each row's next RoPE position), ``update_and_fetch`` and ``make_mask``.
    """

    def __init__(self, prefix: tuple[mx.array, mx.array] | None, gaps: Sequence[int], capacity: int) -> None:
        self.prefix = prefix
        self.prefix_len = prefix[0].shape[2] if prefix is not None else 0
        self.gaps = mx.array(gaps)
        self.capacity = capacity
        #: Next write position, the same for every row.
        self.idx = self.prefix_len
        #: Each row's RoPE position for the token written at ``idx``.
        self.offset = self.prefix_len - self.gaps
        self.keys: mx.array | None = None
        self.values: mx.array | None = None

    def _allocate(self, keys: mx.array, values: mx.array) -> None:
        """Zeroed storage for every row (shaped after ``keys``/``values``), prefix copied in."""
        rows, heads = self.gaps.shape[0], keys.shape[1]
        self.keys = mx.zeros((rows, heads, self.capacity, keys.shape[3]), keys.dtype)
        self.values = mx.zeros((rows, heads, self.capacity, values.shape[3]), values.dtype)
        if self.prefix is not None:
            self.keys[:, :, : self.prefix_len] = self.prefix[0]
            self.values[:, :, : self.prefix_len] = self.prefix[1]
            self.prefix = None  # copied into every row; no need to hold it twice

    def update_and_fetch(self, keys: mx.array, values: mx.array) -> tuple[mx.array, mx.array]:
        if self.keys is None:
            self._allocate(keys, values)
        n = keys.shape[2]
        end = self.idx + n
        if end > self.capacity:
            raise RuntimeError(f"decoding cache full ({self.capacity} positions)")
        self.keys[:, :, self.idx : end] = keys
        self.values[:, :, self.idx : end] = values
        self.idx = end
        self.offset = self.offset + n
        return self.keys[:, :, :end], self.values[:, :, :end]

    def make_mask(self, n: int, return_array: bool = False, window_size: int | None = None) -> mx.array:
        """(rows, 1, n, positions) boolean: a query sees the prefix and its row's own earlier
        tokens, never the gap. A gap position sees itself, so that no query sees nothing (a
        fully masked softmax is NaN on some backends); what it computes is never read."""
        if window_size is not None:
            raise ValueError("sliding-window attention is not supported by greedy_decode")
        end = self.idx + n
        positions = mx.arange(end)
        queries = mx.arange(self.idx, end)[:, None]
        own = (positions < self.prefix_len) | (positions >= self.prefix_len + self.gaps[:, None])
        visible = ((positions <= queries)[None] & own[:, None]) | (positions == queries)[None]
        return visible[:, None]

    def take(self, rows: mx.array) -> None:
        """Keep only ``rows`` of the batch (in that order), copied at once so that a batch's
        layers are taken one after another: taken in one graph, the old and new copies of every
        layer's cache coexisted, a transient of the whole batch cache."""
        if self.keys is not None:
            self.keys, self.values = self.keys[rows], self.values[rows]
            mx.eval(self.keys, self.values)
        self.gaps = self.gaps[rows]
        self.offset = self.offset[rows]


def common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """Length of the token prefix all ``sequences`` share."""
    first = min(sequences)
    last = max(sequences)  # lexicographic extremes: their common prefix is everyone's
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return n


def shared_prefix(prompts: Sequence[Sequence[int]]) -> list[int]:
    """The longest token prefix common to all prompts, leaving each at least one token."""
    shortest = min(len(p) for p in prompts) - 1
    return list(prompts[0][: min(shortest, common_prefix_length([list(p) for p in prompts]))])


def greedy_decode(
    model: Any,
    body: Callable[..., mx.array],
    head: Callable[[mx.array], mx.array],
    prompts: Sequence[Sequence[int]],
    max_tokens: int,
    stop_tokens: set[int],
    batch_rows: int,
    on_finish: Callable[[], object] = lambda: None,
    workers: int = 1,
    after_batch: Callable[[], object] = lambda: None,
) -> list[list[int]]:
    """The greedy answer (token ids, without the stop token) of each prompt, at most
    ``max_tokens`` tokens, decoding ``batch_rows`` prompts at a time, ``workers`` batches at
    once (each on its own CPU stream with a one-thread BLAS; keep 1 on a GPU).

    ``body(tokens, cache=...)`` returns the final hidden states, ``head`` projects them onto
    the vocabulary (see ``LanguageModel._split``). ``on_finish`` is called once per prompt
    as its answer ends, ``after_batch`` once a batch's caches are freed (to hand memory back),
    both from the decoding threads.
    """
    if not prompts or max_tokens < 1:
        return [[] for _ in prompts]
    prefix = shared_prefix(prompts) if len(prompts) > 1 else []
    prefix_kv = _prefix_cache(model, body, prefix)
    order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), i))
    workers = max(1, min(workers, len(order) // MIN_ROWS_PER_STREAM))
    # Equal batches: a last batch of a few rows would decode as slowly as a full one.
    n_batches = -(-len(order) // batch_rows)
    n_batches += (-n_batches) % workers if len(order) >= workers * n_batches else 0
    size = -(-len(order) // n_batches)
    batches = [order[i : i + size] for i in range(0, len(order), size)]
    answers: dict[int, list[int]] = {}

    def decode(batch: list[int]) -> None:
        suffixes = [list(prompts[i][len(prefix) :]) for i in batch]
        decoded = _decode_batch(model, body, head, prefix_kv, suffixes, max_tokens, stop_tokens, on_finish)
        answers.update(zip(batch, decoded, strict=True))
        after_batch()

    if workers < 2 or len(batches) < 2:
        for batch in batches:
            decode(batch)
    else:
        local = threading.local()

        def decode_on_own_stream(batch: list[int]) -> None:
            if not hasattr(local, "stream"):
                local.stream = mx.new_stream(mx.cpu)
            with mx.stream(local.stream):
                decode(batch)

        with single_threaded_blas() as single, ThreadPoolExecutor(workers if single else 1) as pool:
            pending = [pool.submit(decode_on_own_stream, b) for b in batches]
            try:
                for future in pending:
                    future.result()
            finally:  # on an error or Ctrl-C, start no further batch
                for future in pending:
                    future.cancel()
    return [answers[i] for i in range(len(prompts))]


def _prefix_cache(model: Any, body: Callable[..., mx.array], prefix: list[int]) -> list[Any]:
    """Each layer's (keys, values) of the shared prefix, from one single-row pass; None each if
    there is no shared prefix."""
    layers = len(model.layers)
    if not prefix:
        return [None] * layers
    cache = [SharedPrefixCache(None, [0], len(prefix)) for _ in range(layers)]
    mx.eval(body(mx.array([prefix]), cache=cache))
    return [(c.keys, c.values) for c in cache]


def _decode_batch(
    model: Any,
    body: Callable[..., mx.array],
    head: Callable[[mx.array], mx.array],
    prefix_kv: list[Any],
    suffixes: list[list[int]],
    max_tokens: int,
    stop_tokens: set[int],
    on_finish: Callable[[], object],
) -> list[list[int]]:
    longest = max(map(len, suffixes))
    gaps = [longest - len(s) for s in suffixes]
    prefix_len = prefix_kv[0][0].shape[2] if prefix_kv[0] is not None else 0
    capacity = prefix_len + longest + max_tokens
    cache = [SharedPrefixCache(kv, gaps, capacity) for kv in prefix_kv]
    first = _prefill(model, body, head, prefix_kv, cache, suffixes, gaps)

    answers: list[list[int]] = [[] for _ in suffixes]
    rows = list(range(len(suffixes)))  # answer index of each batch row; None once finished
    live: list[int | None] = list(rows)
    tokens = first
    while True:
        for position, token in enumerate(tokens.tolist()):
            row = live[position]
            if row is None:
                continue
            if token in stop_tokens or len(answers[row]) + 1 >= max_tokens:
                if token not in stop_tokens:
                    answers[row].append(token)
                live[position] = None
                on_finish()
            else:
                answers[row].append(token)
        remaining = [p for p, row in enumerate(live) if row is not None]
        if not remaining:
            return answers
        if len(live) - len(remaining) >= max(1, len(live) * DROP_FINISHED_SHARE):
            keep = mx.array(remaining)
            for c in cache:
                c.take(keep)
            tokens = tokens[keep]
            live = [live[p] for p in remaining]
        hidden = body(tokens[:, None], cache=cache)
        tokens = mx.argmax(head(hidden[:, -1, :]), axis=-1)
        mx.eval(tokens)


def _prefill(
    model: Any,
    body: Callable[..., mx.array],
    head: Callable[[mx.array], mx.array],
    prefix_kv: list[Any],
    cache: list[SharedPrefixCache],
    suffixes: list[list[int]],
    gaps: list[int],
) -> mx.array:
    """Run every row's prompt suffix (in groups of :data:`PREFILL_ROWS`) into ``cache``; the
    first answer token of each row."""
    firsts = []
    for start in range(0, len(suffixes), PREFILL_ROWS):
        rows = slice(start, start + PREFILL_ROWS)
        group_gaps = gaps[rows]
        trim = min(group_gaps)  # columns of gap the whole group shares: not run at all
        inputs = mx.array([[0] * (g - trim) + s for g, s in zip(group_gaps, suffixes[rows], strict=True)])
        prefix_len = cache[0].prefix_len
        local = [
            SharedPrefixCache(kv, [g - trim for g in group_gaps], prefix_len + inputs.shape[1])
            for kv in prefix_kv
        ]
        hidden = body(inputs, cache=local)
        firsts.append(mx.argmax(head(hidden[:, -1, :]), axis=-1))
        for big, small in zip(cache, local, strict=True):
            _place_shifted(big, rows, small, trim)
        mx.eval(firsts[-1], [(c.keys, c.values) for c in cache])
    return mx.concatenate(firsts)


def _place_shifted(big: SharedPrefixCache, rows: slice, small: SharedPrefixCache, shift: int) -> None:
    """Copy a group's prefill into ``rows`` of the batch cache, its own tokens moved ``shift``
    columns right (the gap the group did not run)."""
    assert small.keys is not None and small.values is not None
    if big.keys is None:
        big.prefix = None  # the group's copy of the prefix comes with it
        big._allocate(small.keys, small.values)
    p = big.prefix_len
    big.keys[rows, :, :p] = small.keys[:, :, :p]
    big.values[rows, :, :p] = small.values[:, :, :p]
    big.keys[rows, :, p + shift : small.idx + shift] = small.keys[:, :, p : small.idx]
    big.values[rows, :, p + shift : small.idx + shift] = small.values[:, :, p : small.idx]
    big.idx = small.idx + shift
    big.offset = big.idx - big.gaps
