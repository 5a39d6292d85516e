"""One forward/backward per micro-step: the SFT row and every contrast-pair row packed into one sequence.

A micro-step has one long SFT row and 8-10 short pair rows. Run as separate padded batches, each
pass streams all the weights again and pays its padding; so the rows are concatenated into one
``[1, T]`` sequence instead, and every matmul sees all their tokens at once. Nothing crosses rows:

- attention runs row by row (each row's queries see only its own keys, causally), so no work is
  spent on the zero blocks a block-diagonal mask would hold, which is most of a long packed row;
- RoPE positions restart at 0 for every row, so a row sees exactly the positions it has alone;
- a row prefix is packed once: a pair's prompt (and the first words its two continuations share,
  and a chat template's system turn) is run for the first row that has it, and a later row's own
  tokens attend to it there, at the positions they have alone;
- the vocabulary projection runs only at the positions whose next token is scored, once per
  position (the positive and negative continuation's first tokens are predicted at the same one).

The model's own code runs unchanged. The body is called with one :class:`_RowCache` per layer: its
``make_mask`` hands the row layout down as the attention mask, ``update_and_fetch`` returns the keys
as they are, each layer's ``rope`` is swapped for the per-token positions for the call, and the
attention module's ``scaled_dot_product_attention`` runs the rows one by one when it is given the
layout (and the original function otherwise). A model whose code does not route those through
(another positional scheme, a body without ``cache``) would give other numbers, so
:func:`packing_supported` compares a packed forward with separate rows once per model, and the
loop keeps the separate batches (:mod:`rho_audit.train.batches`) where it does not agree.
"""

from __future__ import annotations

import bisect
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rho_audit.model.layout import body_and_head
from rho_audit.train.batches import (
    TokenBatch,
    Weights,
    pair_ce,
    per_row_ce,
    per_row_ce_and_logits,
    scored_weights,
    token_batch,
    truncate_row,
)

Row = tuple[Sequence[int], Sequence[int]]  # (context, continuation) token ids

#: Largest per-row CE difference, in nats per token, at which packed rows count as the separate ones.
SUPPORT_TOLERANCE = 1e-3

_patch_lock = threading.Lock()


@dataclass(frozen=True)
class Span:
    """Queries ``[start, end)`` of the packed sequence, and the keys they see: the ranges in
    ``before`` (their row's earlier tokens, packed by earlier rows), then their own, causally."""

    start: int
    end: int
    before: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class PackedRows:
    tokens: Any  # [1, T] int32: every distinct row prefix's last token, rows one after another
    positions: Any  # [T] int32: each token's position within its row
    spans: tuple[Span, ...]  # in packed order, covering [0, T)
    heads: Any  # [U] int32: the packed positions whose next token is scored (in some row)
    head_of: Any  # [S] int32: for each scored target, its position's index in ``heads``
    targets: Any  # [S] int32: the scored targets
    rows: Any  # [rows, S] float32: a scored target's weight in its row (1 unless weighted), else 0
    n_tokens: int  # scored targets (weighted), as TokenBatch.n_tokens counts them


def pack_rows(rows: Sequence[Row], max_len: int, weights: Sequence[Weights] | None = None) -> PackedRows:
    """Rows truncated to ``max_len`` each exactly as :func:`~rho_audit.train.batches.token_batch`
    does, packed into one sequence (``max_len`` bounds each row, not the packed length).
    ``weights``: as for ``token_batch``, a row's targets' weights in its mean CE (a weight-0
    target is still projected, so the first row's log-softmax covers all of its targets).

    A token's hidden states depend only on the tokens before it in its row, so a row prefix that
    an earlier row already packed is not packed again: a pair's prompt, the chat template's system
    turn, a continuation's first words that the other one shares. The row's own tokens then attend
    to that prefix where it lies."""
    import mlx.core as mx
    import numpy as np

    tokens: list[int] = []
    positions: list[int] = []
    spans: list[Span] = []
    scored: list[int] = []
    targets: list[int] = []
    owner: list[int] = []
    weight: list[float] = []
    prefixes: dict[int, tuple[int, dict]] = {}  # a trie of packed prefixes: token -> (index, next)
    for r, (context, continuation) in enumerate(rows):
        kept, seq = truncate_row(context, continuation, max_len)
        inputs = seq[:-1]
        at: list[int] = []  # packed index of each input
        node = prefixes
        while len(at) < len(inputs) and inputs[len(at)] in node:
            index, node = node[inputs[len(at)]]
            at.append(index)
        shared, start = len(at), len(tokens)
        for i in range(shared, len(inputs)):
            node[inputs[i]] = (len(tokens), {})
            node = node[inputs[i]][1]
            at.append(len(tokens))
            tokens.append(inputs[i])
            positions.append(i)
        if len(tokens) > start:
            spans.append(Span(start, len(tokens), _runs(at[:shared])))
        n_cont = max(0, len(seq) - len(kept))
        first = max(0, len(inputs) - n_cont)  # first scored target index (target t is seq[t + 1])
        scored += at[first:]
        targets += seq[first + 1 :]
        owner += [r] * (len(inputs) - first)
        weight += scored_weights(context, continuation, max_len, weights[r] if weights else None)
    heads, head_of = np.unique(np.array(scored, dtype=np.int32), return_inverse=True)
    membership = np.zeros((len(rows), len(scored)), dtype=np.float32)
    membership[owner, np.arange(len(scored))] = weight
    return PackedRows(
        mx.array([tokens], dtype=mx.int32),
        mx.array(positions, dtype=mx.int32),
        tuple(spans),
        mx.array(heads, dtype=mx.int32),
        mx.array(head_of.reshape(-1), dtype=mx.int32),
        mx.array(targets, dtype=mx.int32),
        mx.array(membership),
        round(sum(weight)),
    )


