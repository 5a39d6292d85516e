"""How a run or a sweep shows itself: Rich live bars on a terminal, plain lines elsewhere.

Each display is a ``run_event`` observer registered into the plugin manager for the run, so the
engine never knows what is on screen (the Textual TUI, ``rho_audit.display.tui``, is one more);
``rho_audit.cli._common.make_display`` picks one. Progress updates are throttled so a burst of
events never floods a terminal or a CI log.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from rho_audit.api.events import RunEvent
from rho_audit.api.hooks import hookimpl
from rho_audit.api.results import DimensionResult, Evaluation

STATUS_STYLE = {
    "PASS": "green",
    "WARN": "yellow",
    "FAIL": "red",
    "CHANCE": "yellow",
    "INVERTED": "bold red",
    "MEASURED": "cyan",  # descriptive: no verdict, so neither green nor red
    "ERROR": "bold red",
}


def format_number(value: float | None, digits: int = 3, signed: bool = True) -> str:
    """A score or delta as shown in tables: ``+0.123`` (or unsigned), ``-`` when there is none."""
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _score(ev: Evaluation) -> str:
    """A score as shown: rho signed (its sign is the finding), rates plain."""
    return format_number(ev.score, 3, ev.metric == "rank_biserial")


METRIC_LABEL = {
    "rank_biserial": "rho",
    "accuracy": "acc",
    "answer_rate": "rate",
    "attack_success_rate": "ASR",
    "mc2": "MC2",
}


def results_table(results: list[DimensionResult], title: str | None = None) -> Table:
    """Scores with CIs, compact enough for 80 columns (CI logs, narrow terminals)."""
    table = Table(
        title=title,
        header_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        caption="rho: 0 = chance, < 0 = inverted; gap: mean log-prob gap in nats",
    )
    show_errors = any(r.evaluation.n_errors for r in results)
    columns = [
        "dimension",
        "score",
        "95% CI",
        "acc",
        "gap",
        "n",
        *(["err"] if show_errors else []),
        "status",
        "time",
    ]
    for column in columns:
        table.add_column(
            column, no_wrap=True, justify="left" if column in ("dimension", "status") else "right"
        )
    for r in results:
        ev = r.evaluation
        signed = ev.metric == "rank_biserial"
        ci = (
            f"{format_number(ev.ci_low, 2, signed)}..{format_number(ev.ci_high, 2, signed)}"
            if ev.ci_low is not None
            else "-"
        )
        style = STATUS_STYLE.get(r.status, "")
        row = [
            r.dimension,
            f"{METRIC_LABEL.get(ev.metric, ev.metric)} {format_number(ev.score, 3, signed)}",
            ci,
            format_number(ev.paired_accuracy, 2, False),
            format_number(ev.mean_gap, 2),
            str(ev.n),
            *([str(ev.n_errors) if ev.n_errors else ""] if show_errors else []),
            f"[{style}]{r.status}[/]",
            f"{r.elapsed_s:.0f}s",
        ]
        table.add_row(*row)
    return table


def train_metrics(m: dict[str, float]) -> str:
    """One optimizer step's metrics in a line."""
    return (
        f"loss {m.get('loss', 0):.4f} sft {m.get('sft_loss', 0):.4f} "
        f"contrastive {m.get('contrastive_loss', 0):.4f} active {m.get('active_share', 0):.0%} "
        f"lr {m.get('lr', 0):.2e} |g| {m.get('grad_norm', 0):.2f} {m.get('tokens_per_s', 0):.0f} tok/s"
    )


