"""``rho-audit sweep``: run a YAML grid of training runs, each followed by an audit, resumably.

Import-light like the rest of the CLI: the sweep machinery (pydantic, the store, MLX through
the trainers) loads inside the command. The progress displays are ``run_event`` observers, so
the sweep code never knows what is on screen.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from rho_audit._util.defaults import DEFAULT_SWEEP_OUT
from rho_audit.cli._common import display_option, make_display, print_table, stdout_console, store_option

if TYPE_CHECKING:
    from rich.table import Table

    from rho_audit.train.sweep import SweepPlan, SweepRun, SweepSummary

#: Kept equal to rho_audit.train.sweep.DEFAULT_OUT (not imported: that module is not import-light).

EPILOG = """\b
Examples:
  rho-audit sweep sweeps/paper-ablation.yaml --quick     4 objectives × 1 seed, small: ~12 min on 2 cores
  rho-audit sweep sweeps/paper-ablation.yaml --dry-run   list the 12 cells + baseline and what is done
  rho-audit sweep sweeps/paper-dose-response.yaml        λ ∈ {0, 0.1, 0.2, 0.5} × 3 seeds (hours)
  rho-audit sweep my-sweep.yaml --store runs.sqlite --out adapters/ --quiet > table.txt
\b
A sweep file (validated entirely before anything runs; errors name file:line and the key):
  name: my-ablation
  models: [null]                     # null = the bundled model; else paths or HF ids
  grid:                              # cartesian product of every list
    trainer: [sft, rho-guided]
    seed: [42, 123]
    lambda: [0.1, 0.2]               # trainer options (lambda, margin) or any training
                                     # setting (lora_rank, learning_rate, ...); an option
                                     # applies only to trainers that take it (sft has no λ)
  train: {max_sft_examples: 200}     # the same for every cell
  audit: {dimensions: [factual, toxicity], split: eval, limit: 50}
                                     # split: [eval, train] audits each cell once per split;
                                     # probes: [ood-clinical, ood-logic] adds probe sets;
                                     # personas: [pirate, chef] audits every cell and the
                                     # baseline once per persona (cells ..._persona-pirate);
                                     # options: {marker-rate: {completions: 8}} sets dimension
                                     # options; judge: local with judge_options: {rubric: honesty}
                                     # picks the judge (as run --judge / --judge-option)
  baseline: true                     # audit each base model once, for the deltas
  quick: {grid: {seed: [42]}, train: {max_sft_examples: 16}, audit: {limit: 20}}
