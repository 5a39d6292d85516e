"""Record the audit of the tiny test model as the scoring/generation code produced it *before*
the performance work (issue 8), so tests/test_perf_regression.py can prove the optimised engine
gives the same numbers (1e-4) and the same generated text.

Run once, from the commit before the optimisations; the JSON it writes is committed:

    python scripts/perf/capture_unoptimised.py tests/data/unoptimised_tiny_audit.json
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from rho_audit.testing import build_tiny_model

#: Probes per dimension: enough to exercise batching, padding and shared contexts.
LIMIT = 24


def capture(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_model(Path(tmp) / "tiny", seed=0)
        result = Path(tmp) / "audit.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "rho_audit.cli",
                "run",
                "--model",
                str(model),
                "--limit",
                str(LIMIT),
                "--store",
                str(Path(tmp) / "runs.sqlite"),
                "--json",
                str(result),
                "--display",
                "none",
            ],
            check=True,
        )
        data = json.loads(result.read_text(encoding="utf-8"))
    results = [
        {"dimension": r["dimension"], "probe_set": r["probe_set"], "evaluation": r["evaluation"]}
        for r in data["results"]
    ]
    out.write_text(json.dumps({"limit": LIMIT, "results": results}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    capture(Path(sys.argv[1]))
