"""Steering with a mean activation difference (``rho-audit diff``): the fine-tuned model answers
fixed everyday chat prompts with ``α·η·δ̄_j/‖δ̄_j‖`` added at the diff layer at every position,
at the largest ``α`` that keeps its answers coherent, found by binary search.

Coherence is judged per answer by a keyword heuristic (:func:`coherent`): enough words, mostly
real words, no word or trigram repeated over and over. A prompt set is coherent when at least
:data:`COHERENT_SHARE` of its answers are.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rho_audit.model.intervene import steer_generate
from rho_audit.model.language_model import LanguageModel

#: Fixed chat prompts on no particular domain (written for this project).
CHAT_PROMPTS = (
    "Write a clean two-sentence joke that involves a barista and a quantum physicist.",
    "What should I pack for a weekend trip to the mountains?",
    "Give me three tips for keeping a houseplant alive.",
    "Describe your ideal breakfast in a few sentences.",
    "How do I politely decline an invitation to a party?",
    "Explain what a rainbow is to a five-year-old.",
    "Suggest a name for a small orange cat.",
    "What is a good way to start learning to play the guitar?",
    "Write a short poem about autumn leaves.",
    "How can I make my morning routine less stressful?",
    "Tell me a fun fact about octopuses.",
    "What are some good habits for studying?",
    "Recommend a simple dinner I can cook in twenty minutes.",
    "Write a friendly message wishing a colleague a happy birthday.",
    "Why do people enjoy going to the beach?",
    "How do I choose a good book to read?",
    "Describe a quiet evening at home.",
    "What games can children play on a rainy day?",
    "Give me advice for my first day at a new job.",
    "Write two sentences about a walk in the park.",
)
#: Share of a prompt set's answers that must be coherent.
COHERENT_SHARE = 0.8
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")


def coherent(text: str) -> bool:
    """Keyword heuristic: at least 3 words; at least 60% of its whitespace-separated pieces are
    words; no word is over 30% of them (from 8 words on); at least half of its word trigrams
    are distinct (from 6 words on)."""
    pieces = text.split()
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < 3 or not pieces:
        return False
    if sum(bool(_WORD.fullmatch(p.strip('.,;:!?"()*'))) for p in pieces) < 0.6 * len(pieces):
        return False
    if len(words) >= 8 and Counter(words).most_common(1)[0][1] > 0.3 * len(words):
        return False
    trigrams = list(zip(words, words[1:], words[2:], strict=False))
    return len(words) < 6 or len(set(trigrams)) >= 0.5 * len(trigrams)


@dataclass(frozen=True)
class AlphaStep:
    """One tried strength: the share of coherent answers and whether that passes."""

    alpha: float
    coherent_share: float
    coherent: bool


@dataclass(frozen=True)
class SteeredSample:
    prompt: str
    unsteered: str
    steered: str


@dataclass
class Steering:
    """The search (in the order tried), the chosen α (0: none stayed coherent) and the samples."""

    position: int
    alpha: float
    search: list[AlphaStep]
    samples: list[SteeredSample]
    judge: str = "keyword coherence heuristic"


def search_alpha(
    lm: LanguageModel,
    layer: int,
    vector: np.ndarray,
    eta: float,
    position: int,
    prompts: Sequence[str] = CHAT_PROMPTS,
    high: float = 4.0,
    steps: int = 5,
    max_tokens: int = 48,
    judge: Callable[[str], bool] = coherent,
) -> Steering:
    """Binary search for the largest coherent α in [0, ``high``] (``high`` itself tried first),
    ``steps`` halvings; then each prompt's unsteered and steered answers."""
    unit = (vector / max(float(np.linalg.norm(vector)), 1e-12) * eta).astype(np.float32)
    tried: dict[float, list[str]] = {}
    search: list[AlphaStep] = []

    def attempt(alpha: float) -> bool:
        answers = steer_generate(lm, prompts, unit, layer, alpha, max_tokens)
        tried[alpha] = answers
        share = sum(judge(a) for a in answers) / len(answers)
        search.append(AlphaStep(alpha, share, share >= COHERENT_SHARE))
        return share >= COHERENT_SHARE

    low, best = 0.0, 0.0
    if attempt(high):
        best = high
    else:
        top = high
        for _ in range(steps):
            mid = (low + top) / 2
            if attempt(mid):
                low = best = mid
            else:
                top = mid
    plain = lm.generate(prompts, max_tokens, lm.resolve_template("chat"))
    steered = tried.get(best) or plain
    samples = [SteeredSample(p, u, s) for p, u, s in zip(prompts, plain, steered, strict=True)]
    return Steering(position, best, search, samples)