class PlainDisplay:
    """One line per event, progress at most every few seconds: for CI logs and pipes."""

    def __init__(self, stream: TextIO | None = None, every_s: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self._last = 0.0

    def _say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    @hookimpl
    def run_event(self, event: RunEvent) -> None:
        kind = event.kind
        if kind == "progress":
            now = time.monotonic()
            if now - self._last >= self.every_s or event.done == event.total:
                self._last = now
                self._say(f"  {event.dimension}: {event.done}/{event.total} {event.unit}")
        elif kind == "dimension_finished" and event.result:
            ev = event.result.evaluation
            self._say(
                f"  {event.dimension}: {ev.metric} {_score(ev)} [{event.result.status}]"
                f" in {event.result.elapsed_s:.1f}s"
            )
        elif kind == "dimension_started":
            self._say(f"{event.dimension}: {event.total} probes")
        elif kind in ("model_loading", "model_loaded", "dimension_failed", "warning", "run_interrupted"):
            self._say(f"[{kind}] {event.message}")
        elif kind == "train_started":
            self._say(f"[train] {event.message}: step {event.done}/{event.total}")
        elif kind == "train_step" and event.metrics:
            now = time.monotonic()
            if now - self._last >= self.every_s or event.done == event.total:
                self._last = now
                self._say(f"  step {event.done}/{event.total} {train_metrics(event.metrics)}")
        elif kind == "train_finished":
            self._say(f"[train] adapter written to {event.message}")


class RichDisplay:
    """A live progress bar per dimension on a terminal."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[unit]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
            refresh_per_second=4,
        )
        self._tasks: dict[str, int] = {}

    @hookimpl
    def run_event(self, event: RunEvent) -> None:
        kind, dim = event.kind, event.dimension
        if kind == "model_loading":
            self.console.print(f"[dim]model:[/] {event.message}")
        elif kind == "model_loaded":
            self.console.print(f"[dim]loaded:[/] {event.message}")
        elif kind == "run_started":
            self.progress.start()
        elif kind == "dimension_started" and dim:
            self._tasks[dim] = self.progress.add_task(dim, total=None, unit="")
        elif kind == "progress" and dim in self._tasks:
            self.progress.update(self._tasks[dim], completed=event.done, total=event.total, unit=event.unit)
        elif kind == "dimension_finished" and dim in self._tasks and event.result:
            ev = event.result.evaluation
            style = STATUS_STYLE.get(event.result.status, "")
            self.progress.update(
                self._tasks[dim],
                unit=f"{ev.metric} {_score(ev)} [{style}]{event.result.status}[/]",
            )
        elif kind == "dimension_failed":
            self.console.print(f"[bold red]{dim} failed:[/] {event.message}")
        elif kind == "warning":
            self.console.print(f"[yellow]warning:[/] {event.message}")
        elif kind == "train_started":
            self.progress.start()
            self._tasks["train"] = self.progress.add_task(
                "train", total=event.total, completed=event.done or 0, unit=event.message or ""
            )
        elif kind == "train_step" and "train" in self._tasks and event.metrics:
            line = train_metrics(event.metrics)
            self.progress.update(self._tasks["train"], completed=event.done, unit=line)
        elif kind == "train_finished":
            self.progress.stop()
        elif kind in ("run_finished", "run_interrupted"):
            self.progress.stop()
            if event.message:
                self.console.print(f"[yellow]{event.message}[/]")


# --------------------------------------------------------------------------------------------
# Sweeps: cells, each trained then audited
# --------------------------------------------------------------------------------------------


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
        self._cell, self._counter = e.cell or "", f"[{(e.done or 0) + 1}/{e.total}]"
        self._rate = self._checkpoint = None
        self._say(f"{self._counter} {self._cell}: {e.message}")

    def _on_cell_finished(self, e: RunEvent) -> None:
        self._say(f"{self._counter} {e.cell} complete: {e.message}")

    def _on_cell_failed(self, e: RunEvent) -> None:
        self._say(f"{self._counter} {e.cell} FAILED: {e.message}")

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
            self._say(f"  audit {e.dimension}: {ev.metric} {format_number(ev.score)} [{e.result.status}]")

    def _on_dimension_failed(self, e: RunEvent) -> None:
        self._say(f"  audit {e.dimension} failed: {e.message}")

    def _on_warning(self, e: RunEvent) -> None:
        self._say(f"  warning: {e.message}")


class SweepRichDisplay:
    """Two live bars: cells done/total with the sweep's ETA, and the current cell (training steps
    with loss and ETA, then the audit's probes per dimension)."""

    def __init__(self, console: Console | None = None) -> None:
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
        self._cell = e.cell or ""
        self.progress.update(self._sweep, completed=e.done)
        self.progress.reset(self._task, total=None, description=self._cell, info=e.message or "")

    def _on_cell_finished(self, e: RunEvent) -> None:
        self.progress.update(self._sweep, completed=e.done)
        self.console.print(f"[green]✓[/] {e.cell}: {e.message}")

    def _on_cell_failed(self, e: RunEvent) -> None:
        self.progress.update(self._sweep, completed=e.done)
        self.console.print(f"[bold red]✗ {e.cell} failed:[/] {e.message}")

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
