"""Token relevance of the diff's read-outs (``rho-audit diff``): the share of a read-out's top
tokens that relate to the fine-tuning domain, per position, with the maximum over positions as
the activation-difference-lens paper reports it, for δ̄ and for the base-mean baseline.

Two graders decide which tokens are relevant:

- an LLM judge plugin (``claude``, ``local`` or any :class:`~rho_audit.api.LLMJudge`) given a
  description of the domain and one token per item, with the ``token-relevance`` rubric
  (:data:`RUBRIC`); its verdicts are cached in the run store and its calls budgeted like any
  judge's, and each distinct token is asked about once per run;
- the keyword match (the fallback, no model): a token that is a keyword's word, inflected or not
  ("kettles"), or a long enough piece starting one ("volcan" of "volcanic"). Matching at word
  starts keeps "and" from counting as part of "landlubber" and "sea" from counting inside
  "research"; the length rule keeps "land" and "bil" (which start many words) out.

Tokens with no letter or digit (spaces, punctuation) are irrelevant without asking either grader.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rho_audit.api.errors import JudgeError, RhoAuditError
from rho_audit.api.judges import NON_VERDICTS
from rho_audit.api.llm_judges import LLMJudge
from rho_audit.audit.diff import PositionDiff, TokenScore

#: The rubric the relevance judge gets unless ``--judge-option rubric=...`` names another.
RUBRIC = Path(__file__).parent / "rubrics" / "token-relevance.j2"
#: The rubric label that means "relevant"; the rubric's other labels mean "not relevant".
RELEVANT = "yes"
#: The read-outs graded, as (document key, readout field).
READOUTS = (("logit_lens", "logit_lens"), ("patchscope", "patchscope"))
KEYWORD_GRADER = "keyword match (a keyword's word, inflected or not, or a piece starting one)"
#: Endings a keyword's word may take and still match (a token or a word in steered text).
INFLECTIONS = ("", "s", "es", "ed", "d", "ing", "er", "ers", "or", "ors", "y", "ies", "ly")


class Grader(Protocol):
    """Decides which tokens are relevant; ``None``: the grader gave no verdict (budget, error)."""

    @property
    def name(self) -> str: ...

    def grade(self, keys: Sequence[str]) -> dict[str, bool | None]: ...


def token_key(token: str) -> str:
    """How a token is graded: its text without surrounding whitespace (" oven" is "oven")."""
    return token.strip()


def _generic(key: str) -> bool:
    return not any(c.isalnum() for c in key)


def keyword_words(keywords: Sequence[str]) -> list[str]:
    """The lower-case words of ``keywords`` ("volcanic glass" gives "volcanic" and "glass")."""
    return [w for k in keywords for w in k.lower().split()]


def keyword_pattern(keywords: Sequence[str]) -> re.Pattern[str]:
    """Matches any of ``keywords`` as whole words, each word allowed an :data:`INFLECTIONS` ending."""
    endings = "|".join(re.escape(e) for e in INFLECTIONS if e)
    phrases = [r"\s+".join(re.escape(w) for w in k.lower().split()) for k in keywords if k.split()]
    return re.compile(rf"(?<!\w)(?:{'|'.join(phrases)})(?:{endings})?(?!\w)", re.IGNORECASE)


@dataclass(frozen=True)
class KeywordGrader:
    """Relevant: a token that is a keyword's word, with an :data:`INFLECTIONS` ending or none
    ("kettles"), or a piece starting such a word that is at least 4 characters and half the word
    long ("volcan", "landl"; not "land" of "landlubber")."""

    keywords: tuple[str, ...]
    name: str = KEYWORD_GRADER

    def grade(self, keys: Sequence[str]) -> dict[str, bool | None]:
        words = keyword_words(self.keywords)
        out: dict[str, bool | None] = {}
        for key in keys:
            s = key.lower()
            out[key] = len(s) >= 3 and any(
                (s.startswith(w) and s[len(w) :] in INFLECTIONS)
                # a word piece: long enough not to start many other words ("land", "bil" do)
                or (w.startswith(s) and len(s) >= 4 and 2 * len(s) >= len(w))
                for w in words
            )
        return out


@dataclass
class JudgeGrader:
    """An LLM judge asked, per distinct token, whether it relates to ``domain``."""

    judge: LLMJudge
    domain: str

    @property
    def name(self) -> str:
        return f"LLM judge {self.judge.describe()}"

    def grade(self, keys: Sequence[str]) -> dict[str, bool | None]:
        asked = [k for k in dict.fromkeys(keys) if not _generic(k)]
        verdicts = self.judge.judge_fields([{"domain": self.domain, "token": k} for k in asked])
        out: dict[str, bool | None] = {k: False for k in keys if _generic(k)}
        for key, verdict in zip(asked, verdicts, strict=True):
            out[key] = None if verdict.label in NON_VERDICTS else verdict.label == RELEVANT
        return out


def relevance_judge(
    host: Any,
    name: str,
    options: Mapping[str, str],
    max_usd: float | None,
    max_calls: int | None,
    warn: Callable[[str], None] | None = None,
) -> LLMJudge:
    """The judge plugin ``name`` with the token-relevance rubric (unless ``options`` name another),
    budgeted and checked ready and reachable: called before any model work."""
    from rho_audit.judging.preflight import configure_judge

    judge_class = host.judge(name).obj
    if not (isinstance(judge_class, type) and issubclass(judge_class, LLMJudge)):
        raise RhoAuditError(
            f"--relevance-judge {name}: a relevance judge must be an LLM judge that reads a rubric "
            "(claude, local, or a plugin built on rho_audit.api.LLMJudge); for keyword relevance pass "
            "--keywords instead."
        )
    judge = judge_class(**{"rubric": str(RUBRIC), **dict(options)})
    rubric = judge.rubric
    if RELEVANT not in rubric.labels or not set(rubric.fields) <= {"domain", "token"}:
        raise JudgeError(
            f"rubric {rubric.name!r} cannot grade token relevance: it needs the label {RELEVANT!r} and "
            f"only the fields domain and token (it has labels {', '.join(rubric.labels)} and fields "
            f"{', '.join(rubric.fields) or 'none'}). Leave the rubric option out to use {RUBRIC.name}."
        )
    configure_judge(judge, max_usd, max_calls, warn)
    judge.preflight()
    return judge


def share(tokens: Sequence[TokenScore], labels: Mapping[str, bool | None]) -> float:
    """Share of ``tokens`` graded relevant (a token with no verdict counts as not relevant)."""
    if not tokens:
        return 0.0
    return sum(bool(labels.get(token_key(t.token))) for t in tokens) / len(tokens)


def relevance_table(positions: Sequence[PositionDiff], grader: Grader) -> dict[str, Any]:
    """Per position, the relevance share of each read-out of δ̄ and of the base mean; the maximum
    over positions and read-outs (the paper's report) of each; every graded token's label."""
    keys = sorted(
        {
            token_key(t.token)
            for p in positions
            for readout in (p.diff, p.base)
            for _, field in READOUTS
            for t in getattr(readout, field)
        }
    )
    labels = grader.grade(keys)
    table = {
        name: [
            {key: share(getattr(getattr(p, which), field), labels) for key, field in READOUTS}
            for p in positions
        ]
        for name, which in (("diff", "diff"), ("base_mean", "base"))
    }
    best = {name: max((max(r.values()) for r in rows), default=0.0) for name, rows in table.items()}
    best_by_readout = {
        name: {key: max((r[key] for r in rows), default=0.0) for key, _ in READOUTS}
        for name, rows in table.items()
    }
    return {
        "grader": grader.name,
        "per_position": table,
        "max": best,
        "max_by_readout": best_by_readout,
        "labels": labels,
        "ungraded": sum(v is None for v in labels.values()),
    }


def grader_agreement(a: Mapping[str, bool | None], b: Mapping[str, bool | None]) -> dict[str, Any]:
    """How two graders' labels agree on the tokens both graded (tokens with no letter or digit,
    irrelevant by rule, left out): Cohen's kappa, observed agreement, and each one's relevant count."""
    from rho_audit.judging.agreement import agreement

    keys = [k for k in a if k in b and a[k] is not None and b[k] is not None and not _generic(k)]

    def name(v: bool | None) -> str:
        return "relevant" if v else "not relevant"

    result = agreement([name(a[k]) for k in keys], [name(b[k]) for k in keys], ("relevant", "not relevant"))
    return {
        "n": result.n,
        "observed": result.observed,
        "kappa": result.kappa,
        "relevant": [sum(bool(a[k]) for k in keys), sum(bool(b[k]) for k in keys)],
        "confusion": [list(row) for row in result.confusion],
    }
