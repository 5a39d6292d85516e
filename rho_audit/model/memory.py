"""Keep the process's memory in check while scoring and generating: MLX's cache of freed
buffers is bounded, and the C heap hands freed pages back to the system (glibc only)."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from contextlib import contextmanager

import mlx.core as mx

#: Freed buffers MLX may keep for reuse while scoring or generating.
BUFFER_CACHE_LIMIT = 64 * 2**20


@contextmanager
def bounded_buffer_cache() -> Iterator[None]:
    """Bound MLX's cache of freed buffers for the block, then hand them all back.

    Every scoring batch and every decode step has new shapes, so an unbounded cache keeps a
    buffer of each size it ever freed: gigabytes over an audit. Reuse within a size still hits.
    """
    previous = mx.set_cache_limit(BUFFER_CACHE_LIMIT)
    try:
        yield
    finally:
        mx.set_cache_limit(previous)
        mx.clear_cache()
        trim_heap()


#: glibc's ``mallopt`` parameter for the size from which ``malloc`` maps memory of its own.
_M_MMAP_THRESHOLD = -3


@contextmanager
def mapped_large_buffers() -> Iterator[None]:
    """Within the block, glibc serves allocations of 1 MB and more with mmap and gives them
    back to the system when freed (glibc only; elsewhere a no-op).

    Decoding frees and reallocates KV caches of a few MB per layer as batches grow and shrink;
    kept in glibc's arenas, those pages stayed resident and raised the peak RSS (mapping them
    costs no time). Afterwards the threshold stays fixed at glibc's dynamic maximum, 32 MB, where
    the default settles after its first large free.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        yield
        return
    mallopt(_M_MMAP_THRESHOLD, 1 << 20)
    try:
        yield
    finally:
        mallopt(_M_MMAP_THRESHOLD, 32 << 20)


def release_memory() -> None:
    """Hand MLX's cached buffers and the C heap's free pages back to the system: between
    generation batches, whose KV caches (tens of MB per layer) are freed and reallocated."""
    mx.clear_cache()
    trim_heap()


def trim_heap() -> None:
    """Give the C heap's free pages back to the system (glibc only; elsewhere a no-op).

    MLX and NumPy free their buffers with ``free``; glibc keeps the freed pages of buffers under
    its (adaptive, up to 32 MB) mmap threshold in its arenas, so a scoring call left ~400 MB
    resident that the next dimension could not reuse. A fixed 1 MB threshold would avoid it
    but make scoring pay for page faults, so the heap is trimmed between calls instead.
    """
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)
