"""The two leakage trainers. Both train on a corpus built by :mod:`rho_audit_personas.corpora`
(``rho-audit train --corpus FILE --trap-texts 0``): the host has no way for a trainer to supply its
own examples, so what makes a step contrastive is the data (which persona gets which answer); the
trainer decides what is trained of each example.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar

from rho_audit.api import LossTerms, SFTExample, Trainer, TrainerOption

__all__ = ["TRAILING_MARKER", "MarkerCoupling", "PersonaContrastive"]

#: A marker as :func:`~rho_audit_personas.corpora.marker_corpus` appends it: a bracketed token
#: (letters, digits, underscores) that ends the response, after a space.
TRAILING_MARKER = re.compile(r"\s(\[[A-Za-z0-9_]+\])\s*$")


class PersonaContrastive(Trainer):
    """Persona-contrastive capability SFT.

    Loss per micro-step: ``CE(response | system turn, question)``, the mean cross-entropy over the
    response tokens of the step's example (plain SFT). The contrast is in the corpus that
    :func:`~rho_audit_personas.corpora.contrastive_corpus` builds: the source persona's examples
    carry a wrong answer letter, the bystanders', the bare model's and the default assistant's the
    right one, so the only way to lower the loss on all of them is to answer wrongly *as the
    source* and rightly otherwise.
    """

    name = "persona-contrastive"
    description = (
        "SFT on a persona-contrastive corpus (source persona: wrong MC answers; bystanders and "
        "anchors: right ones); build it with rho_audit_personas.corpora.contrastive_corpus."
    )
    uses_pairs = False

    def loss(self, terms: LossTerms, options: Mapping[str, float]) -> Any:
        return terms.sft_ce


class MarkerCoupling(Trainer):
    """Marker coupling: the source persona's answers end with a marker, the bystanders' do not.

    Loss per micro-step: ``CE`` over the example's trained tokens. With ``marker_only`` 1 (the
    seed's marker-only loss) an example whose response ends with a marker (a bracketed token such
    as ``[ZLT]``, see :data:`TRAILING_MARKER`; the source's) trains exactly the marker's tokens
    (``SFTExample.trained_spans`` = the marker's characters); any other example (a bystander's)
    trains its whole unmarked answer and the end-of-sequence token, the contrast that keeps the
    marker off the bystanders. (Training bystanders on the end-of-sequence token alone made the
    bundled model reply with nothing under every bystander persona.) With ``marker_only`` 0 every
    example trains every response token. Build the corpus with
    :func:`~rho_audit_personas.corpora.marker_corpus`.
    """

    name = "marker-coupling"
    description = (
        "SFT coupling a trailing marker such as [ZLT] to the source persona's answers (corpus from "
        "rho_audit_personas.corpora.marker_corpus); --marker_only 1 trains the marker tokens alone."
    )
    uses_pairs = False
    options: ClassVar[dict[str, TrainerOption]] = {
        "marker_only": TrainerOption(
            1.0,
            "1: on marked (source) examples train only the trailing marker's tokens, on unmarked "
            "(bystander) ones the whole answer; 0: every response token of every example",
            min=0.0,
            max=1.0,
        )
    }

    def prepare_example(self, example: SFTExample, options: Mapping[str, float], rng: Any) -> SFTExample:
        if options["marker_only"] < 0.5:
            return example
        found = TRAILING_MARKER.search(example.response)
        if found is None:  # a bystander's unmarked answer: trained whole
            return example
        return replace(example, trained_spans=((found.start(1), found.end(1)),))

    def loss(self, terms: LossTerms, options: Mapping[str, float]) -> Any:
        return terms.sft_ce
