"""The shipped capability sweep plans with the installed trainer, dimension and corpus."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from rho_audit.cli import main

ROOT = Path(__file__).resolve().parents[3]
SWEEP = ROOT / "packages" / "rho-audit-personas" / "sweeps" / "capability-leakage.yaml"


@pytest.mark.parametrize("quick", [False, True])
def test_capability_leakage_sweep_dry_runs(quick, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the corpus path is relative to the repository root
    args = ["sweep", str(SWEEP), "--dry-run", "--store", str(tmp_path / "runs.sqlite")]
    result = CliRunner().invoke(main, args + (["--quick"] if quick else []))
    assert result.exit_code == 0, result.output
    assert "persona-capability-panel" in result.output
    cells = [line for line in result.output.splitlines() if "persona-contrastive_" in line]
    assert len(cells) == (1 if quick else 4)
