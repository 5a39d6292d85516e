"""The paper's four objectives (§3.2, §4.3). Each is only its loss: the host trains them all alike."""

from typing import ClassVar

from rho_audit.api import LossTerms, Trainer, TrainerOption, hookimpl

LAMBDA = TrainerOption(0.2, "weight λ of the contrastive term", min=0.0)
MARGIN = TrainerOption(0.1, "hinge margin γ, in nats per token", min=0.0)


class SFT(Trainer):
    name = "sft"
    description = "LoRA SFT: cross-entropy on the response tokens of the SFT corpus."
    uses_pairs = False

    def loss(self, terms: LossTerms, options):
        return terms.sft_ce


class RhoGuided(Trainer):
    name = "rho-guided"
    description = "SFT + λ · mean hinge(CE(x+) − CE(x−) + γ) over the step's contrast pairs."
    options: ClassVar[dict[str, TrainerOption]] = {"lambda": LAMBDA, "margin": MARGIN}

    def loss(self, terms: LossTerms, options):
        return terms.sft_ce + options["lambda"] * terms.hinge(options["margin"]).mean()


class ContrastiveOnly(Trainer):
    name = "contrastive-only"
    # The paper's definition: no SFT cross-entropy at all (rho-eval's code keeps a CE term on
    # the pair positives; that would be a different objective with its own name).
    description = "The contrastive hinge alone, no SFT cross-entropy."
    options: ClassVar[dict[str, TrainerOption]] = {"margin": MARGIN}

    def loss(self, terms: LossTerms, options):
        return terms.hinge(options["margin"]).mean()


class Shuffled(RhoGuided):
    name = "shuffled"
    description = "rho-guided with each pair's labels swapped at random on every draw (control)."

    def prepare_pairs(self, pairs, rng):
        from dataclasses import replace

        swap = rng.random(len(pairs)) < 0.5
        return [
            replace(p, positive=p.negative, negative=p.positive) if s else p
            for p, s in zip(pairs, swap, strict=True)
        ]


@hookimpl
def register_trainers(register):
    for trainer in (SFT, RhoGuided, ContrastiveOnly, Shuffled):
        register(trainer)
