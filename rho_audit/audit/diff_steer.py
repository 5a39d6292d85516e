"""Steering with a mean activation difference (``rho-audit diff``): the fine-tuned model answers
fixed everyday chat prompts with ``α·η·δ̄_j/‖δ̄_j‖`` added at the diff layer at every position,
at the largest ``α`` that keeps its answers coherent, found by a binary search on a log scale.

Coherence is judged per answer by a keyword heuristic (:func:`coherent`: enough words, mostly
real words, no word or phrase repeated over and over) and, where the caller gives a scorer, by
fluency: the answer's mean log-probability per token under the base model must lie within
:data:`FLUENCY_MARGIN` nats of the unsteered answers' median. Steering too hard yields strings of
real words with no grammar ("a from the find the outer passage into the centre of the jar"),
which pass any keyword rule but which the base model finds far less likely than the unsteered
answers. A strength is coherent when the share of coherent answers is at least
:data:`COHERENT_SHARE` of the unsteered answers' share (a narrow fine-tune may already repeat
itself unsteered; steering is judged by what it adds).

How far steering moves the answers toward the domain (:func:`keyword_rate`,
:func:`domain_similarity`): the share of answers naming a domain keyword, and the mean cosine
similarity of each answer's embedding to the domain description's (the base model's own mean
hidden state, centred on neutral text), unsteered vs steered.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from rho_audit.audit.diff_relevance import keyword_pattern
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
#: Nats per token an answer's base-model log-probability may fall below the unsteered answers'
#: median and still count as fluent.
FLUENCY_MARGIN = 1.0
#: Scores answers (prompts, answers) -> mean log-probability per token under the base model.
Fluency = Callable[[Sequence[str], Sequence[str]], list[float]]
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")


def coherent(text: str) -> bool:
    """Keyword heuristic: at least 3 words; no broken characters (U+FFFD: a model emitting byte
    pieces that decode to nothing, as it does when steered too hard); at least 60% of its
    whitespace-separated pieces are words; no word is over 30% of them (from 8 words on); at
    least half of its word trigrams distinct (from 6 words on) and 3 in 4 of its word bigrams
    (from 10 words on: word salad that cycles through a few phrases passes the trigram rule)."""
    pieces = text.split()
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < 3 or not pieces or "\ufffd" in text:
        return False
    if sum(bool(_WORD.fullmatch(p.strip('.,;:!?"()*'))) for p in pieces) < 0.6 * len(pieces):
        return False
    if len(words) >= 8 and Counter(words).most_common(1)[0][1] > 0.3 * len(words):
        return False
    bigrams = list(pairwise(words))
    if len(words) >= 10 and len(set(bigrams)) < 0.75 * len(bigrams):
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
    """The search (in the order tried), the chosen α (0: none stayed coherent), the unsteered
    answers' coherent share and the pass mark it set, and the samples."""

    position: int
    alpha: float
    search: list[AlphaStep]
    samples: list[SteeredSample]
    judge: str = "keyword coherence heuristic"
    unsteered_share: float = 1.0
    pass_share: float = COHERENT_SHARE
    #: The unsteered answers' median base-model log-probability per token (None: not scored).
    fluency_reference: float | None = None