def _runs(indices: list[int]) -> tuple[tuple[int, int], ...]:
    """Ascending indices as ``(start, end)`` ranges of consecutive ones."""
    runs: list[tuple[int, int]] = []
    for i in indices:
        if runs and runs[-1][1] == i:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return tuple(runs)


def packed_row_ce(model: Any, packed: PackedRows) -> Any:
    """Mean cross-entropy per row over its scored targets, ``[rows]``: the numbers
    :func:`~rho_audit.train.batches.per_row_ce` gives each row alone, from one forward."""
    return packed_forward(model, packed, 0)[0]


def packed_forward(model: Any, packed: PackedRows, first_row_targets: int) -> tuple[Any, Any]:
    """(:func:`packed_row_ce`, the log-softmax at the first row's scored positions
    ``[first_row_targets, vocab]``, or None when ``first_row_targets`` is 0)."""
    import mlx.core as mx

    body, head = body_and_head(model)
    hidden = _packed_hidden(model, body, packed)
    logits = head(hidden[0][packed.heads]).astype(mx.float32)
    # cross_entropy's terms (logsumexp minus the target's logit), the logsumexp once per position
    vocab = logits.shape[-1]
    picked = logits.reshape(-1)[packed.head_of.astype(mx.int64) * vocab + packed.targets]
    normaliser = mx.logsumexp(logits, axis=-1)
    ce = normaliser[packed.head_of] - picked
    row_ce = (packed.rows @ ce) / mx.maximum(packed.rows.sum(axis=1), 1.0)
    if not first_row_targets:
        return row_ce, None
    first = packed.head_of[:first_row_targets]  # the first row's targets come first
    return row_ce, logits[first] - normaliser[first][:, None]


def packing_supported(model: Any) -> bool:
    """Whether :func:`packed_row_ce` gives ``model`` the numbers of separate rows: a forward of a
    few short rows (sharing prefixes, lengths unequal) both ways, compared."""
    import mlx.core as mx

    if body_and_head(model) is None:
        return False
    ids = [1 + (7 * i) % 97 for i in range(40)]  # ids every vocabulary has
    rows = [(ids[:5], ids[5:9]), (ids[:5], ids[9:16]), (ids[16:18], ids[18:30]), (ids[30:31], ids[31:33])]
    try:
        packed = packed_row_ce(model, pack_rows(rows, 64))
        separate = mx.concatenate([per_row_ce(model, token_batch([row], 64)) for row in rows])
        gap = mx.abs(packed - separate).max()
        mx.eval(gap)
    except Exception:  # an architecture the row layout cannot be routed through
        return False
    return float(gap.item()) <= SUPPORT_TOLERANCE


# -- micro-steps ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchOutputs:
    """A micro-step's forward: the SFT row's CE ``[1]`` (``[0]`` without one), the pair rows' CE
    ``[2 * pairs]`` in (positive, negative) order, and, when asked for, the SFT row's log-softmax
    at its scored positions ``[scored tokens, vocab]``."""

    sft_ce: Any
    pair_ce: Any
    sft_logprobs: Any = None


