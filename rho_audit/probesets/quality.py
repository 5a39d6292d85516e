"""Quality checks for a probe set: the things that silently ruin a behavioural score.

A probe set can validate record by record and still be useless: duplicated items inflate n,
an answer always in position A lets a model score by position, a positive that is
systematically longer than its negative turns a summed log-prob comparison into a length test,
and a labelled split holding (almost) only one label leaves nothing to compare. A card's own
account of its categories must match the file, and one that promises balanced categories (the
jailbreak requests) must keep them balanced.
``check_probe_set`` measures each of these and lists every problem; the test suite runs it on
every built-in set and ``rho-audit probes validate`` runs it on user sets.

Run directly: ``python -m rho_audit.probesets.quality probes/factual probes/bias``.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rho_audit.probesets.persona import consistency_problems, consistency_shares, persona_records
from rho_audit.probesets.schema import ChoiceProbe, LabelledProbe, PairProbe, Probe, ProbeSet, load_probe_set

MAX_LENGTH_RATIO = 1.3  # mean positive/negative length ratio beyond this is flagged (either way)
#: A card with ``balanced_categories: true`` promises categories of about equal size: the largest
#: may hold at most this many times the records of the smallest.
MAX_CATEGORY_RATIO = 1.5
POSITION_TOLERANCE = 0.05  # an A/B position share may sit within ±5 points of even
MIN_TRAIN_SHARE, MAX_TRAIN_SHARE = 0.35, 0.65
#: In a labelled split of 10 or more texts, each label should hold at least this share: the CI of
#: an unpaired rho widens fast as the smaller group shrinks.
MIN_LABEL_SHARE = 0.3
HASH_SPLIT_RULE = "split = train if int(sha256(id)[:8], 16) % 2 == 0 else eval"
#: The same rule for a set of paired records (BBQ's ambiguous and disambiguated versions of one
#: scenario): a pair must not straddle train and eval, so the pair shares one id's split.
SIBLING_SPLIT_RULE = HASH_SPLIT_RULE + "; a record whose meta names a sibling takes that sibling's split"


def hash_split(probe_id: str) -> str:
    """The library's split rule: a fixed function of the id, the same on every machine."""
    return "train" if int(hashlib.sha256(probe_id.encode()).hexdigest()[:8], 16) % 2 == 0 else "eval"


def sibling_split(probe: Probe) -> str:
    """:data:`SIBLING_SPLIT_RULE`: the split of the record's ``meta["sibling"]``, else of its id."""
    sibling = probe.meta.get("sibling")
    return hash_split(sibling if isinstance(sibling, str) else probe.id)


@dataclass
class QualityReport:
    name: str
    kind: str
    n: int
    splits: dict[str, int]
    categories: dict[str, int]
    length_ratio: float | None = None  # mean of len(positive) / len(negative), in characters
    position_shares: dict[str, float] = field(default_factory=dict)
    #: Persona statement sets: share of trait-consistent statements (see probesets.persona).
    consistency_shares: dict[str, float] = field(default_factory=dict)
    #: Labelled sets: share of texts with the card's desired label, per split.
    label_shares: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        parts = [
            f"{self.name}: {self.n} {self.kind} probes",
            f"train {self.splits.get('train', 0)}",
            f"eval {self.splits.get('eval', 0)}",
            f"{len(self.categories)} categories",
        ]
        if self.length_ratio is not None:
            parts.append(f"length ratio {self.length_ratio:.2f}")
        parts += [f"{k} {v:.0%}" for k, v in self.position_shares.items()]
        if "all" in self.consistency_shares:
            parts.append(f"trait-consistent {self.consistency_shares['all']:.0%}")
        parts += [f"desired label in {k} {v:.0%}" for k, v in self.label_shares.items()]
        return ", ".join(parts)


