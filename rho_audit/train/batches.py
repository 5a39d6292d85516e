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
    mask: Any  # [rows, length - 1] float32: a target's weight (1 scored, 0 not; see token_batch)
    n_tokens: int  # the weights' sum: scored targets, or the trained ones of a weighted row
    start: int  # first target position scored in any row: logits before it are never needed


#: Per continuation token of a row, its weight in the row's mean CE (None: every token 1).
Weights = Sequence[float] | None


def truncate_row(
    context: Sequence[int], continuation: Sequence[int], max_len: int
) -> tuple[list[int], list[int]]:
    """(kept context, row of at most ``max_len`` tokens). Over-long rows lose context from the
    left first, so the response is still trained."""
    keep = max(1, min(len(context), max_len - len(continuation)))
    kept = list(context)[-keep:]
    return kept, (kept + list(continuation))[:max_len]


def scored_weights(
    context: Sequence[int], continuation: Sequence[int], max_len: int, weights: Weights = None
) -> list[float]:
    """The weight of each scored target of the row truncated to ``max_len`` (its continuation
    tokens that are predicted, in order): 1 each without ``weights``."""
    kept, seq = truncate_row(context, continuation, max_len)
    n_cont = max(0, len(seq) - len(kept))
    n = min(n_cont, max(0, len(seq) - 1))  # targets are seq[1:]: a row without context loses one
    if weights is None:
        return [1.0] * n
    if len(weights) != len(continuation):
        raise ValueError(f"{len(weights)} weights for a continuation of {len(continuation)} tokens")
    return [float(w) for w in weights[n_cont - n : n_cont]]


def token_batch(
    rows: Sequence[tuple[Sequence[int], Sequence[int]]],
    max_len: int,
    weights: Sequence[Weights] | None = None,
) -> TokenBatch:
    """Right-padded (context + continuation) rows with a mask on the continuation targets:
    1, or the target's weight from ``weights`` (one per row, per continuation token)."""
    import mlx.core as mx

    seqs, masks, firsts = [], [], []
    for i, (context, continuation) in enumerate(rows):
        scored = scored_weights(context, continuation, max_len, weights[i] if weights else None)
        seq = truncate_row(context, continuation, max_len)[1]
        seqs.append(seq)
        masks.append([0.0] * (len(seq) - 1 - len(scored)) + scored)
        if scored:
            firsts.append(len(seq) - 1 - len(scored))
    width = max(len(s) for s in seqs)
    tokens = [s + [0] * (width - len(s)) for s in seqs]
    mask = [m + [0.0] * (width - 1 - len(m)) for m in masks]
    return TokenBatch(
        mx.array(tokens, dtype=mx.int32),
        mx.array(mask, dtype=mx.float32),
        round(sum(map(sum, masks))),
        min(firsts, default=0),
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
        self._weights: dict[tuple, tuple[float, ...]] = {}

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

    def weights(self, ex: SFTExample) -> tuple[float, ...] | None:
        """1.0 for each token of :meth:`example`'s continuation that ``ex.trained_spans`` selects,
        0.0 for the others (None: the example trains every token)."""
        if ex.trained_spans is None:
            return None
        key = (ex.response, ex.trained_spans)
        if key not in self._weights:
            _, continuation = self.example(ex)
            n_eos = int(self.lm.tokenizer.eos_token_id is not None)  # example() appends it
            ranges = char_ranges(self.lm.tokenizer, continuation[: len(continuation) - n_eos], ex.response)
            ranges += [(len(ex.response), len(ex.response) + 1)] * n_eos
            self._weights[key] = tuple(
                float(any(_overlaps(token, span) for span in ex.trained_spans)) for token in ranges
            )
        return self._weights[key]

    def pair(
        self, pair: ContrastPair, controls: tuple[str, str] | None = None
    ) -> list[tuple[list[int], list[int]]]:
        """The pair's (positive row, negative row); ``controls``: a tag before each one's prompt."""
        tags = controls or (None, None)
        return [
            self.lm.pair_tokens(pair.prompt, text, self.template, control=tag)
            for text, tag in zip((pair.positive, pair.negative), tags, strict=True)
        ]


def char_ranges(tokenizer: Any, ids: Sequence[int], text: str) -> list[tuple[int, int]]:
    """The ``[start, end)`` characters of ``text`` that each of its token ids encodes, found by
    decoding prefixes, which works for any tokenizer: token i ends where the decoded first i + 1
    tokens stop agreeing with ``text``. A token that ends inside a character (one byte of a
    multi-byte one) then covers nothing and the token completing the character covers it; a
    decoder that drops the text's leading spaces is allowed for, and the last token reaches the
    end of ``text`` whatever the decoder does with spaces."""
    ends, agreed = [], 0
    lead = len(text) - len(text.lstrip())  # leading spaces, which some decoders drop
    for i in range(1, len(ids) + 1):
        decoded = tokenizer.decode(list(ids[:i]))
        common = _common_prefix(decoded, text)
        if lead and decoded[:1] and not decoded[0].isspace():
            common = max(common, lead + _common_prefix(decoded, text[lead:]))
        agreed = max(agreed, common)
        ends.append(agreed)
    if ends:
        ends[-1] = len(text)
    return list(zip([0, *ends[:-1]], ends, strict=True))


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def _overlaps(token: tuple[int, int], span: tuple[int, int]) -> bool:
    """Whether a token's characters meet a span (an empty token counts at its position)."""
    (a, b), (start, end) = token, span
    return start <= a < end if a == b else a < end and start < b
