"""``rho-audit sweep``: run a YAML grid of training runs, each followed by an audit, resumably.

Import-light like the rest of the CLI: the sweep machinery (pydantic, the store, MLX through
the trainers) loads inside the command. The progress displays are ``run_event`` observers, so
the sweep code never knows what is on screen.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click

from rho_audit.api.hooks import hookimpl

if TYPE_CHECKING:
    from rich.table import Table

    from rho_audit.api.events import RunEvent
    from rho_audit.train.sweep import SweepPlan, SweepRun, SweepSummary

#: Kept equal to rho_audit.train.sweep.DEFAULT_OUT (not imported: that module is not import-light).
DEFAULT_OUT = Path("rho-audit-runs") / "sweeps"

EPILOG = """\b
Examples:
  rho-audit sweep sweeps/paper-ablation.yaml --quick     4 objectives × 1 seed, small: ~12 min on 2 cores
  rho-audit sweep sweeps/paper-ablation.yaml --dry-run   list the 20 cells and what is already done
  rho-audit sweep sweeps/paper-dose-response.yaml        λ ∈ {0, 0.1, 0.2, 0.5} × 5 seeds (hours)
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
@click.option(
    "--store",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("rho-audit-runs/runs.sqlite"),
    show_default=True,
    help="SQLite run store: cell status, training steps, audits.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=DEFAULT_OUT,
    show_default=True,
    help="Adapters go to OUT/<sweep id>/<cell id>/adapter.",
)
@click.option("--dry-run", is_flag=True, help="List the cells and their status in --store; run nothing.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display; print only the final tables.")
@click.option(
    "--display",
    type=click.Choice(["auto", "rich", "plain", "tui"]),
    default="auto",
    show_default=True,
    help="Progress: rich on a terminal, plain lines otherwise (CI logs, pipes); tui: the monitor app.",
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
    help="How cells run. local: one after another in this process.",
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
) -> None:
    """Train and audit every cell of a YAML grid (trainers × options × seeds × models).

    Each cell trains a LoRA adapter, then audits it on the eval split; each base model is audited
    once for the deltas. At the end: per-cell scores with their delta from the baseline, and per
    condition the mean over seeds ± the per-seed standard deviation (the paper's Tables 2 and 4).

    Resumable: stop it at any moment (Ctrl-C, a crash, kill -9) and run the same command again.
    Complete cells are skipped, the interrupted training resumes from its last checkpoint, and an
    audit that had finished is not repeated. Cell status lives in --store (table sweep_cells).
    """
    from rho_audit.api.errors import RhoAuditError
    from rho_audit.cli._common import print_table, stdout_console
    from rho_audit.plugins import load_host
    from rho_audit.train.sweep import EXECUTORS, plan_sweep, run_sweep, summarize

    if executor not in EXECUTORS:
        raise RhoAuditError(f"unknown executor {executor!r} (known: {', '.join(sorted(EXECUTORS))}).")
    host = load_host()
    plan = plan_sweep(file, host, quick=quick, out=out)
    console = stdout_console()
    if dry_run:
        print_table(plan_table(plan, store), console)
        return
    shown = None if quiet else make_sweep_display("tui" if tui else display)
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
        return run_sweep(plan, store, host, EXECUTORS[executor](), wait=wait, on_wait=waiting)

    try:
        follow = getattr(shown, "follow", None)  # the TUI: the sweep runs in a thread under the app
        outcome = follow(work, store, plan.sweep_id) if follow else work()
    except KeyboardInterrupt:
        _stop(shown)  # before the message, so the live display does not overwrite it
        click.echo(
            "\ninterrupted: finished cells are saved. Run the same command again to resume from the "
            "last checkpoint.",
            err=True,
        )
        raise SystemExit(130) from None
    finally:
        _stop(shown)
    summary = summarize(plan, store)
    for table in summary_tables(summary):
        print_table(table, console)
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


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def _num(value: float | None, signed: bool = True) -> str:
    if value is None:
        return "-"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


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
    return _titled(
        f"{plan.sweep_id}: {len(plan.cells)} cells, {done} complete in {store}",
        table,
        f"adapters: {plan.out_dir}/<cell id>/adapter",
    )


def _titled(title: str, table: Table, note: str = "") -> Any:
    """A bold title line above the table: a table title would wrap to the table's width."""
    from rich.console import Group
    from rich.text import Text

    parts = [Text(title, style="bold"), table]
    return Group(*parts, Text(note, style="dim")) if note else Group(*parts)


