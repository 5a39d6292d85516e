"""The report cards' typed records: what the ``build_*`` functions gather from the run store and
the templates render. All frozen dataclasses, so a card is a plain value, tested on its own."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from rho_audit._util.naming import param_label
from rho_audit.report import charts
from rho_audit.report import stats as report_stats
from rho_audit.report.ood import Accuracy, PooledAccuracy
from rho_audit.report.splits import split_label
from rho_audit.report.stats import PairedDifference, Summary

if TYPE_CHECKING:
    from rho_audit.report.training_losses import LossChange

METRIC_LABEL = {
    "rank_biserial": "rho",
    "accuracy": "accuracy",
    "answer_rate": "answer rate",
    "attack_success_rate": "ASR",
    "mc2": "MC2",
}


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
class PersonaRef:
    """The persona an audit put the model under (its run config's ``persona``)."""

    name: str
    system_prompt: str
    category: str | None
    #: How the run put it to the model (:data:`rho_audit.api.personas.PERSONA_SCORING`).
    scoring: str


@dataclass(frozen=True)
class AdapterProvenance:
    """What produced an audited adapter (:mod:`rho_audit.report.provenance`); unknowns are None."""

    trainer: str | None
    options: tuple[tuple[str, Any], ...]
    seed: int | None
    train_run_id: str | None
    train_status: str | None
    steps: int | None
    data: str | None
    #: Where this was read (the adapter folder, the run store), or why nothing was found.
    source: str

    @property
    def known(self) -> bool:
        return self.trainer is not None

    @property
    def summary(self) -> str:
        """``rho-guided λ=0.2 seed 42``: the trainer, its options and seed, for titles."""
        seed = f"seed {self.seed}" if self.seed is not None else ""
        return " ".join(x for x in (self.trainer or "", param_label(self.options), seed) if x)


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
    #: Set only for a run audited under a persona (``rho-audit run --persona``).
    persona: PersonaRef | None = None
    #: What produced the adapter (set by the cards that show it; None without an adapter).
    provenance: AdapterProvenance | None = None

    @property
    def label(self) -> str:
        """The run as a reader names it: model + adapter (what trained it) + date."""
        persona = f" (persona {self.persona.name})" if self.persona else ""
        if not self.adapter:
            adapter = "base model"
        elif self.provenance is not None and self.provenance.known:
            adapter = self.provenance.summary
        else:
            adapter = f"adapter {PurePath(self.adapter).name or self.adapter}"
        return f"{self.model}{persona} + {adapter}, {self.date[:10]}"


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
    #: The run judged (shown on the comparison card, where several runs share the table).
    run_id: str = ""

    @property
    def cost(self) -> str:
        return "unknown (some calls unpriced)" if self.cost_usd is None else f"${self.cost_usd:.4f}"

    @property
    def budget(self) -> str:
        """The run's judge budget (``--judge-max-usd``, ``--judge-max-calls``), or none."""
        usd = [f"at most ${self.max_usd:g}"] if self.max_usd is not None else []
        calls = [f"at most {self.max_calls} calls"] if self.max_calls is not None else []
        return ", ".join(usd + calls) or "none"


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
    #: Dimensions the run's config planned that have no result in the store (an interrupted run).
    missing: tuple[str, ...] = ()
    #: Pooled accuracy of each pair dimension that scored two or more extra probe sets (--probes).
    ood: tuple[PooledAccuracy, ...] = ()

    @property
    def interrupted(self) -> bool:
        return self.header.status == "interrupted"


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
    #: Every compared run's LLM-judge usage, run by run (empty when no run used one).
    judge_usage: tuple[JudgeUsage, ...] = ()


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
    #: The pooled accuracy of each dimension's extra probe sets in this audit (``audit.probes``).
    pooled: tuple[PooledAccuracy, ...] = ()
    #: dimension -> its metric in this audit (which item-level test applies).
    metrics: Mapping[str, str] = field(default_factory=dict)
    #: dimension -> its secondary figures in this audit (a plugin's own, shown as stored).
    secondary: Mapping[str, Mapping[str, float | None]] = field(default_factory=dict)
    #: dimension -> the secondary figures its evaluation asks sweep cards to plot (``Evaluation.trend``).
    trends: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


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
    """``condition`` − ``versus`` on one dimension: seed level (Welch) and item level (bootstrap)."""

    condition: str
    dimension: str
    test: report_stats.GroupTest
    versus: str = ""
    #: The difference of the conditions' mean scores over seeds, recomputed on resampled probes.
    items: PairedDifference | None = None


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
    #: σ / σ(reference): below 1 the seeds agree more than the reference's (variance collapse).
    ratio: float | None = None


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
class OodLevel:
    """One row of an OOD table: the base model's audit, or one condition over its seeds."""

    label: str
    n_audits: int
    sets: tuple[Summary, ...]  # each set's paired accuracy over seeds, in the table's set order
    set_deltas: tuple[float | None, ...]  # mean − the baseline's, per set
    pooled: Summary  # the pooled accuracy over seeds
    pooled_delta: float | None
    #: The pooled count and its Wilson CI when the row is one audit (the baseline, one seed).
    single: Accuracy | None = None


@dataclass(frozen=True)
class OodTable:
    """The paper's Table 8 for one pair dimension: each extra set and all of them pooled."""

    model: str  # "" when the sweep has one model
    dimension: str
    sets: tuple[str, ...]
    rows: tuple[OodLevel, ...]  # the baseline first, then the conditions
    has_baseline: bool


@dataclass(frozen=True)
class SecondaryRow:
    dimension: str
    figure: str
    values: tuple[Summary, ...]  # per column of its table, over the seeds of that column


@dataclass(frozen=True)
class SecondaryTable:
    """The dimensions' secondary figures (whatever keys they store): the base model's audit and
    each condition's mean over seeds, as stored (not Δ)."""

    model: str  # "" when the sweep has one model
    columns: tuple[str, ...]  # the baseline (when there is one), then the conditions
    rows: tuple[SecondaryRow, ...]


@dataclass(frozen=True)
class BudgetLevel:
    """One objective at one token budget: its audits' scores over complete seeds (not Δ)."""

    objective: str  # the trainer and its settings other than the budget, e.g. "rho-guided λ=0.2"
    budget: int  # ``budget_tokens``: response tokens of the SFT data stream
    condition: ConditionStats
    scores: Mapping[str, Summary]  # dimension -> score over seeds
    #: dimension -> half-width of the 95% t-interval of the mean (None below 2 seeds).
    half_ci: Mapping[str, float | None]


@dataclass(frozen=True)
class BudgetStudy:
    """Scores against the token budget when the grid varies ``budget_tokens``: per dimension one
    figure with a line per objective, and the same numbers as a table."""

    model: str  # "" when the sweep has one model
    objectives: tuple[str, ...]  # line order: the sweep's condition order (sft first)
    budgets: tuple[int, ...]  # ascending
    levels: tuple[BudgetLevel, ...]  # objective by objective, budgets ascending
    #: The untrained base model's score per column; {} without a complete baseline cell.
    baseline: Mapping[str, float | None]
    figures: tuple[Figure, ...]  # one per column
    #: The table's columns: each dimension's headline (named by the dimension), then each trend
    #: figure (``DIMENSION FIGURE``, e.g. ``dark-triad p_match``).
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class SweepSplit:
    """Everything the sweep card shows for one audit split."""

    split: str
    #: "" with one split; else the split in words, appended to each heading.
    heading: str
    #: "" with one split; else the split, appended to ids and figure names.
    tag: str
    dimensions: tuple[str, ...]
    baselines: Mapping[str, Mapping[str, float | None]]
    value_label: str
    cells: tuple[SweepCell, ...]
    conditions: tuple[ConditionStats, ...]
    dose: tuple[DoseResponse, ...]
    ablations: tuple[Ablation, ...]  # one per model
    variances: tuple[VarianceCollapse, ...]  # one per model
    margin: tuple[MarginLevel, ...]
    ood: tuple[OodTable, ...]
    not_shown: tuple[str, ...]
    secondary: tuple[SecondaryTable, ...] = ()
    budget: tuple[BudgetStudy, ...] = ()  # one per model, when the grid varies budget_tokens
    margin_figures: tuple[Figure, ...] = ()  # Δ vs γ, beside the margin table

    @property
    def label(self) -> str:
        return split_label(self.split)

    @property
    def figures(self) -> list[Figure]:
        return (
            [f for b in self.budget for f in b.figures]
            + [d.figure for d in self.dose]
            + [x.figure for x in (*self.ablations, *self.variances)]
            + list(self.margin_figures)
        )


@dataclass(frozen=True)
class SweepCard:
    title: str
    sweep_id: str
    models: tuple[str, ...]
    trainers: tuple[str, ...]
    seeds: tuple[int, ...]
    audit: tuple[tuple[str, str], ...]
    n_cells: int
    n_complete: int
    #: One per audit split, held-out first (one for a sweep that audits one split).
    splits: tuple[SweepSplit, ...]
    statistics: tuple[Statistic, ...]
    kind: str = "sweep"
    #: Per condition, how training moved the SFT and contrastive losses (see ``training_losses``).
    training: tuple[LossChange, ...] = ()
    #: LLM-judge usage summed over the cells' audits (``run_id`` says over how many).
    judge_usage: tuple[JudgeUsage, ...] = ()

    # The held-out (first) split's tables, by name: what a one-split card is made of.
    @property
    def dimensions(self) -> tuple[str, ...]:
        return self.splits[0].dimensions

    @property
    def baselines(self) -> Mapping[str, Mapping[str, float | None]]:
        return self.splits[0].baselines

    @property
    def value_label(self) -> str:
        return self.splits[0].value_label

    @property
    def cells(self) -> tuple[SweepCell, ...]:
        return self.splits[0].cells

    @property
    def conditions(self) -> tuple[ConditionStats, ...]:
        return self.splits[0].conditions

    @property
    def dose(self) -> tuple[DoseResponse, ...]:
        return self.splits[0].dose

    @property
    def ablations(self) -> tuple[Ablation, ...]:
        return self.splits[0].ablations

    @property
    def variances(self) -> tuple[VarianceCollapse, ...]:
        return self.splits[0].variances

    @property
    def margin(self) -> tuple[MarginLevel, ...]:
        return self.splits[0].margin

    @property
    def ood(self) -> tuple[OodTable, ...]:
        return self.splits[0].ood

    @property
    def not_shown(self) -> tuple[str, ...]:
        return self.splits[0].not_shown


Card = AuditCard | ComparisonCard | SweepCard
ProbeTexts = Callable[[str, str], Mapping[str, ProbeText]]
