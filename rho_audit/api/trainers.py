"""Trainers: fine-tuning objectives, each only its loss (the host trains them all alike)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from rho_audit.probesets.schema import ContrastPair
    from rho_audit.train.corpus import SFTExample

#: ``Trainer.needs_reference`` entries: the frozen base model's CE of each pair's rows, and its
#: next-token distribution on the SFT example's response tokens (for a KL term).
REFERENCE_PAIRS = "pairs"
REFERENCE_SFT = "sft"


@dataclass(frozen=True)
class TrainerOption:
    """A numeric option of a trainer, exposed as ``--NAME`` and as a sweep grid key.

    ``min``/``max`` are inclusive bounds (None: unbounded). ``rho-audit train`` checks a value
    against them before any work, and a sweep file's values are checked with their file line."""

    default: float
    help: str
    min: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        problem = self.problem(self.default)
        if problem:
            raise ValueError(f"TrainerOption default {self.default!r} {problem}")

    def problem(self, value: float) -> str | None:
        """Why ``value`` is not allowed, e.g. ``"must be ≥ 0 (got -0.2)"``; None when it is."""
        import math

        if not math.isfinite(value):
            return f"must be a finite number (got {value!r})"
        if self.min is not None and value < self.min:
            return f"must be ≥ {self.min:g} (got {value:g})"
        if self.max is not None and value > self.max:
            return f"must be ≤ {self.max:g} (got {value:g})"
        return None


@dataclass(frozen=True)
class LossTerms:
    """What the host computed for one micro-step, for a trainer to combine into its loss.

    All are MLX arrays inside the differentiated function (the ``reference_*`` ones are constants).

    - ``sft_ce``: mean cross-entropy over the trained response tokens of the step's SFT example:
      all of them (and the end-of-sequence token), or those its ``trained_spans`` select (0 for a
      trainer with ``uses_sft = False``, or when the spans select no token the row kept).
    - ``ce_positive``/``ce_negative``: per-token cross-entropy of each contrast pair's desired and
      undesired continuation, shape ``[pairs]``; ``tokens_positive``/``tokens_negative``: how many
      tokens each of those means is over (so ``-ce * tokens`` is the continuation's log-prob).
    - ``reference_ce_positive``/``reference_ce_negative``: the same CEs under the frozen base model
      (LoRA off), present when ``needs_reference`` holds ``"pairs"``.
    - ``sft_kl``: mean per-token KL(policy ‖ base model) over the SFT example's response tokens,
      present when ``needs_reference`` holds ``"sft"``; over every response token, whatever the
      example's ``trained_spans``. The base model's distribution is cached as
      its ``reference_top_k`` most likely tokens plus one bucket for the rest, and the KL is taken
      between the two distributions over those k + 1 outcomes (exact when the policy equals the
      base model; a lower bound of the full-vocabulary KL otherwise).
    """

    sft_ce: Any
    ce_positive: Any
    ce_negative: Any
    tokens_positive: Any = None
    tokens_negative: Any = None
    reference_ce_positive: Any = None
    reference_ce_negative: Any = None
    sft_kl: Any = None

    def hinge(self, margin: float) -> Any:
        """Per pair ``max(0, CE(x+) − CE(x−) + margin)``: zero once the desired text is more
        likely than the undesired by at least ``margin`` nats per token. Written with the
        arrays' own operators (``t * (t > 0)`` is ``max(t, 0)``, with the same gradient) so that
        the plugin API never imports MLX."""
        gap = self.ce_positive - self.ce_negative + margin
        return gap * (gap > 0)

    def sequence_logp(self) -> tuple[Any, Any]:
        """(log-prob of each desired continuation, of each undesired one), summed over tokens."""
        return -self.ce_positive * self.tokens_positive, -self.ce_negative * self.tokens_negative

    def reference_sequence_logp(self) -> tuple[Any, Any]:
        """:meth:`sequence_logp` under the frozen base model (needs ``"pairs"`` in ``needs_reference``)."""
        if self.reference_ce_positive is None:
            raise ValueError(
                "reference log-probs are computed only for trainers whose needs_reference has 'pairs'"
            )
        return (
            -self.reference_ce_positive * self.tokens_positive,
            -self.reference_ce_negative * self.tokens_negative,
        )