def summary_tables(summary: SweepSummary) -> list[Any]:
    return [cells_table(summary), conditions_table(summary)]


def cells_table(summary: SweepSummary) -> Any:
    """Per cell: each dimension's score after training and its delta from the base model."""
    from rich import box
    from rich.table import Table

    has_base = bool(summary.baselines)
    title = f"{summary.plan.sweep_id}: scores after training" + (" (Δ vs baseline)" if has_base else "")
    table = Table(header_style="bold", box=box.SIMPLE_HEAD)
    table.add_column("cell", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for dim in summary.dimensions:
        table.add_column(dim, justify="right", no_wrap=True)
    for label, scores in summary.baselines.items():
        name = "baseline" if len(summary.baselines) == 1 else f"{label} baseline"
        table.add_row(name, "complete", *(_num(scores.get(d)) for d in summary.dimensions))
    for c in summary.cells:
        cells = [
            f"{_num(c.scores.get(d))} Δ{_num(c.deltas.get(d))}" if has_base else _num(c.scores.get(d))
            for d in summary.dimensions
        ]
        style = {"complete": "", "failed": "red"}.get(c.status, "yellow")
        table.add_row(c.cell.cell_id, f"[{style}]{c.status}[/]" if style else c.status, *cells)
    return _titled(title, table, "rho: 0 = chance, < 0 = the model prefers the undesired text")


def conditions_table(summary: SweepSummary) -> Any:
    """Per condition (the cell id without its seed): mean over seeds ± per-seed std, and Δ."""
    from rich import box
    from rich.table import Table

    has_base = bool(summary.baselines)
    title = "per condition: mean over seeds ± std" + (", and Δ of the mean vs baseline" if has_base else "")
    table = Table(header_style="bold", box=box.SIMPLE_HEAD)
    table.add_column("condition", no_wrap=True)
    table.add_column("seeds", justify="right", no_wrap=True)
    for dim in summary.dimensions:
        table.add_column(dim, justify="right", no_wrap=True)
    for c in summary.conditions:
        cells = []
        for d in summary.dimensions:
            std = f" ±{c.std[d]:.3f}" if c.std.get(d) is not None else ""
            text = f"{_num(c.mean.get(d))}{std}"
            cells.append(f"{text}\nΔ {_num(c.mean_delta.get(d))}" if has_base else text)
        table.add_row(c.condition, f"{c.n}/{c.total}", *cells)
    return _titled(title, table)


# --------------------------------------------------------------------------------------------
# Progress displays (run_event observers)
# --------------------------------------------------------------------------------------------


def make_sweep_display(name: str) -> object:
    """``auto``: Rich when both stdout and stderr are terminals, plain lines otherwise."""
    if name == "tui":
        from rho_audit.display.live import make_display

        return make_display("tui")
    if name == "auto":
        name = "rich" if sys.stdout.isatty() and sys.stderr.isatty() else "plain"
    return SweepRichDisplay() if name == "rich" else SweepPlainDisplay()


def _loss_text(metrics: dict[str, float] | None) -> str:
    if not metrics:
        return ""
    parts = [f"loss {metrics['loss']:.4f}"] if "loss" in metrics else []
    parts += [f"sft {metrics['sft_loss']:.4f}"] if "sft_loss" in metrics else []
    parts += [f"contrastive {metrics['contrastive_loss']:.4f}"] if "contrastive_loss" in metrics else []
    return " ".join(parts)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
        if seconds >= 3600
        else f"{seconds // 60}m{seconds % 60:02d}s"
    )


