"""Hidden states on the tiny model: the residual stream after a block, as a forward pass run
block by block gives it, for prompts and scored texts, batched."""

import mlx.core as mx
import numpy as np
import pytest
from mlx_lm.models.base import create_attention_mask

from rho_audit.api import ModelError, RhoAuditError, ScoreRequest
from rho_audit.model.language_model import LanguageModel

TEXTS = [
    "Say something.",
    ScoreRequest("What is two plus two?", "It is four, of course."),
    "Tell me a long story about a cat and a dog, please.",
    ScoreRequest(None, "The capital of France is Paris."),
    "Why?",
]


@pytest.fixture(scope="module")
def lm(tiny_model_path):
    return LanguageModel.load(tiny_model_path, "tiny")


def reference(lm, ids, block):
    """Block ``block``'s output at every position of ``ids``, run alone, block by block."""
    body = lm.model.model
    h = body.embed_tokens(mx.array([ids]))
    mask = create_attention_mask(h, None)
    for layer in body.layers[: block + 1]:
        h = layer(h, mask, cache=None)
    return np.array(h[0].astype(mx.float32))


def sequence(lm, text, template="chat"):
    """(token ids, prompt length) of a text as hidden_states reads it."""
    if isinstance(text, str):
        ids = list(lm._context_ids(text, template))
        return ids, len(ids)
    context = list(lm._context_ids(text.prompt, template))
    return context + lm.encode(text.continuation), len(context)


@pytest.mark.parametrize("layer, block", [(0, 0), (1, 1), (-1, 1), (-2, 0), ("middle", 1)])
@pytest.mark.parametrize("template", ["chat", "raw"])
def test_states_equal_a_forward_run_block_by_block(lm, layer, block, template):
    every = lm.hidden_states(TEXTS, layer, "all", template)
    last = lm.hidden_states(TEXTS, layer, "last", template)
    last_prompt = lm.hidden_states(TEXTS, layer, "last_prompt", template)
    mean = lm.hidden_states(TEXTS, layer, "mean", template)
    assert isinstance(every, list) and len(every) == len(TEXTS)
    for array in (last, last_prompt, mean):
        assert array.dtype == np.float32 and array.shape == (len(TEXTS), 64)
    for i, text in enumerate(TEXTS):
        ids, prompt_len = sequence(lm, text, template)
        ref = reference(lm, ids, block)
        span = ref if isinstance(text, str) else ref[prompt_len:]  # a request's span: its continuation
        assert every[i].dtype == np.float32 and every[i].shape == span.shape
        np.testing.assert_allclose(every[i], span, atol=1e-5)
        np.testing.assert_allclose(last[i], ref[-1], atol=1e-5)
        np.testing.assert_allclose(last_prompt[i], ref[prompt_len - 1], atol=1e-5)
        np.testing.assert_allclose(mean[i], span.mean(axis=0), atol=1e-5)
    assert not np.allclose(last, last_prompt)  # the requests' rows differ


def test_batching_changes_nothing_and_the_model_is_left_as_it_was(lm):
    blocks = list(lm.model.model.layers)
    together = lm.hidden_states(TEXTS, 0, "mean")
    alone = lm.hidden_states(TEXTS, 0, "mean", batch_size=1)
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert lm.model.model.layers == blocks
    assert lm.hidden_states([], 0).shape == (0, 64)
    with pytest.raises(RhoAuditError, match="encodes to no tokens"):
        lm.hidden_states([ScoreRequest("Hi", "")], 0)
    assert lm.model.model.layers == blocks


@pytest.mark.parametrize("layer", [2, -3, "first", True])
def test_a_layer_the_model_lacks_names_the_ones_it_has(lm, layer):
    with pytest.raises(ModelError, match=r'tiny has 2 layers.*"middle"'):
        lm.hidden_states(["Hi"], layer)


def test_unknown_positions_and_texts_say_what_to_pass(lm):
    with pytest.raises(RhoAuditError, match='"last", "last_prompt", "mean" or "all"'):
        lm.hidden_states(["Hi"], 0, "first")  # type: ignore[arg-type]
    with pytest.raises(RhoAuditError, match=r"text 0 is a int; pass a prompt \(str\) or a ScoreRequest"):
        lm.hidden_states([3], 0)  # type: ignore[list-item]