def search_alpha(
    lm: LanguageModel,
    layer: int,
    vector: np.ndarray,
    eta: float,
    position: int,
    prompts: Sequence[str] = CHAT_PROMPTS,
    high: float = 4.0,
    steps: int = 7,
    max_tokens: int = 48,
    judge: Callable[[str], bool] = coherent,
    fluency: Fluency | None = None,
) -> Steering:
    """The largest coherent α in (0, ``high``], by at most ``1 + steps`` tries on a log scale:
    ``high`` first; while a strength fails, halve it; once one passes, bisect (geometric mean)
    between it and the smallest failing one. An answer is coherent when ``judge`` says so and,
    with ``fluency``, it is fluent (module docstring). A strength is coherent when its share of
    coherent answers is at least :data:`COHERENT_SHARE` times the unsteered answers' share (none
    coherent unsteered: no search, α 0). Then each prompt's unsteered and steered answers."""
    unit = (vector / max(float(np.linalg.norm(vector)), 1e-12) * eta).astype(np.float32)
    plain = lm.generate(prompts, max_tokens, lm.resolve_template("chat"))
    reference = float(np.median(fluency(prompts, plain))) if fluency is not None else None

    def verdicts(answers: Sequence[str]) -> list[bool]:
        ok = [judge(a) for a in answers]
        if fluency is None or reference is None:
            return ok
        scores = fluency(prompts, answers)
        return [o and lp >= reference - FLUENCY_MARGIN for o, lp in zip(ok, scores, strict=True)]

    base_share = sum(verdicts(plain)) / len(plain)
    mark = COHERENT_SHARE * base_share
    tried: dict[float, list[str]] = {}
    search: list[AlphaStep] = []

    def attempt(alpha: float) -> bool:
        answers = steer_generate(lm, prompts, unit, layer, alpha, max_tokens)
        tried[alpha] = answers
        share = sum(verdicts(answers)) / len(answers)
        search.append(AlphaStep(alpha, share, share >= mark))
        return share >= mark

    best, failed = 0.0, high
    if base_share > 0 and not attempt(high):
        left = steps
        while left and best == 0.0:  # halve until a strength passes
            left -= 1
            alpha = failed / 2
            if attempt(alpha):
                best = alpha
            else:
                failed = alpha
        while left and best > 0.0:  # then bisect between the pass and the fail above it
            left -= 1
            mid = float(np.sqrt(best * failed))
            if attempt(mid):
                best = mid
            else:
                failed = mid
    elif base_share > 0:
        best = high
    steered = tried.get(best) or plain
    samples = [SteeredSample(p, u, s) for p, u, s in zip(prompts, plain, steered, strict=True)]
    name = "keyword coherence heuristic" + (
        f" and base-model fluency (within {FLUENCY_MARGIN:g} nat/token of the unsteered answers' median)"
        if fluency is not None
        else ""
    )
    return Steering(position, best, search, samples, name, base_share, mark, reference)


def keyword_rate(texts: Sequence[str], keywords: Sequence[str]) -> float:
    """Share of ``texts`` that name any of ``keywords``, as whole words (case-insensitive; a word
    may take an inflection: "kettles", "sailing")."""
    if not texts or not any(k.strip() for k in keywords):
        return 0.0
    pattern = keyword_pattern(keywords)
    return sum(bool(pattern.search(t)) for t in texts) / len(texts)


#: Neutral texts whose mean embedding is subtracted before cosines (mean-pooled hidden states of
#: a language model share one large common direction, which would make every pair look alike).
CENTRE_TEXTS = 200


def embed(
    lm: LanguageModel, texts: Sequence[str], layer: int, centre: np.ndarray | None = None
) -> np.ndarray:
    """Each text's mean hidden state after block ``layer`` (document start left out), minus
    ``centre``; rows (len(texts), hidden). Empty texts embed as the centre (a zero row)."""
    from rho_audit.model import activations

    sequences = [[lm.document_start, *lm.encode(t)] for t in texts]

    def pool(i: int, states: np.ndarray) -> np.ndarray:
        return states[1:].mean(axis=0) if len(states) > 1 else np.zeros(states.shape[1], np.float32)

    rows = np.stack(activations.hidden_states(lm.model, sequences, layer, pool, lm.batch_tokens))
    for i, s in enumerate(sequences):
        if len(s) <= 1 and centre is not None:
            rows[i] = centre
    return rows.astype(np.float64) - (centre if centre is not None else 0.0)


def domain_similarity(
    lm: LanguageModel, steering: Steering, domain: str, layer: int, neutral: Sequence[str]
) -> dict[str, float | str]:
    """Mean cosine similarity of the unsteered and of the steered answers to ``domain`` (and of
    the neutral texts, the floor), embedded by :func:`embed` with ``lm`` as it is called (the base
    model: the caller turns the adapter off), centred on ``neutral``."""
    centre = embed(lm, neutral, layer).mean(axis=0)
    target = embed(lm, [domain], layer, centre)[0]

    def mean_cosine(texts: Sequence[str]) -> float:
        rows = embed(lm, texts, layer, centre)
        norms = np.linalg.norm(rows, axis=1) * max(float(np.linalg.norm(target)), 1e-12)
        return float(np.mean(rows @ target / np.maximum(norms, 1e-12)))

    return {
        "unsteered": mean_cosine([s.unsteered for s in steering.samples]),
        "steered": mean_cosine([s.steered for s in steering.samples]),
        "neutral": mean_cosine(list(neutral[:CENTRE_TEXTS])),
        "embedding": f"mean state after block {layer} of the base model, centred on "
        f"{len(neutral)} neutral texts",
    }
