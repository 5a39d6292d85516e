"""Load a fast BLAS before any test module imports mlx (see rho_audit/blas.py)."""

from rho_audit.blas import ensure_fast_blas

ensure_fast_blas()
