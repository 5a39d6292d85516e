"""NumPy stand-ins for the MLX element-wise ops that dominate a forward pass on CPU.

MLX's CPU backend runs element-wise ops on one thread with a scalar ``exp``, NumPy's is SIMD:
in a SmolLM2 layer the SwiGLU activation (``silu(gate) * up``) takes longer than the layer's
three MLP matmuls together, and NumPy does it several times faster, copies in and out included
(numbers in the README's performance section). No library offers a faster MLX CPU kernel and
``mx.compile`` does not vectorise ``exp`` (a compiled polynomial ``exp`` gained little), so this
module swaps the activation for NumPy, and the softmax of attention likewise; every matmul
stays in MLX.

Used for scoring and generation: the values differ from MLX's by ~1e-7 relative, far inside
the engine's 1e-4 agreement, and greedy answers stayed token for token those of mlx-lm's own
kernels (0 of 48 reasoning answers differ; ``bench/run_all.py`` checks it against mlx-lm's
one-prompt decoding every run); decoding gains too, as one-query attention spends much of a
layer in MLX's softmax. Never active under ``mx.grad`` (NumPy cannot see through a trace) and
never on a GPU, where MLX's kernels are the fast ones.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np

_lock = threading.Lock()
_variants: dict[type, type] = {}


def _swiglu_numpy(gate: mx.array, up: mx.array) -> mx.array:
    """``silu(gate) * up`` = ``gate / (1 + exp(-gate)) * up`` in float32 NumPy."""
    g = np.asarray(gate)  # zero-copy view of the evaluated MLX buffer
    out = np.negative(g)
    np.exp(out, out=out)
    out += 1.0
    np.divide(g, out, out=out)
    out *= np.asarray(up)
    return mx.array(out)


def _attention_numpy(
    queries: mx.array,
    keys: mx.array,
    values: mx.array,
    scale: float,
    mask: Any,
    prefix: tuple[mx.array, mx.array] | None = None,
) -> mx.array:
    """Scaled dot-product attention with the softmax in NumPy (grouped-query heads as in
    ``mx.fast.scaled_dot_product_attention``). A masked-out score becomes float32's lowest value,
    so a query that sees no key (a left-padding row) gets finite, ignored outputs.

    ``prefix``: keys and values (1, kv heads, positions, dim) that every row sees in full before
    its own ``keys`` (``mask`` covers the own ones only); attended to with one matmul per head
    for all rows' queries, so the prefix is never copied per row."""
    batch, n_heads, length, dim = queries.shape
    n_kv = keys.shape[1]
    grouped = (queries * scale).reshape(batch, n_kv, (n_heads // n_kv) * length, dim)
    scores = grouped @ keys.swapaxes(-1, -2)
    prefix_scores = None
    if prefix is not None:  # every row's queries of a head against that head's prefix keys
        prefix_scores = grouped.transpose(1, 0, 2, 3).reshape(n_kv, -1, dim) @ prefix[0][0].swapaxes(-1, -2)
    mx.eval(scores if prefix_scores is None else (scores, prefix_scores))
    s = np.array(scores).reshape(batch, n_kv, n_heads // n_kv, length, keys.shape[2])
    if isinstance(mask, str):  # "causal": query i sees keys up to offset + i
        offset = keys.shape[2] - length
        visible = np.arange(keys.shape[2])[None, :] <= np.arange(length)[:, None] + offset
        s[..., ~visible] = np.finfo(np.float32).min
    elif mask is not None:
        m = np.asarray(mask)
        if m.dtype == np.bool_:
            np.copyto(s, np.finfo(np.float32).min, where=~m[:, :, None] if m.ndim == 4 else ~m)
        else:
            s += m[:, :, None] if m.ndim == 4 else m
    if prefix_scores is not None:
        shared = np.asarray(prefix_scores).reshape(n_kv, batch, n_heads // n_kv, length, -1)
        s = np.concatenate([shared.transpose(1, 0, 2, 3, 4), s], axis=-1)
    s -= s.max(axis=-1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=-1, keepdims=True)
    if prefix is None:
        probs = mx.array(s.reshape(batch, n_kv, -1, keys.shape[2]))
        return (probs @ values).reshape(batch, n_heads, length, dim)
    width = prefix[0].shape[2]
    own = mx.array(np.ascontiguousarray(s[..., width:]).reshape(batch, n_kv, -1, keys.shape[2]))
    shared = np.ascontiguousarray(s[..., :width].transpose(1, 0, 2, 3, 4)).reshape(n_kv, -1, width)
    from_prefix = (mx.array(shared) @ prefix[1][0]).reshape(n_kv, batch, -1, dim).transpose(1, 0, 2, 3)
    return (own @ values + from_prefix).reshape(batch, n_heads, length, dim)


def _numpy_mlp(cls: type) -> type:
    """A subclass of an mlx-lm SwiGLU MLP class whose activation runs in NumPy."""

    def __call__(self: Any, x: mx.array) -> mx.array:
        gate, up = self.gate_proj(x), self.up_proj(x)
        if gate.dtype != mx.float32:
            return self.down_proj(_mlx_swiglu(gate, up))
        mx.eval(gate, up)
        return self.down_proj(_swiglu_numpy(gate, up))

    return type(f"NumPy{cls.__name__}", (cls,), {"__call__": __call__})


def _mlx_swiglu(gate: mx.array, up: mx.array) -> mx.array:
    return nn.silu(gate) * up


_SWIGLU_MODELS = ("llama", "qwen2")


def _known_modules() -> list[Any]:
    """mlx-lm model modules whose ``MLP.__call__`` is ``down_proj(swiglu(gate_proj(x),
    up_proj(x)))`` and whose attention calls the module-level ``scaled_dot_product_attention``."""
    import importlib

    modules = []
    for name in _SWIGLU_MODELS:
        try:
            modules.append(importlib.import_module(f"mlx_lm.models.{name}"))
        except ImportError:
            continue
    return modules


def _numpy_sdpa(original: Any) -> Any:
    def scaled_dot_product_attention(queries, keys, values, cache, scale, mask, sinks=None):
        if sinks is not None or hasattr(cache, "bits") or queries.dtype != mx.float32:
            return original(queries, keys, values, cache, scale=scale, mask=mask, sinks=sinks)
        return _attention_numpy(queries, keys, values, scale, mask, getattr(cache, "split_prefix", None))

    return scaled_dot_product_attention


@contextmanager
def numpy_kernels(model: Any) -> Iterator[bool]:
    """Within the block, a known mlx-lm model computes its SwiGLU activation and attention
    softmax in NumPy, when MLX's default device is the CPU. Yields whether anything was
    swapped; restores everything on exit, even on an error.

    The attention swap replaces a module-level function of the model's mlx-lm module, so it
    holds for every model of that architecture in the process while the block runs: do not
    train (``mx.grad``) in another thread meanwhile.
    """
    layers = getattr(model, "layers", None)
    if mx.default_device() != mx.cpu or not layers:
        yield False
        return
    modules = {m.__name__: m for m in _known_modules()}
    mlps: list[tuple[Any, type]] = []
    functions: list[tuple[Any, Any]] = []
    with _lock:
        for layer in layers:
            mlp, attention = getattr(layer, "mlp", None), getattr(layer, "self_attn", None)
            module = modules.get(type(mlp).__module__)
            if module is not None and type(mlp) is getattr(module, "MLP", None):
                variant = _variants.setdefault(type(mlp), _numpy_mlp(type(mlp)))
                mlps.append((mlp, type(mlp)))
                mlp.__class__ = variant
            module = modules.get(type(attention).__module__)
            if module is not None and all(m is not module for m, _ in functions):
                original = module.scaled_dot_product_attention
                if not getattr(original, "_numpy", False):
                    functions.append((module, original))
                    module.scaled_dot_product_attention = _numpy_sdpa(original)
                    module.scaled_dot_product_attention._numpy = True
    try:
        yield bool(mlps or functions)
    finally:
        with _lock:
            for mlp, cls in mlps:
                mlp.__class__ = cls
            for module, original in functions:
                module.scaled_dot_product_attention = original
