"""Sampled generation on the tiny model: reproducible per (seed, prompt, completion index)
whatever the batching, different across seeds, the greedy answer in the limits."""

import math

import mlx.core as mx
import pytest

from rho_audit.api import GREEDY, RhoAuditError, Sampling
from rho_audit.model import decoding
from rho_audit.model.language_model import LanguageModel
from rho_audit.model.layout import body_and_head
from rho_audit.model.sampling import RowSampler, nucleus, sample_tokens, step_keys

PROMPTS = ["Say something.", "What is two plus two?", "Hello there", "Name a colour.", "Why?"]
PREAMBLE = "Read the question below and answer it in one short sentence, please. "
WARM = Sampling(temperature=1.0, n=3, seed=7)


@pytest.fixture(scope="module")
def lm(tiny_model_path):
    return LanguageModel.load(tiny_model_path, "tiny")


@pytest.mark.parametrize("candidates", [1024, 16])
def test_samples_reproduce_whatever_the_batch_its_size_and_order(lm, candidates, monkeypatch):
    """(With 16 candidates and temperature 0.3, a sixth of the steps draw from the whole
    vocabulary, the rest among their most likely tokens; with 1,024, the tiny model's 1,000
    tokens are all candidates.)"""
    from rho_audit.model import sampling

    monkeypatch.setattr(sampling, "NUCLEUS_CANDIDATES", candidates)
    prompts = PROMPTS + [PREAMBLE + p for p in PROMPTS]
    warm = Sampling(temperature=0.3, top_p=0.9, n=3, seed=7) if candidates == 16 else WARM
    first = lm.sample(prompts, 10, warm)
    assert [len(c) for c in first] == [3] * len(prompts)
    assert lm.sample(prompts, 10, warm) == first
    reordered = lm.sample(prompts[::-1], 10, warm, batch_size=2)[::-1]
    assert reordered == first
    alone = [lm.sample([p], 10, warm, batch_size=1)[0] for p in prompts[:3]]
    assert alone == first[:3]
    # a prompt listed twice is the same prompt: the same completions
    assert lm.sample([PROMPTS[1], PROMPTS[1]], 10, warm) == [first[1], first[1]]


def test_a_completion_depends_on_its_index_not_on_how_many_are_asked(lm):
    three = lm.sample(PROMPTS, 8, WARM)
    five = lm.sample(PROMPTS, 8, Sampling(temperature=1.0, n=5, seed=7))
    assert [c[:3] for c in five] == three
    assert all(len(set(c)) == 5 for c in five)  # n completions of a prompt differ


def test_seeds_give_different_samples_and_generate_takes_one(lm):
    a = lm.sample(PROMPTS, 8, WARM)
    b = lm.sample(PROMPTS, 8, Sampling(temperature=1.0, n=3, seed=8))
    assert all(x != y for x, y in zip(a, b, strict=True))
    one = Sampling(temperature=1.0, seed=7)
    assert lm.generate(PROMPTS, 8, sampling=one) == [c[0] for c in a]
    with pytest.raises(RhoAuditError, match="call sample"):
        lm.generate(PROMPTS, 8, sampling=WARM)


@pytest.mark.parametrize(
    "sampling",
    [Sampling(temperature=1e-5, n=2, seed=3), Sampling(temperature=1.0, top_p=1e-6, n=2, seed=3), GREEDY],
)
def test_the_limits_of_sampling_are_the_greedy_answer(lm, sampling):
    greedy = lm.generate(PROMPTS, 10)
    sampled = lm.sample(PROMPTS, 10, sampling)
    assert [c[0] for c in sampled] == greedy
    assert all(len(set(c)) == 1 for c in sampled)


def test_greedy_sampling_decodes_once_and_repeats(lm):
    got = lm.sample(PROMPTS, 6, Sampling(n=3))
    assert got == [[g] * 3 for g in lm.generate(PROMPTS, 6)]


def test_mlx_lm_batch_generator_draws_the_same_samples(lm, monkeypatch):
    """Architectures without the hand-written decoder sample in mlx-lm's BatchGenerator with one
    sampler per row: the same keys give the same completions."""
    expected = lm.sample(PROMPTS, 8, WARM, batch_size=4)
    monkeypatch.setattr(decoding, "SUPPORTED_MODEL_TYPES", frozenset())
    assert lm.sample(PROMPTS, 8, WARM, batch_size=4) == expected


