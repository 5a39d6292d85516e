"""local: an LLM judge on a local MLX model, read from the log-probabilities of the label tokens.

The rendered rubric (the same text the claude judge gets) is the user turn; each of the rubric's
labels is scored teacher-forced as the start of the model's reply, and the verdict is the label
with the highest summed log-probability. No text is generated or parsed, so the verdict is
deterministic for a given model; ``score`` is the chosen label's probability renormalised over
the labels. Caching and the budget (one call per item) come from
:class:`rho_audit.api.LLMJudge`.

Options (``--judge-option KEY=VALUE``): model (anything ``--model`` accepts; default the bundled
model), rubric (refusal, honesty, persona-discriminator, strongreject or a .j2 path), template
(auto, chat, raw).

Small models make weak judges: the bundled 135M model is close to chance on refusals. Use a larger
instruction-tuned model, and check it against another judge with ``rho-audit judges agree``.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

from rho_audit_plugins.judges import RUBRIC_DIR

from rho_audit.api import (
    Answer,
    JudgeError,
    LLMJudge,
    ScoreRequest,
    hookimpl,
    load_model,
    load_rubric,
    parse_options,
    resolve_model,
)

OPTIONS: dict[str, tuple[type, Any]] = {
    "model": (str, None),
    "rubric": (str, "refusal"),
    "template": (str, "auto"),
}


class Local(LLMJudge):
    name = "local"
    version = "1"
    description = "A local MLX model grading with a rubric, by the log-probabilities of the labels."
    rubric_dir = RUBRIC_DIR
    concurrency = 1  # MLX runs on the calling thread

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        opts = parse_options(self.name, options, OPTIONS)
        if opts["template"] not in ("auto", "chat", "raw"):
            raise JudgeError(f"judge 'local': template must be auto, chat or raw, not {opts['template']!r}.")
        self.rubric = load_rubric(opts["rubric"], RUBRIC_DIR)
        self.template_option = opts["template"]
        self.resolved = resolve_model(opts["model"])  # fails here, before any audit work, if missing
        fingerprint = _fingerprint(self.resolved.path)
        self.judge_model = f"{self.resolved.model_id} {fingerprint} {self.template_option}"
        self._lm: Any = None
        self._template: Any = None

    def _ask(self, text: str) -> Answer:
        if self._lm is None:
            self._lm = load_model(self.resolved)
            self._template = self._lm.resolve_template(self.template_option)
        self.meter.take_call()
        self.meter.add(input_tokens=len(self._lm.encode(self._lm.format_prompt(text, self._template))))
        scores = self._lm.score([ScoreRequest(text, label) for label in self.rubric.labels], self._template)
        failed = next((s.error for s in scores if s.error), None)
        if failed:
            return Answer(None, error=f"could not score the labels: {failed}")
        logprobs = [s.sum_logprob for s in scores]
        best = max(range(len(logprobs)), key=lambda i: (logprobs[i], -i))  # ties: the first label
        top = max(logprobs)
        total = sum(math.exp(lp - top) for lp in logprobs)
        shown = ", ".join(f"{label} {lp:.3f}" for label, lp in zip(self.rubric.labels, logprobs, strict=True))
        return Answer(self.rubric.labels[best], math.exp(logprobs[best] - top) / total, f"log-probs: {shown}")


def _fingerprint(path: Path) -> str:
    """A short hash of the model's config and weight file sizes: a cache key that changes when
    the model at a path is replaced, without reading the weights."""
    digest = hashlib.sha256()
    for file in sorted(Path(path).glob("*.json")) + sorted(Path(path).glob("*.safetensors")):
        digest.update(f"{file.name}:{file.stat().st_size}".encode())
        if file.name == "config.json":
            digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


@hookimpl
def register_judges(register):
    register(Local)