class SweepPlainDisplay:
    """Plain lines for CI logs and pipes: one per cell, audit dimension and checkpoint, and a
    training line at most every ``every_s`` seconds with loss and the cell's ETA."""

    def __init__(self, stream: TextIO | None = None, every_s: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self._last = 0.0
        self._cell = ""
        self._counter = ""
        self._rate: tuple[float, int] | None = None  # (time, step) of the first step seen
        self._checkpoint: int | None = None

    def _say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def stop(self) -> None:
        pass

    @hookimpl
    def run_event(self, event: RunEvent) -> None:
        handler = getattr(self, f"_on_{event.kind}", None)
        if handler is not None:
            handler(event)

    def _on_cell_started(self, e: RunEvent) -> None:
        self._cell, self._counter = e.dimension or "", f"[{(e.done or 0) + 1}/{e.total}]"
        self._rate = self._checkpoint = None
        self._say(f"{self._counter} {self._cell}: {e.message}")

    def _on_cell_finished(self, e: RunEvent) -> None:
        self._say(f"{self._counter} {e.dimension} complete: {e.message}")

    def _on_cell_failed(self, e: RunEvent) -> None:
        self._say(f"{self._counter} {e.dimension} FAILED: {e.message}")

    def _on_train_started(self, e: RunEvent) -> None:
        resumed = f", resuming after step {e.done}" if e.done else ""
        self._say(f"  train: {e.message}, {e.total} steps{resumed}")

    def _on_train_step(self, e: RunEvent) -> None:
        now = time.monotonic()
        if self._rate is None:
            self._rate = (now, e.done or 0)
        if now - self._last < self.every_s and e.done != e.total:
            return
        self._last = now
        saved = f"; checkpoint at step {self._checkpoint}" if self._checkpoint else ""
        self._say(f"  step {e.done}/{e.total} {_loss_text(e.metrics)}{self._eta(now, e)}{saved}")

    def _eta(self, now: float, e: RunEvent) -> str:
        start, first = self._rate or (now, 0)
        done = (e.done or 0) - first
        if done <= 0 or not e.total:
            return ""
        return f" ETA {_duration((now - start) / done * (e.total - (e.done or 0)))}"

    def _on_checkpoint_saved(self, e: RunEvent) -> None:
        self._checkpoint = e.done  # shown on the next step line: one line per checkpoint is noise

    def _on_dimension_finished(self, e: RunEvent) -> None:
        if e.result is not None:
            ev = e.result.evaluation
            self._say(f"  audit {e.dimension}: {ev.metric} {_num(ev.score)} [{e.result.status}]")

    def _on_dimension_failed(self, e: RunEvent) -> None:
        self._say(f"  audit {e.dimension} failed: {e.message}")

    def _on_warning(self, e: RunEvent) -> None:
        self._say(f"  warning: {e.message}")


class SweepRichDisplay:
    """Two live bars: cells done/total with the sweep's ETA, and the current cell (training steps
    with loss and ETA, then the audit's probes per dimension)."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console,
            refresh_per_second=4,
            # Cells take minutes: average the speed over the whole cell, not the last 30 s.
            speed_estimate_period=3600,
        )
        self._sweep: Any = None
        self._task: Any = None
        self._cell = ""

    def stop(self) -> None:
        if self._sweep is not None:
            self.progress.stop()
            self._sweep = None

    @hookimpl
    def run_event(self, event: RunEvent) -> None:
        handler = getattr(self, f"_on_{event.kind}", None)
        if handler is not None:
            handler(event)

    def _on_cell_started(self, e: RunEvent) -> None:
        if self._sweep is None:
            self.progress.start()
            self._sweep = self.progress.add_task("cells", total=e.total, completed=e.done or 0, info=e.run_id)
            self._task = self.progress.add_task("", total=None, info="")
        self._cell = e.dimension or ""
        self.progress.update(self._sweep, completed=e.done)
        self.progress.reset(self._task, total=None, description=self._cell, info=e.message or "")

    def _on_cell_finished(self, e: RunEvent) -> None:
        self.progress.update(self._sweep, completed=e.done)
        self.console.print(f"[green]✓[/] {e.dimension}: {e.message}")

    def _on_cell_failed(self, e: RunEvent) -> None:
        self.progress.update(self._sweep, completed=e.done)
        self.console.print(f"[bold red]✗ {e.dimension} failed:[/] {e.message}")

    def _on_train_started(self, e: RunEvent) -> None:
        self.progress.reset(
            self._task, total=e.total, completed=e.done or 0, description=f"{self._cell} train", info=""
        )

    def _on_train_step(self, e: RunEvent) -> None:
        self.progress.update(self._task, completed=e.done, total=e.total, info=_loss_text(e.metrics))

    def _on_dimension_started(self, e: RunEvent) -> None:
        self.progress.reset(
            self._task, total=e.total, description=f"{self._cell} audit {e.dimension}", info=""
        )

    def _on_progress(self, e: RunEvent) -> None:
        self.progress.update(self._task, completed=e.done, total=e.total, info=e.unit or "")

    def _on_dimension_failed(self, e: RunEvent) -> None:
        self.console.print(f"[bold red]{self._cell}: audit {e.dimension} failed:[/] {e.message}")

    def _on_warning(self, e: RunEvent) -> None:
        self.console.print(f"[yellow]warning:[/] {e.message}")


__all__ = ["SweepPlainDisplay", "SweepRichDisplay", "make_sweep_display", "summary_tables", "sweep"]
