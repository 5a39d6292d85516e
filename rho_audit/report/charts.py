"""Inline SVG charts for the report cards, drawn in Python: no JavaScript, no CDN, no network.

Four chart kinds cover the paper's figures: scores with CI bars, dose-response lines with error
bars, grouped bars with error bars and significance marks, and per-seed points over box plots.

Colours come from the Okabe-Ito palette (distinguishable with the common colour-vision
deficiencies), and series also differ by marker shape, so colour is never the only cue. Axes
and text use ``currentColor``: inline in the HTML card they follow the page's light/dark
colours; a standalone ``.svg`` (the Markdown card's figures) carries its own
``prefers-color-scheme`` rule. Every label is XML-escaped here, because labels come from run
data (dimension names from third-party plugins, conditions from a sweep file).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

import numpy as np

#: Okabe & Ito (2008) without black (it vanishes on a dark page): blue, vermillion, bluish
#: green, orange, reddish purple, sky blue, yellow.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#F0E442")
MARKERS = ("circle", "square", "triangle", "diamond")
POSITIVE, NEGATIVE = PALETTE[0], PALETTE[1]

FONT = "system-ui, -apple-system, 'Segoe UI', sans-serif"
CHAR_W = 7.0  # approximate advance of a 12px sans-serif character, for layout only
DODGE = 5.0  # px between the series of a dose-response chart at the same dose

# A standalone figure carries its own background, so its text stays readable wherever it is shown
# (an <img> follows the OS colour scheme, which need not match the page around it).
STANDALONE_STYLE = (
    "svg{color:#1f2328}.bg{fill:#ffffff}"
    "@media (prefers-color-scheme: dark){svg{color:#e6edf3}.bg{fill:#0d1117}}"
)


def _t(text: object) -> str:
    return escape(str(text), quote=True)


def _f(x: float) -> str:
    """Coordinates with 1 decimal: stable output for golden files, small files."""
    return f"{x:.1f}"


def nice_ticks(low: float, high: float, target: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5, 5 × 10^k) covering [low, high]."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 10))
    return ticks


def tick_label(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


@dataclass(frozen=True)
class Scale:
    """Maps data values in [low, high] to pixels in [start, end] (end < start for a y axis)."""

    low: float
    high: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        span = self.high - self.low or 1.0
        return self.start + (value - self.low) / span * (self.end - self.start)


def data_domain(values: Sequence[float], include_zero: bool = True, pad: float = 0.05) -> tuple[float, float]:
    """The range an axis of these values spans (with 0 unless told, padded); a card gives it to
    several charts so they share one scale."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if include_zero:
        vals.append(0.0)
    if not vals:
        return 0.0, 1.0
    low, high = min(vals), max(vals)
    if high == low:
        low, high = low - 0.5, high + 0.5
    margin = (high - low) * pad
    return low - margin, high + margin


