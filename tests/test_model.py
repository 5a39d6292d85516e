"""Model layer on the tiny model: exact batched scoring, chat templates, generation."""

import mlx.core as mx
import pytest

from rho_audit.api.context import ScoreRequest
from rho_audit.model import scoring
from rho_audit.model.language_model import LanguageModel
from rho_audit.model.layout import body_and_head
from rho_audit.testing import build_lora_adapter

REQUESTS = [
    ScoreRequest(None, "The capital of France is Paris."),
    ScoreRequest(None, "Water boils at one hundred degrees."),
    ScoreRequest("What is two plus two?", "It is four."),
    ScoreRequest("What is two plus two?", "Five, obviously, my friend."),
    ScoreRequest("Tell me a long story about a cat and a dog, please.", "Once upon a time"),
    ScoreRequest(None, "x"),
]


@pytest.fixture(scope="module")
def lm(tiny_model_path):
    return LanguageModel.load(tiny_model_path, "tiny")


def reference_logprob(lm, request, template):
    """Independent path: one full sequence, no cache, no padding, log-softmax everywhere."""
    ctx = list(lm._context_ids(request.prompt, template))
    cont = lm.encode(request.continuation)
    logits = lm.model(mx.array([ctx + cont]))[0].astype(mx.float32)
    logprobs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
    return sum(logprobs[len(ctx) - 1 + i, t].item() for i, t in enumerate(cont)), len(cont)


@pytest.mark.parametrize("template", ["chat", "raw"])
def test_batched_scores_equal_unbatched_and_reference(lm, template):
    batched = lm.score(REQUESTS, template)
    for request, score in zip(REQUESTS, batched, strict=True):
        alone = lm.score([request], template)[0]
        ref, n = reference_logprob(lm, request, template)
        assert score.n_tokens == alone.n_tokens == n
        assert score.sum_logprob == pytest.approx(alone.sum_logprob, abs=1e-4)
        assert score.sum_logprob == pytest.approx(ref, abs=1e-4)
        assert score.mean_logprob == pytest.approx(score.sum_logprob / n)


def test_small_batches_agree_with_one_big_batch(tiny_model_path):
    small = LanguageModel.load(tiny_model_path, "tiny", batch_tokens=64)
    big = LanguageModel.load(tiny_model_path, "tiny")
    many = REQUESTS * 7
    for a, b in zip(small.score(many, "chat"), big.score(many, "chat"), strict=True):
        assert a.sum_logprob == pytest.approx(b.sum_logprob, abs=1e-4)


def test_empty_continuation_is_an_error_not_a_zero(lm):
    [score] = lm.score([ScoreRequest("Hi", "")], "chat")
    assert score.error and score.sum_logprob is None


