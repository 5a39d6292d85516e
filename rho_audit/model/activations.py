"""Hidden states: the residual stream after one transformer block, for each position of each
token sequence, read in batches.

The block's output is captured as the model's own forward pass runs (the block is wrapped for
the call), so any mlx-lm layout whose body runs its ``layers`` in order works, whatever its
embedding scale, masks or norms; MLX evaluates only what the captured output depends on, so
the blocks after it never run. Sequences are right-padded, which is exact under a causal mask
(a real token never attends to a later pad).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import mlx.core as mx
import numpy as np

from rho_audit.api.errors import ModelError, RhoAuditError
from rho_audit.api.inference import HiddenPositions, Layer
from rho_audit.model.layout import body_and_head
from rho_audit.model.memory import bounded_buffer_cache

#: Rows of one forward pass at most (the padded token budget usually binds first).
MAX_ROWS = 64


@dataclass(frozen=True)
class TokenText:
    """A text as the model reads it: ``ids``, of which the first ``prompt_end`` are its prompt
    (context); its span (``mean``, ``all``) starts at ``span_start``."""

    ids: tuple[int, ...]
    prompt_end: int
    span_start: int


def check_positions(positions: str) -> None:
    """Raise if ``positions`` is not one of :data:`rho_audit.api.inference.HiddenPositions`."""
    if positions not in ("last", "last_prompt", "mean", "all"):
        raise RhoAuditError(
            f'hidden_states(positions={positions!r}): pass "last", "last_prompt", "mean" or "all".'
        )


def read(
    model: Any,
    texts: Sequence[TokenText],
    layer: int,
    positions: HiddenPositions,
    batch_tokens: int,
    max_rows: int = MAX_ROWS,
) -> np.ndarray | list[np.ndarray]:
    """Block ``layer``'s states of ``texts`` at ``positions``: a (texts, hidden) array, or for
    ``"all"`` a list of (span positions, hidden) arrays."""
    check_positions(positions)

    def select(i: int, states: np.ndarray) -> np.ndarray:
        text = texts[i]
        if positions == "last":
            return states[-1]
        if positions == "last_prompt":
            return states[text.prompt_end - 1]
        span = states[text.span_start :]
        return span.mean(axis=0) if positions == "mean" else span

    rows = hidden_states(model, [t.ids for t in texts], layer, select, batch_tokens, max_rows)
    if positions == "all":
        return rows
    if not rows:
        return np.zeros((0, getattr(getattr(model, "args", None), "hidden_size", 0)), dtype=np.float32)
    return np.stack(rows)


class _Capture:
    """A transformer block that keeps its last output; every other attribute is the block's
    (a body may read, say, ``use_sliding`` off its layers)."""

    def __init__(self, block: Any) -> None:
        self.block = block
        self.output: mx.array | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        out = self.block(*args, **kwargs)
        self.output = out[0] if isinstance(out, tuple) else out
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.block, name)


def _blocks(model: Any) -> list[Any]:
    """The list of transformer blocks that the model's body iterates."""
    body = getattr(model, "model", None)
    blocks = getattr(body, "layers", None)
    if not isinstance(blocks, list):
        blocks = getattr(model, "layers", None)
    if not isinstance(blocks, list) or not blocks:
        raise ModelError("hidden states need an mlx-lm model whose body runs a list of layers")
    return blocks


def resolve_layer(model: Any, layer: Layer, model_id: str) -> int:
    """The block index ``layer`` names (see :data:`rho_audit.api.inference.Layer`)."""
    count = len(_blocks(model))
    if layer == "middle":
        return count // 2
    if isinstance(layer, int) and not isinstance(layer, bool) and -count <= layer < count:
        return layer % count
    raise ModelError(
        f"layer {layer!r}: {model_id} has {count} layers; pass an index from 0 to {count - 1}, a "
        f'negative one from -{count} (-1 is the last), or "middle" (layer {count // 2}).'
    )


def hidden_states(
    model: Any,
    sequences: Sequence[Sequence[int]],
    layer: int,
    select: Callable[[int, np.ndarray], np.ndarray],
    batch_tokens: int,
    max_rows: int = MAX_ROWS,
) -> list[np.ndarray]:
    """``select(i, states)`` for each sequence ``i``, where ``states`` (positions, hidden) is the
    float32 output of block ``layer`` at each of its positions. Sequences run in batches of
    similar length, at most ``max_rows`` rows and (unless one row is longer) ``batch_tokens``
    padded positions each."""
    blocks = _blocks(model)
    split = body_and_head(model)
    forward = split[0] if split is not None else model
    order = sorted(range(len(sequences)), key=lambda i: (len(sequences[i]), i))
    results: list[np.ndarray | None] = [None] * len(sequences)
    capture = _Capture(blocks[layer])
    blocks[layer] = capture
    try:
        with bounded_buffer_cache():
            for batch in _batches(order, [len(s) for s in sequences], batch_tokens, max_rows):
                width = len(sequences[batch[-1]])  # the longest: rows are sorted by length
                padded = [list(sequences[i]) + [0] * (width - len(sequences[i])) for i in batch]
                forward(mx.array(padded))
                if capture.output is None:
                    raise ModelError("the model's forward pass did not run its layers in order")
                states = np.array(capture.output.astype(mx.float32))
                capture.output = None
                for row, i in enumerate(batch):
                    results[i] = select(i, states[row, : len(sequences[i])])
    finally:
        blocks[layer] = capture.block
    return [r for r in results if r is not None]


def _batches(order: list[int], lengths: list[int], batch_tokens: int, max_rows: int) -> list[list[int]]:
    """``order`` (sorted by length) cut into batches of at most ``max_rows`` rows whose padded
    positions (rows x longest) stay within ``batch_tokens``; a longer row goes alone."""
    batches: list[list[int]] = []
    for i in order:
        if batches and len(batches[-1]) < max_rows and (len(batches[-1]) + 1) * lengths[i] <= batch_tokens:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches
