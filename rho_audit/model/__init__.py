"""The model layer: loading, conversion, scoring, decoding and CPU kernels, on MLX.

On Linux, MLX's CPU wheel links a single-threaded reference BLAS; a fast one must be loaded
before the first ``import mlx.core`` (see :mod:`.blas`). Importing this package does it, once,
so every module below may import ``mlx`` at its top.
"""

from rho_audit.model.blas import ensure_fast_blas

ensure_fast_blas()
