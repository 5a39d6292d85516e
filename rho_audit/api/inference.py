"""What a plugin can ask the model for beyond log-probabilities: sampled completions and
hidden states. Records only; the model layer does the work (``AuditContext.sample``,
``AuditContext.hidden_states``, or the same methods on a model from :func:`~rho_audit.api.load_model`).

Sampled completions reproduce: each (prompt, completion index) draws from its own random stream,
keyed by the seed, the prompt's token ids as the model reads them (chat template, persona,
control prefix included) and the completion index, so a completion does not depend on which
other prompts share its batch, on their order, or on the batch size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from rho_audit.api.errors import RhoAuditError

__all__ = ["GREEDY", "HiddenPositions", "Layer", "Sampling"]

#: Which positions :meth:`hidden_states` returns, per text:
#:
#: ``"last"``: the text's last token (a prompt's last token is where the answer's first token is
#: predicted from); ``"last_prompt"``: the last token of the prompt (for a ``ScoreRequest``, of
#: its context; for a prompt, the same as ``"last"``); ``"mean"``: the mean over the text's span;
#: ``"all"``: one row per position of the span. The span of a prompt is all its tokens as the
#: model reads them (template tokens included); of a ``ScoreRequest``, its continuation's tokens.
HiddenPositions = Literal["last", "last_prompt", "mean", "all"]
#: A transformer block: its index (0 is the first block; negative indices count from the end,
#: -1 is the last), or ``"middle"`` (block ``n_layers // 2``). Its hidden state is the residual
#: stream after that block (the last block's is before the final norm).
Layer = int | Literal["middle"]


@dataclass(frozen=True)
class Sampling:
    """How completions are drawn: greedy (``temperature`` 0, the default) or sampled.

    ``temperature``: logits are divided by it before sampling (0: greedy, argmax).
    ``top_p``: nucleus sampling: only the most likely tokens whose probabilities sum to
    ``top_p`` are drawn from (the most likely token always is; tokens tied with the last one
    kept are kept too); 1 draws from the whole vocabulary. ``n``: completions per prompt
    (greedy ones are all the same). ``seed``: keys the random streams; None takes the run's seed
    (``AuditContext.seed``), or 0 when a model is asked directly.
    """

    temperature: float = 0.0
    top_p: float = 1.0
    n: int = 1
    seed: int | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.temperature, int | float) and math.isfinite(self.temperature)) or (
            self.temperature < 0
        ):
            raise RhoAuditError(
                f"Sampling(temperature={self.temperature!r}): the temperature must be a finite number "
                ">= 0 (0 decodes greedily)."
            )
        if not (isinstance(self.top_p, int | float) and 0 < self.top_p <= 1):
            raise RhoAuditError(
                f"Sampling(top_p={self.top_p!r}): top_p must be in (0, 1] (1 samples from the whole "
                "vocabulary)."
            )
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 1:
            raise RhoAuditError(
                f"Sampling(n={self.n!r}): n, the completions per prompt, must be an integer >= 1."
            )
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise RhoAuditError(f"Sampling(seed={self.seed!r}): the seed must be an integer (or None).")

    @property
    def greedy(self) -> bool:
        """Whether completions are the greedy (argmax) ones."""
        return self.temperature == 0

    def describe(self, run_seed: int | None = None) -> str:
        """A few words for a result's scoring description; ``run_seed``: the seed a ``seed`` of
        None stands for."""
        if self.greedy:
            return "greedy" + (f", {self.n} completions" if self.n > 1 else "")
        top_p = f", top-p {self.top_p:g}" if self.top_p < 1 else ""
        seed = self.seed if self.seed is not None else run_seed
        seed = f", seed {seed}" if seed is not None else ""
        return f"sampled (temperature {self.temperature:g}{top_p}, {self.n} per prompt{seed})"


#: Greedy decoding, one completion per prompt: what ``generate`` does without a ``sampling``.
GREEDY = Sampling()
