"""The activation-difference lens on the tiny model and a random LoRA adapter, against direct
NumPy computations: difference means, Logit Lens, Patchscope, the α search."""

import mlx.core as mx
import numpy as np
import pytest
from mlx_lm.models.base import create_attention_mask

from rho_audit.api import RhoAuditError
from rho_audit.audit import diff, diff_steer
from rho_audit.audit.neutral import neutral_texts, read_texts
from rho_audit.model.language_model import LanguageModel
from rho_audit.testing import build_lora_adapter

K = 4


@pytest.fixture(scope="module")
def models(tiny_model_path, tmp_path_factory):
    adapter = build_lora_adapter(
        tiny_model_path, tmp_path_factory.mktemp("adapter"), ("self_attn.q_proj", "mlp.up_proj")
    )
    return LanguageModel.load(tiny_model_path, "tiny", adapter), LanguageModel.load(tiny_model_path, "tiny")


def block_states(lm, ids, block):
    body = lm.model.model
    h = body.embed_tokens(mx.array([ids]))
    mask = create_attention_mask(h, None)
    for layer in body.layers[: block + 1]:
        h = layer(h, mask, cache=None)
    return np.array(h[0].astype(mx.float32)).astype(np.float64)


def test_difference_means_equal_a_direct_computation(models):
    tuned, base = models
    texts = neutral_texts(12)
    seqs = diff.sequences_for(tuned, texts, K)
    means = diff.compute_means(tuned, None, seqs, 1, K)
    ft = np.stack([block_states(tuned, s, 1)[:K] for s in seqs])
    b = np.stack([block_states(base, s, 1)[:K] for s in seqs])
    np.testing.assert_allclose(means.diff, (ft - b).mean(axis=0), atol=1e-4)
    np.testing.assert_allclose(means.base, b.mean(axis=0), atol=1e-4)
    norms = [np.linalg.norm(block_states(tuned, s, 1)[diff.SINK_POSITIONS :], axis=1) for s in seqs]
    assert means.eta == pytest.approx(float(np.concatenate(norms).mean()), rel=1e-4)
    assert np.abs(means.diff).max() > 1e-3  # the adapter changes the states
    # Two model directories give the same as adapter on/off.
    other = diff.compute_means(tuned, base, seqs, 1, K)
    np.testing.assert_allclose(other.diff, means.diff, atol=1e-5)


def test_logit_lens_and_patchscope_equal_direct_computations(models):
    tuned, _ = models
    seqs = diff.sequences_for(tuned, neutral_texts(8), K)
    means = diff.compute_means(tuned, None, seqs, 0, K)
    found = diff.readouts(tuned, 0, means.diff[:2], means.eta, 10)
    norm = tuned.model.model.norm
    head = np.array(
        tuned.model.model.embed_tokens.weight
        if not hasattr(tuned.model, "lm_head")
        else tuned.model.lm_head.weight
    )
    for j in range(2):
        v = means.diff[j].astype(np.float64)
        lens = (v / np.sqrt((v**2).mean() + norm.eps) * np.array(norm.weight)) @ head.T
        assert [t.id for t in found[j].logit_lens] == np.argsort(-lens, kind="stable")[:10].tolist()
        # Patchscope at the chosen strength, by hand: replace the last state of each prompt.
        s = found[j].strength
        patch = s * means.eta * v / np.linalg.norm(v)
        lps, own = [], set()
        for triple in diff.IDENTITY_TRIPLES:
            ids = [tuned.document_start, *tuned.encode(diff.identity_prompt(triple))]
            own |= set(ids)
            body = tuned.model.model
            h = body.embed_tokens(mx.array([ids]))
            mask = create_attention_mask(h, None)
            for b, layer in enumerate(body.layers):
                h = layer(h, mask, cache=None)
                if b == 0:
                    a = np.array(h.astype(mx.float32))
                    a[0, -1] = patch
                    h = mx.array(a)
            x = np.array(body.norm(h)[0, -1].astype(mx.float32)).astype(np.float64)
            logits = x @ head.T
            lps.append(diff.log_softmax(logits))
        pools = [set(np.argsort(-lp, kind="stable")[: diff.PATCHSCOPE_POOL].tolist()) for lp in lps]
        common = set.intersection(*pools) - own
        assert found[j].kept[f"{s:g}"] == len(common) == max(found[j].kept.values())
        mean = np.mean(lps, axis=0)
        assert [t.id for t in found[j].patchscope] == sorted(common, key=lambda t: -mean[t])[:10]


def test_position_diffs_read_the_base_mean_as_the_baseline(models):
    tuned, _ = models
    seqs = diff.sequences_for(tuned, neutral_texts(6), K)
    means = diff.compute_means(tuned, None, seqs, 1, K)
    found = diff.position_diffs(tuned, means, 1, 5)
    assert [p.position for p in found] == list(range(K))
    lens = diff.readouts(tuned, 1, means.base, means.eta, 5)
    assert [t.id for t in found[2].base.logit_lens] == [t.id for t in lens[2].logit_lens]
    assert found[1].norm == pytest.approx(float(np.linalg.norm(means.diff[1])))


def test_too_short_texts_are_refused(models):
    with pytest.raises(RhoAuditError, match="fewer than 50 tokens"):
        diff.sequences_for(models[0], ["Hi."], 50)


def test_neutral_corpus_is_deterministic_and_large(tmp_path):
    texts = neutral_texts(2000)
    assert len(set(texts)) == 2000 and texts == neutral_texts(2000)
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "One."}\n\nTwo.\n')
    assert read_texts(path) == ["One.", "Two."]
    path.write_text('{"txt": 1}\n')
    with pytest.raises(RhoAuditError, match=r"t.jsonl:1"):
        read_texts(path)


@pytest.mark.parametrize(
    "text, ok",
    [
        ("The cat sat on the warm mat all afternoon.", True),
        ("the the the the the the the the the", False),
        ("@@ ## $$ %% 12 99", False),
        ("Hi", False),
        ("go home go home go home go home go home", False),
    ],
)
def test_keyword_coherence(text, ok):
    assert diff_steer.coherent(text) is ok


def test_alpha_search_is_a_binary_search(models):
    tuned, _ = models
    v = np.random.default_rng(0).normal(size=64).astype(np.float32)
    prompts = diff_steer.CHAT_PROMPTS[:3]
    always = diff_steer.search_alpha(
        tuned, 1, v, 2.0, 1, prompts, high=4.0, steps=3, max_tokens=4, judge=lambda t: True
    )
    assert always.alpha == 4.0 and [s.alpha for s in always.search] == [4.0]
    never = diff_steer.search_alpha(
        tuned, 1, v, 2.0, 1, prompts, high=4.0, steps=3, max_tokens=4, judge=lambda t: False
    )
    assert never.alpha == 0.0 and [s.alpha for s in never.search] == [4.0, 2.0, 1.0, 0.5]
    assert all(s.steered == s.unsteered for s in never.samples)
    calls = iter([False, True, False, True])  # high fails; 2 passes; 3 fails; 2.5 passes
    shares = diff_steer.search_alpha(
        tuned, 1, v, 2.0, 1, prompts[:1], high=4.0, steps=3, max_tokens=4, judge=lambda t: next(calls)
    )
    assert [s.alpha for s in shares.search] == [4.0, 2.0, 3.0, 2.5] and shares.alpha == 2.5
