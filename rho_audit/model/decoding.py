"""Greedy (or sampled) decoding of many prompts in batches: token for token what mlx-lm's
one-prompt ``generate`` returns, at a fraction of the cost.

Hand-written rather than mlx-lm's ``BatchGenerator`` (which the model layer still uses for
architectures not listed in :data:`SUPPORTED_MODEL_TYPES`) because, for greedy answers:

- ``BatchGenerator`` normalises every step's logits over the whole vocabulary (a log-softmax
  that an argmax does not need): on CPU, at many rows, that costs more than the vocabulary
  projection itself;
- it grows each KV cache in steps of 256 positions, so the audit's ~190-position answers hold a
  third more memory than they use and fewer rows fit the memory budget;
- it prefills the prompts' shared chat-template prefix (the default model's system turn, 24
  tokens, a third of a short prompt) once per prompt, and stores it once per row; here it runs
  once per call and, on CPU, is stored once per layer.

A layer's cache holds the shared prefix once and, per row, ``[gap | the row's own tokens]``:
the gap (masked padding) makes every row's tokens end at the same column, so one step writes
one column for the whole batch. Rows are taken in order of prompt length so that gaps stay
short; rows whose answer has ended leave the batch once enough of them have, and the caches
grow as the answers lengthen, so a memory budget admits the rows that are still decoding
rather than reserving every row's longest possible answer up front.

Sampling (:mod:`rho_audit.model.sampling`) replaces the argmax by a ``choose`` that draws each
row's token from its own random stream, so batches, streams, prefix sharing and stops are the
same for sampled answers as for greedy ones.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import mlx.core as mx

from rho_audit.model.blas import single_threaded_blas

#: mlx-lm architectures whose attention uses exactly the cache protocol implemented below
#: (``offset`` for RoPE, ``update_and_fetch``, ``make_mask`` without a sliding window).
SUPPORTED_MODEL_TYPES = frozenset({"llama", "qwen2"})
#: Rows prefilled in one forward pass (larger passes ran no faster per token on CPU).
PREFILL_ROWS = 16
#: Rows a batch needs before a second stream pays: below it, two streams of half as many rows
#: each decoded slower than one stream of all of them on the 2-core box; well above it, faster.
MIN_ROWS_PER_STREAM = 24
#: Finished rows are dropped from the batch (a copy of every cache) once they are this share
#: of it; until then they ride along, their tokens ignored.
DROP_FINISHED_SHARE = 1 / 8
#: Own columns a batch's caches grow by when full: room is made as answers lengthen, so memory
#: follows the rows still decoding rather than every row's longest possible answer.
GROW_COLUMNS = 32

#: Picks each row's next token: (logits (rows, vocab), the rows' prompt indices, the step: 0 for
#: the answer's first token) -> token ids (rows,). Greedy decoding takes the argmax instead.
Choose = Callable[[mx.array, Sequence[int], int], mx.array]


def supports(model: Any) -> bool:
    """Whether :func:`greedy_decode` can run ``model`` (an mlx-lm model with a body/head split)."""
    args = getattr(model, "args", None)
    return getattr(args, "model_type", None) in SUPPORTED_MODEL_TYPES and not getattr(
        args, "sliding_window", None
    )


class SharedPrefixCache:
    """One layer's keys and values for a batch of rows: the prompts' shared prefix, stored once,
    then each row's own columns laid out ``[gap | own tokens]``.

    Implements the part of mlx-lm's cache protocol that its attention layers use: ``offset``
    (each row's next RoPE position), ``update_and_fetch`` and ``make_mask``. With ``split``
    (the CPU's NumPy attention, :mod:`rho_audit.model.cpu_kernels`, reads :attr:`split_prefix`) the
    prefix is attended to separately and never copied per row; otherwise ``update_and_fetch``
    returns it in front of every row, as any attention function expects.
    """

    def __init__(
        self,
        prefix: tuple[mx.array, mx.array] | None,
        gaps: Sequence[int],
        capacity: int,
        split: bool = False,
    ) -> None:
        self.prefix = prefix
        self.prefix_len = prefix[0].shape[2] if prefix is not None else 0
        self.split = split and prefix is not None
        self.gaps = mx.array(gaps)
        #: Own columns allocated per row (see :meth:`resize`).
        self.capacity = capacity
        #: Own columns written so far, the same for every row.
        self.idx = 0
        #: Each row's RoPE position for the token written at ``idx``.
        self.offset = self.prefix_len - self.gaps
        self.keys: mx.array | None = None
        self.values: mx.array | None = None

    @property
    def split_prefix(self) -> tuple[mx.array, mx.array] | None:
        """The shared prefix's (keys, values), shaped (1, kv heads, positions, head dim), when
        the attention must add it itself."""
        return self.prefix if self.split else None

    @property
    def column_bytes(self) -> int:
        """Bytes one row's keys and values take per own column (0 before the first write)."""
        if self.keys is None or self.values is None:
            return 0
        k, v = self.keys, self.values
        return k.shape[1] * k.shape[3] * k.itemsize + v.shape[1] * v.shape[3] * v.itemsize

    def _allocate(self, keys: mx.array, values: mx.array) -> None:
        """Zeroed storage for every row, shaped after ``keys``/``values``: a gap column must
        hold finite values, as masked attention still multiplies them by a zero weight."""
        rows = self.gaps.shape[0]
        self.keys = mx.zeros((rows, keys.shape[1], self.capacity, keys.shape[3]), keys.dtype)
        self.values = mx.zeros((rows, values.shape[1], self.capacity, values.shape[3]), values.dtype)

    def update_and_fetch(self, keys: mx.array, values: mx.array) -> tuple[mx.array, mx.array]:
        if self.keys is None:
            self._allocate(keys, values)
        assert self.keys is not None and self.values is not None
        n = keys.shape[2]
        end = self.idx + n
        if end > self.capacity:
            raise RuntimeError(f"decoding cache full ({self.capacity} columns)")
        self.keys[:, :, self.idx : end] = keys
        self.values[:, :, self.idx : end] = values
        self.idx = end
        self.offset = self.offset + n
        own = self.keys[:, :, :end], self.values[:, :, :end]
        if self.prefix is None or self.split:
            return own
        return _with_prefix(self.prefix[0], own[0]), _with_prefix(self.prefix[1], own[1])

    def make_mask(self, n: int, return_array: bool = False, window_size: int | None = None) -> mx.array:
        """(rows, 1, n, columns) boolean: a query sees the prefix and its row's own earlier
        tokens, never the gap. A gap column sees itself, so that no query sees nothing (a fully
        masked softmax is NaN on some backends); what it computes is never read. Split: the
        own columns only (all of the prefix is visible to every query)."""
        if window_size is not None:
            raise ValueError("sliding-window attention is not supported by greedy_decode")
        end = self.idx + n
        columns = mx.arange(end)
        queries = mx.arange(self.idx, end)[:, None]
        own = columns >= self.gaps[:, None]
        visible = ((columns <= queries)[None] & own[:, None]) | (columns == queries)[None]
        if self.prefix_len and not self.split:
            prefix = mx.ones((visible.shape[0], n, self.prefix_len), dtype=mx.bool_)
            visible = mx.concatenate([prefix, visible], axis=2)
        return visible[:, None]

    def resize(self, rows: mx.array | None, capacity: int) -> None:
        """Keep only ``rows`` of the batch (in that order; None: all) with room for ``capacity``
        own columns. Copied at once, so that a batch's layers are resized one after another
        (in one graph the old and new copies of every layer would coexist)."""
        if self.keys is not None and self.values is not None:
            kept = (self.keys, self.values) if rows is None else (self.keys[rows], self.values[rows])
            if capacity != self.capacity:
                kept = tuple(_widened(a, self.idx, capacity) for a in kept)
            self.keys, self.values = kept
            mx.eval(self.keys, self.values)
        self.capacity = capacity
        if rows is not None:
            self.gaps = self.gaps[rows]
            self.offset = self.offset[rows]


def _with_prefix(prefix: mx.array, own: mx.array) -> mx.array:
    """``own`` (rows, heads, columns, dim) after the shared ``prefix`` (1, heads, positions, dim)."""
    return mx.concatenate([mx.broadcast_to(prefix, (own.shape[0], *prefix.shape[1:])), own], axis=2)


def _widened(array: mx.array, filled: int, capacity: int) -> mx.array:
    """``array``'s first ``filled`` columns (axis 2) in zeroed storage of ``capacity`` columns."""
    out = mx.zeros((*array.shape[:2], capacity, array.shape[3]), array.dtype)
    out[:, :, :filled] = array[:, :, :filled]
    return out


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
    kv_budget: int | None = None,
    split_prefix: bool = False,
    choose: Choose | None = None,
) -> list[list[int]]:
    """The greedy answer (token ids, without the stop token) of each prompt, at most
    ``max_tokens`` tokens, decoding ``batch_rows`` prompts at a time, ``workers`` batches at
    once (each on its own CPU stream with a one-thread BLAS; keep 1 on a GPU).

    ``body(tokens, cache=...)`` returns the final hidden states, ``head`` projects them onto
    the vocabulary (see :func:`rho_audit.model.layout.body_and_head`). ``on_finish`` is called
    once per prompt as its answer ends, ``after_batch`` once a batch's caches are freed (to hand
    memory back), both from the decoding threads.

    Caches grow as answers lengthen. ``kv_budget``: bytes one batch's caches may hold; a batch
    that would outgrow it sets its last rows aside, and they are decoded again from their
    prompt in a later batch (greedy answers do not depend on the batch). ``split_prefix``: the
    attention reads the shared prefix from :attr:`SharedPrefixCache.split_prefix`. ``choose``
    (default: the argmax) picks each token; a sampler must draw a row's tokens from its prompt
    index and step alone, as a set-aside row is decoded again from step 0.
    """
    if not prompts or max_tokens < 1:
        return [[] for _ in prompts]
    prefix = shared_prefix(prompts) if len(prompts) > 1 else []
    prefix_kv = prefix_states(model, body, prefix)
    answers: dict[int, list[int]] = {}
    set_aside: list[int] = []

    def decode(batch: list[int]) -> None:
        suffixes = [list(prompts[i][len(prefix) :]) for i in batch]
        decoded = _decode_batch(
            body,
            head,
            prefix_kv,
            suffixes,
            max_tokens,
            stop_tokens,
            on_finish,
            kv_budget,
            split_prefix,
            _choose_for(choose, batch),
        )
        for i, answer in zip(batch, decoded, strict=True):
            if answer is None:
                set_aside.append(i)
            else:
                answers[i] = answer
        after_batch()

    pending = list(range(len(prompts)))
    while pending:
        _run_batches(decode, sorted(pending, key=lambda i: (len(prompts[i]), i)), batch_rows, workers)
        pending, set_aside = set_aside, []
    return [answers[i] for i in range(len(prompts))]


def _run_batches(
    decode: Callable[[list[int]], None], order: list[int], batch_rows: int, workers: int
) -> None:
    """``decode`` ``order`` in batches of at most ``batch_rows``, ``workers`` at once."""
    workers = max(1, min(workers, len(order) // MIN_ROWS_PER_STREAM))
    # Equal batches: a last batch of a few rows would decode as slowly as a full one.
    n_batches = -(-len(order) // batch_rows)
    n_batches += (-n_batches) % workers if len(order) >= workers * n_batches else 0
    size = -(-len(order) // n_batches)
    batches = [order[i : i + size] for i in range(0, len(order), size)]
    if workers < 2 or len(batches) < 2:
        for batch in batches:
            decode(batch)
        return
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


def _argmax(logits: mx.array, rows: Sequence[int], step: int) -> mx.array:
    """Greedy decoding's ``choose``."""
    return mx.argmax(logits, axis=-1)


def _choose_for(choose: Choose | None, batch: list[int]) -> Choose:
    """``choose`` for a batch's rows (positions in ``batch``), or the argmax."""
    if choose is None:
        return _argmax
    return lambda logits, rows, step: choose(logits, [batch[r] for r in rows], step)


def prefix_states(model: Any, body: Callable[..., mx.array], prefix: list[int]) -> list[Any]:
    """Each layer's (keys, values) of the shared prefix, from one single-row pass; None each if
    there is no shared prefix."""
    layers = len(model.layers)
    if not prefix:
        return [None] * layers
    cache = [SharedPrefixCache(None, [0], len(prefix)) for _ in range(layers)]
    mx.eval(body(mx.array([prefix]), cache=cache))
    return [(c.keys, c.values) for c in cache]


def _decode_batch(
    body: Callable[..., mx.array],
    head: Callable[[mx.array], mx.array],
    prefix_kv: list[Any],
    suffixes: list[list[int]],
    max_tokens: int,
    stop_tokens: set[int],
    on_finish: Callable[[], object],
    kv_budget: int | None = None,
    split: bool = False,
    choose: Choose = _argmax,
) -> list[list[int] | None]:
    """Each row's answer; None for a row set aside to keep the caches within ``kv_budget``.
    ``choose(logits, rows, step)`` picks the tokens of ``rows`` (indices into ``suffixes``)."""
    longest = max(map(len, suffixes))
    gaps = [longest - len(s) for s in suffixes]
    full = longest + max_tokens  # own columns of a row whose answer runs to max_tokens
    cache = [SharedPrefixCache(kv, gaps, min(full, longest + GROW_COLUMNS), split) for kv in prefix_kv]
    first = _prefill(body, head, prefix_kv, cache, suffixes, gaps, split, choose)

    answers: list[list[int] | None] = [[] for _ in suffixes]
    live: list[int | None] = list(range(len(suffixes)))  # answer index of each batch row; None once finished
    rows = list(range(len(suffixes)))  # answer index of each batch row, finished or not
    tokens = first
    step = 0
    while True:
        for position, token in enumerate(tokens.tolist()):
            row = live[position]
            if row is None:
                continue
            answer = answers[row]
            assert answer is not None
            if token in stop_tokens or len(answer) + 1 >= max_tokens:
                if token not in stop_tokens:
                    answer.append(token)
                live[position] = None
                on_finish()
            else:
                answer.append(token)
        remaining = [p for p, row in enumerate(live) if row is not None]
        if not remaining:
            return answers
        capacity = cache[0].capacity
        if cache[0].idx == capacity:
            capacity = min(full, capacity + GROW_COLUMNS)
            if kv_budget is not None:
                fit = max(1, kv_budget // (capacity * sum(c.column_bytes for c in cache)))
                for p in remaining[fit:]:
                    answers[live[p]] = None  # type: ignore[index]
                remaining = remaining[:fit]
        finished = len(live) - len(remaining)
        if finished >= max(1, len(live) * DROP_FINISHED_SHARE) or capacity != cache[0].capacity:
            keep = mx.array(remaining) if finished else None
            for c in cache:
                c.resize(keep, capacity)
            if keep is not None:
                tokens = tokens[keep]
                live = [live[p] for p in remaining]
                rows = [rows[p] for p in remaining]
        hidden = body(tokens[:, None], cache=cache)
        step += 1
        tokens = choose(head(hidden[:, -1, :]), rows, step)
        mx.eval(tokens)


def _prefill(
    body: Callable[..., mx.array],
    head: Callable[[mx.array], mx.array],
    prefix_kv: list[Any],
    cache: list[SharedPrefixCache],
    suffixes: list[list[int]],
    gaps: list[int],
    split: bool = False,
    choose: Choose = _argmax,
) -> mx.array:
    """Run every row's prompt suffix (in groups of :data:`PREFILL_ROWS`) into ``cache``; the
    first answer token of each row (``choose``: as in :func:`_decode_batch`)."""
    firsts = []
    for start in range(0, len(suffixes), PREFILL_ROWS):
        rows = slice(start, start + PREFILL_ROWS)
        group_gaps = gaps[rows]
        trim = min(group_gaps)  # columns of gap the whole group shares: not run at all
        inputs = mx.array([[0] * (g - trim) + s for g, s in zip(group_gaps, suffixes[rows], strict=True)])
        local_gaps = [g - trim for g in group_gaps]
        local = [SharedPrefixCache(kv, local_gaps, inputs.shape[1], split) for kv in prefix_kv]
        hidden = body(inputs, cache=local)
        firsts.append(choose(head(hidden[:, -1, :]), range(len(suffixes))[rows], 0))
        for big, small in zip(cache, local, strict=True):
            _place_shifted(big, rows, small, trim)
        mx.eval(firsts[-1], [(c.keys, c.values) for c in cache])
    return mx.concatenate(firsts)


def _place_shifted(big: SharedPrefixCache, rows: slice, small: SharedPrefixCache, shift: int) -> None:
    """Copy a group's prefill into ``rows`` of the batch cache, moved ``shift`` columns right
    (the gap the group did not run)."""
    assert small.keys is not None and small.values is not None
    if big.keys is None:
        big._allocate(small.keys, small.values)
    assert big.keys is not None and big.values is not None
    big.keys[rows, :, shift : small.idx + shift] = small.keys[:, :, : small.idx]
    big.values[rows, :, shift : small.idx + shift] = small.values[:, :, : small.idx]
    big.idx = small.idx + shift
    big.offset = big.prefix_len + big.idx - big.gaps