def check_probe_set(probes: ProbeSet) -> QualityReport:
    """Measure a loaded probe set and list every quality problem found."""
    records = probes.probes
    report = QualityReport(
        name=probes.name,
        kind=probes.kind,
        n=len(records),
        splits=dict(Counter(p.split for p in records)),
        categories=dict(sorted(Counter(p.category or "-" for p in records).items())),
    )
    report.problems += _duplicate_texts(records)
    report.problems += _split_problems(probes, report.splits)
    report.problems += _category_problems(probes, report.categories)
    pairs = list(_text_pairs(records))
    if pairs:
        report.length_ratio = float(np.mean([len(pos) / len(neg) for pos, neg in pairs]))
        if not 1 / MAX_LENGTH_RATIO <= report.length_ratio <= MAX_LENGTH_RATIO:
            report.problems.append(
                f"positives are systematically {'longer' if report.length_ratio > 1 else 'shorter'} than "
                f"negatives (mean length ratio {report.length_ratio:.2f}, limit {MAX_LENGTH_RATIO}); a "
                "log-prob comparison would partly measure length. Rebalance the texts."
            )
    choices = [p for p in records if isinstance(p, ChoiceProbe)]
    if choices:
        report.position_shares = _position_shares(choices)
        report.problems += _position_problems(choices, report.position_shares)
        persona = persona_records(choices)
        if persona:
            report.consistency_shares = consistency_shares(persona)
            report.problems += consistency_problems(persona)
    texts = [p for p in records if isinstance(p, LabelledProbe)]
    desired = getattr(probes.card, "desired_label", None)
    if texts and desired is not None:
        _check_labels(report, texts, desired, probes.card.label_name or "label")
    return report


def _check_labels(report: QualityReport, texts: list[LabelledProbe], desired: bool, label: str) -> None:
    """Label balance per split, labels that contradict each other, and a length gap between the
    two label groups (a mean per-token log-prob still leans on length and register)."""
    for split in sorted({p.split for p in texts}):
        own = [p.label for p in texts if p.split == split]
        share = own.count(desired) / len(own)
        report.label_shares[split] = share
        if share in (0.0, 1.0):
            report.problems.append(
                f"{split}: all {len(own)} texts have {label} = {str(own[0]).lower()}; with one label there "
                "is nothing to compare, so this split gets no score. Add texts of the other label."
            )
        elif len(own) >= 10 and min(share, 1 - share) < MIN_LABEL_SHARE:
            report.problems.append(
                f"{split}: desired-label texts are {share:.0%} of {len(own)}, outside "
                f"{MIN_LABEL_SHARE:.0%}-{1 - MIN_LABEL_SHARE:.0%}; rebalance the labels"
            )
    labels: dict[str, tuple[bool, str]] = {}
    for p in texts:
        key = " ".join(p.text.lower().split())
        if key in labels and labels[key][0] != p.label:
            report.problems.append(f"{p.id}: same text as {labels[key][1]} with the other {label}")
        labels.setdefault(key, (p.label, p.id))
    good = [len(p.text) for p in texts if p.label == desired]
    bad = [len(p.text) for p in texts if p.label != desired]
    if good and bad:
        report.length_ratio = float(np.mean(good) / np.mean(bad))
        if not 1 / MAX_LENGTH_RATIO <= report.length_ratio <= MAX_LENGTH_RATIO:
            report.problems.append(
                f"desired-label texts are {'longer' if report.length_ratio > 1 else 'shorter'} than the "
                f"others (mean length ratio {report.length_ratio:.2f}, limit {MAX_LENGTH_RATIO}); a length "
                "or register difference between the groups is measured along with the label"
            )


def _text_pairs(records: Iterable) -> Iterable[tuple[str, str]]:
    """(desired, undesired) texts: a pair's positive/negative, a choice's answer/biased answer."""
    for p in records:
        if isinstance(p, PairProbe):
            yield p.positive, p.negative
        elif isinstance(p, ChoiceProbe) and p.biased_answer not in (None, p.answer):
            # (A pro-stereotypical BBQ item's answer is the biased option itself: no pair.)
            yield p.choices[p.answer], p.choices[p.biased_answer]


def _duplicate_texts(records: Iterable) -> list[str]:
    problems = []
    seen: dict[tuple[str, str], str] = {}
    for p in records:
        for field_name in ("prompt", "positive", "negative", "text"):
            text = getattr(p, field_name, None)
            if text is None or (field_name != "prompt" and getattr(p, "prompt", None)):
                # Replies to different prompts may legitimately repeat ("I can't help with that.").
                continue
            key = (field_name, _folded(text))
            if key in seen:
                problems.append(f"{p.id}: {field_name} duplicates that of {seen[key]}")
            else:
                seen[key] = p.id
    return problems