@dataclass(frozen=True)
class MicroBatch:
    """One micro-step's rows: its SFT example (None: the objective does not train on it), and the
    drawn pairs' (positive, negative) rows grouped by dimension (pairs in draw order within a group).
    ``sft_weights``: per continuation token of the SFT row, 1.0 if its CE is trained, 0.0 if not
    (None: all are; see ``SFTExample.trained_spans``)."""

    sft: Row | None
    pairs: tuple[tuple[Row, ...], ...]
    max_len: int
    sft_weights: tuple[float, ...] | None = None

    def pair_rows(self) -> list[Row]:
        return [row for group in self.pairs for row in group]

    def rows(self) -> list[Row]:
        return [*([self.sft] if self.sft else []), *self.pair_rows()]

    def row_weights(self) -> list[Weights]:
        """Each of :meth:`rows`' target weights (None: every target counts)."""
        return [*([self.sft_weights] if self.sft else []), *[None] * len(self.pair_rows())]

    def without_pairs(self) -> MicroBatch:
        return MicroBatch(self.sft, (), self.max_len, self.sft_weights)

    def without_sft(self) -> MicroBatch:
        return MicroBatch(None, self.pairs, self.max_len)

    def n_tokens(self) -> int:
        """Trained targets in all its rows (the loop's tokens/s and ``trained_tokens`` count
        these): a weighted SFT row counts only the tokens it trains."""
        pairs = zip(self.rows(), self.row_weights(), strict=True)
        return sum(round(sum(scored_weights(*row, self.max_len, w))) for row, w in pairs)

    def sft_tokens(self) -> int:
        """Response tokens the SFT row scores, trained or not (what a token budget counts)."""
        return _scored_targets(self.sft, self.max_len) if self.sft else 0

    def pair_tokens(self) -> list[int]:
        """Scored targets of each pair row, in (positive, negative) order."""
        return [_scored_targets(row, self.max_len) for row in self.pair_rows()]

    def forward(self, model: Any, packed: bool, sft_logprobs: bool = False) -> BatchOutputs:
        """Every row through the model: one packed sequence, or a padded batch per group."""
        import mlx.core as mx

        want = _scored_targets(self.sft, self.max_len) if sft_logprobs and self.sft else 0
        if packed:
            rows = pack_rows(self.rows(), self.max_len, self.row_weights())
            ce, logprobs = packed_forward(model, rows, want)
            n_sft = 1 if self.sft else 0
            return BatchOutputs(ce[:n_sft], ce[n_sft:], logprobs)
        sft, logprobs = mx.zeros((0,)), None
        if self.sft:
            batch = token_batch([self.sft], self.max_len, [self.sft_weights])
            sft, logits = per_row_ce_and_logits(model, batch)
            if want:  # one row: its logits from batch.start on are those of its scored targets
                chosen = logits[0][:want]
                logprobs = chosen - mx.logsumexp(chosen, axis=-1, keepdims=True)
        pairs = pair_ce(model, self.pair_batches()) if self.pairs else mx.zeros((0,))
        return BatchOutputs(sft, pairs, logprobs)

    def pair_batches(self) -> list[TokenBatch]:
        return [token_batch(group, self.max_len) for group in self.pairs]


def _scored_targets(row: Row, max_len: int) -> int:
    context, seq = truncate_row(*row, max_len)
    return min(max(0, len(seq) - len(context)), max(0, len(seq) - 1))


# -- routing the row layout through the model -----------------------------------------------------


@dataclass(frozen=True)
class _RowLayout:
    """What the patched attention receives as its mask: the spans, the positions at which the
    sequence is cut into pieces, and per span the pieces its earlier keys and its own tokens are."""

    spans: tuple[Span, ...]
    window: int | None
    cuts: tuple[int, ...]
    pieces: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]

    @classmethod
    def of(cls, spans: tuple[Span, ...], window: int | None) -> _RowLayout:
        bounds = {s.start for s in spans} | {i for s in spans for r in s.before for i in r}
        cuts = tuple(sorted(bounds - {0, spans[-1].end}))
        starts = (0, *cuts)

        def pieces(a: int, b: int) -> tuple[int, ...]:
            first = bisect.bisect_left(starts, a)
            return tuple(range(first, bisect.bisect_left(starts, b)))

        return cls(
            spans,
            window,
            cuts,
            tuple((sum((pieces(a, b) for a, b in s.before), ()), pieces(s.start, s.end)) for s in spans),
        )