@pytest.mark.parametrize("workers", [1, 2])
def test_rows_set_aside_or_on_another_stream_draw_the_same_tokens(lm, workers, monkeypatch):
    """A batch that would outgrow its KV budget sets rows aside and decodes them again from
    their prompt (from step 0 of their random stream); two streams decode batches at once."""
    monkeypatch.setattr(decoding, "GROW_COLUMNS", 4)
    monkeypatch.setattr(decoding, "MIN_ROWS_PER_STREAM", 1)
    encoded = [lm.encode(lm.format_prompt(p, "chat")) for p in PROMPTS + [PREAMBLE + p for p in PROMPTS]]
    sampler = RowSampler(WARM, encoded, [0] * len(encoded))
    body, head = body_and_head(lm.model)
    stops = set(lm.tokenizer.eos_token_ids)
    one_by_one = [
        decoding.greedy_decode(lm.model, body, head, [e], 16, stops, 1, choose=_only(sampler, i))[0]
        for i, e in enumerate(encoded)
    ]
    batches = []
    original = decoding._decode_batch
    monkeypatch.setattr(
        decoding, "_decode_batch", lambda *a, **k: batches.append(len(a[3])) or original(*a, **k)
    )
    args = lm.model.args
    head_dim = args.hidden_size // args.num_attention_heads
    column = len(lm.model.layers) * 2 * args.num_key_value_heads * head_dim * 4  # bytes per row and column
    budget = 3 * (max(map(len, encoded)) + 16) * column  # three rows' caches fit, not ten
    got = decoding.greedy_decode(
        lm.model, body, head, encoded, 16, stops, 10, workers=workers, kv_budget=budget, choose=sampler
    )
    assert got == one_by_one
    assert len(batches) > workers  # rows were set aside, then decoded in later batches


def _only(sampler, row):
    """``sampler`` for a decode of the single prompt ``row``."""
    return lambda logits, rows, step: sampler(logits, [row], step)


def test_each_row_draws_with_its_own_key_whatever_its_neighbours():
    logits = mx.random.normal((6, 50), key=mx.random.key(0))
    keys = step_keys([bytes([i]) * 16 for i in range(6)], 3)
    together = sample_tokens(logits, keys, 1.0, 1.0).tolist()
    alone = [sample_tokens(logits[i : i + 1], keys[i : i + 1], 1.0, 1.0).item() for i in range(6)]
    assert together == alone
    assert step_keys([b"a" * 16], 0).tolist() != step_keys([b"a" * 16], 1).tolist()


def test_nucleus_keeps_the_most_likely_tokens_up_to_top_p():
    probs = mx.array([[0.1, 0.5, 0.15, 0.25]])
    logits = mx.log(probs)
    kept = lambda top_p: [i for i, v in enumerate(nucleus(logits, top_p)[0].tolist()) if math.isfinite(v)]  # noqa: E731
    assert kept(0.5) == [1]  # the top token's mass reaches top_p on its own
    assert kept(0.6) == [1, 3]
    assert kept(0.8) == [1, 2, 3]
    assert kept(1.0) == [0, 1, 2, 3]
    keys = step_keys([bytes([i % 256, i // 256]) * 8 for i in range(400)], 0)
    drawn = sample_tokens(mx.broadcast_to(logits, (400, 4)), keys, 1.0, 0.6).tolist()
    assert set(drawn) == {1, 3}  # never outside the nucleus; both inside it are drawn
    assert 0.55 < drawn.count(1) / 400 < 0.8  # 0.5 / 0.75 renormalised


def test_a_nucleus_among_the_candidates_or_beyond_them_is_drawn_from_row_by_row(monkeypatch):
    """Rows whose nucleus lies among their few most likely tokens draw among those; a flat row's
    nucleus reaches beyond them and it draws from its whole vocabulary. Either way every token
    comes from the row's nucleus, at its renormalised probability, whatever the other rows."""
    from rho_audit.model import sampling

    monkeypatch.setattr(sampling, "NUCLEUS_CANDIDATES", 8)
    peaked = mx.log(mx.array([0.02 / 61] * 61 + [0.5, 0.3, 0.18]))[None]  # nucleus at 0.9: 3 tokens
    flat = mx.random.normal((1, 64), key=mx.random.key(1)) * 0.1  # nucleus at 0.9: ~58 tokens
    draws = 600
    keys = step_keys([i.to_bytes(16, "little") for i in range(draws)], 0)
    for logits, least in ((peaked, 3), (flat, 40)):
        allowed = {i for i, v in enumerate(nucleus(logits, 0.9)[0].tolist()) if math.isfinite(v)}
        drawn = sample_tokens(mx.broadcast_to(logits, (draws, 64)), keys, 1.0, 0.9).tolist()
        assert set(drawn) <= allowed and len(set(drawn)) >= min(least, len(allowed))
    drawn = sample_tokens(mx.broadcast_to(peaked, (draws, 64)), keys, 1.0, 0.9).tolist()
    assert abs(drawn.count(61) / draws - 0.5 / 0.98) < 0.06
    mixed = mx.concatenate([peaked, flat, peaked, flat])
    together = sample_tokens(mixed, keys[:4], 1.0, 0.9).tolist()
    alone = [sample_tokens(mixed[i : i + 1], keys[i : i + 1], 1.0, 0.9).item() for i in range(4)]
    assert together == alone


@pytest.mark.parametrize(
    "kwargs, says",
    [
        ({"temperature": -1}, "temperature"),
        ({"temperature": math.inf}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"n": 0}, "n, the completions"),
        ({"n": 2.0}, "n, the completions"),
        ({"seed": "7"}, "seed"),
    ],
)
def test_bad_sampling_settings_say_what_to_pass(kwargs, says):
    with pytest.raises(RhoAuditError, match=says):
        Sampling(**kwargs)


def test_sampling_describes_itself():
    assert GREEDY.describe() == "greedy" and GREEDY.greedy
    text = Sampling(temperature=0.7, top_p=0.9, n=4, seed=1).describe()
    assert text == "sampled (temperature 0.7, top-p 0.9, 4 per prompt, seed 1)"
