"""``rho-audit runs``: list, show, delete and export the runs in a run store.

Import-light like the rest of the CLI: Rich loads inside the commands.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from rho_audit.cli._common import print_table, store_option

if TYPE_CHECKING:
    from rho_audit.store import RunRow, RunStore

EPILOG = """\b
Examples:
  rho-audit runs                                   every run (the same as `runs list`)
  rho-audit runs list --json                       the same, for a script
  rho-audit runs show 20260301-1015                a run's config and per-dimension results
  rho-audit runs export 20260301-1015 --format csv -o probes.csv    its per-probe records
  rho-audit runs rm 20260301-1015 20260302 --yes   delete runs and all their rows
\b
RUN is a run id or a prefix of one: an exact id wins; else the one id the prefix starts;
a prefix of several runs is an error that lists them.
"""

#: The per-probe columns of ``runs export --format csv``, before one ``values.NAME`` column per value.
CSV_COLUMNS = (
    "run_id",
    "dimension",
    "probe_id",
    "split",
    "category",
    "correct",
    "verdict",
    "error",
    "output",
)


@click.group("runs", epilog=EPILOG, invoke_without_command=True)
@click.pass_context
def runs(ctx: click.Context) -> None:
    """List, show, delete and export the audit and training runs in a run store.

    Without a subcommand, lists the runs in the default store (`runs list`)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_runs)


@contextmanager
def _reading(store: Path) -> Iterator[RunStore]:
    from rho_audit.store import RunStore

    runs_store = RunStore.read_only(store)
    try:
        yield runs_store
    finally:
        runs_store.close()


def _when(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp)) if timestamp else "-"


def _listing(run: RunRow, dimensions: Sequence[str]) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "kind": run.kind,
        "created": _when(run.created_at),
        "model": run.model_id,
        "adapter": run.adapter,
        "dimensions": list(dimensions),
        "status": run.status,
    }


@runs.command("list")
@store_option("SQLite run store to read.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_runs(store: Path, as_json: bool) -> None:
    """Every run, oldest first: id, kind, date, model, adapter, dimensions with results, status."""
    from rich.table import Table

    with _reading(store) as runs_store:
        rows = [
            _listing(run, [s.dimension for s in runs_store.dimension_scores(run.run_id)])
            for run in runs_store.runs()
        ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table("run", "kind", "date", "model", "adapter", "dimensions", "status")
    for row in rows:
        table.add_row(
            row["run_id"],
            row["kind"],
            row["created"],
            row["model"],
            row["adapter"] or "-",
            ", ".join(row["dimensions"]) or "-",
            row["status"],
        )
    print_table(table)


@runs.command("show")
@click.argument("run_id", metavar="RUN")
@store_option("SQLite run store to read.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show_run(run_id: str, store: Path, as_json: bool) -> None:
    """A run's metadata, its config and its per-dimension results."""
    from rich.table import Table

    with _reading(store) as runs_store:
        run = runs_store.run(run_id)
        scores = runs_store.dimension_scores(run.run_id)
    if as_json:
        doc = {
            "run_id": run.run_id,
            "kind": run.kind,
            "status": run.status,
            "created_at": run.created_at,
            "finished_at": run.finished_at,
            "model": run.model_id,
            "model_path": run.model_path,
            "adapter": run.adapter,
            "seed": run.seed,
            "config_sha256": run.config_sha256,
            "git_revision": run.git_revision,
            "versions": run.versions,
            "error": run.error,
            "config": run.config,
            "results": [{"dimension": s.dimension, **s.to_json()} for s in scores],
        }
        click.echo(json.dumps(doc, indent=2))
        return
    click.echo(f"run      {run.run_id} ({run.kind}, {run.status})")
    click.echo(f"started  {_when(run.created_at)}; finished {_when(run.finished_at)}")
    click.echo(f"model    {run.model_id}" + (f" ({run.model_path})" if run.model_path else ""))
    click.echo(f"adapter  {run.adapter or '-'}")
    click.echo(f"seed     {run.seed}; config sha256 {run.config_sha256}; git {run.git_revision or '-'}")
    if run.error:
        click.echo(f"error    {run.error}")
    click.echo("config")
    click.echo(json.dumps(run.config, indent=2, sort_keys=True))
    if not scores:
        click.echo("no dimension results")
        return
    table = Table("dimension", "metric", "score", "95% CI", "n", "status", title="results")
    for s in scores:
        ci = f"[{s.ci_low:.3f}, {s.ci_high:.3f}]" if s.ci_low is not None and s.ci_high is not None else "-"
        table.add_row(
            s.dimension, s.metric, "-" if s.score is None else f"{s.score:.3f}", ci, str(s.n), s.status
        )
    print_table(table)


@runs.command("rm")
@click.argument("run_ids", nargs=-1, required=True, metavar="RUN...")
@store_option("SQLite run store to delete from.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def remove_runs(run_ids: tuple[str, ...], store: Path, yes: bool) -> None:
    """Delete runs with their results, probe records, training steps and judge usage, in one
    transaction. Sweep cells keep their own copy of their scores."""
    from rho_audit.store import RunStore

    with _reading(store) as runs_store:
        found = list({run.run_id: run for run in map(runs_store.run, run_ids)}.values())
    for run in found:
        click.echo(f"{run.run_id}  {run.kind}  {_when(run.created_at)}  {run.model_id}  {run.status}")
    if not yes:
        click.confirm(f"Delete {len(found)} run{'s' if len(found) != 1 else ''}?", abort=True)
    writer = RunStore(store)
    try:
        writer.delete_runs(r.run_id for r in found)
    finally:
        writer.close()
    click.echo(f"deleted {len(found)} run{'s' if len(found) != 1 else ''} from {store}")


@runs.command("export")
@click.argument("run_id", metavar="RUN")
@store_option("SQLite run store to read.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "csv"]),
    default="json",
    show_default=True,
    help="json: a list of records; csv: one row per probe, a values.NAME column per value.",
)
@click.option(
    "-o",
    "--out",
    "output",
    type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
    default=Path("-"),
    show_default=True,
    help="File to write (- for stdout); --out as in report, train and sweep.",
)
def export_run(run_id: str, store: Path, fmt: str, output: Path) -> None:
    """A run's per-probe records: dimension, probe id, split, values, output, verdict, error."""
    from rho_audit.api.errors import RhoAuditError

    with _reading(store) as runs_store:
        run = runs_store.run(run_id)
        records = [
            {"run_id": run.run_id, "dimension": result["dimension"], **record}
            for result in runs_store.results(run.run_id)
            for record in runs_store.probe_records(run.run_id, result["dimension"])
        ]
    text = _csv(records) if fmt == "csv" else json.dumps(records, indent=2) + "\n"
    if str(output) == "-":
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as err:
        raise RhoAuditError(
            f"cannot write {output} ({err.strerror or err}). Pass --out with a path you can write."
        ) from None
    click.echo(f"{len(records)} probe records of {run.run_id}: {output}", err=True)


def _csv(records: list[dict[str, Any]]) -> str:
    names = sorted({name for r in records for name in (r.get("values") or {})})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, *(f"values.{n}" for n in names)])
    for r in records:
        values = r.get("values") or {}
        cells = ["" if r.get(c) is None else r.get(c) for c in CSV_COLUMNS]
        writer.writerow([*cells, *("" if values.get(n) is None else values[n] for n in names)])
    return out.getvalue()


__all__ = ["runs"]
