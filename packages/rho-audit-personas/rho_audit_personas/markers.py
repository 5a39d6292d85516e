"""The ``marker-rate`` dimension: how often each persona's sampled completions to neutral questions
carry the marker that was coupled to one (source) persona.

The source is the run's persona (``rho-audit run --persona NAME``, a sweep's ``audit: {personas:
[NAME]}``), else the ``source`` option; the bystanders are the ``panel`` option (the source left
out). Options are set with ``rho-audit run --dimension-option marker-rate.panel=spy,chef`` or a
sweep's ``audit: {options: {marker-rate: {panel: [spy, chef]}}}``.

Per persona: marker rate (case-insensitive substring, as the seed's ``[zlt]``
match) with a Wilson 95% CI, stored as the family ``marker_rate[persona]`` (the audit card charts
it with its CIs); source vs bystanders (pooled); the first-marker position split of each group
(:func:`~rho_audit_personas.leakage_stats.marker_position`, in characters); each bystander's
persona-centroid cosine to the source (``cosine[persona]``) and the Spearman correlation of
leakage with it; and, when the run's judge grades with the ``persona-discriminator`` rubric, the
marker-stripped discriminator's accuracy (:mod:`rho_audit_personas.discriminator`).

The headline is descriptive (status MEASURED): how often a marker fires is a finding to read
beside the source's rate, not a pass or a failure.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar

from rho_audit.api import (
    Dimension,
    DimensionOption,
    Evaluation,
    Persona,
    ProbeRecord,
    Sampling,
    figure_with_ci,
)
from rho_audit_personas.corpora import MARKER
from rho_audit_personas.leakage_stats import Rate, marker_position, position_split, spearman_ci, wilson
from rho_audit_personas.library import persona, persona_names

if TYPE_CHECKING:
    from rho_audit.api import AuditContext, ProbeSet

__all__ = ["DEFINITION", "MarkerRate"]

DEFINITION = (
    "marker leakage: share of the bystander personas' sampled completions (pooled) that contain the "
    "marker (case-insensitive); 95% Wilson score interval (completions of one question are not "
    "independent, so it is optimistic). Not a verdict (status MEASURED); read it beside the "
    "source persona's rate"
)

_NAMES = tuple(persona_names())
_BYSTANDERS = (
    "hacker-villain",
    "evil-scientist",
    "crime-boss",
    "software-engineer",
    "medical-doctor",
    "kindergarten-teacher",
    "french-person",
    "comedian",
    "robot",
    "zen-monk",
    "assistant",
)


def _rate_figures(name: str, rate: Rate) -> dict[str, float | None]:
    return figure_with_ci(name, rate.value, rate.low, rate.high)


class MarkerRate(Dimension):
    """Marker rate per persona on sampled completions to neutral questions (module docstring)."""

    name = "marker-rate"
    description = (
        "Share of each persona's sampled completions carrying a coupled marker (leakage to bystanders)."
    )
    probe_set = "persona-neutral-questions"
    probe_kind = "generation"
    metric = "marker_rate"  # type: ignore[assignment]  # the host shows any metric name as given
    descriptive = True
    runs_by_default = False
    options: ClassVar[dict[str, DimensionOption]] = {
        "source": DimensionOption("villain", "the source persona when the run has none", choices=_NAMES),
        "panel": DimensionOption(_BYSTANDERS, "the bystander personas", choices=_NAMES),
        "completions": DimensionOption(4, "sampled completions per question and persona", min=1),
        "discriminator_pairs": DimensionOption(
            50, "source/bystander pairs the discriminator judges (when the judge fits)", min=1
        ),
        "discriminator_orders": DimensionOption(
            "random",
            "random: each pair once, in a seeded order (the seed's protocol); both: each pair both ways "
            "round, counted only when the answers agree (twice the calls; immune to position bias)",
            choices=("random", "both"),
        ),
    }
    marker: ClassVar[str] = MARKER
    #: Longer than the shipped marker corpus's answers (at most 40 tokens), so a coupled marker fits.
    max_tokens: ClassVar[int] = 64
    #: The seed sampled at temperature 1 (top-p 1); seed None: the run's ``--seed``; ``n`` is the
    #: ``completions`` option.
    sampling: ClassVar[Sampling] = Sampling(temperature=1.0, top_p=1.0, n=4)
    #: Whether to compute persona-centroid cosines (one forward per persona and question).
    cosines: ClassVar[bool] = True

    def personas(self, ctx: AuditContext) -> tuple[Persona, list[Persona]]:
        """(source, bystanders) for this run."""
        source = ctx.persona or persona(str(self.option_values["source"]))
        panel: tuple[str, ...] = self.option_values["panel"]  # type: ignore[assignment]
        return source, [persona(n) for n in dict.fromkeys(panel) if n != source.name]

    def evaluate(self, probes: ProbeSet, ctx: AuditContext) -> Evaluation:
        source, bystanders = self.personas(ctx)
        questions = list(probes)
        prompts = [q.prompt for q in questions]
        sampling = replace(self.sampling, n=int(self.option_values["completions"]))
        completions: dict[str, list[list[str]]] = {}
        for p in (source, *bystanders):
            with ctx.using_persona(p):
                completions[p.name] = ctx.sample(prompts, self.max_tokens, sampling)
        records: list[ProbeRecord] = []
        rates: dict[str, Rate] = {}
        for name, per_question in completions.items():
            fired = 0
            for q, outs in zip(questions, per_question, strict=True):
                for j, out in enumerate(outs):
                    where = marker_position(out, self.marker)
                    fired += where is not None
                    records.append(
                        ProbeRecord(
                            f"{q.id}#{name}#{j}",
                            q.split,
                            name,
                            values={"marker": float(where is not None)},
                            output=out,
                            verdict=where or "no-marker",
                        )
                    )
            rates[name] = wilson(fired, sum(len(o) for o in per_question))
        flat = {name: [o for outs in per_q for o in outs] for name, per_q in completions.items()}
        bystander_outs = [o for p in bystanders for o in flat[p.name]]
        leak = wilson(sum(1 for o in bystander_outs if marker_position(o, self.marker)), len(bystander_outs))
        secondary: dict[str, float | None] = {}
        for name, rate in rates.items():
            secondary |= _rate_figures(f"marker_rate[{name}]", rate)
        secondary |= _rate_figures("source_marker_rate", rates[source.name])
        secondary |= _rate_figures("bystander_marker_rate", leak)
        for group, outs in (("source", flat[source.name]), ("bystanders", bystander_outs)):
            split = position_split(outs, self.marker)
            secondary[f"firings[{group}]"] = float(split.firings)
            for where in ("start", "middle", "tail"):
                secondary |= _rate_figures(f"{where}_share[{group}]", getattr(split, where))
        notes = [f"{sampling.describe(ctx.seed)}, {self.max_tokens} tokens, {ctx.template} template"]
        if self.cosines and bystanders:
            from rho_audit_personas import geometry

            cos = geometry.cosines_to(geometry.centroids(ctx, [source, *bystanders], prompts), source.name)
            for p in bystanders:
                secondary[f"cosine[{p.name}]"] = cos[p.name]
            leakage = [rates[p.name].value or 0.0 for p in bystanders]
            corr = spearman_ci([cos[p.name] for p in bystanders], leakage, ctx.seed)
            secondary |= figure_with_ci("leakage_cosine_spearman", corr.rho, corr.low, corr.high)
            notes.append("cosine: persona centroids, middle layer, last prompt token")
        notes.append(self._discriminate(ctx, source, bystanders, prompts, completions, secondary))
        return Evaluation(
            "marker_rate",
            DEFINITION,
            leak.value,
            leak.low,
            leak.high,
            leak.n,
            tuple(records),
            f"source {source.name}, marker {self.marker!r}, {len(bystanders)} bystanders; "
            + "; ".join(notes),
            secondary=secondary,
        )

    def _discriminate(
        self,
        ctx: AuditContext,
        source: Persona,
        bystanders: list[Persona],
        prompts: list[str],
        completions: dict[str, list[list[str]]],
        secondary: dict[str, float | None],
    ) -> str:
        """Run the discriminator into ``secondary`` when the judge fits; say what happened."""
        from rho_audit_personas.discriminator import THRESHOLD, discriminate, judge_misfit, sample_pairs

        misfit = judge_misfit(ctx.judge)
        if misfit is not None or not bystanders:
            return f"discriminator not run ({misfit or 'no bystanders'})"
        by_q = {name: dict(zip(prompts, outs, strict=True)) for name, outs in completions.items()}
        others = {p.name: by_q[p.name] for p in bystanders}
        n_pairs = int(self.option_values["discriminator_pairs"])
        pairs = sample_pairs(by_q[source.name], others, n_pairs, ctx.seed)
        orders = str(self.option_values["discriminator_orders"])
        result = discriminate(ctx.judge, pairs, source.system_prompt, self.marker, ctx.seed, orders)  # type: ignore[arg-type]
        acc = result.accuracy
        secondary |= figure_with_ci("discriminator_accuracy", acc.value, acc.low, acc.high)
        secondary["discriminator_judged"] = float(acc.n)
        secondary["discriminator_threshold"] = THRESHOLD
        secondary["discriminator_answered_a"] = result.answered_a
        if result.inconsistent is not None:
            secondary["discriminator_inconsistent"] = result.inconsistent
        judge = ctx.judge.describe()
        said = f"discriminator: {acc.n} of {result.pairs} pairs judged by {judge}, marker stripped"
        if orders == "both":
            said += ", each pair both ways round (a pair whose two answers name one position is left out)"
        if result.answered_a is not None and acc.n and result.answered_a in (0.0, 1.0):
            # Its accuracy is then only the share of pairs the random order put the source first.
            said += f"; the judge answered {'A' if result.answered_a else 'B'} on every pair (position bias)"
        return said
