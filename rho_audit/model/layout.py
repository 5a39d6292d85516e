"""The mlx-lm model layout that scoring, decoding and training build on."""

from __future__ import annotations

from typing import Any


def body_and_head(model: Any) -> tuple[Any, Any] | None:
    """(body, head) of an mlx-lm causal LM: ``model.model`` returns the final hidden states and
    ``lm_head`` (or the tied input embedding) projects them onto the vocabulary. Callers use it
    to project only the positions they need. None for other layouts (call the whole model)."""
    body = getattr(model, "model", None)
    args = getattr(model, "args", None)
    head = getattr(model, "lm_head", None)
    if head is None and body is not None and getattr(args, "tie_word_embeddings", False):
        head = body.embed_tokens.as_linear
    if body is None or head is None or not callable(body):
        return None
    return body, head
