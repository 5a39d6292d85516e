"""Test-session setup.

A fast BLAS is loaded before any test module imports mlx (see rho_audit/model/blas.py), and imported
probe sets go to a throw-away data dir so tests never read or write the user's own.
"""

import os
import tempfile

from rho_audit.model.blas import ensure_fast_blas

ensure_fast_blas()
os.environ.setdefault("RHO_AUDIT_DATA_DIR", tempfile.mkdtemp(prefix="rho-audit-test-data-"))
