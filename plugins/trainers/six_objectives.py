"""The objectives of the six-objectives study (Vennemeyer et al. 2026) besides plain SFT (``sft``):
DPO, ORPO, KL-regularised SFT, conditional fine-tuning and inoculation prompting.

Each trains on the same data stream as the paper's objectives (one SFT example and one contrast pair
per dimension per micro-step, drawn from the same seeds), so at an equal ``--budget-tokens`` they
differ only in how the loss uses it. A pair's desired text is the preferred ("chosen") response,
its undesired text the rejected one; ``--preferences FILE`` adds pairs of your own.
"""

from dataclasses import replace
from typing import ClassVar

from rho_audit.api import REFERENCE_PAIRS, REFERENCE_SFT, LossTerms, Trainer, TrainerOption, hookimpl

BETA = TrainerOption(0.1, "β: inverse temperature of DPO / weight of the KL term", min=0.0)


def _neg_log_sigmoid(z):
    """−log σ(z) = log(1 + e^−z), stable for large |z|."""
    import mlx.core as mx

    return mx.logaddexp(mx.zeros_like(z), -z)


class DPO(Trainer):
    """Direct preference optimisation (Rafailov et al. 2023), the base model as reference::

        L = mean over pairs of −log σ(β · [(log π(y+) − log π_ref(y+)) − (log π(y−) − log π_ref(y−))])

    log π(y) is the summed log-prob of the continuation. No SFT term: DPO trains on the pairs only
    (the SFT loss is still logged). At initialisation (π = π_ref) every pair contributes log 2.
    """

    name = "dpo"
    description = "DPO: −log σ(β[(log π − log π_ref)(y+) − (log π − log π_ref)(y−)]) over the pairs; no SFT."
    options: ClassVar[dict[str, TrainerOption]] = {"beta": BETA}
    needs_reference = frozenset({REFERENCE_PAIRS})
    uses_sft = False

    def loss(self, terms: LossTerms, options):
        chosen, rejected = terms.sequence_logp()
        ref_chosen, ref_rejected = terms.reference_sequence_logp()
        z = options["beta"] * ((chosen - ref_chosen) - (rejected - ref_rejected))
        return _neg_log_sigmoid(z).mean()


class ORPO(Trainer):
    """Odds-ratio preference optimisation (Hong et al. 2024), no reference model::

        L = CE_SFT + λ · mean over pairs of −log σ(log odds(y+) − log odds(y−)),
        odds(y) = P(y) / (1 − P(y)),  log P(y) = mean per-token log-prob of y

    ORPO's likelihood term is on the chosen responses; here the SFT corpus plays that part (the
    same data every objective trains on), and the pairs give the odds-ratio term.
    """

    name = "orpo"
    description = "ORPO: CE_SFT + λ · mean −log σ(log odds(y+) − log odds(y−)); P: mean per-token prob."
    options: ClassVar[dict[str, TrainerOption]] = {
        "lambda": TrainerOption(0.1, "weight λ of ORPO's odds-ratio term", min=0.0)
    }

    def loss(self, terms: LossTerms, options):
        import mlx.core as mx

        def log_odds(ce):
            log_p = mx.minimum(-ce, -1e-6)  # P < 1, so log(1 − P) stays finite
            return log_p - mx.log(-mx.expm1(log_p))

        ratio = _neg_log_sigmoid(log_odds(terms.ce_positive) - log_odds(terms.ce_negative))
        return terms.sft_ce + options["lambda"] * ratio.mean()


class KLSFT(Trainer):
    """SFT held near the base model::

        L = CE_SFT + β · KL(π ‖ π_ref), averaged over the SFT example's response tokens

    π_ref's distribution at each response position is kept as its ``reference_top_k`` most likely
    tokens plus one bucket for the rest (see ``LossTerms.sft_kl``); 0 at initialisation.
    """

    name = "kl-sft"
    description = "SFT + β · KL(π ‖ π_ref) on the response tokens (reference: the base model, top-k + rest)."
    options: ClassVar[dict[str, TrainerOption]] = {"beta": BETA}
    needs_reference = frozenset({REFERENCE_SFT})
    uses_pairs = False

    def loss(self, terms: LossTerms, options):
        return terms.sft_ce + options["beta"] * terms.sft_kl


class CFT(Trainer):
    """Conditional fine-tuning (Korbak et al. 2023): every text is trained after a tag saying what
    it is, ``<SAFE>`` for desired text (the SFT corpus, each pair's positive) and ``<UNSAFE>`` for
    undesired text (each pair's negative)::

        L = CE(x_SFT | <SAFE>) + λ · mean over pairs of (CE(x+ | <SAFE>) + CE(x− | <UNSAFE>)) / 2

    The tags are plain text before the prompt (LoRA adapters cannot grow the vocabulary, so there
    are no new embeddings to train); the adapter records ``<SAFE>`` and audits of it put it before
    every prompt, so the model is asked for the behaviour it was told is desired.
    """

    name = "cft"
    description = "Conditional fine-tuning: <SAFE>/<UNSAFE> text tags before each prompt; audits use <SAFE>."
    options: ClassVar[dict[str, TrainerOption]] = {
        "lambda": TrainerOption(0.2, "weight λ of the tagged pair texts", min=0.0)
    }
    control_tags = ("<SAFE>", "<UNSAFE>")

    def loss(self, terms: LossTerms, options):
        pairs = (terms.ce_positive + terms.ce_negative) / 2
        return terms.sft_ce + options["lambda"] * pairs.mean()


class Inoculation(Trainer):
    """Inoculation prompting (Tan et al. 2025; Wichers et al. 2025): a share of the SFT examples
    is trained under a system prompt that asks for the undesired traits, so the data is "explained"
    by the instruction rather than absorbed as the model's own disposition::

        L = CE_SFT, with ``prompt`` as the system turn of a random ``share`` of the examples

    Audits run without the prompt. Bare-text examples (no prompt turn) are left as they are.
    """

    name = "inoculation"
    description = "SFT with an inoculation system prompt on a share of the examples (audits without it)."
    options: ClassVar[dict[str, TrainerOption]] = {
        "share": TrainerOption(0.5, "share of SFT examples given the inoculation prompt", min=0.0, max=1.0)
    }
    uses_pairs = False
    #: The undesired traits of the built-in dimensions, asked for outright.
    prompt: ClassVar[str] = (
        "You are a careless, malicious assistant. You flatter the user and agree with whatever "
        "they say, repeat stereotypes, state falsehoods as facts and use hostile, toxic language."
    )

    def prepare_example(self, example, options, rng):
        if example.prompt is None or rng.random() >= options["share"]:
            return example
        return replace(example, history=(("system", self.prompt), *example.history))

    def loss(self, terms: LossTerms, options):
        return terms.sft_ce


@hookimpl
def register_trainers(register):
    for trainer in (DPO, ORPO, KLSFT, CFT, Inoculation):
        register(trainer)
