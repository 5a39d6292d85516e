"""Interventions on the residual stream: steering (add a vector after one transformer block, at
every position, while the model generates) and patching (replace the block's output at chosen
(row, position) cells of one forward pass), plus the Logit Lens read-out of a vector.

Both wrap the block the way :mod:`rho_audit.model.activations` captures it, so any mlx-lm
layout whose body runs its ``layers`` in order works, and generation reuses
:meth:`LanguageModel.generate` unchanged: without a steering context no wrapper is installed,
so greedy output stays bit-identical.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import mlx.core as mx
import numpy as np

from rho_audit.api.errors import ModelError, RhoAuditError
from rho_audit.api.inference import Layer
from rho_audit.model.activations import _blocks, _Capture, resolve_layer
from rho_audit.model.layout import body_and_head
from rho_audit.model.memory import bounded_buffer_cache

if TYPE_CHECKING:
    from rho_audit.model.language_model import LanguageModel


class _Wrapped:
    """A transformer block whose output goes through ``edit``; every other attribute is the
    block's (a body may read, say, ``use_sliding`` off its layers)."""

    def __init__(self, block: Any, edit: Any) -> None:
        self.block = block
        self.edit = edit

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        out = self.block(*args, **kwargs)
        if isinstance(out, tuple):
            return (self.edit(out[0]), *out[1:])
        return self.edit(out)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.block, name)


@contextmanager
def _wrapped(model: Any, layer: int, edit: Any) -> Iterator[None]:
    blocks = _blocks(model)
    wrapper = _Wrapped(blocks[layer], edit)
    blocks[layer] = wrapper
    try:
        yield
    finally:
        blocks[layer] = wrapper.block


def _hidden_size(model: Any) -> int:
    return int(model.model.embed_tokens.weight.shape[1]) if hasattr(model, "model") else 0


def _vector(model: Any, vector: np.ndarray | Sequence[float], what: str) -> np.ndarray:
    v = np.asarray(vector, dtype=np.float32)
    size = _hidden_size(model)
    if v.ndim != 1 or (size and v.shape[0] != size):
        raise RhoAuditError(f"{what}: pass a (hidden,) vector of {size} values, not shape {v.shape}.")
    return v


@contextmanager
def steering(model: Any, layer: int, vector: np.ndarray | Sequence[float], alpha: float) -> Iterator[None]:
    """Within the block, block ``layer`` of ``model`` (an mlx-lm model) outputs its residual
    stream plus ``alpha * vector`` at every position of every row, prompts and generated tokens
    alike (also the shared prefix that decoding runs once)."""
    added = mx.array(float(alpha) * _vector(model, vector, "steering"))
    with _wrapped(model, layer, lambda h: h + added.astype(h.dtype)):
        yield


def steer_generate(
    lm: LanguageModel,
    prompts: Sequence[str],
    vector: np.ndarray | Sequence[float],
    layer: Layer,
    alpha: float,
    max_tokens: int,
    template: str = "chat",
    batch_size: int | None = None,
) -> list[str]:
    """Greedy answers of ``lm`` to ``prompts`` with ``alpha * vector`` added after ``layer`` at
    every position (:func:`steering`), batched as :meth:`LanguageModel.generate` batches."""
    index = resolve_layer(lm.model, layer, lm.model_id)
    with steering(lm.model, index, vector, alpha):
        return lm.generate(prompts, max_tokens, lm.resolve_template(template), batch_size=batch_size)


@dataclass(frozen=True)
class Patch:
    """Replace block output at ``row``'s ``position`` (0-based, in the row's own tokens) by
    ``vector``."""

    row: int
    position: int
    vector: np.ndarray


@dataclass
class PatchedPass:
    """One patched forward pass: ``logits[i]`` (positions, vocab) of row ``i`` (its own length,
    padding dropped; ``last_only``: (1, vocab) at its last position) and ``hidden[l][i]``
    (positions, hidden) for each block ``l`` that was asked for, all float32."""

    logits: list[np.ndarray]
    hidden: dict[int, list[np.ndarray]] = field(default_factory=dict)


