"""Trainers: fine-tuning objectives, each only its loss (the host trains them all alike)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from rho_audit.probesets.schema import ContrastPair


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

    All are MLX arrays inside the differentiated function. ``sft_ce``: mean cross-entropy over
    the response tokens of the step's SFT example(s). ``ce_positive``/``ce_negative``: per-token
    cross-entropy of each contrast pair's desired and undesired continuation, shape ``[pairs]``.
    ``reference_*``: the same quantities under the frozen base model, present only when the
    trainer sets ``needs_reference`` (for DPO/KL-style objectives).
    """

    sft_ce: Any
    ce_positive: Any
    ce_negative: Any
    reference_ce_positive: Any = None
    reference_ce_negative: Any = None

    def hinge(self, margin: float) -> Any:
        """Per pair ``max(0, CE(x+) − CE(x−) + margin)``: zero once the desired text is more
        likely than the undesired by at least ``margin`` nats per token. Written with the
        arrays' own operators (``t * (t > 0)`` is ``max(t, 0)``, with the same gradient) so that
        the plugin API never imports MLX."""
        gap = self.ce_positive - self.ce_negative + margin
        return gap * (gap > 0)


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
    #: Ask the host for the frozen base model's cross-entropies in ``LossTerms.reference_*``.
    needs_reference: ClassVar[bool] = False
    #: False when the loss ignores contrast pairs: the host then scores one micro-step's pairs
    #: per optimizer step, outside the gradient, only to log the contrastive loss.
    uses_pairs: ClassVar[bool] = True

    def prepare_pairs(self, pairs: list[ContrastPair], rng: Any) -> list[ContrastPair]:
        """The pairs of one micro-step as the loss should see them (``rng``: a seeded numpy
        Generator whose state is checkpointed). Default: unchanged."""
        return pairs

    def loss(self, terms: LossTerms, options: Mapping[str, float]) -> Any:
        """The scalar MLX loss of one micro-step (differentiated with respect to the LoRA
        weights). ``options`` holds every key of :attr:`options`, defaults filled in."""
        raise NotImplementedError
