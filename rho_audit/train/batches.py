"""Token batches and the losses computed on them.

The per-token cross-entropy of a continuation is computed on exactly the tokens the audit
scores (``LanguageModel.pair_tokens``), so the quantity trained is the quantity measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rho_audit.model.layout import body_and_head
from rho_audit.probesets.schema import ContrastPair
from rho_audit.train.corpus import SFTExample


@dataclass(frozen=True)
class TokenBatch:
    tokens: Any  # [rows, length] int32, right-padded
    mask: Any  # [rows, length - 1] float32: 1 on predicted target tokens that are scored
    n_tokens: int
    start: int  # first target position scored in any row: logits before it are never needed


def truncate_row(
    context: Sequence[int], continuation: Sequence[int], max_len: int
) -> tuple[list[int], list[int]]:
    """(kept context, row of at most ``max_len`` tokens). Over-long rows lose context from the
    left first, so the response is still trained."""
    keep = max(1, min(len(context), max_len - len(continuation)))
    kept = list(context)[-keep:]
    return kept, (kept + list(continuation))[:max_len]


def token_batch(rows: Sequence[tuple[Sequence[int], Sequence[int]]], max_len: int) -> TokenBatch:
    """Right-padded (context + continuation) rows with a mask on the continuation targets."""
    import mlx.core as mx

    seqs, masks = [], []
    for context, continuation in rows:
        context, seq = truncate_row(context, continuation, max_len)
        n_cont = max(0, len(seq) - len(context))
        seqs.append(seq)
        masks.append([0.0] * (len(seq) - 1 - n_cont) + [1.0] * n_cont)
    width = max(len(s) for s in seqs)
    tokens = [s + [0] * (width - len(s)) for s in seqs]
    mask = [m + [0.0] * (width - 1 - len(m)) for m in masks]
    start = min((m.index(1.0) for m in masks if 1.0 in m), default=0)
    return TokenBatch(
        mx.array(tokens, dtype=mx.int32),
        mx.array(mask, dtype=mx.float32),
        int(sum(map(sum, masks))),
        start,
    )


def per_row_ce(model: Any, batch: TokenBatch) -> Any:
    """Mean cross-entropy per row over its masked target tokens."""
    return per_row_ce_and_logits(model, batch)[0]


def per_row_ce_and_logits(model: Any, batch: TokenBatch) -> tuple[Any, Any]:
    """(mean cross-entropy per row over its masked target tokens, the logits they came from
    ``[rows, positions, vocab]``, positions from ``batch.start``).

    The vocabulary projection is a large share of the forward and a chat prompt is mostly unscored
    context, so with the mlx-lm layout (``model.model`` body + head) only positions from
    ``batch.start`` on are projected.
    """
    import mlx.core as mx
    import mlx.nn as nn

    inputs, targets, mask = batch.tokens[:, :-1], batch.tokens[:, 1:], batch.mask
    split = body_and_head(model)
    if split is None:
        logits = model(inputs)[:, batch.start :]
    else:
        body, head = split
        logits = head(body(inputs)[:, batch.start :])
    targets, mask = targets[:, batch.start :], mask[:, batch.start :]
    logits = logits.astype(mx.float32)
    ce = nn.losses.cross_entropy(logits, targets, reduction="none") * mask
    return ce.sum(axis=1) / mx.maximum(mask.sum(axis=1), 1.0), logits


def pair_ce(model: Any, batches: Sequence[TokenBatch]) -> Any:
    """Per-row CE of the pair rows, one batch per dimension (their lengths differ several-fold,
    so one padded batch would be mostly padding); rows stay in (positive, negative) order."""
    import mlx.core as mx

    return mx.concatenate([per_row_ce(model, b) for b in batches])


class TrainingTokenizer:
    """Turns SFT examples and contrast pairs into (context, continuation) token ids."""

    def __init__(self, lm: Any, template: str, max_len: int) -> None:
        self.lm, self.template, self.max_len = lm, template, max_len
        self._cache: dict[tuple, tuple[list[int], list[int]]] = {}

    def example(self, ex: SFTExample, control: str | None = None) -> tuple[list[int], list[int]]:
        """The example's (context, response + EOS) ids; ``control``: a tag put before its prompt."""
        key = ("sft", ex, control)
        if key not in self._cache:
            context, continuation = self.lm.pair_tokens(
                ex.prompt, ex.response, self.template, ex.history, control=control
            )
            eos = self.lm.tokenizer.eos_token_id
            self._cache[key] = (context, continuation + ([eos] if eos is not None else []))
        return self._cache[key]

    def pair(
        self, pair: ContrastPair, controls: tuple[str, str] | None = None
    ) -> list[tuple[list[int], list[int]]]:
        """The pair's (positive row, negative row); ``controls``: a tag before each one's prompt."""
        tags = controls or (None, None)
        return [
            self.lm.pair_tokens(pair.prompt, text, self.template, control=tag)
            for text, tag in zip((pair.positive, pair.negative), tags, strict=True)
        ]