@dataclass
class Svg:
    """An SVG document being built: elements are strings, everything escaped on the way in."""

    width: float
    height: float
    title: str
    desc: str = ""
    parts: list[str] = field(default_factory=list)

    def add(self, element: str) -> None:
        self.parts.append(element)

    def line(self, x1: float, y1: float, x2: float, y2: float, **attrs: str) -> None:
        extra = "".join(f' {k.replace("_", "-")}="{_t(v)}"' for k, v in attrs.items())
        self.add(f'<line x1="{_f(x1)}" y1="{_f(y1)}" x2="{_f(x2)}" y2="{_f(y2)}"{extra}/>')

    def rect(self, x: float, y: float, w: float, h: float, **attrs: str) -> None:
        extra = "".join(f' {k.replace("_", "-")}="{_t(v)}"' for k, v in attrs.items())
        self.add(f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(max(w, 0))}" height="{_f(max(h, 0))}"{extra}/>')

    def text(self, x: float, y: float, content: object, anchor: str = "start", **attrs: str) -> None:
        extra = "".join(f' {k.replace("_", "-")}="{_t(v)}"' for k, v in attrs.items())
        self.add(f'<text x="{_f(x)}" y="{_f(y)}" text-anchor="{anchor}"{extra}>{_t(content)}</text>')

    def marker(self, shape: str, x: float, y: float, color: str, r: float = 4.0) -> None:
        if shape == "square":
            self.rect(x - r, y - r, 2 * r, 2 * r, fill=color)
        elif shape == "triangle":
            pts = f"{_f(x)},{_f(y - r - 1)} {_f(x - r - 1)},{_f(y + r)} {_f(x + r + 1)},{_f(y + r)}"
            self.add(f'<polygon points="{pts}" fill="{color}"/>')
        elif shape == "diamond":
            corners = ((x, y - r - 1), (x + r + 1, y), (x, y + r + 1), (x - r - 1, y))
            pts = " ".join(f"{_f(a)},{_f(b)}" for a, b in corners)
            self.add(f'<polygon points="{pts}" fill="{color}"/>')
        else:
            self.add(f'<circle cx="{_f(x)}" cy="{_f(y)}" r="{_f(r)}" fill="{color}"/>')

    def error_bar(
        self, x: float, y_low: float, y_high: float, cap: float = 4.0, color: str = "currentColor"
    ) -> None:
        """A vertical whisker with caps."""
        attrs = {"stroke": color, "stroke_width": "1.3"}
        self.line(x, y_low, x, y_high, **attrs)
        self.line(x - cap, y_low, x + cap, y_low, **attrs)
        self.line(x - cap, y_high, x + cap, y_high, **attrs)

    def h_error_bar(self, y: float, x_low: float, x_high: float, cap: float = 4.0) -> None:
        """A horizontal whisker with caps."""
        attrs = {"stroke": "currentColor", "stroke_width": "1.3"}
        self.line(x_low, y, x_high, y, **attrs)
        self.line(x_low, y - cap, x_low, y + cap, **attrs)
        self.line(x_high, y - cap, x_high, y + cap, **attrs)

    def render(self, standalone: bool = False) -> str:
        """The SVG element; ``standalone`` adds the XML namespace header and its own colours."""
        head = (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
            f'viewBox="0 0 {_f(self.width)} {_f(self.height)}" width="{_f(self.width)}" '
            f'height="{_f(self.height)}" font-family="{_t(FONT)}" font-size="12" fill="currentColor">'
        )
        style = ""
        if standalone:
            bg = f'<rect class="bg" x="0" y="0" width="{_f(self.width)}" height="{_f(self.height)}"/>'
            style = f"<style>{STANDALONE_STYLE}</style>{bg}"
        desc = f"<desc>{_t(self.desc)}</desc>" if self.desc else ""
        body = "".join(self.parts)
        return f"{head}<title>{_t(self.title)}</title>{desc}{style}{body}</svg>"


def _y_axis(svg: Svg, scale: Scale, ticks: list[float], x0: float, x1: float, label: str) -> None:
    for tick in ticks:
        y = scale(tick)
        svg.line(x0, y, x1, y, stroke="currentColor", stroke_opacity="0.12")
        svg.text(x0 - 6, y + 4, tick_label(tick), "end")
    svg.line(x0, scale(ticks[0]), x0, scale(ticks[-1]), stroke="currentColor")
    mid = (scale(ticks[0]) + scale(ticks[-1])) / 2
    svg.text(14, mid, label, "middle", transform=f"rotate(-90 14 {_f(mid)})")


def _zero_line(svg: Svg, scale: Scale, ticks: list[float], x0: float, x1: float) -> None:
    if ticks[0] <= 0 <= ticks[-1]:
        y = scale(0.0)
        svg.line(x0, y, x1, y, stroke="currentColor", stroke_width="1.2", stroke_dasharray="4 3")


def _legend(
    svg: Svg, names: Sequence[str], x: float, y: float, boxes: bool = False, dotted: str | None = None
) -> None:
    """One row of swatches; wraps when the names do not fit the width. ``dotted`` names a last
    entry drawn as a dotted line (a chart's reference line)."""
    cx, cy = x, y
    for i, name in enumerate([*names, *([dotted] if dotted is not None else [])]):
        width = 40 + CHAR_W * len(name)
        if cx + width > svg.width - 10 and cx > x:
            cx, cy = x, cy + 18
        color = PALETTE[i % len(PALETTE)]
        if i == len(names):
            svg.line(
                cx - 2,
                cy - 3,
                cx + 14,
                cy - 3,
                stroke="currentColor",
                stroke_width="1.5",
                stroke_dasharray="1 3",
            )
        elif boxes:
            svg.rect(cx, cy - 9, 12, 12, fill=color)
        else:
            svg.line(cx - 2, cy - 3, cx + 14, cy - 3, stroke=color, stroke_width="2")
            svg.marker(MARKERS[i % len(MARKERS)], cx + 6, cy - 3, color, 3.5)
        svg.text(cx + 18, cy + 1, name)
        cx += width


# --------------------------------------------------------------------------------------------
# Chart kinds
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CIBar:
    label: str
    value: float | None
    low: float | None
    high: float | None


