"""Helpers for ``bench/run_all.py``: result rows, the plain-text table, progress lines, the environment
and the MLX matmul peak.

No mlx import at module level: ``rho_audit.model`` (whose import loads a fast BLAS first) must be imported
before mlx is. The functions here that need mlx import it when called, by which time it has been.
"""

from __future__ import annotations

import os
import platform
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

PASS, FAIL, INFO, SKIP, ERROR = "PASS", "FAIL", "INFO", "SKIP", "ERROR"
NONE = "—"  # an empty cell
COLUMNS = ("target", "measured", "reference (same run)", "goal", "verdict")


@dataclass
class Row:
    """One line of the results table; ``data`` holds the raw numbers behind the cells (for --json)."""

    target: str
    measured: str
    reference: str
    goal: str
    verdict: str
    data: dict[str, Any] = field(default_factory=dict)

    def cells(self) -> tuple[str, str, str, str, str]:
        return (self.target, self.measured, self.reference, self.goal, self.verdict)


def verdict(ok: bool) -> str:
    return PASS if ok else FAIL


def progress(message: str) -> None:
    """A progress line on stderr (stdout keeps the environment and the table, for pasting)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_section(name: str, body: Callable[[], list[Row]], rows: list[Row]) -> None:
    """Run one section, announcing its start and end; a crash becomes an ERROR row, not an abort."""
    progress(f"{name}: started")
    start = time.perf_counter()
    try:
        new = body()
    except Exception as err:  # one broken section must not lose the minutes the others took
        traceback.print_exc()
        new = [Row(f"{name} (section crashed)", f"{type(err).__name__}: {err}"[:100], NONE, NONE, ERROR)]
    rows.extend(new)
    progress(f"{name}: done in {time.perf_counter() - start:.1f} s")


def format_table(rows: Sequence[Row]) -> str:
    """Fixed-width text: one header, a rule, one line per row."""
    lines = [COLUMNS, *(r.cells() for r in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def exit_code(rows: Sequence[Row]) -> int:
    """1 if any target failed (or a section crashed), else 0; INFO and SKIP rows never fail."""
    return 1 if any(r.verdict in (FAIL, ERROR) for r in rows) else 0


def environment(blas: str | None) -> dict[str, str]:
    """Where the numbers come from. Call after ``rho_audit.model.language_model`` is imported."""
    import mlx.core as mx
    import mlx_lm

    try:
        load = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        load = "n/a"
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu_count": str(os.cpu_count()),
        "load_average": load,
        "mlx": mx.__version__,
        "mlx_lm": mlx_lm.__version__,
        "mlx_default_device": str(mx.default_device()),
        "blas": blas
        or "none loaded by rho_audit.model.blas (the platform's own, or the wheel's reference BLAS)",
    }


def matmul_peak(sizes: Sequence[int] = (1024, 2048), repeats: int = 5) -> tuple[float, int]:
    """Sustained GFLOP/s of an fp32 square matmul: ``repeats`` products timed together (after two
    warm-up ones), for each of ``sizes``; the best size and its rate. One short product alone
    can read a turbo burst (210 vs 139 GFLOP/s on the same box), too high for a reference that
    minutes-long runs are compared with."""
    import mlx.core as mx

    best, best_n = 0.0, 0
    for n in sizes:
        a, b = mx.random.normal((n, n), dtype=mx.float32), mx.random.normal((n, n), dtype=mx.float32)
        mx.eval(a, b)
        for _ in range(2):
            mx.eval(a @ b)
        start = time.perf_counter()
        for _ in range(repeats):
            mx.eval(a @ b)
        gflops = 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9
        if gflops > best:
            best, best_n = gflops, n
        del a, b
    return best, best_n


def max_rss_bytes(ru_maxrss: int) -> int:
    """``ru_maxrss`` in bytes: it is KiB on Linux (and the BSDs) but bytes on macOS."""
    return ru_maxrss if sys.platform == "darwin" else ru_maxrss * 1024
