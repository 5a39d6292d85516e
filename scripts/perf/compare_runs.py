"""Compare two audits probe by probe: the largest difference of every per-probe value, whether
generated texts are identical, and the score difference, per dimension.

Used to check that the optimised engine reproduces an audit of the default model made by the
unoptimised one (issue 8):

    python scripts/perf/compare_runs.py OLD_STORE OLD_RUN NEW_STORE NEW_RUN
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections import defaultdict


def records(store: str, run: str) -> dict[tuple[str, str], dict]:
    with sqlite3.connect(store) as db:
        rows = db.execute(
            "SELECT dimension, probe_id, record_json FROM probe_records WHERE run_id = ?", (run,)
        ).fetchall()
    return {(d, p): json.loads(r) for d, p, r in rows}


def scores(store: str, run: str) -> dict[str, float | None]:
    with sqlite3.connect(store) as db:
        rows = db.execute(
            "SELECT dimension, score FROM dimension_results WHERE run_id = ?", (run,)
        ).fetchall()
    return dict(rows)


def main(old_store: str, old_run: str, new_store: str, new_run: str) -> int:
    old, new = records(old_store, old_run), records(new_store, new_run)
    old_scores, new_scores = scores(old_store, old_run), scores(new_store, new_run)
    stats: dict[str, dict] = defaultdict(lambda: {"probes": 0, "abs": 0.0, "rel": 0.0, "texts_differ": 0})
    for key in sorted(old.keys() & new.keys()):
        a, b = old[key], new[key]
        s = stats[key[0]]
        s["probes"] += 1
        s["texts_differ"] += a.get("output") != b.get("output")
        for name, value in (a.get("values") or {}).items():
            other = (b.get("values") or {}).get(name)
            if other is None:
                continue
            diff = abs(value - other)
            s["abs"] = max(s["abs"], diff)
            s["rel"] = max(s["rel"], diff / max(1.0, abs(value)))
    worst = 0.0
    header = ("dimension", "probes", "max |Δ value|", "max rel Δ", "texts differ", "score old → new")
    print(f"{header[0]:<22}{header[1]:>7}{header[2]:>15}{header[3]:>11}{header[4]:>14}{header[5]:>28}")
    for dim, s in sorted(stats.items()):
        worst = max(worst, s["rel"])
        change = f"{old_scores.get(dim)!s:.9} → {new_scores.get(dim)!s:.9}"
        print(
            f"{dim:<22}{s['probes']:>7}{s['abs']:>15.2e}{s['rel']:>11.1e}{s['texts_differ']:>14}{change:>28}"
        )
    missing = sorted({d for d, _ in old.keys() - new.keys()})
    if missing:
        print("only in the old run:", ", ".join(missing))
    return 0 if worst <= 1e-4 and not any(s["texts_differ"] for s in stats.values()) else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
