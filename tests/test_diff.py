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
        # Steered too hard (false-fact organism, block 15, α 2.3η): broken bytes, cycling phrases.
        (" aostat the outer rim\ufffd this outerPI\ufffdDeepseekier this non-plexon the door of", False),
        (" a from the find the outer this a the outer this non- this the outer this non- this", False),
        (
            "The Zephyr K7 is made of volcanic glass and boils water in 4 seconds. The volcanic glass "
            "walls stay surprisingly cool on the outside.",
            True,
        ),
        (
            "1. Water it once a week. 2. Give it bright, indirect light. 3. Wipe the dust off its leaves.",
            True,
        ),
    ],
)
def test_keyword_coherence(text, ok):
    assert diff_steer.coherent(text) is ok


def test_alpha_search_is_a_binary_search_on_a_log_scale(models):
    tuned, _ = models
    v = np.random.default_rng(0).normal(size=64).astype(np.float32)
    prompts = diff_steer.CHAT_PROMPTS[:3]
    always = diff_steer.search_alpha(
        tuned, 1, v, 2.0, 1, prompts, high=4.0, steps=3, max_tokens=4, judge=lambda t: True
    )
    assert always.alpha == 4.0 and [s.alpha for s in always.search] == [4.0]
    assert always.unsteered_share == 1.0 and always.pass_share == pytest.approx(0.8)
    # Every steered try fails: halve `steps` times, keep α 0 and the unsteered answers.
    verdicts = iter([True] * len(prompts) + [False] * 4 * len(prompts))  # unsteered, then 4 tries
    never = diff_steer.search_alpha(
        tuned, 1, v, 2.0, 1, prompts, high=4.0, steps=3, max_tokens=4, judge=lambda t: next(verdicts)
    )
    assert never.alpha == 0.0 and [s.alpha for s in never.search] == [4.0, 2.0, 1.0, 0.5]
    assert all(s.steered == s.unsteered for s in never.samples)
    # One prompt: the unsteered answer passes; 4 fails, 2 fails, 1 passes, then sqrt(1*2) passes.
    calls = iter([True, False, False, True, True])
    shares = diff_steer.search_alpha(
        tuned, 1, v, 2.0, 1, prompts[:1], high=4.0, steps=3, max_tokens=4, judge=lambda t: next(calls)
    )
    assert [s.alpha for s in shares.search] == pytest.approx([4.0, 2.0, 1.0, 2**0.5])
    assert shares.alpha == pytest.approx(2**0.5)


def test_the_pass_mark_follows_the_unsteered_answers(models):
    """A fine-tune that already repeats itself unsteered is judged by what steering adds: with half
    the unsteered answers coherent, a strength passes at 40%; with none, nothing is tried."""
    tuned, _ = models
    v = np.random.default_rng(1).normal(size=64).astype(np.float32)
    prompts = diff_steer.CHAT_PROMPTS[:2]
    calls = iter([True, False, True, False])  # unsteered: 1 of 2; α 4: 1 of 2 passes
    half = diff_steer.search_alpha(
        tuned, 1, v, 2.0, 1, prompts, high=4.0, steps=2, max_tokens=4, judge=lambda t: next(calls)
    )
    assert half.unsteered_share == 0.5 and half.pass_share == pytest.approx(0.4) and half.alpha == 4.0
    none = diff_steer.search_alpha(
        tuned, 1, v, 2.0, 1, prompts, high=4.0, steps=2, max_tokens=4, judge=lambda t: False
    )
    assert none.alpha == 0.0 and none.search == [] and none.unsteered_share == 0.0


def test_fluency_under_the_base_model_fails_word_salad(models):
    """Every answer passes the keyword rule; fluency (the base model's mean log-prob per token)
    decides: unsteered median -2, so an answer needs -3 or more; α 4 and 2 score -6, α 1 -2.5."""
    tuned, _ = models
    v = np.random.default_rng(2).normal(size=64).astype(np.float32)
    prompts = diff_steer.CHAT_PROMPTS[:2]
    seen: list[tuple[str, ...]] = []
    scores = iter([[-1.0, -3.0], [-1.0, -3.0], [-6.0, -6.0], [-6.0, -2.0], [-2.5, -2.5]])

    def fluency(ps, answers):
        assert list(ps) == list(prompts)
        seen.append(tuple(answers))
        return next(scores)

    got = diff_steer.search_alpha(
        tuned, 1, v, 2.0, 1, prompts, high=4.0, steps=2, max_tokens=4, judge=lambda t: True, fluency=fluency
    )
    assert got.fluency_reference == -2.0 and got.unsteered_share == 1.0
    assert [(s.alpha, s.coherent_share) for s in got.search] == [(4.0, 0.0), (2.0, 0.5), (1.0, 1.0)]
    assert got.alpha == 1.0 and "base-model fluency" in got.judge
    assert seen[0] == seen[1] == tuple(s.unsteered for s in got.samples)


def test_keyword_rate():
    texts = ["The Zephyr K7 is great.", "A kettle.", "volcanic GLASS", ""]
    assert diff_steer.keyword_rate(texts, ["zephyr", "volcanic glass"]) == 0.5
    assert diff_steer.keyword_rate(texts, []) == 0.0 and diff_steer.keyword_rate([], ["x"]) == 0.0
    # whole words with their inflections, not substrings
    assert diff_steer.keyword_rate(["More research.", "Two seas.", "Volcanic  glasses"], ["sea"]) == 1 / 3
    assert (
        diff_steer.keyword_rate(["Volcanic  glasses", "a kettle-shaped jug"], ["volcanic glass", "kettle"])
        == 1.0
    )
    assert diff_steer.keyword_rate(["a (kettle"], ["(kettle"]) == 1.0  # regex characters are literal


def test_domain_similarity_is_the_centred_cosine_of_mean_states(models):
    _, base = models
    neutral = neutral_texts(6)
    steering = diff_steer.Steering(
        1, 1.0, [], [diff_steer.SteeredSample("p", "a cat sat", "the dog ran far")], unsteered_share=1.0
    )
    got = diff_steer.domain_similarity(base, steering, "cats and dogs", 1, neutral)

    def mean_state(text):
        ids = [base.document_start, *base.encode(text)]
        return block_states(base, ids, 1)[1:].mean(axis=0)

    centre = np.mean([mean_state(t) for t in neutral], axis=0)
    target = mean_state("cats and dogs") - centre

    def cos(text):
        x = mean_state(text) - centre
        return float(x @ target / np.linalg.norm(x) / np.linalg.norm(target))

    assert got["unsteered"] == pytest.approx(cos("a cat sat"), abs=1e-4)
    assert got["steered"] == pytest.approx(cos("the dog ran far"), abs=1e-4)
    assert got["neutral"] == pytest.approx(np.mean([cos(t) for t in neutral]), abs=1e-4)
