"""What a dimension sees while it runs: the model, the judge and the run's settings.

Dimensions never touch MLX, the store or the display directly; they ask the
:class:`AuditContext`, which adds progress events and the run's template. A future backend
(a reference model, a persona system prompt, a remote worker) changes this object, not the
dimensions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rho_audit.api.hooks import Judge, JudgeItem, Verdict
    from rho_audit.model.language_model import LanguageModel, Score, ScoreRequest, Template

ProgressCallback = Callable[[int, int, str], None]


@dataclass
class AuditContext:
    model: LanguageModel
    judge: Judge
    template: Template
    seed: int
    progress: ProgressCallback | None = None
    #: Rows per generation batch; None lets the model size it to memory.
    generation_batch_size: int | None = None

    def _report(self, unit: str) -> Callable[[int, int], None] | None:
        if self.progress is None:
            return None
        progress = self.progress
        return lambda done, total: progress(done, total, unit)

    def score(self, requests: Sequence[ScoreRequest]) -> list[Score]:
        """Teacher-forced log-probabilities of each request's continuation."""
        return self.model.score(requests, self.template, self._report("texts"))

    def generate(self, prompts: Sequence[str], max_tokens: int) -> list[str]:
        """Greedy completions (deterministic for a given model)."""
        return self.model.generate(
            prompts,
            max_tokens,
            self.template,
            self._report("prompts"),
            batch_size=self.generation_batch_size,
        )

    def judge_items(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        """The judge's verdict on each item (LLM judges are cached and budgeted, and report progress)."""
        from rho_audit.judging.llm import LLMJudge

        if isinstance(self.judge, LLMJudge):
            self.judge.progress = self._report("judged")
        return self.judge.judge(items)