def ci_bar_chart(
    rows: Sequence[CIBar],
    axis_label: str,
    title: str,
    domain: tuple[float, float] | None = None,
    label_chars: int = 0,
) -> Svg:
    """One row per item: a bar from 0 to the value (blue ≥ 0, vermillion < 0) with its CI.
    Charts given the same ``domain`` and ``label_chars`` (at least the longest label) have the
    same x-scale at the same pixels, as the panels of one card should."""
    # The label column fits the longest label (text is right-aligned at label_w - 8, so a wider
    # label would start left of x = 0 and be clipped); the chart widens so the plot keeps 430px.
    label_w = 16 + CHAR_W * max(label_chars, *(len(r.label) for r in rows), 4)
    width, row_h, top = max(720.0, label_w + 500.0), 26.0, 30.0
    height = top + row_h * max(len(rows), 1) + 50
    values = [v for r in rows for v in (r.value, r.low, r.high) if v is not None]
    low, high = domain or data_domain(values)
    ticks = nice_ticks(low, high)
    x = Scale(ticks[0], ticks[-1], label_w, width - 70)
    svg = Svg(width, height, title, f"{title}. Bars: value; whiskers: 95% CI; dashed line: 0.")
    svg.text(label_w, 18, title, "start", font_weight="600")
    bottom = top + row_h * len(rows)
    for tick in ticks:
        svg.line(x(tick), top - 4, x(tick), bottom, stroke="currentColor", stroke_opacity="0.12")
        svg.text(x(tick), bottom + 16, tick_label(tick), "middle")
    svg.text((x(ticks[0]) + x(ticks[-1])) / 2, bottom + 36, axis_label, "middle")
    if ticks[0] <= 0 <= ticks[-1]:
        svg.line(x(0), top - 4, x(0), bottom, stroke="currentColor", stroke_dasharray="4 3")
    for i, r in enumerate(rows):
        cy = top + row_h * i + row_h / 2
        svg.text(label_w - 8, cy + 4, r.label, "end")
        if r.value is None:
            svg.text(x(ticks[0]) + 4, cy + 4, "not scored", "start", font_style="italic")
            continue
        zero = x(min(max(0.0, ticks[0]), ticks[-1]))
        left, right = sorted((zero, x(r.value)))
        color = POSITIVE if r.value >= 0 else NEGATIVE
        svg.rect(left, cy - 7, right - left, 14, fill=color, fill_opacity="0.75")
        if r.low is not None and r.high is not None:
            svg.h_error_bar(cy, x(r.low), x(r.high), 5)
        svg.text(width - 64, cy + 4, f"{r.value:+.3f}" if ticks[0] < 0 else f"{r.value:.3f}", "start")
    return svg


@dataclass(frozen=True)
class LinePoint:
    x: float
    y: float | None
    err: float | None = None


@dataclass(frozen=True)
class LineSeries:
    name: str
    points: tuple[LinePoint, ...]


@dataclass(frozen=True)
class Reference:
    """A horizontal reference line across a line chart (e.g. the untrained model's score)."""

    y: float
    label: str


