"""Give MLX a fast BLAS on Linux.

Why: the ``mlx[cpu]`` Linux wheel links netlib's single-threaded *reference* BLAS, so every matmul
(nearly all of a forward pass) runs far slower than with OpenBLAS (see the README's performance
section).
``libmlx.so`` leaves ``cblas_sgemm`` undefined and the dynamic linker resolves it in the *global*
scope before the library's own dependencies. Loading a real BLAS with ``RTLD_GLOBAL`` before the
first ``import mlx.core`` therefore makes libmlx bind to it; nothing needs rebuilding.

Call :func:`ensure_fast_blas` before anything imports ``mlx.core``. Sources, in order:

1. ``RHO_AUDIT_BLAS``: a library path (``0``/``off`` disables the whole mechanism);
2. the system OpenBLAS (Debian/Ubuntu ``libopenblas0-pthread``, or whatever ``ldconfig`` knows);
3. a tiny C shim, compiled once with ``cc`` into the cache, forwarding ``cblas_{s,d}gemm`` to the
   OpenBLAS that numpy bundles (it exports them only under prefixed 64-bit-integer names).

macOS (Accelerate/Metal) and Windows need none of this: there it is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

_loaded: str | None = None
_done = False
# Keep handles alive: a closed handle could let the symbols go away under libmlx.
_handles: list[ctypes.CDLL] = []

# Forwarders from the standard CBLAS ABI (32-bit int sizes) to numpy's bundled OpenBLAS.
# CBLAS enums stay `int`; only the size/leading-dimension arguments widen to INT.
_SHIM_SOURCE = """\
#include <stdint.h>
typedef {int_t} INT;
void {pre}sgemm{suf}(int, int, int, INT, INT, INT, float, const float *, INT,
                     const float *, INT, float, float *, INT);
void {pre}dgemm{suf}(int, int, int, INT, INT, INT, double, const double *, INT,
                     const double *, INT, double, double *, INT);
void cblas_sgemm(int o, int ta, int tb, int m, int n, int k, float al, const float *a, int lda,
                 const float *b, int ldb, float be, float *c, int ldc)
{{ {pre}sgemm{suf}(o, ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc); }}
void cblas_dgemm(int o, int ta, int tb, int m, int n, int k, double al, const double *a, int lda,
                 const double *b, int ldb, double be, double *c, int ldc)
{{ {pre}dgemm{suf}(o, ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc); }}
"""
# (symbol prefix, suffix, C integer type) as numpy's OpenBLAS builds have exported them.
_NUMPY_ABIS = (("scipy_cblas_", "64_", "int64_t"), ("cblas_", "64_", "int64_t"), ("scipy_cblas_", "", "int"))

_SLOW_WARNING = (
    "rho-audit found no optimised BLAS for MLX: matrix multiplies will be ~35x slower on this CPU. "
    "Fix: `apt-get install libopenblas0-pthread` (or your distribution's OpenBLAS), or set "
    "RHO_AUDIT_BLAS to the path of a library that exports cblas_sgemm."
)


def ensure_fast_blas() -> str | None:
    """Load a fast BLAS into the global symbol scope; return its path (None: nothing loaded).

    Idempotent: only the first call does any work. Must run before the first ``import mlx.core``.
    """
    global _loaded, _done
    if _done:
        return _loaded
    _done = True
    if not sys.platform.startswith("linux"):
        return None
    env = os.environ.get("RHO_AUDIT_BLAS", "").strip()
    if env.lower() in ("0", "off", "false", "no"):
        return None
    if "mlx.core" in sys.modules:
        # libmlx already resolved cblas_sgemm to the reference BLAS; loading now changes nothing.
        warnings.warn(
            "rho_audit.model.blas.ensure_fast_blas() ran after mlx.core was imported, too late to speed up "
            "matmul. Import rho_audit (or call ensure_fast_blas()) before importing mlx.",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    if env and (_loaded := _load(env)) is None:
        log.warning("RHO_AUDIT_BLAS=%s cannot be loaded or lacks cblas_sgemm; searching elsewhere", env)
    for candidate in [] if _loaded else _system_candidates():
        if (_loaded := _load(candidate)) is not None:
            break
    if _loaded is None and (shim := numpy_blas_shim()) is not None:
        _loaded = _load(str(shim))
    if _loaded is None:
        warnings.warn(_SLOW_WARNING, RuntimeWarning, stacklevel=2)
    else:
        log.debug("MLX will use the BLAS in %s", _loaded)
    return _loaded


def _load(path: str) -> str | None:
    try:
        lib = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    except OSError:
        return None
    if not hasattr(lib, "cblas_sgemm"):
        return None
    _handles.append(lib)
    return path


def _system_candidates() -> list[str]:
    """System OpenBLAS: the Debian/Ubuntu multiarch files first (pthread build), then ldconfig."""
    triplet = sysconfig.get_config_var("MULTIARCH") or f"{platform.machine()}-linux-gnu"
    out: list[str] = []
    for libdir in (f"/usr/lib/{triplet}", "/usr/lib64", "/usr/lib"):
        out += [f"{libdir}/openblas-pthread/libblas.so.3", f"{libdir}/libopenblas.so.0"]
    found = ctypes.util.find_library("openblas")
    if found:
        out.append(found)
    return [p for p in out if "/" not in p or Path(p).exists()]


def _numpy_openblas() -> tuple[Path, tuple[str, str, str]] | None:
    """numpy's bundled OpenBLAS and the (prefix, suffix, int type) of its gemm symbols."""
    import numpy

    root = Path(numpy.__file__).parent
    for libdir in (root.parent / "numpy.libs", root / ".libs", root / "_core", root / "core"):
        for lib_path in sorted(libdir.glob("*openblas*.so*")):
            try:
                lib = ctypes.CDLL(str(lib_path))
            except OSError:
                continue
            for abi in _NUMPY_ABIS:
                if hasattr(lib, f"{abi[0]}sgemm{abi[1]}") and hasattr(lib, f"{abi[0]}dgemm{abi[1]}"):
                    return lib_path, abi
    return None


