"""The packed micro-step (rho_audit.train.packing) gives each row the CE, and the model the
gradient, that the separate per-row batches give."""

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten, tree_map
from mlx_lm import load
from mlx_lm.models.llama import Model, ModelArgs
from mlx_lm.tuner.utils import linear_to_lora_layers

from rho_audit.train.batches import per_row_ce, token_batch, truncate_row
from rho_audit.train.packing import MicroBatch, pack_rows, packed_row_ce, packing_supported

MAX_LEN = 48


def _with_lora(model):
    """LoRA on q/k/o as the loop adds it, with non-zero factors (mlx-lm starts B at zero, which
    would leave A without a gradient)."""
    model.freeze()
    linear_to_lora_layers(
        model,
        len(model.layers),
        {
            "rank": 4,
            "scale": 2.0,
            "dropout": 0.0,
            "keys": ["self_attn.q_proj", "self_attn.k_proj", "self_attn.o_proj"],
        },
    )
    mx.random.seed(5)
    model.update(tree_map(lambda p: mx.random.normal(p.shape) * 0.1, model.trainable_parameters()))
    mx.eval(model.parameters())
    return model


@pytest.fixture(scope="module")
def model(tiny_model_path):
    return _with_lora(load(str(tiny_model_path))[0])


def _ids(start, n):
    return [3 + (start + 11 * i) % 400 for i in range(n)]


# A long SFT row, then pairs: shared contexts, continuations of very different lengths, a
# one-token continuation, rows cut at MAX_LEN (long context, and a continuation longer than
# MAX_LEN), one context shared by two pairs, and a continuation that starts as another one does.
ROWS = [
    (_ids(0, 6), _ids(50, 40)),
    (_ids(100, 9), _ids(120, 2)),
    (_ids(100, 9), _ids(130, 17)),
    (_ids(200, 1), _ids(210, 5)),
    (_ids(200, 1), _ids(220, 1)),
    (_ids(300, 70), _ids(310, 12)),
    (_ids(300, 70), _ids(320, 4)),
    (_ids(7, 3), _ids(400, 60)),
    (_ids(100, 9), _ids(140, 3)),
    (_ids(100, 9), _ids(130, 5) + _ids(9, 3)),
]


def _separate(model, rows):
    return mx.concatenate([per_row_ce(model, token_batch([row], MAX_LEN)) for row in rows])


def test_packed_row_ce_is_the_separate_row_ce(model):
    packed = pack_rows(ROWS, MAX_LEN)
    got, want = packed_row_ce(model, packed), _separate(model, ROWS)
    np.testing.assert_allclose(np.array(got), np.array(want), atol=1e-4, rtol=0)
    assert packed.n_tokens == sum(token_batch([row], MAX_LEN).n_tokens for row in ROWS)
    # The rows that share a context predict their first continuation token at one position (and
    # row 9 its first six at row 2's): the vocabulary projection runs there once.
    assert packed.heads.size == packed.n_tokens - 3 - 1 - 5
    # Each distinct row prefix is packed once (rows 2, 8 and 9 reuse row 1's context, row 9 also
    # row 2's first five continuation tokens, row 4 row 3's one context token); rows 5 and 6 keep
    # different parts of their long context (MAX_LEN minus the continuation), so they share nothing.
    prefixes = {tuple(row[: n + 1]) for row in map(_unpadded, ROWS) for n in range(len(row))}
    assert packed.tokens.shape[1] == len(prefixes) < sum(len(row) for row in map(_unpadded, ROWS))
    assert [s.before for s in packed.spans if s.before] == [((45, 54),), ((45, 54),), ((45, 54), (55, 60))]


def _unpadded(row):
    """A row's input tokens (all but its last), truncated as the loop truncates it."""
    return truncate_row(*row, MAX_LEN)[1][:-1]


def test_each_row_keeps_its_own_positions_and_sees_no_other_row(model):
    """A row's CE does not move when other rows are packed before it."""
    alone = packed_row_ce(model, pack_rows(ROWS[1:3], MAX_LEN))
    after_others = packed_row_ce(model, pack_rows([ROWS[0], ROWS[7], *ROWS[1:3]], MAX_LEN))[2:]
    np.testing.assert_allclose(np.array(alone), np.array(after_others), atol=1e-5, rtol=0)


