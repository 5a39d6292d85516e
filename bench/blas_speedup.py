"""MLX fp32 matmul speed with and without rho_audit.model.blas, side by side in one run.

Each variant runs in its own subprocess (the BLAS binding is fixed when mlx.core is imported):
``reference`` (RHO_AUDIT_BLAS=off: the wheel's netlib BLAS), ``auto`` (what ensure_fast_blas picks)
and ``numpy-shim`` (the fallback that forwards to numpy's OpenBLAS, when it can be built).

    python bench/blas_speedup.py [--n 1024] [--seconds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time
from rho_audit.model.blas import ensure_fast_blas
path = ensure_fast_blas()
import mlx.core as mx
n, budget = int(sys.argv[1]), float(sys.argv[2])
a, b = mx.random.normal((n, n)), mx.random.normal((n, n))
mx.eval(a @ b)  # warm-up
reps, start = 0, time.perf_counter()
while reps < 3 or time.perf_counter() - start < budget:
    mx.eval(a @ b)
    reps += 1
secs = (time.perf_counter() - start) / reps
print(json.dumps({"blas": path, "gflops": 2 * n**3 / secs / 1e9, "ms": secs * 1e3}))
"""


def run(label: str, blas_env: str | None, n: int, seconds: float) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop("RHO_AUDIT_BLAS", None)
    if blas_env is not None:
        env["RHO_AUDIT_BLAS"] = blas_env
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(n), str(seconds)], env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        sys.exit(f"{label} failed:\n{proc.stderr}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"{label:>11}: {res['gflops']:7.1f} GFLOP/s  ({res['ms']:.1f} ms/matmul)  blas={res['blas']}")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    print(f"{args.n}x{args.n} fp32 matmul, MLX CPU, {os.cpu_count()} CPUs")
    ref = run("reference", "off", args.n, args.seconds)
    auto = run("auto", None, args.n, args.seconds)
    print(f"speed-up auto/reference: {auto['gflops'] / ref['gflops']:.1f}x")

    sys.path.insert(0, str(ROOT))
    from rho_audit.model.blas import numpy_blas_shim

    shim = numpy_blas_shim()
    if shim is None:
        print("numpy-shim: not available (needs cc and numpy's bundled OpenBLAS)")
        return
    res = run("numpy-shim", str(shim), args.n, args.seconds)
    print(f"speed-up numpy-shim/reference: {res['gflops'] / ref['gflops']:.1f}x")


if __name__ == "__main__":
    main()
