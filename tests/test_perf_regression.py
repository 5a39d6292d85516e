"""The optimised engine gives the audit the unoptimised one gave (issue 8).

``tests/data/unoptimised_tiny_audit.json`` was written by ``scripts/perf/capture_unoptimised.py``
from the commit before the performance work (one text context pass per batch, log-softmax in
MLX over every padded position, generation in fixed chunks of 16). Every per-probe value and every
score must agree to 1e-4, and every generated text must be identical. Summed log-probabilities
(a reply of n tokens) are held to 1e-4 relative, i.e. well under 1e-4 nats per token; the
measured worst case is 2.3e-4 nats on a 50-nat sum (5e-6 relative), from float32 rounding in the
log-softmax and the shared-prefix pass.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REFERENCE = Path(__file__).parent / "data" / "unoptimised_tiny_audit.json"
TOLERANCE = 1e-4
#: Dimensions whose measure changed on purpose after the reference was written, so the reference
#: cannot speak for them; they go through the same engine the other dimensions check here.
REDEFINED = {
    "bias": "probe set 2.0.0 (disambiguated contexts) scored BBQ-style with PMI (issue 20); "
    "tests/test_bias_bbq.py checks it",
}


def _close(a: object, b: object) -> bool:
    if isinstance(a, float | int) and isinstance(b, float | int):
        return math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)
    return a == b


@pytest.mark.timeout(900)
def test_audit_matches_the_unoptimised_engine(tiny_model_path, tmp_path):
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))
    out = tmp_path / "audit.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "rho_audit.cli",
            "run",
            "--model",
            str(tiny_model_path),
            "--limit",
            str(reference["limit"]),
            "--store",
            str(tmp_path / "runs.sqlite"),
            "--json",
            str(out),
            "--display",
            "none",
        ],
        check=True,
        capture_output=True,
    )
    current = {
        r["dimension"]: r["evaluation"] for r in json.loads(out.read_text(encoding="utf-8"))["results"]
    }
    compared = 0
    for expected in reference["results"]:
        name = expected["dimension"]
        if name not in current or name in REDEFINED:  # not installed here, or measured anew
            continue
        old, new = expected["evaluation"], current[name]
        for key in ("score", "ci_low", "ci_high", "n", "paired_accuracy", "mean_gap"):
            assert _close(old[key], new[key]), (name, key, old[key], new[key])
        assert len(old["records"]) == len(new["records"]), name
        for a, b in zip(old["records"], new["records"], strict=True):
            assert a["probe_id"] == b["probe_id"], name
            assert a["output"] == b["output"], (name, a["probe_id"], a["output"], b["output"])
            assert a["correct"] == b["correct"], (name, a["probe_id"])
            assert a["values"].keys() == b["values"].keys(), (name, a["probe_id"])
            for key, value in a["values"].items():
                assert _close(value, b["values"][key]), (name, a["probe_id"], key, value, b["values"][key])
            compared += 1
    assert compared >= 7 * reference["limit"]
