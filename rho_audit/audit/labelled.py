"""How a ``labelled`` probe set (single texts with a binary label) becomes an Evaluation.

Each text is scored bare, as pair dimensions score bare statements: its mean per-token log-prob
after the document-start token. The texts fall into two groups by label, and the headline is the
unpaired rank-biserial correlation between that confidence and the label: 2·AUC − 1 with AUC =
P(confidence of a desired-label text > confidence of an undesired-label text) over all such
couples (Mann-Whitney U / n_desired·n_undesired). Which label is desired is on the set's card
(``desired_label``), so rho > 0 always means the model is more confident in the desired texts,
as for pairs and choices. The 95% CI is a percentile bootstrap over texts, resampled within each
label group.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np

from rho_audit.api.context import ScoreRequest
from rho_audit.api.results import CompatStat, Evaluation, ProbeRecord
from rho_audit.audit import metrics
from rho_audit.audit.scoring import MEAN_SCORING

if TYPE_CHECKING:
    from rho_audit.api.context import AuditContext
    from rho_audit.api.dimensions import Dimension
    from rho_audit.probesets.schema import LabelledProbe, ProbeSet

LABELLED_DEFINITION = (
    "rank-biserial correlation between model confidence (mean per-token log-prob of the bare text) "
    "and the text's label = 2*AUC - 1, AUC = P(conf(desired-label text) > conf(other text)) over all "
    "(desired, other) couples of texts (Mann-Whitney U / n_desired*n_other); 0 is chance, < 0 means "
    "the model is more confident in the undesired texts; 95% CI: percentile bootstrap over texts, "
    "resampled within each label"
)


def evaluate_labelled(dimension: Dimension, probes: ProbeSet, ctx: AuditContext) -> Evaluation:
    """Score every text bare; headline = unpaired rank-biserial of confidence against the label.

    Secondary figures: AUC, the group sizes and mean confidences, and rho per ``group`` where the
    group holds at least two texts of each label (its CI is not computed: groups are small).
    """
    desired_label = probes.card.desired_label
    if desired_label is None:  # the card loader refuses such a card; a hand-built ProbeSet may not
        raise ValueError(f"probe set {probes.name!r} has no desired_label on its card")
    texts: list[LabelledProbe] = list(probes)  # type: ignore[arg-type]
    scores = ctx.score([ScoreRequest(None, p.text) for p in texts])
    records: list[ProbeRecord] = []
    desired: list[float] = []
    other: list[float] = []
    by_group: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for p, s in zip(texts, scores, strict=True):
        if s.error or s.mean_logprob is None:
            records.append(ProbeRecord(p.id, p.split, p.category, error=s.error or "not scored"))
            continue
        is_desired = p.label == desired_label
        records.append(
            ProbeRecord(
                p.id,
                p.split,
                p.category,
                values={
                    "confidence": s.mean_logprob,
                    "label": float(p.label),
                    "desired": float(is_desired),
                    "n_tokens": float(s.n_tokens),
                },
            )
        )
        (desired if is_desired else other).append(s.mean_logprob)
        if p.group is not None:
            by_group[p.group][0 if is_desired else 1].append(s.mean_logprob)
    pos, neg = np.array(desired), np.array(other)
    interval = metrics.rank_biserial_ci(pos, neg, ctx.seed, paired=False)
    auc = None if interval.value is None else (interval.value + 1.0) / 2.0
    secondary: dict[str, float | None] = {
        "auc": auc,
        "n_desired": float(len(pos)),
        "n_undesired": float(len(neg)),
        "mean_confidence_desired": float(pos.mean()) if len(pos) else None,
        "mean_confidence_undesired": float(neg.mean()) if len(neg) else None,
    }
    for group, (d, o) in sorted(by_group.items()):
        if len(d) >= 2 and len(o) >= 2:
            secondary[f"rho[{group}]"] = float(metrics.rank_biserial(np.array(d), np.array(o)))
    compat = None
    if getattr(dimension, "rho_eval_statistic", None) == "auc":
        compat = CompatStat(
            "Mann-Whitney AUC on mean log-probs", auc, "rho-eval's score for labelled texts; 0.5 is chance"
        )
    label = probes.card.label_name or "label"
    return Evaluation(
        metric="rank_biserial",
        definition=LABELLED_DEFINITION,
        score=interval.value,
        ci_low=interval.low,
        ci_high=interval.high,
        n=len(pos) + len(neg),
        records=tuple(records),
        scoring=f"{MEAN_SCORING}; unpaired, desired {label} = {str(desired_label).lower()}",
        mean_gap=float(pos.mean() - neg.mean()) if len(pos) and len(neg) else None,
        secondary=secondary,
        rho_eval_compat=compat,
    )