def _joined(parts: list[Any]) -> Any:
    import mlx.core as mx

    return parts[0] if len(parts) == 1 else mx.concatenate(parts, axis=2)


class _RowCache:
    """Stands in for a layer's KV cache for one packed forward: hands the row layout down as the
    mask, keeps no state, and leaves RoPE's offset at 0 (the positions come from ``_Positions``)."""

    offset = 0

    def __init__(self, spans: tuple[Span, ...]) -> None:
        self.spans = spans

    def make_mask(self, *args: Any, window_size: int | None = None, **kwargs: Any) -> _RowLayout:
        return _RowLayout.of(self.spans, window_size)

    def update_and_fetch(self, keys: Any, values: Any) -> tuple[Any, Any]:
        return keys, values


def _positions_module(rope: Any, positions: Any) -> Any:
    import mlx.nn as nn

    class _Positions(nn.Module):
        """The layer's own RoPE at per-token positions: tokens go along the batch axis, each one a
        sequence of length 1 whose offset is its position in its own row."""

        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def __call__(self, x: Any, offset: Any = 0) -> Any:
            self.calls += 1
            return rope(x.transpose(2, 1, 0, 3), offset=positions).transpose(2, 1, 0, 3)

    return _Positions()


def _row_attention(original: Any, counter: list[int]) -> Any:
    def scaled_dot_product_attention(queries, keys, values, cache, scale, mask, sinks=None):
        if not isinstance(mask, _RowLayout):
            return original(queries, keys, values, cache, scale=scale, mask=mask, sinks=sinks)
        import mlx.core as mx
        from mlx_lm.models.base import create_causal_mask

        counter[0] += 1
        # One split per array (its gradient is one concatenation; a slice per row would add a
        # zero-filled full-length gradient per row), then each row's pieces.
        q_parts, k_parts, v_parts = (mx.split(x, list(mask.cuts), axis=2) for x in (queries, keys, values))
        out = []
        for span, (before, own) in zip(mask.spans, mask.pieces, strict=True):
            q = _joined([q_parts[i] for i in own])
            k = _joined([k_parts[i] for i in before + own])
            v = _joined([v_parts[i] for i in before + own])
            n, seen = span.end - span.start, sum(b - a for a, b in span.before)
            causal: Any = "causal"
            if mask.window is not None and n + seen > mask.window:
                causal = create_causal_mask(n, seen, window_size=mask.window)
            out.append(mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=causal, sinks=sinks))
        return _joined(out)

    scaled_dot_product_attention.rows = True
    return scaled_dot_product_attention


@contextmanager
def _routed(model: Any, positions: Any) -> Iterator[tuple[list[int], list[Any]]]:
    """Within the block, each layer's attention takes per-token positions and runs a row layout
    mask row by row. Yields (packed attention calls, the positions modules) for the caller to
    check that every layer went through them."""
    layers = list(model.layers)
    attentions = [layer.self_attn for layer in layers]
    modules = {sys.modules[type(a).__module__] for a in attentions}
    counter = [0]
    swapped: list[tuple[Any, Any]] = []
    patched: list[tuple[Any, Any]] = []
    wrappers = []
    with _patch_lock:
        try:
            for module in modules:
                original = module.scaled_dot_product_attention  # AttributeError: not routable
                if not getattr(original, "rows", False):
                    module.scaled_dot_product_attention = _row_attention(original, counter)
                    patched.append((module, original))
            for attention in attentions:
                wrapper = _positions_module(attention.rope, positions)
                swapped.append((attention, attention.rope))
                attention.rope = wrapper
                wrappers.append(wrapper)
            yield counter, wrappers
        finally:
            for attention, rope in swapped:
                attention.rope = rope
            for module, original in patched:
                module.scaled_dot_product_attention = original


def _packed_hidden(model: Any, body: Any, packed: PackedRows) -> Any:
    """The body's final hidden states ``[1, T, hidden]`` of the packed rows."""
    if len(packed.spans) == 1:  # one row (the first row shares nothing): the model's own forward
        return body(packed.tokens)
    n_layers = len(model.layers)
    with _routed(model, packed.positions) as (counter, wrappers):
        hidden = body(packed.tokens, cache=[_RowCache(packed.spans) for _ in range(n_layers)])
    if counter[0] != n_layers or any(w.calls == 0 for w in wrappers):
        raise RuntimeError(
            f"the row layout reached {counter[0]} of {n_layers} attention layers: this model's code "
            "does not route it (use the separate batches)"
        )
    return hidden