"""


@click.command("sweep", epilog=EPILOG)
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--quick",
    is_flag=True,
    help="Run the file's `quick:` scale-down (fewer seeds, texts and probes) for demos and CI.",
)
@store_option("SQLite run store: cell status, training steps, audits.")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=DEFAULT_SWEEP_OUT,
    show_default=True,
    help="Adapters go to OUT/<sweep id>/<cell id>/adapter.",
)
@click.option("--dry-run", is_flag=True, help="List the cells and their status in --store; run nothing.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display; print only the final tables.")
@display_option(
    "Progress: rich on a terminal, plain lines otherwise (CI logs, pipes); tui: the monitor app.",
    choices=("auto", "rich", "plain", "tui"),
)
@click.option(
    "--tui",
    is_flag=True,
    help="Run the sweep inside the `rho-audit monitor` app (same as --display tui); q offers to stop "
    "after the current cell.",
)
@click.option(
    "--wait",
    is_flag=True,
    help="If another process is running this sweep on this store, wait for it to end, then run what it "
    "left (without --wait: refuse, naming its pid).",
)
@click.option(
    "--executor",
    default="local",
    show_default=True,
    metavar="NAME",
    help="Where cells run. local: one after another in this process; ray: each cell a Ray task "
    "(pip install 'rho-audit[ray]'); plugins may add more (`rho-audit plugins`).",
)
@click.option(
    "--address",
    metavar="ADDR",
    help="--executor ray: the cluster to join (the address `ray start --head` printed; default: "
    "RAY_ADDRESS, else a local Ray for this sweep).",
)
@click.option(
    "--cpus-per-cell",
    type=float,
    metavar="N",
    help="--executor ray: CPUs each cell reserves (default 1); as many cells run at once as fit.",
)
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    help="--executor ray: how often a cell whose worker died is started again (each start is recorded).",
)
def sweep(
    file: Path,
    quick: bool,
    store: Path,
    out: Path,
    dry_run: bool,
    quiet: bool,
    display: str,
    tui: bool,
    wait: bool,
    executor: str,
    address: str | None,
    cpus_per_cell: float | None,
    retries: int,
) -> None:
    """Train and audit every cell of a YAML grid (trainers × options × seeds × models).

    Each cell trains a LoRA adapter, then audits it on the eval split (or on each split the file's
    audit.split lists); each base model is audited once for the deltas. At the end: per-cell
    scores with their delta from the baseline, and per condition the mean over seeds ± the
    per-seed standard deviation (the paper's Tables 2 and 4), once per audit split.

    Resumable: stop it at any moment (Ctrl-C, a crash, kill -9) and run the same command again.
    Complete cells are skipped, the interrupted training resumes from its last checkpoint, and an
    audit that had finished is not repeated. Cell status lives in --store (table sweep_cells).

    On a Ray cluster (--executor ray) cells run in parallel as Ray tasks; this process stays the
    only writer of --store, and workers need rho-audit installed (README: "Sweeps on a Ray cluster").
    """
    from rho_audit.api import ExecutorSettings
    from rho_audit.plugins import load_host
    from rho_audit.train.sweep import plan_sweep, run_sweep, summaries

    host = load_host()
    settings = ExecutorSettings(address, cpus_per_cell, retries)
    # An allow-list (RHO_AUDIT_LOAD_PLUGINS) without executor-local still runs cells here.
    plain = executor == "local" and "local" not in host.executors and not (address or cpus_per_cell)
    runner = None if plain else host.executor(executor)(settings)
    plan = plan_sweep(file, host, quick=quick, out=out)
    console = stdout_console()
    if dry_run:
        print_table(plan_table(plan, store), console)
        return
    if runner is not None:
        runner.check()
    shown = None if quiet else make_display("tui" if tui else display, kind="sweep")
    if shown is not None:
        host.pm.register(shown, name="rho-audit-sweep-display")

    def waiting(message: str) -> None:
        if shown is None or getattr(shown, "follow", None) is None:  # the TUI shows warning events
            click.echo(f"{message}...", err=True)
        else:
            from rho_audit.api.events import RunEvent
            from rho_audit.audit.runner import emit

            emit(host, RunEvent("warning", plan.sweep_id, message=message))

    def work() -> SweepRun:
        return run_sweep(plan, store, host, runner, wait=wait, on_wait=waiting)

    outcome: SweepRun | None = None
    try:
        follow = getattr(shown, "follow", None)  # the TUI: the sweep runs in a thread under the app
        outcome = follow(work, store, plan.sweep_id) if follow else work()
    except KeyboardInterrupt:
        _stop(shown)  # before the message, so the live display does not overwrite it
        if not getattr(shown, "stopped_on_request", False):  # Ctrl-C, a kill: an interruption
            click.echo(
                "\ninterrupted: finished cells are saved. Run the same command again to resume from the "
                "last checkpoint.",
                err=True,
            )
            raise SystemExit(130) from None
    finally:
        _stop(shown)
    for summary in summaries(plan, store):
        for table in summary_tables(summary):
            print_table(table, console)
    if outcome is None:  # stopped between two cells because the user asked (sweep --tui)
        console.print(_stopped_footer(plan, store, getattr(shown, "stopped_before", None)))
        return
    console.print(_footer(plan, outcome, store))
    if outcome.failed:
        names = ", ".join(r.cell_id for r in outcome.failed)
        click.secho(
            f"{len(outcome.failed)} cell(s) failed: {names}. Re-run to retry them.", fg="red", err=True
        )
        raise SystemExit(1)


def _stop(shown: object | None) -> None:
    stop = getattr(shown, "stop", None)
    if stop:
        stop()


def _footer(plan: SweepPlan, outcome: SweepRun, store: Path) -> str:
    ran = len(outcome.ran)
    return (
        f"sweep {plan.sweep_id}: ran {ran} cell{'s' if ran != 1 else ''}, skipped {len(outcome.skipped)} "
        f"already complete, {len(outcome.failed)} failed. Store: {store}; adapters: {plan.out_dir}"
    )


def _stopped_footer(plan: SweepPlan, store: Path, before: str | None) -> str:
    """A stop the user asked for: where the sweep stands and how to go on (nothing to resume)."""
    from collections import Counter

    from rho_audit.train.sweep import cell_statuses

    counts = Counter(cell_statuses(plan, store).values())
    done, left = counts.get("complete", 0), len(plan.cells) - counts.get("complete", 0)
    failed = f", {counts['failed']} failed (a re-run retries them)" if counts.get("failed") else ""
    nxt = f" (next: {before})" if before else ""
    return (
        f"sweep {plan.sweep_id}: stopped after the current cell, as asked: {done} of {len(plan.cells)} "
        f"cells complete, {left} to run{nxt}{failed}. Run the same command again to continue the sweep: "
        f"complete cells are skipped. Store: {store}; adapters: {plan.out_dir}"
    )


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def plan_table(plan: SweepPlan, store: Path) -> Any:
    """--dry-run: every cell in run order with its settings and its status in the store."""
    from rich import box
    from rich.table import Table

    from rho_audit.train.sweep import cell_statuses

    statuses = cell_statuses(plan, store)
    done = sum(1 for s in statuses.values() if s == "complete")
    table = Table(header_style="bold", box=box.SIMPLE_HEAD)
    for column in ("#", "cell", "trainer", "options", "seed", "model", "status"):
        table.add_column(column, no_wrap=True)
    for i, cell in enumerate(plan.run_order(), 1):
        train = cell.train or {}
        options = " ".join(f"{k}={v:g}" for k, v in sorted(train.get("options", {}).items()))
        table.add_row(
            str(i),
            cell.cell_id,
            train.get("trainer", "(audit only)"),
            options,
            str(train.get("seed", "")),
            cell.model or "default",
            statuses[cell.cell_id],
        )
    personas = list(dict.fromkeys(c.audit["persona"] for c in plan.cells if c.audit.get("persona")))
    return _titled(
        f"{plan.sweep_id}: {len(plan.cells)} cells, {done} complete in {store}",
        table,
        *([audit_line(plan.cells[0].audit)] if plan.cells else []),
        f"personas: {', '.join(personas)} (every cell and baseline once per persona, under its system prompt)"
        if personas
        else "",
        f"adapters: {plan.out_dir}/<cell id>/adapter",
    )


def audit_line(audit: dict[str, Any]) -> str:
    """What each cell's audit (and the baseline's) scores, for --dry-run."""
    from rho_audit.report.splits import audit_splits, split_label

    splits = audit_splits(audit)
    runs = f" ({len(splits)} audit runs per cell)" if len(splits) > 1 else ""
    parts = [
        f"split {', '.join(split_label(s) for s in splits)}{runs}",
        f"dimensions {', '.join(audit.get('dimensions') or []) or 'all installed'}",
    ]
    if audit.get("probes"):
        parts.append(f"extra probe sets {', '.join(audit['probes'])}")
    limit = audit.get("limit")
    parts.append(f"{limit} probes per set" if limit else "every probe")
    options = audit.get("judge_options") or {}
    if audit.get("judge", "keyword-refusal") != "keyword-refusal" or options:
        shown = ", ".join(f"{k}={v}" for k, v in options.items())
        parts.append(f"judge {audit.get('judge')}" + (f" ({shown})" if shown else ""))
    return "audits: " + "; ".join(parts)


def _titled(title: str, table: Table, *notes: str) -> Any:
    """A bold title line above the table (a table title would wrap to the table's width), and
    a dim line below it per note."""
    from rich.console import Group
    from rich.text import Text

    return Group(Text(title, style="bold"), table, *(Text(note, style="dim") for note in notes if note))


def summary_tables(summary: SweepSummary) -> list[Any]:
    return [cells_table(summary), conditions_table(summary)]


def cells_table(summary: SweepSummary) -> Any:
    """Per cell: each dimension's score after training and its delta from the base model."""
    from rich import box
    from rich.table import Table

    from rho_audit.display.live import format_number

    has_base = bool(summary.baselines)
    title = f"{summary.plan.sweep_id}: scores after training" + (" (Δ vs baseline)" if has_base else "")
    title += _split_suffix(summary)
    table = Table(header_style="bold", box=box.SIMPLE_HEAD)
    table.add_column("cell", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for dim in summary.dimensions:
        table.add_column(dim, justify="right", no_wrap=True)
    for label, scores in summary.baselines.items():
        name = "baseline" if len(summary.baselines) == 1 else f"{label} baseline"
        table.add_row(name, "complete", *(format_number(scores.get(d)) for d in summary.dimensions))
    for c in summary.cells:
        cells = [
            f"{format_number(c.scores.get(d))} Δ{format_number(c.deltas.get(d))}"
            if has_base
            else format_number(c.scores.get(d))
            for d in summary.dimensions
        ]
        style = {"complete": "", "failed": "red"}.get(c.status, "yellow")
        table.add_row(c.cell.cell_id, f"[{style}]{c.status}[/]" if style else c.status, *cells)
    note = "rho: 0 = chance, < 0 = the model prefers the undesired text"
    if any(d.endswith(" OOD acc") for d in summary.dimensions):
        note += "; OOD acc: paired accuracy pooled over the extra probe sets (audit.probes)"
    return _titled(title, table, note)


def _split_suffix(summary: SweepSummary) -> str:
    return f", {summary.split_label}" if summary.n_splits > 1 else ""


def conditions_table(summary: SweepSummary) -> Any:
    """Per condition (the cell id without its seed): mean over seeds ± per-seed std, and Δ."""
    from rich import box
    from rich.table import Table

    from rho_audit.display.live import format_number

    has_base = bool(summary.baselines)
    title = "per condition: mean over seeds ± std" + (", and Δ of the mean vs baseline" if has_base else "")
    title += _split_suffix(summary)
    table = Table(header_style="bold", box=box.SIMPLE_HEAD)
    table.add_column("condition", no_wrap=True)
    table.add_column("seeds", justify="right", no_wrap=True)
    for dim in summary.dimensions:
        table.add_column(dim, justify="right", no_wrap=True)
    for c in summary.conditions:
        cells = []
        for d in summary.dimensions:
            std = f" ±{c.std[d]:.3f}" if c.std.get(d) is not None else ""
            text = f"{format_number(c.mean.get(d))}{std}"
            cells.append(f"{text}\nΔ {format_number(c.mean_delta.get(d))}" if has_base else text)
        table.add_row(c.condition, f"{c.n}/{c.total}", *cells)
    return _titled(title, table)


__all__ = ["cells_table", "conditions_table", "plan_table", "summary_tables", "sweep"]
