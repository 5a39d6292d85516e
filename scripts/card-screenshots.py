"""The sweep card's figures as PNGs for the docs (docs/cards/), from a run store.

    python scripts/card-screenshots.py                                   # docs/results' snapshot
    python scripts/card-screenshots.py --store rho-audit-runs/paper/runs.sqlite

Renders the sweep cards of the paper's dose-response, ablation and margin sweeps, as `rho-audit
report SWEEP --figures png` would, and keeps the figures docs/cards/README.md shows: the
dose-response (Δ vs λ per dimension), the ablation contrasts and the variance across seeds,
held-out split, and the margin (Δ vs γ per dimension).
A sweep missing from the store is reported and skipped. Needs `pip install 'rho-audit[figures]'`.
Rerun it after the sweeps (or the charts) change; the PNGs are 300 dpi, dark on white.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = ROOT / "docs" / "results" / "runs.sqlite.gz"
OUT = ROOT / "docs" / "cards"
#: sweep id prefix -> the figures kept (by figure name prefix), in the order the docs show them.
WANTED = {
    "paper-dose-response": ("dose-lambda",),
    "paper-ablation": ("ablation-eval", "variance-eval"),
    "paper-margin": ("margin",),
}


def render(store: Path, out: Path) -> list[Path]:
    from rho_audit.report.figures import export_figures
    from rho_audit.report.render import card_figures
    from rho_audit.report.sweep_card import build_sweep_card
    from rho_audit.store import RunStore

    reader = RunStore.read_only(store)
    written = []
    try:
        for prefix, names in WANTED.items():
            if reader.find_sweep(prefix) is None:
                print(f"no sweep {prefix}* in {store}: skipped", file=sys.stderr)
                continue
            figures = [f for f in card_figures(build_sweep_card(reader, prefix)) if f.name.startswith(names)]
            written += export_figures(figures, out, prefix, ["png"])
    finally:
        reader.close()
    return written


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=SNAPSHOT, help="run store (.sqlite or .sqlite.gz)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store
        if store.suffix == ".gz":
            store = Path(tmp) / "runs.sqlite"
            with gzip.open(args.store, "rb") as src, open(store, "wb") as dst:
                shutil.copyfileobj(src, dst)
        for path in render(store, args.out):
            print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
