"""The text of the side panels and of the details screen: Rich Text built from a SweepState, no
widgets, so the app only decides when to redraw."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text

from rho_audit._util.naming import OPTION_SYMBOLS
from rho_audit.display.tui.formatting import (
    BARS,
    STATUS_LABEL,
    STATUS_MARK,
    STATUS_STYLE,
    clock_text,
    delta_style,
    downsample,
    duration,
    ellipsis,
    score_text,
    sparkline,
)
from rho_audit.display.tui.state import RUNNING, CellView, DoseView, SweepState, cell_eta, train_progress


def running_text(
    state: SweepState,
    now: float,
    width: int,
    totals: dict[str, int],
    audit_progress: dict[str, tuple[str, int, int]],
) -> Text:
    """The running-cell panel: what it trains or audits, progress, ETA, loss sparklines;
    or, between cells, why nothing runs. ``totals``: exact optimizer steps by train run id;
    ``audit_progress``: (dimension, done, total) by audit run id."""
    c = state.running
    text = Text(no_wrap=True, overflow="ellipsis")
    if c is None:
        if state.finished:
            failed = state.count("failed")
            text.append("sweep finished\n", style="bold green" if not failed else "bold red")
            text.append(f"{state.count('complete')} done, {failed} failed")
            if failed:
                text.append("\nre-run the sweep command to retry the failed cells", style="dim")
        elif state.cells and state.alive is False and state.count("pending"):
            text.append("sweep not running\n", style="bold yellow")
            text.append(f"{state.count('pending')} cells queued\nre-run the sweep command to go on")
        elif state.cells:
            text.append("waiting for the next cell…", style="dim")
        else:
            text.append(state.problem or "waiting…", style="dim")
        return text
    text.append(ellipsis(c.cell_id, width) + "\n", style="bold")
    if c.kind == "baseline":
        text.append(ellipsis(c.describe(), width) + "\n")
    else:
        t = c.train
        opts = t.get("options") or {}
        parts = [t.get("trainer", "?")]
        parts += [f"{OPTION_SYMBOLS.get(k, k)} {opts[k]:g}" for k in ("lambda", "margin") if k in opts]
        parts += [f"seed {t.get('seed')}"]
        text.append(ellipsis("  ".join(str(p) for p in parts), width) + "\n")
    elapsed = c.elapsed(now)
    eta = cell_eta(state, c, now, totals) if c.status in RUNNING else None
    if c.status == "stopped":
        text.append(f"stopped: process {state.pid} is gone\n", style="yellow")
    elif c.status == "training":
        prog = train_progress(state, c, totals)
        total = f"{'' if prog.exact else '~'}{prog.total}" if prog.total else "?"
        step = prog.step or 0
        label = f"step {step}/{total} "
        bar_w = max(4, width - len(label) - 5)
        frac = min(1.0, step / prog.total) if prog.total else 0.0
        filled = int(frac * bar_w)
        text.append(label)
        text.append("█" * filled, style="cyan")
        text.append("░" * (bar_w - filled), style="dim")
        text.append(f" {frac:4.0%}\n")
    else:
        dims = (c.spec.get("audit") or {}).get("dimensions") or []
        line = f"audit {len(c.partial)}/{len(dims) or '?'} dimensions"
        prog = audit_progress.get(c.audit_run_id or "")
        if prog and prog[2]:
            line += f" · {prog[0]} {prog[1]}/{prog[2]}"
        text.append(ellipsis(line, width) + "\n")
    text.append(f"elapsed {duration(elapsed)}  ETA {duration(eta) if eta is not None else '?'}\n")
    steps = state.steps.get(c.train_run_id or "", [])
    if steps:
        label_w, num_w = 6, 8
        spark_w = max(4, width - label_w - num_w - 1)
        for label, key, style in (
            ("sft", "sft_loss", "magenta"),
            ("contr", "contrastive_loss", "yellow"),
        ):
            # The last spark_w steps only: the panel's cost stays flat over a long run.
            values = [s.get(key) for s in steps[-spark_w:] if isinstance(s.get(key), int | float)]
            if not values:
                continue
            text.append(f"{label:<{label_w}}", style="dim")
            text.append(sparkline(values, spark_w).ljust(spark_w), style=style)
            text.append(f" {values[-1]:>{num_w}.4g}\n")
        last = steps[-1]
        text.append(f"active {last.get('active_share', 0):.0%}  {last.get('tokens_per_s', 0):,.0f} tok/s\n")
        loss, lr, norm = last.get("loss", 0), last.get("lr", 0), last.get("grad_norm", 0)
        text.append(f"loss {loss:.4g}  lr {lr:.1e}  |g| {norm:.2f}", style="dim")
    return text


def dose_text(view: DoseView | None, width: int) -> Text:
    """The dose-response panel: a bar per level and dimension, with the values when they fit."""
    text = Text(no_wrap=True, overflow="ellipsis")
    if view is None:
        text.append("appears when cells finish", style="dim")
        return text
    name_w = min(10, max((len(d) for d in view.rows), default=4) + 1)
    n = len(view.levels)
    every = name_w + n + 6 * n + 1 <= width  # room for every level's value
    header = "  ".join(f"{lv:>5}" for lv in view.levels) if every else " ".join(view.levels)
    text.append(" " * (name_w + n + 1) if every else " " * name_w)
    text.append(ellipsis(header, max(1, width - name_w - (n + 1 if every else 0))) + "\n", style="dim")
    for dim, values in view.rows.items():
        known = [v for v in values if v is not None]
        text.append(f"{ellipsis(dim, name_w - 1):<{name_w}}")
        if not known:
            text.append("-\n", style="dim")
            continue
        # Δ bars share zero as their floor or ceiling, so a bar's height reads against the base model.
        low, high = (min(*known, 0.0), max(*known, 0.0)) if view.relative else (min(known), max(known))
        for v in values:
            if v is None:
                text.append("·", style="dim")
            else:
                i = 3 if high - low < 1e-12 else min(7, int((v - low) / (high - low) * 7.999))
                text.append(BARS[i], style=delta_style(v) if view.relative else "cyan")
        if every:
            for v in values:
                text.append(" ")
                text.append(
                    f"{v:+.2f}" if v is not None else "    -",
                    style=delta_style(v) if view.relative else "",
                )
        else:
            text.append(f" {known[-1]:+.2f}", style=delta_style(known[-1]) if view.relative else "")
        text.append("\n")
    return text


def cell_details(c: CellView, state: SweepState, now: float, steps: Sequence[dict[str, Any]]) -> Text:
    """The details screen of a cell: its settings, runs, error, whole loss curves (``steps``,
    its training run's step metrics) and every score against the baseline."""
    text = Text()
    text.append(f"{c.cell_id}\n", style="bold")
    text.append(
        f"{STATUS_MARK.get(c.status, '')} {STATUS_LABEL.get(c.status, c.status)}",
        style=STATUS_STYLE.get(c.status, ""),
    )
    text.append(f"  ·  {c.describe()}\n")
    text.append(
        f"model {c.spec.get('model') or 'default'} · config {str(c.spec.get('config_sha256', ''))[:12]}\n"
    )
    text.append(f"train run {c.train_run_id or '-'} · audit run {c.audit_run_id or '-'}\n", style="dim")
    text.append(f"elapsed {duration(c.elapsed(now))} · last update {clock_text(c.updated_at)}\n")
    if c.error:
        text.append(f"\nerror: {c.error}\n", style="bold red")
    result = c.result or {}
    if result.get("steps"):
        m = result.get("final_metrics") or {}
        text.append(f"\n{result['steps']} optimizer steps; final ")
        text.append(
            ", ".join(f"{k} {v:.4g}" for k, v in sorted(m.items()) if isinstance(v, int | float)) + "\n"
        )
    if steps:
        for label, key in (("sft loss        ", "sft_loss"), ("contrastive loss", "contrastive_loss")):
            values = [s.get(key) for s in steps if isinstance(s.get(key), int | float)]
            if values:
                curve = sparkline(downsample(values, 60), 60)
                text.append(f"{label} {curve} {values[0]:.3f} → {values[-1]:.3f} ({len(values)} steps)\n")
    if c.scores:
        base = state.baseline_scores(c) if c.kind == "train" else {}
        text.append(
            f"\n{'dimension':<14}{'score':>8}{'95% CI':>15}{'Δ base':>9}{'n':>6}  status\n", style="bold"
        )
        for dim, s in c.scores.items():
            b = (base.get(dim) or {}).get("score")
            delta = s["score"] - b if s.get("score") is not None and b is not None else None
            ci = (
                f"{s['ci_low']:+.2f}..{s['ci_high']:+.2f}"
                if s.get("ci_low") is not None and s.get("ci_high") is not None
                else "-"
            )
            text.append(f"{ellipsis(dim, 13):<14}{score_text(s, 3):>8}{ci:>15}")
            text.append(f"{f'{delta:+.3f}' if delta is not None else '-':>9}", style=delta_style(delta))
            text.append(f"{s.get('n', ''):>6}  {s.get('status', '')}\n")
    text.append("\nr: report card · esc: back", style="dim")
    return text