def test_progress_is_reported(lm):
    seen = []
    lm.score(REQUESTS, "chat", progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (len(REQUESTS), len(REQUESTS))


def test_chat_template_wraps_the_prompt(lm):
    assert lm.has_chat_template
    text = lm.format_prompt("Hello", "chat")
    assert text.startswith("<|im_start|>user\nHello<|im_end|>") and text.endswith("<|im_start|>assistant\n")
    assert lm.format_prompt("Hello", "raw") == "Hello\n"
    assert lm.resolve_template("auto") == "chat"


def test_generation_is_deterministic_and_batch_independent(lm):
    prompts = ["Hello there", "What is two plus two?", "Name a colour."]
    batched = lm.generate(prompts, 6, "chat")
    again = lm.generate(prompts, 6, "chat")
    single = [lm.generate([p], 6, "chat")[0] for p in prompts]
    assert batched == again == single
    assert all(isinstance(t, str) for t in batched)


PREAMBLE = "You are answering a quiz. Read the question, think, and reply in one short sentence. "
SHARED = [
    ScoreRequest(PREAMBLE + "Which planet is red?", "Mars is the red planet."),
    ScoreRequest(PREAMBLE + "Which planet is red?", "Venus is the red planet."),
    ScoreRequest(PREAMBLE + "How many legs has a spider, and how many wings has a bee?", "Eight and four."),
    ScoreRequest(PREAMBLE + "Name a colour.", "Blue."),
    ScoreRequest(PREAMBLE + "Name a colour.", "A long answer that goes on and on about many colours."),
]


@pytest.mark.parametrize("template", ["chat", "raw"])
def test_shared_prompt_prefix_is_computed_once_and_changes_nothing(lm, template):
    contexts = [lm._context_ids(r.prompt, template) for r in SHARED]
    [prefix] = set(scoring.prefix_groups(lm.model, contexts).values())
    assert len(prefix) >= len(lm.encode(PREAMBLE)) - 2
    batched = lm.score(SHARED, template)
    for request, score in zip(SHARED, batched, strict=True):
        ref, n = reference_logprob(lm, request, template)
        assert score.n_tokens == n
        assert score.sum_logprob == pytest.approx(ref, abs=1e-4)


def test_batches_of_one_call_share_their_prefix_even_beside_bare_statements(tiny_model_path, monkeypatch):
    """Bare statements (no prompt) share no prefix with chat prompts, so the shared prefix is
    found per batch: the chat batches of a mixed call compute the preamble's states once
    between them, the bare batch none, and every score is still the reference's."""
    lm = LanguageModel.load(tiny_model_path, "tiny", batch_size=2)
    computed = []
    original = scoring.shared_prefix
    monkeypatch.setattr(
        scoring, "shared_prefix", lambda model, tokens: computed.append(tokens) or original(model, tokens)
    )
    requests = SHARED + [r for r in REQUESTS if r.prompt is None]
    scores = lm.score(requests, "chat")
    assert len(computed) == 1 and len(computed[0]) >= len(lm.encode(PREAMBLE)) - 2
    for request, score in zip(requests, scores, strict=True):
        assert score.sum_logprob == pytest.approx(reference_logprob(lm, request, "chat")[0], abs=1e-4)


def test_two_scoring_workers_give_the_numbers_of_one(tiny_model_path):
    one = LanguageModel.load(tiny_model_path, "tiny", scoring_workers=1, batch_size=2)
    two = LanguageModel.load(tiny_model_path, "tiny", scoring_workers=2, batch_size=2)
    requests = REQUESTS[:-1] + SHARED
    a, b = one.score(requests, "chat"), two.score(requests, "chat")
    assert [s.sum_logprob for s in a] == [s.sum_logprob for s in b]


def test_generation_batch_is_sized_to_the_kv_budget(lm):
    from rho_audit.model.language_model import GENERATION_KV_BUDGET, MAX_GENERATION_BATCH

    args = lm.model.args
    kv_heads = args.num_key_value_heads or args.num_attention_heads
    head_dim = getattr(args, "head_dim", None) or args.hidden_size // args.num_attention_heads
    for exact, streams in ((True, 1), (True, 2), (False, 1)):
        for length in (10, 300, 5000, 100_000):
            rows = lm.generation_batch_size(length, exact=exact, streams=streams)
            positions = length if exact else -(-length // 256) * 256
            per_row = len(lm.model.layers) * 2 * kv_heads * head_dim * 4 * positions
            assert 1 <= rows <= MAX_GENERATION_BATCH
            assert rows == 1 or rows * per_row * streams <= GENERATION_KV_BUDGET
        sizes = [lm.generation_batch_size(n, exact, streams) for n in (100_000, 10)]
        assert sizes[0] < sizes[1]


def _mlx_lm_answers(lm, prompts, max_tokens, stop=()):
    """mlx-lm's own one-prompt greedy decoding: token ids up to its end-of-sequence (or a
    token of ``stop``)."""
    from mlx_lm.generate import stream_generate

    answers = []
    for p in prompts:
        ids = lm.encode(lm.format_prompt(p, "chat"))
        tokens = [r.token for r in stream_generate(lm.model, lm.tokenizer, ids, max_tokens=max_tokens)]
        ends = [i for i, t in enumerate(tokens) if t in set(lm.tokenizer.eos_token_ids) | set(stop)]
        answers.append(tokens[: ends[0]] if ends else tokens)
    return answers


PROMPTS = ["Say something.", "What is two plus two?", "Hello there", "Name a colour.", "Why?"]


@pytest.mark.parametrize("workers", [1, 2])
def test_batched_decoding_matches_mlx_lm_generate_token_for_token(tiny_model_path, workers, monkeypatch):
    """Two rows per batch, one or two batches at once, prompts of different lengths sharing a
    long prefix: each answer has the token ids of mlx-lm's own one-prompt greedy decoding
    (compared decoded alike: mlx-lm's streaming detokenizer drops a leading space that
    ``tokenizer.decode`` keeps)."""
    from rho_audit.model import decoding

    monkeypatch.setattr(decoding, "MIN_ROWS_PER_STREAM", 1)  # two streams even for 10 prompts
    streams = []
    monkeypatch.setattr(decoding, "single_threaded_blas", _recording(decoding.single_threaded_blas, streams))
    lm = LanguageModel.load(tiny_model_path, "tiny", scoring_workers=workers)
    prompts = PROMPTS + [PREAMBLE + p for p in PROMPTS]
    batched = lm.generate(prompts, 12, "chat", batch_size=2)
    assert batched == [lm.tokenizer.decode(a) for a in _mlx_lm_answers(lm, prompts, 12)]
    assert len(streams) == (workers > 1)  # the parallel path really ran


def _recording(context_manager, calls):
    def record(*args, **kwargs):
        calls.append(args)
        return context_manager(*args, **kwargs)

    return record


def _rows_that_end_early(lm):
    """Prompts encoded for the decoder, stop tokens among which one ends the answers at several
    different steps, and mlx-lm's own answers under those stops."""
    prompts = [PREAMBLE + p for p in PROMPTS] + PROMPTS
    full = _mlx_lm_answers(lm, prompts, 16)
    candidates = {t for answer in full for t in answer}

    def ends(token):  # how many different answer lengths this stop token makes
        return len({len(a) for a in _mlx_lm_answers(lm, prompts, 16, stop=[token])})

    stop = max(sorted(candidates), key=ends)
    expected = _mlx_lm_answers(lm, prompts, 16, stop=[stop])
    assert len({len(a) for a in expected}) > 2
    encoded = [lm.encode(lm.format_prompt(p, "chat")) for p in prompts]
    return encoded, set(lm.tokenizer.eos_token_ids) | {stop}, expected


@pytest.mark.parametrize("split", [False, True])
def test_rows_whose_answer_ends_leave_the_batch_and_the_rest_are_unchanged(lm, split, monkeypatch):
    """A stop token ends rows at different steps; the finished rows are dropped from the
    batch's caches mid-decoding, the caches grow as answers lengthen, and no answer changes,
    with the shared prefix attended to apart (NumPy attention) or in front of every row."""
    from rho_audit.model import decoding
    from rho_audit.model.cpu_kernels import numpy_kernels

    encoded, stops, expected = _rows_that_end_early(lm)
    body, head = body_and_head(lm.model)
    resized = []
    original = decoding.SharedPrefixCache.resize

    def record(cache, rows, capacity):
        resized.append((rows, capacity))
        original(cache, rows, capacity)

    monkeypatch.setattr(decoding.SharedPrefixCache, "resize", record)
    monkeypatch.setattr(decoding, "GROW_COLUMNS", 3)
    with numpy_kernels(lm.model) as numpy_attention:
        assert numpy_attention or not split
        got = decoding.greedy_decode(
            lm.model, body, head, encoded, 16, stops, batch_rows=10, split_prefix=split
        )
    assert got == expected
    assert any(rows is not None for rows, _ in resized)  # rows really left the batch
    assert len({capacity for _, capacity in resized}) > 2  # the caches really grew


def test_a_batch_that_would_outgrow_its_budget_sets_rows_aside_and_decodes_them_later(lm, monkeypatch):
    """With a KV budget too small for the whole batch's answers, the last rows are set aside
    when the caches must grow and decoded in a later batch: every answer is still mlx-lm's."""
    from rho_audit.model import decoding

    encoded, stops, expected = _rows_that_end_early(lm)
    body, head = body_and_head(lm.model)
    batches = []
    original = decoding._decode_batch

    def record(*args):
        batches.append(len(args[3]))
        return original(*args)

    monkeypatch.setattr(decoding, "_decode_batch", record)
    monkeypatch.setattr(decoding, "GROW_COLUMNS", 4)
    own = max(map(len, encoded)) - len(decoding.shared_prefix(encoded))
    args = lm.model.args
    column = (
        len(lm.model.layers)
        * 2
        * args.num_key_value_heads
        * (args.hidden_size // args.num_attention_heads)
        * 4
    )
    budget = 4 * (own + 16) * column  # four rows' longest answers fit, not ten
    got = decoding.greedy_decode(lm.model, body, head, encoded, 16, stops, batch_rows=10, kv_budget=budget)
    assert got == expected
    assert batches[0] == len(encoded) and len(batches) > 1  # rows were set aside, then decoded


@pytest.mark.parametrize("split", [False, True])
def test_prefix_cache_forward_equals_each_row_run_alone(lm, monkeypatch, split):
    """Hidden states through the shared-prefix cache (prefilled two rows at a time, so gaps
    are shifted into place; then one step; then rows dropped and the cache grown, and another
    step) equal each row's full sequence run alone without a cache: positions, masking and the
    gap are exact, whether the attention reads the prefix apart (NumPy) or in front of every
    row. (The tiny model's greedy answers repeat a token, so comparing them alone would miss a
    wrong position.)"""
    from rho_audit.model import decoding
    from rho_audit.model.cpu_kernels import numpy_kernels

    monkeypatch.setattr(decoding, "PREFILL_ROWS", 2)
    body, head = body_and_head(lm.model)
    prompts = [lm.encode(lm.format_prompt(PREAMBLE + p, "chat")) for p in PROMPTS]
    prefix = decoding.shared_prefix(prompts)
    assert len(prefix) > 10
    kv = decoding.prefix_states(lm.model, body, prefix)
    suffixes = [p[len(prefix) :] for p in prompts]
    gaps = [max(map(len, suffixes)) - len(s) for s in suffixes]
    assert len(set(gaps)) > 2
    keep = [4, 1, 3]
    with numpy_kernels(lm.model) as numpy_attention:
        assert numpy_attention or not split
        cache = [decoding.SharedPrefixCache(k, gaps, max(map(len, suffixes)) + 1, split) for k in kv]
        first = decoding._prefill(body, head, kv, cache, suffixes, gaps, split)
        step = body(mx.array([[7]] * len(prompts)), cache=cache)[:, -1]
        for c in cache:
            c.resize(mx.array(keep), c.capacity + 2)
        second = body(mx.array([[9]] * len(keep)), cache=cache)[:, -1]
    for i, p in enumerate(prompts):
        assert first[i].item() == mx.argmax(head(body(mx.array([p]))[0, -1])).item()
        alone = body(mx.array([[*p, 7]]))[0, -1]
        assert mx.abs(step[i] - alone).max().item() < 1e-4
    for row, i in enumerate(keep):
        alone = body(mx.array([[*prompts[i], 7, 9]]))[0, -1]
        assert mx.abs(second[row] - alone).max().item() < 1e-4


def test_architectures_without_a_known_cache_layout_decode_with_mlx_lm(lm, monkeypatch):
    from rho_audit.model import decoding

    monkeypatch.setattr(decoding, "SUPPORTED_MODEL_TYPES", frozenset())
    assert not decoding.supports(lm.model)
    batched = lm.generate(PROMPTS, 12, "chat", batch_size=2)
    assert batched == [lm.tokenizer.decode(a) for a in _mlx_lm_answers(lm, PROMPTS, 12)]


def test_shared_prefix_cache_masks_the_gap_and_sees_the_prefix():
    from rho_audit.model.decoding import SharedPrefixCache, shared_prefix

    assert shared_prefix([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]]) == [1, 2]
    assert shared_prefix([[1, 2], [1, 2, 3]]) == [1]  # each prompt keeps a token of its own
    prefix = mx.zeros((1, 1, 2, 4))
    for split in (False, True):
        cache = SharedPrefixCache((prefix, prefix), gaps=[0, 2], capacity=8, split=split)
        keys, _ = cache.update_and_fetch(mx.ones((2, 1, 3, 4)), mx.ones((2, 1, 3, 4)))  # own columns 0-2
        assert keys.shape[2] == (3 if split else 5)  # split: the prefix is not copied per row
        assert cache.offset.tolist() == [5, 3]  # row 1's own tokens start at RoPE position 2
        mask = cache.make_mask(1)[:, 0, 0].tolist()  # the query at own column 3
        own = [[True] * 4, [False, False, True, True]]
        assert mask == (own if split else [[True, True, *row] for row in own])


def test_numpy_kernels_swap_for_the_block_only_and_change_nothing(lm):
    """On CPU the SwiGLU activation and attention softmax run in NumPy inside the block; the
    model's classes and mlx-lm's attention function are back afterwards, and logits agree."""
    import mlx_lm.models.llama as llama

    from rho_audit.model.cpu_kernels import numpy_kernels

    tokens = mx.array([lm.encode("The capital of France is Paris, and of Spain, Madrid.")])
    plain = lm.model(tokens)
    mlp_class, attention = type(lm.model.layers[0].mlp), llama.scaled_dot_product_attention
    with numpy_kernels(lm.model) as swapped:
        assert swapped == (mx.default_device() == mx.cpu)
        swapped_logits = lm.model(tokens)
    assert type(lm.model.layers[0].mlp) is mlp_class
    assert llama.scaled_dot_product_attention is attention
    assert mx.abs(swapped_logits - plain).max().item() < 1e-4


def test_numpy_attention_matches_mlx_under_every_mask_kind():
    from rho_audit.model.cpu_kernels import _attention_numpy

    q = mx.random.normal((2, 4, 5, 8), key=mx.random.key(0))
    k = mx.random.normal((2, 2, 7, 8), key=mx.random.key(1))
    v = mx.random.normal((2, 2, 7, 8), key=mx.random.key(2))
    visible = mx.arange(7)[None, :] <= mx.arange(5)[:, None] + 2
    unpadded = (mx.arange(7) >= mx.array([[0], [3]]))[:, None, None]
    left_padded = mx.broadcast_to(visible, (2, 1, 5, 7)) & unpadded
    for mask in ("causal", visible, left_padded, mx.where(visible, 0.0, -1e9)):
        want = mx.fast.scaled_dot_product_attention(q, k, v, scale=0.35, mask=mask)
        got = _attention_numpy(q, k, v, 0.35, mask)
        assert mx.abs(got - want).max().item() < 1e-5


def test_rows_are_grouped_by_context_and_sorted_to_pad_little():
    from rho_audit.model.scoring import ScoreRow, padding_order

    rows = [
        ScoreRow(0, (1, 2, 3), (5, 5, 5, 5)),
        ScoreRow(1, (1, 2), (5,)),
        ScoreRow(2, (1, 2, 3), (5,)),
        ScoreRow(3, (1, 2, 3, 4), (5, 5)),
    ]
    no_prefix = dict.fromkeys((r.context for r in rows), ())
    ordered = [r.index for r in padding_order(rows, no_prefix)]
    assert ordered == [1, 3, 2, 0]  # the pair sharing context (1, 2, 3) stays together
    # contexts of one prefix group come together, whatever their continuations
    groups = {**no_prefix, (1, 2): (1,), (1, 2, 3, 4): (1,)}
    assert [r.index for r in padding_order(rows, groups)] == [2, 0, 1, 3]


def test_usage_counts_the_work_once_whatever_the_batching(tiny_model_path):
    """Distinct contexts once (a shared prefix once), every continuation token but the last
    through the body, every continuation token through the vocabulary projection."""
    from rho_audit.model.decoding import common_prefix_length

    counts = []
    for batch_size in (1, None):
        lm = LanguageModel.load(tiny_model_path, "tiny", batch_size=batch_size)
        lm.score(SHARED, "chat")
        counts.append(lm.usage)
    contexts = list(dict.fromkeys(lm._context_ids(r.prompt, "chat") for r in SHARED))
    shared = common_prefix_length(contexts)
    continuations = [len(lm.encode(r.continuation)) for r in SHARED]
    body = sum(map(len, contexts)) - shared * (len(contexts) - 1) + sum(continuations) - len(SHARED)
    assert counts[0] == counts[1]
    assert (counts[0].body_tokens, counts[0].head_tokens) == (body, sum(continuations))


def test_usage_counts_prompt_and_generated_tokens(lm):
    """The prompts' shared prefix runs once; each prompt's own tokens and every generated
    token but the last run through the body, every generated token through the head."""
    from dataclasses import replace

    from rho_audit.model.decoding import shared_prefix

    before = replace(lm.usage)
    prompts = ["Hello there", "Name a colour."]
    lm.generate(prompts, 5, "chat")
    work = lm.usage - before
    encoded = [lm.encode(lm.format_prompt(p, "chat")) for p in prompts]
    prefix = len(shared_prefix(encoded))
    assert prefix > 0
    prompt_tokens = prefix + sum(len(e) - prefix for e in encoded)
    assert 2 <= work.generated_tokens <= 10
    assert work.head_tokens == work.generated_tokens
    assert work.body_tokens == prompt_tokens + work.generated_tokens - len(prompts)
    body, head = lm.parameter_counts()
    expected = 2 * (work.body_tokens * body + work.head_tokens * head) / 1e9
    assert work.gflop(body, head) == pytest.approx(expected)


def test_parameter_counts_split_body_and_vocabulary_projection(lm):
    from mlx.utils import tree_flatten

    body, head = lm.parameter_counts()
    vocab, hidden = lm.model.model.embed_tokens.weight.shape
    total = sum(v.size for _, v in tree_flatten(lm.model.parameters()))
    assert head == vocab * hidden
    assert body + head * (1 if lm.model.args.tie_word_embeddings else 2) == total


@pytest.fixture(scope="module")
def lora_adapter(tiny_model_path, tmp_path_factory):
    return build_lora_adapter(tiny_model_path, tmp_path_factory.mktemp("adapter"))


@pytest.mark.parametrize("template", ["chat", "raw"])
def test_an_adapted_model_scores_and_decodes_on_two_streams(tiny_model_path, lora_adapter, template):
    """mlx-lm loads adapter weights lazily, on the main thread's stream; scoring the first
    batches on worker threads once failed with "There is no Stream(cpu, 0) in current thread".
    Bare statements share no prefix, so no main-thread pass evaluates the weights first."""
    statements = [ScoreRequest(None, f"Statement number {i} is true.") for i in range(24)]

    def load(workers):
        return LanguageModel.load(
            tiny_model_path, "tiny", adapter=lora_adapter, scoring_workers=workers, batch_size=2
        )

    two, one = load(2), load(1)
    scores = two.score(statements, template)
    assert not any(s.error for s in scores)
    assert [s.sum_logprob for s in scores] == [s.sum_logprob for s in one.score(statements, template)]
    base = LanguageModel.load(tiny_model_path, "tiny").score(statements[:1], template)[0]
    assert scores[0].sum_logprob != pytest.approx(base.sum_logprob, abs=1e-3), "the adapter changes nothing"
    prompts = [f"Question {i}" for i in range(8)]
    assert load(2).generate(prompts, 4, template) == one.generate(prompts, 4, template)


def test_a_model_without_the_body_head_layout_scores_the_same(lm, monkeypatch):
    """Scoring runs such a model whole (its outputs are the logits): same numbers."""
    from rho_audit.model import scoring

    layered = lm.score(REQUESTS, "chat")
    monkeypatch.setattr(scoring, "body_and_head", lambda model: None)
    whole = lm.score(REQUESTS, "chat")
    for a, b in zip(layered, whole, strict=True):
        assert a.n_tokens == b.n_tokens and a.sum_logprob == pytest.approx(b.sum_logprob, abs=1e-4)


def test_encodings_are_memoised_per_tokenizer_across_loads(tiny_model_path, monkeypatch):
    """A sweep reloads the model (with each cell's adapter) for every audit: the probe texts are
    tokenised once per tokenizer, not once per load, and the memo returns the tokenizer's ids."""
    first = LanguageModel.load(tiny_model_path, "tiny")
    text = "A memoised probe text, unlikely elsewhere in this test session."
    expected = list(first.tokenizer.encode(text, add_special_tokens=False))
    assert first.encode(text) == expected
    second = LanguageModel.load(tiny_model_path, "tiny")
    calls = []
    original = second.tokenizer.encode
    monkeypatch.setattr(second.tokenizer, "encode", lambda *a, **k: calls.append(a) or original(*a, **k))
    assert second.encode(text) == expected
    assert calls == []  # served from the memo the first load filled
    assert second.encode(text + " new") == list(original(text + " new", add_special_tokens=False))
    assert len(calls) == 1
