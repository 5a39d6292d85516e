"""Write a compressed, consistent copy of a run store (for docs/results/), or summarise it.

    python scripts/snapshot-store.py STORE OUT.sqlite.gz   # SQLite's backup API: safe while a sweep writes
    python scripts/snapshot-store.py --summary STORE       # e.g. "27 of 39 cells complete"

The copy is vacuumed and gzipped with a fixed timestamp, so an unchanged store gives the same bytes
(and no new git blob). Restore with ``gunzip -c OUT.sqlite.gz > runs.sqlite``.
"""

from __future__ import annotations

import gzip
import os
import sqlite3
import sys
import tempfile
from pathlib import Path


def snapshot(store: Path, out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "runs.sqlite"
        source = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=60)
        target = sqlite3.connect(copy)
        try:
            source.backup(target)
            target.execute("PRAGMA journal_mode=DELETE")
            target.execute("VACUUM")
        finally:
            source.close()
            target.close()
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".part")
        with (
            open(copy, "rb") as raw,
            open(partial, "wb") as f,
            gzip.GzipFile(filename="runs.sqlite", mode="wb", fileobj=f, compresslevel=9, mtime=0) as gz,
        ):
            while chunk := raw.read(1 << 20):
                gz.write(chunk)
        os.replace(partial, out)


def summary(store: Path) -> str:
    from rho_audit.store import RunStore

    reader = RunStore.read_only(store)
    try:
        cells = [c for sweep_id in reader.sweep_ids() for c in reader.cells(sweep_id)]
    finally:
        reader.close()
    return f"{sum(c.status == 'complete' for c in cells)} of {len(cells)} sweep cells complete"


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--summary":
        print(summary(Path(argv[1])))
        return 0
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    store, out = Path(argv[0]), Path(argv[1])
    if not store.is_file():
        print(f"no store at {store}", file=sys.stderr)
        return 1
    snapshot(store, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
