"""``rho-audit plugins``: what is installed (dimensions, judges, trainers, executors, attacks, personas,
probe sets), and from where."""

from __future__ import annotations

import json

import click

from rho_audit.cli._common import print_table


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json: bool) -> None:
    """List discovered dimensions, judges, trainers, attacks, personas and probe sets, with the
    package that ships each, and any plugin that failed to load (set RHO_AUDIT_STRICT_PLUGINS=1 to
    make that fatal).

    Filter with RHO_AUDIT_LOAD_PLUGINS=a,b (only these entry points) or
    RHO_AUDIT_DISABLE_PLUGINS=a,b.
    """
    from rich.markup import escape
    from rich.table import Table

    from rho_audit.plugins import load_host

    host = load_host()
    registries = [
        host.dimensions,
        host.judges,
        host.trainers,
        host.executors,
        host.attacks,
        host.personas,
        host.probe_sets,
        host.report_sections,
    ]
    rows = [reg for registry in registries for reg in registry.values()]
    if as_json:
        doc = {
            "plugins": [
                {
                    "kind": r.kind,
                    "name": r.name,
                    "distribution": r.source.distribution,
                    "version": r.source.version,
                    "entry_point": r.source.entry_point,
                }
                for r in rows
            ],
            "broken": [
                {
                    "entry_point": b.source.entry_point,
                    "distribution": b.source.distribution,
                    "refused": {"kind": b.kind, "name": b.name} if b.name else None,
                    "error": b.error,
                }
                for b in host.broken
            ],
        }
        click.echo(json.dumps(doc, indent=2))
        return
    table = Table(header_style="bold")
    for col in ("kind", "name", "provided by", "entry point", "description"):
        table.add_column(col)
    for r in rows:
        desc = str(r.obj) if r.kind in ("probe_set", "report_section") else getattr(r.obj, "description", "")
        if r.kind == "persona":
            desc = r.obj.system_prompt
        table.add_row(
            r.kind,
            escape(r.name),
            f"{r.source.distribution} {r.source.version}",
            r.source.entry_point,
            escape(desc),
        )
    for b in host.broken:
        table.add_row(
            "[red]broken[/]",
            escape(b.name or b.source.entry_point),
            f"{b.source.distribution} {b.source.version}",
            b.source.entry_point,
            f"[red]{escape(b.error)}[/]",
        )
    print_table(table)
