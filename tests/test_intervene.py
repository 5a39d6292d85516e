"""Steering, patching and the Logit Lens on the tiny model, against a forward pass run block by
block in the test (NumPy/MLX by hand)."""

import mlx.core as mx
import numpy as np
import pytest
from mlx_lm.models.base import create_attention_mask

from rho_audit.api import RhoAuditError
from rho_audit.model import intervene
from rho_audit.model.intervene import Patch
from rho_audit.model.language_model import LanguageModel
from rho_audit.testing import build_lora_adapter

PROMPTS = ["Say something.", "Tell me a long story about a cat and a dog, please.", "Why?"]


@pytest.fixture(scope="module")
def lm(tiny_model_path):
    return LanguageModel.load(tiny_model_path, "tiny")


def by_hand(lm, ids, replace=None, add=None):
    """Every block's output (list) and the logits of ``ids``, block by block; ``replace``:
    (block, position, vector) replaces that block's output at one position, ``add``: (block,
    vector) adds to every position."""
    body = lm.model.model
    h = body.embed_tokens(mx.array([ids]))
    mask = create_attention_mask(h, None)
    states = []
    for b, layer in enumerate(body.layers):
        h = layer(h, mask, cache=None)
        if replace is not None and replace[0] == b:
            a = np.array(h.astype(mx.float32))
            a[0, replace[1]] = replace[2]
            h = mx.array(a).astype(h.dtype)
        if add is not None and add[0] == b:
            h = h + mx.array(add[1]).astype(h.dtype)
        states.append(np.array(h[0].astype(mx.float32)))
    logits = (
        lm.model.lm_head(body.norm(h))
        if hasattr(lm.model, "lm_head")
        else body.embed_tokens.as_linear(body.norm(h))
    )
    return states, np.array(logits[0].astype(mx.float32))


def ids_of(lm, text):
    return list(lm._context_ids(text, "chat"))


def test_steering_at_alpha_zero_and_without_it_is_plain_generation(lm):
    plain = lm.generate(PROMPTS, 12)
    v = np.random.default_rng(0).normal(size=64).astype(np.float32)
    assert intervene.steer_generate(lm, PROMPTS, v, 1, 0.0, 12) == plain
    assert lm.generate(PROMPTS, 12) == plain  # the wrapper is gone afterwards
    assert type(lm.model.model.layers[1]).__name__ != "_Wrapped"


def test_steering_adds_the_vector_at_every_position(lm):
    v = np.random.default_rng(1).normal(size=64).astype(np.float32) * 3
    ids = ids_of(lm, PROMPTS[1])
    with intervene.steering(lm.model, 0, v, 2.0):
        got = intervene.patched_forward(lm.model, [ids], 0, [], read_layers=[0, 1])
    states, logits = by_hand(lm, ids, add=(0, 2.0 * v))
    np.testing.assert_allclose(got.hidden[0][0], states[0], atol=1e-4)
    np.testing.assert_allclose(got.hidden[1][0], states[1], atol=1e-4)
    np.testing.assert_allclose(got.logits[0], logits, atol=1e-3)
    steered = intervene.steer_generate(lm, PROMPTS, v, 0, 4.0, 12)
    assert steered != lm.generate(PROMPTS, 12)


def test_patching_changes_only_the_patched_position_and_later(lm):
    seqs = [ids_of(lm, p) for p in PROMPTS]
    v = np.random.default_rng(2).normal(size=64).astype(np.float32) * 5
    row, position = 1, 7
    plain = intervene.patched_forward(lm.model, seqs, 0, [], read_layers=[0, 1])
    got = intervene.patched_forward(lm.model, seqs, 0, [Patch(row, position, v)], read_layers=[0, 1])
    states, logits = by_hand(lm, seqs[row], replace=(0, position, v))
    np.testing.assert_allclose(got.hidden[0][row], states[0], atol=1e-4)
    np.testing.assert_allclose(got.hidden[1][row], states[1], atol=1e-4)
    np.testing.assert_allclose(got.logits[row], logits, atol=1e-3)
    np.testing.assert_allclose(got.hidden[0][row][position], v, atol=1e-3)
    # Positions before the patch, and the other rows, are untouched; the patched one and later move.
    for layer in (0, 1):
        np.testing.assert_array_equal(got.hidden[layer][row][:position], plain.hidden[layer][row][:position])
        for other in (0, 2):
            np.testing.assert_array_equal(got.hidden[layer][other], plain.hidden[layer][other])
    # At the patched block only the patched cell moves (later positions ran before the patch);
    # downstream, the patched position and every later one move.
    moved = np.abs(got.hidden[0][row] - plain.hidden[0][row]).max(axis=1) > 0
    assert moved.tolist() == [i == position for i in range(len(seqs[row]))]
    assert (np.abs(got.hidden[1][row][position:] - plain.hidden[1][row][position:]).max(axis=1) > 0).all()
    np.testing.assert_array_equal(got.logits[row][:position], plain.logits[row][:position])
    last = intervene.patched_forward(lm.model, seqs, 0, [Patch(row, position, v)], last_only=True)
    np.testing.assert_array_equal(last.logits[row][0], got.logits[row][-1])


def test_a_patch_outside_a_row_is_refused(lm):
    with pytest.raises(RhoAuditError, match="position 99"):
        intervene.patched_forward(lm.model, [[1, 2, 3]], 0, [Patch(0, 99, np.zeros(64, np.float32))])


def test_logit_lens_is_final_norm_then_unembedding(lm):
    vectors = np.random.default_rng(3).normal(size=(4, 64)).astype(np.float32)
    norm = lm.model.model.norm
    x = vectors / np.sqrt((vectors**2).mean(axis=1, keepdims=True) + norm.eps) * np.array(norm.weight)
    head = lm.model.lm_head.weight if hasattr(lm.model, "lm_head") else lm.model.model.embed_tokens.weight
    np.testing.assert_allclose(intervene.logit_lens(lm.model, vectors), x @ np.array(head).T, atol=1e-3)


def test_adapter_off_gives_the_base_model(tiny_model_path, tmp_path, lm):
    adapter = build_lora_adapter(tiny_model_path, tmp_path / "adapter")
    tuned = LanguageModel.load(tiny_model_path, "tiny", adapter)
    ids = ids_of(lm, PROMPTS[0])
    base = intervene.patched_forward(lm.model, [ids], 0, [], read_layers=[1])
    on = intervene.patched_forward(tuned.model, [ids], 0, [], read_layers=[1])
    with intervene.adapter_off(tuned.model):
        off = intervene.patched_forward(tuned.model, [ids], 0, [], read_layers=[1])
    np.testing.assert_allclose(off.hidden[1][0], base.hidden[1][0], atol=1e-5)
    assert np.abs(on.hidden[1][0] - base.hidden[1][0]).max() > 1e-3