def _folded(text: str) -> str:
    """``text`` with case, spacing and punctuation folded away: "Why?" and "why ." are one text."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _category_problems(probes: ProbeSet, counts: dict[str, int]) -> list[str]:
    """The card's ``categories`` (a count per category) must match the file; a card that says
    ``balanced_categories: true`` must have categories within :data:`MAX_CATEGORY_RATIO`."""
    problems = []
    declared = getattr(probes.card, "categories", None)
    if isinstance(declared, dict) and {str(k): v for k, v in declared.items()} != counts:
        problems.append(
            f"the card's categories ({_counts(declared)}) do not match the records ({_counts(counts)}); "
            "update `categories` in card.yaml"
        )
    if getattr(probes.card, "balanced_categories", False) is True and counts:
        small, large = min(counts.values()), max(counts.values())
        if large > MAX_CATEGORY_RATIO * small:
            problems.append(
                f"categories are unbalanced ({_counts(counts)}): the largest holds {large / small:.1f}x the "
                f"smallest, more than the {MAX_CATEGORY_RATIO}x a card with balanced_categories allows; "
                "add records to the small categories"
            )
    return problems


def _counts(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def _split_problems(probes: ProbeSet, splits: dict[str, int]) -> list[str]:
    problems = []
    n = sum(splits.values())
    train_share = splits.get("train", 0) / n if n else 0.0
    if n >= 10 and not MIN_TRAIN_SHARE <= train_share <= MAX_TRAIN_SHARE:
        problems.append(
            f"train share {train_share:.0%} is outside {MIN_TRAIN_SHARE:.0%}-{MAX_TRAIN_SHARE:.0%}; "
            "trainers and held-out audits both need enough records"
        )
    rule = getattr(probes.card, "split_rule", None)
    if rule in (HASH_SPLIT_RULE, SIBLING_SPLIT_RULE):
        expected = sibling_split if rule == SIBLING_SPLIT_RULE else lambda p: hash_split(p.id)
        wrong = [p.id for p in probes.probes if p.split != expected(p)]
        if wrong:
            problems.append(
                f"{len(wrong)} record(s) break the card's split rule (e.g. {wrong[0]}): recompute "
                "`split` from the id"
            )
    return problems


def _position_shares(choices: list[ChoiceProbe]) -> dict[str, float]:
    """Where the correct answer sits, and whether the biased option comes before the other one."""
    n = len(choices)
    widths = Counter(len(p.choices) for p in choices)
    shares: dict[str, float] = {}
    if len(widths) == 1:
        (k,) = widths
        at = Counter(p.answer for p in choices)
        shares.update({f"answer@{chr(65 + i)}": at.get(i, 0) / n for i in range(k)})
    biased = [p for p in choices if p.biased_answer not in (None, p.answer)]
    if biased:
        shares["answer before biased"] = sum(p.answer < p.biased_answer for p in biased) / len(biased)
    three_way = [p for p in choices if p.biased_answer is not None and len(p.choices) == 3]
    if three_way:
        # With three options (person A, person B, unknown) the two people must not always
        # appear stereotype-first, or position alone would predict the biased option.
        shares["biased before other"] = sum(
            p.biased_answer < (3 - _unknown(p) - p.biased_answer) for p in three_way
        ) / len(three_way)
    return shares


def _unknown(p: ChoiceProbe) -> int:
    """The unknown option: ``unknown_answer``, else (a set without it) the correct answer."""
    return p.unknown_answer if p.unknown_answer is not None else p.answer


def _position_problems(choices: list[ChoiceProbe], shares: dict[str, float]) -> list[str]:
    problems = []
    answer_positions = {k: v for k, v in shares.items() if k.startswith("answer@")}
    for key, share in answer_positions.items():
        even = 1 / len(answer_positions)
        if len(choices) >= 20 and abs(share - even) > POSITION_TOLERANCE:
            problems.append(
                f"{key} holds {share:.0%} of answers (even is {even:.0%}, tolerance "
                f"±{POSITION_TOLERANCE:.0%}); rotate the choice order"
            )
    for key in ("biased before other",):
        if key in shares and len(choices) >= 20 and abs(shares[key] - 0.5) > POSITION_TOLERANCE:
            problems.append(f"{key} in {shares[key]:.0%} of probes (must be 45-55%); alternate the order")
    return problems


def main(argv: list[str] | None = None) -> int:
    failed = False
    for arg in argv if argv is not None else sys.argv[1:]:
        report = check_probe_set(load_probe_set(Path(arg)))
        print(report.summary())
        for problem in report.problems:
            print(f"  PROBLEM {problem}")
        failed |= not report.ok
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