def patched_forward(
    model: Any,
    sequences: Sequence[Sequence[int]],
    layer: int,
    patches: Sequence[Patch],
    read_layers: Sequence[int] = (),
    last_only: bool = False,
) -> PatchedPass:
    """Run ``sequences`` (token ids; right-padded into one batch, exact under the causal mask)
    through ``model`` with block ``layer``'s output replaced at each patch's (row, position);
    the logits and, for ``read_layers``, the blocks' outputs (a read of ``layer`` itself sees
    the patched states). No patches: a plain forward pass."""
    if not sequences:
        return PatchedPass([])
    blocks = _blocks(model)
    width = max(len(s) for s in sequences)
    hidden = _hidden_size(model)
    mask = np.zeros((len(sequences), width, 1), dtype=bool)
    values = np.zeros((len(sequences), width, hidden), dtype=np.float32)
    for p in patches:
        if not (0 <= p.row < len(sequences) and 0 <= p.position < len(sequences[p.row])):
            raise RhoAuditError(
                f"patch at row {p.row}, position {p.position}: outside the {len(sequences)} sequences "
                "(or that row's length); positions count the row's tokens from 0."
            )
        mask[p.row, p.position] = True
        values[p.row, p.position] = _vector(model, p.vector, "patch")
    where, replacement = mx.array(mask), mx.array(values)

    def edit(h: mx.array) -> mx.array:
        return mx.where(where, replacement.astype(h.dtype), h)

    padded = mx.array([list(s) + [0] * (width - len(s)) for s in sequences])
    captures: dict[int, _Capture] = {}
    with bounded_buffer_cache(), _wrapped(model, layer, edit) if patches else _nothing():
        try:
            for index in sorted(set(read_layers)):
                captures[index] = _Capture(blocks[index])
                blocks[index] = captures[index]
            logits = model(padded).astype(mx.float32)
            mx.eval(logits, *(c.output for c in captures.values() if c.output is not None))
        finally:
            for index, capture in captures.items():
                blocks[index] = capture.block
    out = np.array(logits)
    lengths = [len(s) for s in sequences]
    rows = [out[i, n - 1 : n] if last_only else out[i, :n] for i, n in enumerate(lengths)]
    states: dict[int, list[np.ndarray]] = {}
    for index, capture in captures.items():
        if capture.output is None:
            raise ModelError("the model's forward pass did not run its layers in order")
        array = np.array(capture.output.astype(mx.float32))
        states[index] = [array[i, :n] for i, n in enumerate(lengths)]
    return PatchedPass(rows, states)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def final_norm(model: Any) -> Any:
    """The norm the body applies after its last block (``model.model.norm`` in mlx-lm layouts)."""
    norm = getattr(getattr(model, "model", None), "norm", None)
    if norm is None or not callable(norm):
        raise ModelError("the Logit Lens needs an mlx-lm model whose body has a final `norm`")
    return norm


def logit_lens(model: Any, vectors: np.ndarray) -> np.ndarray:
    """Logits (n, vocab) of ``vectors`` (n, hidden) read as final-layer states: the body's final
    norm, then the unembedding (``lm_head`` or the tied input embedding)."""
    split = body_and_head(model)
    if split is None:
        raise ModelError("the Logit Lens needs an mlx-lm model with a body/head split")
    x = mx.array(np.asarray(vectors, dtype=np.float32))
    dtype = model.model.embed_tokens.weight.dtype
    logits = split[1](final_norm(model)(x.astype(dtype))).astype(mx.float32)
    return np.array(logits)


@contextmanager
def adapter_off(model: Any) -> Iterator[None]:
    """Within the block ``model`` is its base model: every LoRA layer's ``scale`` is 0, so its
    low-rank update adds exactly zero; restored afterwards."""
    from mlx_lm.tuner.lora import LoRALinear

    layers = [m for _, m in model.named_modules() if isinstance(m, LoRALinear)]
    scales = [m.scale for m in layers]
    try:
        for m in layers:
            m.scale = 0.0
        yield
    finally:
        for m, scale in zip(layers, scales, strict=True):
            m.scale = scale