def numpy_blas_shim() -> Path | None:
    """Build (once, cached) the shim forwarding ``cblas_{s,d}gemm`` to numpy's OpenBLAS."""
    cc = shutil.which("cc") or shutil.which("gcc")
    found = _numpy_openblas()
    if cc is None or found is None:
        return None
    lib_path, (pre, suf, int_t) = found
    source = _SHIM_SOURCE.format(pre=pre, suf=suf, int_t=int_t)
    # Keyed by source and numpy's library path: a numpy upgrade renames the library (hashed name).
    key = hashlib.sha256(f"{source}\0{lib_path}".encode()).hexdigest()[:12]
    cache = Path(os.environ.get("RHO_AUDIT_CACHE_DIR") or _user_cache_dir()) / "blas"
    target = cache / f"libcblas-numpy-{key}.so"
    if target.exists():
        return target
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            (Path(tmp) / "shim.c").write_text(source)
            out = Path(tmp) / "shim.so"
            # rpath: the shim finds numpy's library by itself, whoever loads it.
            cmd = [cc, "-shared", "-fPIC", "-O2", "-o", str(out), str(Path(tmp) / "shim.c"),
                   str(lib_path), f"-Wl,-rpath,{lib_path.parent}"]  # fmt: skip
            subprocess.run(cmd, check=True, capture_output=True, timeout=120)
            os.replace(out, target)  # atomic: a concurrent process never sees a half-written file
    except (OSError, subprocess.SubprocessError) as err:
        log.debug("could not build the numpy BLAS shim: %s", err)
        return None
    return target


def _user_cache_dir() -> str:
    from platformdirs import user_cache_dir

    return user_cache_dir("rho-audit")


@contextmanager
def single_threaded_blas() -> Iterator[bool]:
    """Run the block with the loaded OpenBLAS on one thread; yields whether that was possible.

    On a CPU, MLX runs every op but matmul on one thread per stream. Two streams with a
    one-thread BLAS each keep both cores busy through the exp-heavy ops too, where one stream
    with a two-thread BLAS leaves a core idle between matmuls.
    """
    setter = getter = None
    for lib in _handles:
        setter = getattr(lib, "openblas_set_num_threads", None)
        getter = getattr(lib, "openblas_get_num_threads", None)
        if setter is not None and getter is not None:
            break
    if setter is None or getter is None:
        yield False
        return
    before = getter()
    setter(1)
    try:
        yield True
    finally:
        setter(before)
