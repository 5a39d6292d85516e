"""How a run shows itself: a small protocol with Rich, plain-text and silent implementations.

Each display is a ``run_event`` observer registered into the plugin manager for the run, so
the engine never knows what is on screen (the Textual TUI, ``rho_audit.display.tui``, is one more).
Progress updates are throttled so a burst of events never floods a terminal or a CI log.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
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
    "ERROR": "bold red",
}


def _fmt(value: float | None, digits: int = 3, signed: bool = True) -> str:
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _score(ev: Evaluation) -> str:
    """A score as shown: rho signed (its sign is the finding), rates plain."""
    return _fmt(ev.score, 3, ev.metric == "rank_biserial")


METRIC_LABEL = {"rank_biserial": "rho", "accuracy": "acc", "answer_rate": "rate"}


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
        ci = f"{_fmt(ev.ci_low, 2, signed)}..{_fmt(ev.ci_high, 2, signed)}" if ev.ci_low is not None else "-"
        style = STATUS_STYLE.get(r.status, "")
        row = [
            r.dimension,
            f"{METRIC_LABEL.get(ev.metric, ev.metric)} {_fmt(ev.score, 3, signed)}",
            ci,
            _fmt(ev.paired_accuracy, 2, False),
            _fmt(ev.mean_gap, 2),
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


def make_display(name: str) -> object | None:
    """``auto`` picks Rich on a terminal and plain text otherwise (CI logs, pipes); ``tui`` is the
    Textual app of ``sweep --tui`` (never picked by ``auto``; Textual loads only then)."""
    if name == "none":
        return None
    if name == "tui":
        from rho_audit.display.tui import TuiDisplay

        return TuiDisplay()
    if name == "auto":
        name = "rich" if sys.stderr.isatty() else "plain"
    return RichDisplay() if name == "rich" else PlainDisplay()
