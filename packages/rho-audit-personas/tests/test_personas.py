"""The persona library registers through the package's own entry point and resolves by name."""

from __future__ import annotations

import json

from click.testing import CliRunner
from rho_audit_personas.library import CATEGORIES, PERSONAS

from rho_audit.cli import main
from rho_audit.plugins import load_host

DIST = "rho-audit-personas"


def test_library_size_and_categories():
    assert len(PERSONAS) >= 40
    assert len({p.name for p in PERSONAS}) == len(PERSONAS)
    assert len({p.system_prompt for p in PERSONAS}) == len(PERSONAS)
    assert {"professions", "villains", "nationalities", "fictional"} <= set(CATEGORIES)
    for category in CATEGORIES:
        assert sum(p.category == category for p in PERSONAS) >= 4, category


def test_registered_through_the_entry_point_and_resolved_by_name():
    host = load_host()
    assert not [b for b in host.broken if b.source.distribution == DIST]
    for p in PERSONAS:
        reg = host.personas[p.name]
        assert reg.source.distribution == DIST and reg.source.entry_point == "personas"
        assert reg.obj == p
    assert host.resolve_personas("villain") == (next(p for p in PERSONAS if p.name == "villain"),)


def test_listed_by_rho_audit_plugins():
    result = CliRunner().invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    listed = {(p["kind"], p["name"]): p for p in json.loads(result.output)["plugins"]}
    assert listed[("persona", "hacker-villain")]["distribution"] == DIST
