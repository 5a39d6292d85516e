"""The example plugin is discovered through its entry point and runs end to end."""

import json

from click.testing import CliRunner

from rho_audit.cli import main
from rho_audit.plugins import load_host
from rho_audit.probes import load_probe_set

DIST = "rho-audit-example-dimension"


def test_discovered_through_the_entry_point():
    host = load_host()
    reg = host.dimensions["calibration-hedging"]
    assert reg.source.distribution == DIST
    assert reg.source.entry_point == "example-calibration"
    probes = load_probe_set(host.probe_set_path("calibration-hedging"))
    assert len(probes) == 24 and probes.kind == "pair"


def test_listed_by_rho_audit_plugins():
    result = CliRunner().invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    listed = {(p["kind"], p["name"]): p["distribution"] for p in json.loads(result.output)["plugins"]}
    assert listed[("dimension", "calibration-hedging")] == DIST
    assert listed[("probe_set", "calibration-hedging")] == DIST


def test_runs_on_the_tiny_model(tiny_model_path, tmp_path):
    out = tmp_path / "out.json"
    args = [
        "run",
        "--plugins",
        "calibration-hedging",
        "--model",
        str(tiny_model_path),
        "--store",
        str(tmp_path / "runs.sqlite"),
        "--json",
        str(out),
        "--display",
        "plain",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    [dim] = json.loads(out.read_text())["results"]
    ev = dim["evaluation"]
    assert dim["dimension"] == "calibration-hedging" and ev["metric"] == "rank_biserial"
    assert ev["n"] == 24
    assert ev["ci_low"] <= ev["score"] <= ev["ci_high"]
