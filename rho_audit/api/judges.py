"""Judges: what decides about generated text, and the records it reads and returns."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from rho_audit.api.context import CountProgress

log = logging.getLogger(__name__)

#: The verdict labels of an item that got no judgement (they carry ``error``): the judge's answer
#: was unreadable twice, the budget was spent, or the request failed.
UNPARSEABLE = "unparseable"
SKIPPED_BUDGET = "skipped_budget"
ERROR = "error"
#: Labels that are not a judgement: they never enter the cache or an agreement statistic.
NON_VERDICTS = (UNPARSEABLE, SKIPPED_BUDGET, ERROR)


@dataclass(frozen=True)
class Verdict:
    """A judge's decision about one response."""

    label: str
    judge: str
    score: float | None = None
    rationale: str = ""
    error: str | None = None


@dataclass(frozen=True)
class JudgeItem:
    """One generated reply to judge, with the prompt it answers."""

    prompt: str
    response: str


class VerdictStore(Protocol):
    """Where a judge caches verdicts and records its usage: the run store, as :meth:`Judge.attach`
    receives it."""

    def judge_cache_get(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """Cached verdicts (``label``, ``score``, ``rationale``) for the keys that have one."""
        ...

    def judge_cache_put(
        self, key: str, judge_id: str, judge_model: str, rubric_sha256: str, verdict: Verdict
    ) -> None:
        """Cache one verdict at once, so an interrupted run keeps it."""
        ...

    def record_judge_usage(self, run_id: str, context: str, usage: dict[str, Any]) -> None:
        """Replace the usage row of (run, judge, context) with ``usage``."""
        ...


def _log_warning(message: str) -> None:
    """Log a judge's warning (where it goes until the host points :attr:`Judge.warn` elsewhere)."""
    log.warning("%s", message)


class Judge:
    """Decides about generated text. Instantiated once per run with its options.

    A judge implements :meth:`judge`. The other methods are how the host configures judges that
    cost money or time (budget, cache, usage, a preflight); here they do nothing, so a rule-based
    judge overrides none of them and the host treats every judge alike. A model-based judge
    subclasses :class:`~rho_audit.api.llm_judges.LLMJudge`, which implements them all.
    """

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""
    #: The labels this judge can return; ``refused`` is what generation dimensions count.
    labels: ClassVar[tuple[str, ...]] = ("refused", "complied")
    #: Called with (done, total) items while :meth:`judge` works; the host sets it per batch.
    progress: CountProgress | None = None
    #: Reports a problem that does not stop judging (e.g. the budget ran out); the host points it
    #: at the run's display. Default: the log.
    warn: Callable[[str], None] = staticmethod(_log_warning)

    def __init__(self, **options: Any) -> None:
        self.options = options

    @property
    def judge_id(self) -> str:
        """``name@version``: identifies the judge's verdicts in the store."""
        return f"{self.name}@{self.version}"

    def judge(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        """Return one :class:`Verdict` per item, in order. A failure on one item is a verdict
        with ``error`` set, never an exception that loses the batch."""
        raise NotImplementedError

    def describe(self) -> str:
        """The judge as a run's scoring line names it (an LLM judge adds its model and rubric)."""
        return self.judge_id

    def set_budget(self, max_usd: float | None, max_calls: int | None) -> None:
        """Apply ``--judge-max-usd`` / ``--judge-max-calls``. Default: nothing to limit."""

    def check_ready(self) -> None:
        """Raise :class:`~rho_audit.api.errors.JudgeError` if the judge cannot run (no key, no
        package); called before any model work. Default: always ready."""

    def preflight(self) -> None:
        """Raise :class:`~rho_audit.api.errors.JudgeError` if the judge cannot answer at all
        (unreachable endpoint, rejected key). Called once before a run generates anything for it;
        must cost nothing against the budget. Default: nothing to check."""

    def attach(self, store: VerdictStore, run_id: str | None, context: str = "audit") -> None:
        """Cache verdicts in ``store`` and record usage under ``run_id`` (None: don't) and
        ``context`` (``audit``, ``agree``). Default: nothing to cache."""

    def usage(self) -> dict[str, Any] | None:
        """Calls, tokens and cost so far, as stored per run and shown on report cards; None for a
        judge that costs nothing."""
        return None