def test_packed_gradient_is_the_separate_gradient(model):
    weights = mx.array(np.linspace(0.5, 2.0, len(ROWS)), dtype=mx.float32)
    packed = pack_rows(ROWS, MAX_LEN)

    def grads(fn):
        _, g = nn.value_and_grad(model, lambda m: (fn(m) * weights).sum())(model)
        return dict(tree_flatten(g))

    got = grads(lambda m: packed_row_ce(m, packed))
    want = grads(lambda m: _separate(m, ROWS))
    assert got.keys() == want.keys() and len(got) == 12  # q, k, o x (A, B) x 2 layers
    for name in want:
        scale = float(mx.abs(want[name]).max())
        assert scale > 0, name
        np.testing.assert_allclose(np.array(got[name]), np.array(want[name]), atol=1e-4 * scale, rtol=0)


def test_micro_batch_packed_and_separate_agree(model):
    batch = MicroBatch(ROWS[0], (tuple(ROWS[1:3]), tuple(ROWS[3:7])), MAX_LEN)
    packed, separate = batch.forward(model, True, True), batch.forward(model, False, True)
    assert packed.pair_ce.shape == separate.pair_ce.shape == (6,)
    np.testing.assert_allclose(np.array(packed.sft_ce), np.array(separate.sft_ce), atol=1e-4)
    np.testing.assert_allclose(np.array(packed.pair_ce), np.array(separate.pair_ce), atol=1e-4)
    # the SFT row's log-softmax at its scored positions, both ways, and it gives back its CE
    n_sft = token_batch([ROWS[0]], MAX_LEN).n_tokens
    assert packed.sft_logprobs.shape == separate.sft_logprobs.shape == (n_sft, model.args.vocab_size)
    np.testing.assert_allclose(np.array(packed.sft_logprobs), np.array(separate.sft_logprobs), atol=1e-4)
    targets = mx.array(ROWS[0][1][-n_sft:])
    ce = -mx.take_along_axis(packed.sft_logprobs, targets[:, None], axis=-1).mean()
    np.testing.assert_allclose(float(ce), float(packed.sft_ce[0]), atol=1e-4)
    pairs_only = batch.without_sft()
    assert pairs_only.forward(model, True).sft_ce.shape == (0,)
    np.testing.assert_allclose(
        np.array(pairs_only.forward(model, True).pair_ce), np.array(separate.pair_ce), atol=1e-4
    )
    alone = batch.without_pairs().forward(model, True)  # one row: the model's own forward
    assert alone.pair_ce.shape == (0,)
    np.testing.assert_allclose(np.array(alone.sft_ce), np.array(separate.sft_ce), atol=1e-5)
    assert batch.n_tokens() == sum(token_batch([r], MAX_LEN).n_tokens for r in ROWS[:7])


def _weights(row, trained):
    """1.0 on the continuation tokens at the indices in ``trained``, 0.0 elsewhere."""
    return tuple(float(i in trained) for i in range(len(row[1])))


# The SFT row trains tokens 3-7 of its 40 (a marker-like run); a row cut at MAX_LEN trains one
# token it keeps (index 2) and three it loses (index 50 on, past the cut).
MASKED = [(ROWS[0], {3, 4, 5, 6, 7}), (ROWS[7], {2, 50, 51, 59})]


