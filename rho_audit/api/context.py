"""What a dimension sees while it runs: the model, the judge and the run's settings.

Dimensions never touch MLX, the store or the display directly; they ask the
:class:`AuditContext`, which adds progress events and the run's template. A future backend
(a reference model, a persona system prompt, a remote worker) changes this object, not the
dimensions. The records it takes and returns (:class:`ScoreRequest`, :class:`Score`) live here
too, so a plugin reads them without importing the model layer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from rho_audit.api.inference import HiddenPositions, Layer, Sampling

if TYPE_CHECKING:
    import numpy as np

    from rho_audit.api.attacks import Attack
    from rho_audit.api.judges import Judge, JudgeItem, Verdict
    from rho_audit.api.personas import Persona
    from rho_audit.model.language_model import LanguageModel

#: How prompts are put to the model. ``chat``: a prompt is the user turn, the continuation the
#: assistant reply (the tokenizer's chat template). ``raw``: prompt + newline + continuation.
Template = Literal["chat", "raw"]
#: Called with (done, total) as a batch of texts, prompts or judged items proceeds.
CountProgress = Callable[[int, int], None]
#: Called with (done, total, unit) as a dimension proceeds; ``unit`` names what is counted.
ProgressCallback = Callable[[int, int, str], None]


@dataclass(frozen=True)
class ScoreRequest:
    """Score ``continuation`` after ``prompt`` (None: a bare statement)."""

    prompt: str | None
    continuation: str


@dataclass(frozen=True)
class Score:
    """Teacher-forced log-probability of one request's continuation, in nats.

    ``sum_logprob``/``mean_logprob`` are None (and ``error`` says why) when it could not be scored.
    """

    sum_logprob: float | None
    mean_logprob: float | None
    n_tokens: int
    error: str | None = None


@dataclass
class AuditContext:
    """The model, judge, template and seed of the running audit, as a dimension uses them."""

    model: LanguageModel
    judge: Judge
    template: Template
    seed: int
    progress: ProgressCallback | None = None
    #: Rows per generation batch; None lets the model size it to memory.
    generation_batch_size: int | None = None
    #: The installed plugins' jailbreak attacks (``register_attacks``), for attack dimensions.
    attacks: tuple[Attack, ...] = field(default_factory=tuple)
    #: The persona the run audits the model under (``rho-audit run --persona``), or None. Its
    #: system prompt is already in every prompt :meth:`score` and :meth:`generate` put to the model.
    persona: Persona | None = None

    def _report(self, unit: str) -> CountProgress | None:
        if self.progress is None:
            return None
        progress = self.progress
        return lambda done, total: progress(done, total, unit)

    def score(self, requests: Sequence[ScoreRequest]) -> list[Score]:
        """Teacher-forced log-probabilities of each request's continuation."""
        return self.model.score(requests, self.template, self._report("texts"))

    def generate(
        self, prompts: Sequence[str], max_tokens: int, sampling: Sampling | None = None
    ) -> list[str]:
        """One completion per prompt: greedy (deterministic for a given model), or drawn as
        ``sampling`` says (its ``n`` must be 1; its seed None: the run's :attr:`seed`)."""
        return self.model.generate(
            prompts,
            max_tokens,
            self.template,
            self._report("prompts"),
            batch_size=self.generation_batch_size,
            sampling=self._seeded(sampling) if sampling is not None else None,
        )

    def sample(self, prompts: Sequence[str], max_tokens: int, sampling: Sampling) -> list[list[str]]:
        """``sampling.n`` completions per prompt (a list per prompt), decoded in batches like
        :meth:`generate`'s. Completion ``j`` of a prompt is drawn from a random stream keyed by
        the seed (None: the run's :attr:`seed`), the prompt as the model reads it and ``j``, so it
        reproduces whatever else is decoded with it (see :mod:`rho_audit.api.inference`)."""
        return self.model.sample(
            prompts,
            max_tokens,
            self._seeded(sampling),
            self.template,
            self._report("completions"),
            batch_size=self.generation_batch_size,
        )

    @contextmanager
    def using_persona(self, persona: Persona | None) -> Iterator[None]:
        """Inside the block, every prompt :meth:`score`, :meth:`generate`, :meth:`sample` and
        :meth:`hidden_states` put to the model is under ``persona`` (None: under none), as
        ``rho-audit run --persona`` puts a run's; then the run's persona again. For a dimension
        that compares personas within one run (accuracy, replies or states per persona)."""
        model, run_persona, run_prompt = self.model, self.persona, self.model.system_prompt
        self.persona, model.system_prompt = persona, persona.system_prompt if persona else None
        try:
            yield
        finally:
            self.persona, model.system_prompt = run_persona, run_prompt

    def _seeded(self, sampling: Sampling) -> Sampling:
        return sampling if sampling.seed is not None else replace(sampling, seed=self.seed)

    def hidden_states(
        self,
        texts: Sequence[str | ScoreRequest],
        layer: Layer = "middle",
        positions: HiddenPositions = "last",
    ) -> np.ndarray | list[np.ndarray]:
        """Float32 activations (NumPy) at ``layer``: the residual stream after that block (an
        index, negative from the end, or ``"middle"``). A text is a prompt (``str``), read as
        :meth:`generate` puts it to the model, or a :class:`ScoreRequest`, read as :meth:`score`
        reads it. ``positions``: ``"last"`` (the text's last token), ``"last_prompt"`` (its
        prompt's last token) or ``"mean"`` (over a prompt's tokens, or a request's continuation
        tokens) give a (texts, hidden) array; ``"all"`` a list of (positions, hidden) arrays
        over the same spans. See :data:`rho_audit.api.inference.HiddenPositions`."""
        return self.model.hidden_states(texts, layer, positions, self.template)

    def judge_items(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        """The judge's verdict on each item (LLM judges are cached and budgeted, and report progress)."""
        self.judge.progress = self._report("judged")
        return self.judge.judge(items)
