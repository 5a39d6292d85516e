"""Where rho-audit writes when told nothing: one folder, ``rho-audit-runs/``, in the working
directory. Kept here, light to import, so the CLI's options and the code behind them agree."""

from pathlib import Path

#: The folder every default below lives in.
RUNS_DIR = Path("rho-audit-runs")
#: The run store (SQLite).
DEFAULT_STORE = RUNS_DIR / "runs.sqlite"
#: A sweep's adapters, checkpoints and per-cell files: ``<out>/<sweep>/<cell>/``.
DEFAULT_SWEEP_OUT = RUNS_DIR / "sweeps"
#: ``rho-audit train``'s adapters: ``<folder>/<trainer>-seed<N>-<hash>``.
DEFAULT_ADAPTERS = RUNS_DIR / "adapters"
