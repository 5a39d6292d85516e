"""How the monitor writes numbers, times, scores and cell ids in a few columns."""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Sequence
from typing import Any

from rho_audit._util.naming import OPTION_SYMBOLS

#: Status words shown for the store's cell statuses (and ``stopped``: running, but its process is gone).
STATUS_LABEL = {
    "pending": "queued",
    "training": "train",
    "auditing": "audit",
    "complete": "done",
    "failed": "failed",
    "stopped": "stopped",
}
STATUS_STYLE = {
    "pending": "dim",
    "training": "bold cyan",
    "auditing": "bold cyan",
    "complete": "green",
    "failed": "bold red",
    "stopped": "yellow",
}
STATUS_MARK = {
    "pending": "·",
    "training": "▶",
    "auditing": "▶",
    "complete": "✓",
    "failed": "✗",
    "stopped": "■",
}
BARS = "▁▂▃▄▅▆▇█"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def sparkline(values: Sequence[float], width: int) -> str:
    """The last ``width`` values as bars, scaled between their own min and max."""
    values = [v for v in values if v is not None][-max(1, width) :]
    if not values:
        return ""
    low, high = min(values), max(values)
    if high - low < 1e-12:
        return BARS[3] * len(values)
    return "".join(BARS[min(7, int((v - low) / (high - low) * 7.999))] for v in values)


def downsample(values: Sequence[float], n: int) -> list[float]:
    """A whole curve in ``n`` points: the mean of each of ``n`` equal slices."""
    if len(values) <= n:
        return list(values)
    edges = [round(i * len(values) / n) for i in range(n + 1)]
    return [statistics.fmean(values[a:b]) for a, b in itertools.pairwise(edges) if b > a]


def delta_style(delta: float | None) -> str:
    """Green when the dimension improved against the base model, red when it got worse."""
    if delta is None:
        return ""
    if delta >= 0.05:
        return "bold green"
    if delta >= 0.01:
        return "green"
    if delta <= -0.05:
        return "bold red"
    if delta <= -0.01:
        return "red"
    return "dim"


def score_text(score: dict[str, Any] | None, digits: int = 2) -> str:
    if not score or score.get("score") is None:
        return "-"
    value = score["score"]
    return (
        f"{value:+.{digits}f}"
        if score.get("metric", "rank_biserial") == "rank_biserial"
        else f"{value:.{digits}f}"
    )


def options_text(options: dict[str, Any]) -> str:
    return " ".join(f"{OPTION_SYMBOLS.get(k, k)} {v:g}" for k, v in sorted(options.items()))


def clock_text(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def ellipsis(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def cell_label(cell_id: str, width: int) -> str:
    """A cell id that fits ``width``: ``rho-guided_lambda0.2_seed42`` becomes ``rho-guided λ0.2 s42``."""
    if len(cell_id) <= width:
        return cell_id
    short = cell_id
    words = [(f"_{name}", f" {symbol}") for name, symbol in OPTION_SYMBOLS.items()]
    for word, symbol in [*words, ("_seed", " s"), ("_", " ")]:
        short = short.replace(word, symbol)
    return ellipsis(short, width)