class Trainer:
    """A fine-tuning objective: how one micro-step's loss is made from :class:`LossTerms`.

    The host owns everything else (LoRA, data order, contrast-pair draws, AdamW with warm-up and
    decay, gradient accumulation and clipping, checkpoints, logging), so an objective is a few
    lines and every objective is trained, seeded and logged the same way::

        class RhoGuided(Trainer):
            name = "rho-guided"
            options = {"lambda": TrainerOption(0.2, "weight of the contrastive term"),
                       "margin": TrainerOption(0.1, "hinge margin in nats per token")}

            def loss(self, terms, options):
                hinge = terms.hinge(options["margin"]).mean()
                return terms.sft_ce + options["lambda"] * hinge

    Contrast pairs come from the ``train`` split of every selected dimension whose class is
    ``trainable`` (see :meth:`Dimension.contrast_pairs`), one per dimension per micro-step by
    default. The contrastive loss is logged for every trainer, trained on or not, so objectives
    can be compared on the same curve.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    #: Numeric options with defaults (``--lambda``, ``--margin``, ...). ``margin``, when present,
    #: is also the margin of the logged contrastive loss (0.1 otherwise).
    options: ClassVar[dict[str, TrainerOption]] = {}
    #: What the frozen base model must provide: ``"pairs"`` fills ``LossTerms.reference_ce_*``,
    #: ``"sft"`` fills ``LossTerms.sft_kl``. Each row is scored once (LoRA off) and cached, in
    #: memory and on disk, so a reference costs one forward per distinct row, not one per step.
    #: The reference is the base model also for a run started from an adapter (``--init-adapter``).
    needs_reference: ClassVar[frozenset[str]] = frozenset()
    #: Base-model tokens kept per response position for ``sft_kl`` (the rest share one bucket).
    reference_top_k: ClassVar[int] = 64
    #: False when the loss ignores contrast pairs: the host then scores one micro-step's pairs
    #: per optimizer step, outside the gradient, only to log the contrastive loss.
    uses_pairs: ClassVar[bool] = True
    #: False when the loss ignores the SFT corpus (DPO): the SFT example is then scored once per
    #: optimizer step outside the gradient, only to log ``sft_loss``.
    uses_sft: ClassVar[bool] = True
    #: Conditional training: (tag for desired text, tag for undesired text), e.g.
    #: ``("<SAFE>", "<UNSAFE>")``. The host puts the first before every SFT example's and pair
    #: positive's prompt and the second before every pair negative's, as plain text, and records
    #: the first in the adapter, so audits of the adapter put it before every prompt.
    control_tags: ClassVar[tuple[str, str] | None] = None

    def prepare_pairs(self, pairs: list[ContrastPair], rng: Any) -> list[ContrastPair]:
        """The pairs of one micro-step as the loss should see them (``rng``: a seeded numpy
        Generator whose state is checkpointed). Default: unchanged."""
        return pairs

    def prepare_example(self, example: SFTExample, options: Mapping[str, float], rng: Any) -> SFTExample:
        """An SFT example as it is trained (before tokenisation): e.g. with a system prompt put in
        its ``history``, or a loss mask: ``dataclasses.replace(example, response=text + " [M]",
        trained_spans=((len(text) + 1, len(text) + 4),))`` trains only the tokens of ``[M]``
        (character offsets of the response; the host finds the tokens they fall in). Called once
        per example of the run's data, with the trainer's options (defaults filled in) and ``rng``,
        a numpy Generator seeded by the run's seed and the example's place (the same choice on
        resume). Default: unchanged."""
        return example

    def loss(self, terms: LossTerms, options: Mapping[str, float]) -> Any:
        """The scalar MLX loss of one micro-step (differentiated with respect to the LoRA
        weights). ``options`` holds every key of :attr:`options`, defaults filled in."""
        raise NotImplementedError