def line_chart(
    series: Sequence[LineSeries],
    x_label: str,
    y_label: str,
    title: str,
    *,
    log_x: bool = False,
    x_tick_label: Callable[[float], str] = tick_label,
    error: str = "± standard error",
    reference: Reference | None = None,
) -> Svg:
    """Dose-response: one line per series, markers with ±err bars (``error`` names them in the
    description), the y = 0 line dashed. ``log_x`` spaces x by its logarithm with a tick at each
    x of the data; with a ``reference``, y is not stretched to include 0 and the reference is
    drawn dotted (its label and value in the legend) instead of the y = 0 line."""
    width, height = 720.0, 380.0
    left, right, top, bottom = 70.0, 20.0, 34.0, 90.0
    xs = sorted({p.x for s in series for p in s.points})
    ys = [
        v
        for s in series
        for p in s.points
        if p.y is not None
        for v in (p.y - (p.err or 0), p.y + (p.err or 0))
    ]
    if reference is not None:
        ys.append(reference.y)
    y_ticks = nice_ticks(*data_domain(ys, include_zero=reference is None))
    x_ticks = xs if len(xs) <= 8 or log_x else nice_ticks(min(xs), max(xs))
    at = math.log10 if log_x else float
    x_lo, x_hi = (at(min(xs)), at(max(xs))) if xs else (0.0, 1.0)
    pad = (x_hi - x_lo) * 0.06 or 0.5
    scale = Scale(x_lo - pad, x_hi + pad, left, width - right)

    def sx(x: float) -> float:
        return scale(at(x))

    sy = Scale(y_ticks[0], y_ticks[-1], height - bottom, top)
    lines = f"dotted: {reference.label}" if reference is not None else "dashed: y = 0"
    svg = Svg(
        width,
        height,
        title,
        f"{title}. Points: mean; bars: {error}, in the colour of their line, each series "
        f"nudged sideways so bars at the same x stand apart; {lines}.",
    )
    svg.text(left, 20, title, "start", font_weight="600")
    _y_axis(svg, sy, y_ticks, left, width - right, y_label)
    if reference is None:
        _zero_line(svg, sy, y_ticks, left, width - right)
    else:
        y = sy(reference.y)
        svg.line(left, y, width - right, y, stroke="currentColor", stroke_width="1.5", stroke_dasharray="1 3")
    base = height - bottom
    svg.line(left, base, width - right, base, stroke="currentColor")
    for tick in x_ticks:
        svg.line(sx(tick), base, sx(tick), base + 4, stroke="currentColor")
        svg.text(sx(tick), base + 17, x_tick_label(tick), "middle")
    svg.text((left + width - right) / 2, base + 36, x_label, "middle")
    for i, s in enumerate(series):
        color, shape = PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)]
        # Each series is nudged sideways (a dodge of DODGE px per series, centred on the dose), so
        # whiskers at the same dose stand apart; each whisker takes its line's colour.
        dx = (i - (len(series) - 1) / 2) * DODGE
        pts = [p for p in s.points if p.y is not None]
        if len(pts) > 1:
            path = " ".join(f"{_f(sx(p.x) + dx)},{_f(sy(p.y))}" for p in pts)
            svg.add(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for p in pts:
            if p.err:
                svg.error_bar(sx(p.x) + dx, sy(p.y - p.err), sy(p.y + p.err), color=color)
            svg.marker(shape, sx(p.x) + dx, sy(p.y), color)
    dotted = f"{reference.label} ({tick_label(reference.y)})" if reference is not None else None
    _legend(svg, [s.name for s in series], left, base + 60, dotted=dotted)
    return svg


@dataclass(frozen=True)
class Bar:
    mean: float | None
    err: float | None = None
    mark: str = ""


@dataclass(frozen=True)
class BarSeries:
    name: str
    bars: tuple[Bar, ...]  # one per group


def grouped_bar_chart(groups: Sequence[str], series: Sequence[BarSeries], y_label: str, title: str) -> Svg:
    """Groups (dimensions) along x, one bar per series (condition) with ±err and a mark."""
    n_series = max(len(series), 1)
    group_w = max(60.0, 22.0 * n_series + 24)
    left, right, top, bottom = 70.0, 20.0, 40.0, 96.0
    width = max(720.0, left + right + group_w * len(groups))
    height = 400.0
    ys = [
        v
        for s in series
        for b in s.bars
        if b.mean is not None
        for v in (b.mean - (b.err or 0), b.mean + (b.err or 0))
    ]
    y_ticks = nice_ticks(*data_domain(ys, pad=0.12))
    sy = Scale(y_ticks[0], y_ticks[-1], height - bottom, top)
    svg = Svg(
        width, height, title, f"{title}. Bars: mean; whiskers: ± 1 SD; marks: Welch t-test vs reference."
    )
    svg.text(left, 20, title, "start", font_weight="600")
    _y_axis(svg, sy, y_ticks, left, width - right, y_label)
    base = height - bottom
    svg.line(left, base, width - right, base, stroke="currentColor")
    step = (width - left - right) / max(len(groups), 1)
    bar_w = min(22.0, (step - 16) / n_series)
    zero = sy(min(max(0.0, y_ticks[0]), y_ticks[-1]))
    for g, group in enumerate(groups):
        gx = left + step * g + (step - bar_w * n_series) / 2
        svg.text(left + step * g + step / 2, base + 17, group, "middle")
        for i, s in enumerate(series):
            bar = s.bars[g] if g < len(s.bars) else Bar(None)
            if bar.mean is None:
                continue
            bx = gx + bar_w * i
            top_y, bot_y = sorted((zero, sy(bar.mean)))
            svg.rect(bx + 1, top_y, bar_w - 2, bot_y - top_y, fill=PALETTE[i % len(PALETTE)])
            cx = bx + bar_w / 2
            hi = bar.mean + (bar.err or 0)
            lo = bar.mean - (bar.err or 0)
            if bar.err:
                svg.error_bar(cx, sy(lo), sy(hi), 3)
            if bar.mark:
                y = sy(hi) - 5 if bar.mean >= 0 else sy(lo) + 13
                svg.text(cx, y, bar.mark, "middle", font_size="11")
    _zero_line(svg, sy, y_ticks, left, width - right)
    _legend(svg, [s.name for s in series], left, base + 50, boxes=True)
    return svg


@dataclass(frozen=True)
class BoxSeries:
    name: str
    values: tuple[tuple[float, ...], ...]  # per group: the per-seed values


def _box_stats(values: Sequence[float]) -> tuple[float, float, float, float, float]:
    """Median, quartiles (linear interpolation) and Tukey whiskers (furthest point ≤ 1.5 IQR)."""
    arr = np.asarray(values, dtype=float)
    q1, med, q3 = (float(v) for v in np.percentile(arr, [25, 50, 75]))
    iqr = q3 - q1
    lo = float(arr[arr >= q1 - 1.5 * iqr].min())
    hi = float(arr[arr <= q3 + 1.5 * iqr].max())
    return lo, q1, med, q3, hi


#: Fewest seeds a box is drawn for: quartiles of 2-4 points are the points themselves (or a line
#: between two of them), so below this a group shows its points with the mean ± 1 SD.
BOX_MIN_SEEDS = 5


def box_plot_chart(groups: Sequence[str], series: Sequence[BoxSeries], y_label: str, title: str) -> Svg:
    """Per group, one box per series (median, quartiles, Tukey whiskers) with seed points on top;
    a series with fewer than :data:`BOX_MIN_SEEDS` seeds gets its mean (a bar) ± 1 SD instead."""
    n_series = max(len(series), 1)
    left, right, top, bottom = 70.0, 20.0, 40.0, 96.0
    group_w = max(80.0, 34.0 * n_series + 24)
    width = max(720.0, left + right + group_w * len(groups))
    height = 400.0
    ys = [v for s in series for vals in s.values for v in vals]
    ys += [v for s in series for vals in s.values if 2 <= len(vals) < BOX_MIN_SEEDS for v in _mean_sd(vals)]
    y_ticks = nice_ticks(*data_domain(ys, pad=0.08))
    sy = Scale(y_ticks[0], y_ticks[-1], height - bottom, top)
    svg = Svg(
        width,
        height,
        title,
        f"{title}. Points: seeds; {BOX_MIN_SEEDS} or more seeds: box of quartiles and median, whiskers "
        f"1.5 IQR; fewer: a bar at the mean, whiskers ± 1 SD.",
    )
    svg.text(left, 20, title, "start", font_weight="600")
    _y_axis(svg, sy, y_ticks, left, width - right, y_label)
    _zero_line(svg, sy, y_ticks, left, width - right)
    base = height - bottom
    svg.line(left, base, width - right, base, stroke="currentColor")
    step = (width - left - right) / max(len(groups), 1)
    box_w = min(30.0, (step - 16) / n_series)
    for g, group in enumerate(groups):
        gx = left + step * g + (step - box_w * n_series) / 2
        svg.text(left + step * g + step / 2, base + 17, group, "middle")
        for i, s in enumerate(series):
            vals = s.values[g] if g < len(s.values) else ()
            if not vals:
                continue
            color = PALETTE[i % len(PALETTE)]
            cx = gx + box_w * i + box_w / 2
            if len(vals) >= BOX_MIN_SEEDS:
                lo, q1, med, q3, hi = _box_stats(vals)
                svg.line(cx, sy(lo), cx, sy(hi), stroke="currentColor")
                svg.rect(
                    cx - box_w / 2 + 2,
                    sy(q3),
                    box_w - 4,
                    sy(q1) - sy(q3),
                    fill=color,
                    fill_opacity="0.35",
                    stroke=color,
                )
                svg.line(
                    cx - box_w / 2 + 2,
                    sy(med),
                    cx + box_w / 2 - 2,
                    sy(med),
                    stroke="currentColor",
                    stroke_width="2",
                )
            elif len(vals) >= 2:
                sd_low, sd_high = _mean_sd(vals)
                mean = (sd_low + sd_high) / 2
                svg.error_bar(cx, sy(sd_low), sy(sd_high), min(6.0, box_w / 3), color=color)
                svg.line(
                    cx - box_w / 2 + 2, sy(mean), cx + box_w / 2 - 2, sy(mean), stroke=color, stroke_width="2"
                )
            for k, v in enumerate(vals):
                # Deterministic spread so equal values stay visible side by side.
                jitter = ((k % 5) - 2) * min(3.0, box_w / 10)
                svg.marker(MARKERS[i % len(MARKERS)], cx + jitter, sy(v), color, 3.0)
    _legend(svg, [s.name for s in series], left, base + 50, boxes=True)
    return svg


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean − SD and mean + SD (sample SD, ddof 1) of two or more values."""
    arr = np.asarray(values, dtype=float)
    mean, sd = float(arr.mean()), float(arr.std(ddof=1))
    return mean - sd, mean + sd