@pytest.mark.parametrize(("row", "trained"), MASKED)
def test_a_masked_sft_row_is_the_mean_ce_of_exactly_its_trained_tokens(model, row, trained):
    """Against a NumPy computation on the model's own logits: the mean CE over the kept trained
    tokens, packed and separate alike; the pair rows are untouched, and the log-softmax (for a KL
    term) still covers every scored token."""
    from scipy.special import log_softmax

    weights = _weights(row, trained)
    kept, seq = truncate_row(*row, MAX_LEN)
    logits = np.array(model(mx.array([seq[:-1]])).astype(mx.float32), dtype=np.float64)[0]
    logprobs = log_softmax(logits, axis=-1)
    n_kept = len(seq) - len(kept)
    chosen = [i for i in trained if i < n_kept]  # continuation token i is target len(kept) - 1 + i
    want = np.mean([-logprobs[len(kept) - 1 + i, row[1][i]] for i in chosen])
    plain = MicroBatch(row, (tuple(ROWS[1:3]),), MAX_LEN)
    batch = MicroBatch(row, (tuple(ROWS[1:3]),), MAX_LEN, weights)
    for packed in (True, False):
        out, unmasked = batch.forward(model, packed, True), plain.forward(model, packed, True)
        assert float(out.sft_ce[0]) == pytest.approx(want, abs=1e-4), packed
        assert abs(float(unmasked.sft_ce[0]) - want) > 1e-2  # the mask changed the number
        np.testing.assert_allclose(np.array(out.pair_ce), np.array(unmasked.pair_ce), atol=1e-5)
        np.testing.assert_allclose(np.array(out.sft_logprobs), np.array(unmasked.sft_logprobs), atol=1e-5)
    assert batch.n_tokens() == plain.n_tokens() - (plain.sft_tokens() - len(chosen))
    assert batch.sft_tokens() == plain.sft_tokens() == n_kept


def test_masked_rows_packed_give_the_separate_ce_and_gradient(model):
    rows = [ROWS[0], ROWS[7], *ROWS[1:4]]
    weights = [_weights(ROWS[0], {0, 9, 10, 39}), _weights(ROWS[7], {1, 2}), None, None, None]
    packed = pack_rows(rows, MAX_LEN, weights)
    separate = lambda m: mx.concatenate(  # noqa: E731
        [per_row_ce(m, token_batch([row], MAX_LEN, [w])) for row, w in zip(rows, weights, strict=True)]
    )
    np.testing.assert_allclose(np.array(packed_row_ce(model, packed)), np.array(separate(model)), atol=1e-4)
    assert packed.n_tokens == sum(
        token_batch([r], MAX_LEN, [w]).n_tokens for r, w in zip(rows, weights, strict=True)
    )

    def grads(fn):
        return dict(tree_flatten(nn.value_and_grad(model, lambda m: fn(m).sum())(model)[1]))

    got, want = grads(lambda m: packed_row_ce(m, packed)), grads(separate)
    for name in want:
        scale = float(mx.abs(want[name]).max())
        np.testing.assert_allclose(np.array(got[name]), np.array(want[name]), atol=1e-4 * scale, rtol=0)


def test_sliding_window_layers_get_the_window_per_row():
    mx.random.seed(1)
    args = ModelArgs(
        model_type="llama",
        hidden_size=32,
        num_hidden_layers=2,
        intermediate_size=64,
        num_attention_heads=4,
        num_key_value_heads=2,
        rms_norm_eps=1e-5,
        vocab_size=500,
        layer_types=["sliding_attention", "full_attention"],
        sliding_window=6,
    )
    model = _with_lora(Model(args))
    np.testing.assert_allclose(
        np.array(packed_row_ce(model, pack_rows(ROWS, MAX_LEN))), np.array(_separate(model, ROWS)), atol=1e-4
    )


class _Unrouted(nn.Module):
    """A model whose body builds its own mask: the row layout would never reach attention."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.model = lambda inputs, cache=None: inner.model(inputs)
        self.lm_head = inner.model.embed_tokens.as_linear
        self.layers = inner.layers

    def __call__(self, inputs):
        return self.inner(inputs)


def test_packing_is_only_used_where_it_gives_the_separate_numbers(model):
    assert packing_supported(model)
    assert not packing_supported(_Unrouted(model))
    with pytest.raises(RuntimeError, match="attention layers"):
        packed_row_ce(_Unrouted(model), pack_rows(ROWS[:3], MAX_LEN))

    class NoLayout(nn.Module):
        def __call__(self, inputs):
            return model(inputs)

    assert not packing_supported(NoLayout())
