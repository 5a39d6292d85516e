"""The example plugin is discovered through its entry point and runs end to end.

``tiny_model_path`` comes from ``rho_audit.testing``, which rho-audit registers as a pytest
plugin: a tiny random-weight chat model built in about two seconds. Its scores mean nothing, so
these tests check plumbing (discovery, probe loading, a full CLI run), never the score's value.
"""

import json

from click.testing import CliRunner

from rho_audit.api import PairDimension
from rho_audit.cli import main
from rho_audit.plugins import load_host
from rho_audit.probesets.schema import load_probe_set

DIST = "rho-audit-example-dimension"
NAME = "calibration-hedging"


def test_discovered_through_the_entry_point():
    host = load_host()
    assert not [b for b in host.broken if b.source.distribution == DIST]
    assert NAME in host.dimensions
    reg = host.dimensions[NAME]
    assert issubclass(reg.obj, PairDimension)
    assert reg.source.distribution == DIST
    assert reg.source.entry_point == "example-calibration"

    assert NAME in host.probe_sets
    assert host.probe_sets[NAME].source.distribution == DIST
    probes = load_probe_set(host.probe_set_path(reg.obj.probe_set_name()))
    assert probes.kind == "pair" and probes.version == "0.1.0"
    assert len(probes) == probes.card.model_extra["size"] == 24
    assert {p.split for p in probes} == {"train", "eval"}


def test_listed_by_rho_audit_plugins():
    result = CliRunner().invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    listed = {(p["kind"], p["name"]): p for p in json.loads(result.output)["plugins"]}
    for kind in ("dimension", "probe_set"):
        assert listed[(kind, NAME)]["distribution"] == DIST
        assert listed[(kind, NAME)]["entry_point"] == "example-calibration"


def test_runs_end_to_end_on_the_tiny_model(tiny_model_path, tmp_path):
    out = tmp_path / "out.json"
    args = [
        "run",
        "--plugins",
        NAME,
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

    results = json.loads(out.read_text())["results"]
    assert [r["dimension"] for r in results] == [NAME]
    [dim] = results
    assert dim["error"] is None
    ev = dim["evaluation"]
    assert ev["metric"] == "rank_biserial"
    assert ev["n"] == 24
    assert ev["ci_low"] <= ev["score"] <= ev["ci_high"]
    assert not [r for r in ev["records"] if r["error"]]
