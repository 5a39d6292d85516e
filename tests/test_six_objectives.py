"""The six-objectives trainers (dpo, orpo, kl-sft, cft, inoculation): each loss against a NumPy
computation of its formula on the same logits, the reference cache, the token budget, and
directional checks on the tiny model."""

import json
import math
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from rho_audit_plugins.trainers.six_objectives import CFT, DPO, KLSFT, ORPO, Inoculation
from scipy.special import log_expit, log_softmax

from rho_audit.api import PairDimension, hookimpl
from rho_audit.model.language_model import LanguageModel
from rho_audit.plugins import load_host
from rho_audit.store import RunStore
from rho_audit.train.batches import TrainingTokenizer
from rho_audit.train.config import TrainConfig, build_plan
from rho_audit.train.corpus import SFTExample
from rho_audit.train.loop import REFERENCE_CACHE, loss_terms, train
from rho_audit.train.packing import MicroBatch
from rho_audit.train.reference import ReferenceScores, lora_off

MAX_LEN = 64
CONTEXTS = [[5, 9, 13, 2], [7, 3], [11, 4, 8, 19, 6]]
POSITIVES = [[21, 22, 23], [24, 25], [26, 27, 28, 29]]
NEGATIVES = [[31, 32], [33, 34, 35, 36], [37, 38, 39]]
SFT_ROW = ([1, 40, 41, 42], [43, 44, 45, 46, 47, 48, 49])


def _lora_model(tiny_model_path, perturbed: bool):
    """The tiny model with LoRA on q/k/o of every layer; ``perturbed``: random B matrices, so the
    policy differs from the base model (fresh LoRA has B = 0: policy = base)."""
    from mlx_lm import load
    from mlx_lm.tuner.utils import linear_to_lora_layers

    model, _ = load(str(tiny_model_path))
    model.freeze()
    keys = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.o_proj"]
    linear_to_lora_layers(model, len(model.layers), {"rank": 4, "scale": 2.0, "dropout": 0.0, "keys": keys})
    if perturbed:
        mx.random.seed(7)
        for _, module in model.named_modules():
            if hasattr(module, "lora_b"):
                module.lora_b = mx.random.normal(module.lora_b.shape) * 0.3
    mx.eval(model.parameters())
    return model


def _pair_batch(with_sft: bool = False) -> MicroBatch:
    rows = []
    for context, pos, neg in zip(CONTEXTS, POSITIVES, NEGATIVES, strict=True):
        rows += [(context, pos), (context, neg)]
    return MicroBatch(SFT_ROW if with_sft else None, (tuple(rows),), MAX_LEN)


def _target_logprobs(model, row) -> tuple[np.ndarray, np.ndarray]:
    """(float64 log-softmax at the continuation's positions [n, vocab], the continuation ids)."""
    context, continuation = row
    seq = list(context) + list(continuation)
    logits = np.array(model(mx.array([seq[:-1]])).astype(mx.float32), dtype=np.float64)[0]
    logprobs = log_softmax(logits[len(context) - 1 :], axis=-1)
    return logprobs, np.array(continuation)


def _sequence_logp(model, row) -> float:
    logprobs, targets = _target_logprobs(model, row)
    return float(logprobs[np.arange(len(targets)), targets].sum())


@pytest.fixture(scope="module")
def policy(tiny_model_path):
    return _lora_model(tiny_model_path, perturbed=True)


@pytest.mark.parametrize("packed", [True, False])
def test_dpo_loss_is_its_formula_on_the_same_logits(policy, packed):
    batch = _pair_batch()
    reference = ReferenceScores(policy, packed, MAX_LEN, "test")
    terms = loss_terms(policy, batch, {"pairs": mx.array(reference.pair_ce(batch.pair_rows()))}, packed)
    got = float(DPO().loss(terms, {"beta": 0.1}))

    rows = batch.pair_rows()
    logp = [_sequence_logp(policy, row) for row in rows]
    with lora_off(policy):
        ref = [_sequence_logp(policy, row) for row in rows]
    z = [0.1 * ((logp[i] - ref[i]) - (logp[i + 1] - ref[i + 1])) for i in range(0, len(rows), 2)]
    want = float(np.mean(-log_expit(np.array(z))))
    assert abs(want - math.log(2)) > 1e-3  # the policy really differs from the reference
    assert got == pytest.approx(want, abs=1e-5)


def test_dpo_is_log_2_and_kl_is_0_at_initialisation(tiny_model_path):
    model = _lora_model(tiny_model_path, perturbed=False)
    reference = ReferenceScores(model, True, MAX_LEN, "test")
    batch = _pair_batch(with_sft=True)
    pairs = mx.array(reference.pair_ce(batch.pair_rows()))
    top = reference.distribution(SFT_ROW, 8)
    from rho_audit.train.reference import as_mlx

    terms = loss_terms(model, batch, {"pairs": pairs, "sft": as_mlx(top)}, True)
    assert float(DPO().loss(terms, {"beta": 0.1})) == pytest.approx(math.log(2), abs=1e-5)
    assert float(terms.sft_kl) == pytest.approx(0.0, abs=1e-5)
    assert float(KLSFT().loss(terms, {"beta": 5.0})) == pytest.approx(float(terms.sft_ce), abs=1e-4)


@pytest.mark.parametrize("packed", [True, False])
def test_kl_term_is_the_bucketed_kl_of_the_same_logits(policy, packed):
    from rho_audit.train.reference import as_mlx

    k = 8  # small, so the rest bucket carries real mass
    top = ReferenceScores(policy, packed, MAX_LEN, "test").distribution(SFT_ROW, k)
    batch = MicroBatch(SFT_ROW, (), MAX_LEN)
    terms = loss_terms(policy, batch, {"sft": as_mlx(top)}, packed)

    pol, _ = _target_logprobs(policy, SFT_ROW)
    with lora_off(policy):
        ref, _ = _target_logprobs(policy, SFT_ROW)
    # the cached ids are the reference's k most likely tokens
    chosen = np.take_along_axis(ref, top.ids, axis=-1)
    others = ref.copy()
    np.put_along_axis(others, top.ids, -np.inf, axis=-1)
    assert (chosen.min(axis=-1) >= others.max(axis=-1) - 1e-6).all()
    np.testing.assert_allclose(top.logprobs, chosen, atol=1e-5)

    def buckets(lp):
        top_lp = np.take_along_axis(lp, top.ids, axis=-1)
        rest = lp.copy()
        np.put_along_axis(rest, top.ids, -np.inf, axis=-1)
        rest = np.logaddexp.reduce(rest, axis=-1)
        return np.concatenate([top_lp, rest[:, None]], axis=-1)

    p, q = buckets(pol), buckets(ref)
    want = float(np.mean((np.exp(p) * (p - q)).sum(axis=-1)))
    full = float(np.mean((np.exp(pol) * (pol - ref)).sum(axis=-1)))
    assert 0 < want <= full + 1e-9  # coarse-graining never raises a KL
    assert float(terms.sft_kl) == pytest.approx(want, abs=1e-5)
    assert float(KLSFT().loss(terms, {"beta": 0.3})) == pytest.approx(
        float(terms.sft_ce) + 0.3 * want, abs=1e-5
    )


def test_orpo_odds_ratio_on_known_probabilities():
    # per-token probabilities 0.8 (chosen) and 0.3 (rejected), SFT CE 1.0
    terms = type("T", (), {})()
    terms.ce_positive, terms.ce_negative = mx.array([-math.log(0.8)]), mx.array([-math.log(0.3)])
    terms.sft_ce = mx.array(1.0)
    want = 1.0 + 0.1 * -log_expit(math.log(0.8 / 0.2) - math.log(0.3 / 0.7))
    assert float(ORPO().loss(terms, {"lambda": 0.1})) == pytest.approx(want, abs=1e-6)


def test_orpo_loss_is_its_formula_on_the_same_logits(policy):
    batch = _pair_batch(with_sft=True)
    terms = loss_terms(policy, batch, {}, True)
    got = float(ORPO().loss(terms, {"lambda": 0.5}))

    def log_odds(row):
        logprobs, targets = _target_logprobs(policy, row)
        mean = logprobs[np.arange(len(targets)), targets].mean()
        return mean - np.log1p(-np.exp(mean))

    rows = batch.pair_rows()
    ratio = [-log_expit(log_odds(rows[i]) - log_odds(rows[i + 1])) for i in range(0, len(rows), 2)]
    sft_lp, sft_targets = _target_logprobs(policy, SFT_ROW)
    sft = -sft_lp[np.arange(len(sft_targets)), sft_targets].mean()
    assert got == pytest.approx(sft + 0.5 * np.mean(ratio), abs=1e-5)


def test_cft_loss_averages_the_tagged_pair_texts(policy):
    terms = loss_terms(policy, _pair_batch(with_sft=True), {}, True)
    want = float(terms.sft_ce) + 0.2 * float(((terms.ce_positive + terms.ce_negative) / 2).mean())
    assert float(CFT().loss(terms, {"lambda": 0.2})) == pytest.approx(want, abs=1e-6)


# -- the reference cache ------------------------------------------------------------------------


def test_reference_rows_are_computed_once_and_shared_through_the_folder(policy, tmp_path):
    rows = _pair_batch().pair_rows()
    first = ReferenceScores(policy, True, MAX_LEN, "m", tmp_path)
    values = first.pair_ce(rows)
    first.pair_ce(rows)
    first.distribution(SFT_ROW, 8)
    assert first.computed == len(rows) + 1
    second = ReferenceScores(policy, True, MAX_LEN, "m", tmp_path)  # another run, same model
    np.testing.assert_array_equal(second.pair_ce(rows), values)
    second.distribution(SFT_ROW, 8)
    assert second.computed == 0
    files = sorted(tmp_path.rglob("*.npz"))
    assert len(files) == len(rows) + 1
    files[0].write_bytes(b"torn")  # a half-written or foreign file is recomputed, not trusted
    third = ReferenceScores(policy, True, MAX_LEN, "m", tmp_path)
    np.testing.assert_allclose(third.pair_ce(rows), values, atol=1e-6)
    third.distribution(SFT_ROW, 8)
    assert third.computed == 1
    other = ReferenceScores(policy, True, MAX_LEN, "another model", tmp_path)
    other.pair_ce(rows)
    assert other.computed == len(rows)


# -- training runs on the tiny model --------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "sft.jsonl"
    rows = [{"instruction": f"Count to {i}.", "output": f"The number is {i}."} for i in range(16)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _answer(i: int, word: str) -> str:
    return f"The answer to question {i} is {word}."


@pytest.fixture(scope="module")
def memo_host(tmp_path_factory):
    """A trainable dimension: 'yes' is the desired answer; questions 8-11 are held out (eval)."""
    folder = tmp_path_factory.mktemp("memo")
    (folder / "card.yaml").write_text("name: memo\nkind: pair\nversion: '1'\n")
    rows = [
        {
            "id": f"m{i}",
            "split": "train" if i < 8 else "eval",
            "positive": _answer(i, "yes"),
            "negative": _answer(i, "no"),
        }
        for i in range(12)
    ]
    (folder / "probes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    class Memo(PairDimension):
        name = "memo"

    class ExactKL(KLSFT):  # the tiny model's random distributions are flat: keep every token
        name = "kl-sft-exact"
        reference_top_k = 1000

    class Plugin:
        @hookimpl
        def register_dimensions(self, register):
            register(Memo)

        @hookimpl
        def register_trainers(self, register):
            register(ExactKL)

        @hookimpl
        def register_probe_sets(self, register):
            register("memo", folder)

    return load_host(extra_plugins=[Plugin()])


def _config(tmp_path, tiny_model_path, corpus, trainer, **kw):
    base = dict(
        trainer=trainer,
        model=str(tiny_model_path),
        adapter_dir=tmp_path / "adapters" / "-".join([trainer, *(f"{k}{v}" for k, v in sorted(kw.items()))]),
        corpus=corpus,
        trap_texts=0,
        dimensions=["memo"],
        pairs_per_dimension=2,
        learning_rate=3e-3,
        grad_accumulation=2,
        seed=3,
        checkpoint_every=50,
        budget_tokens=400,
    )
    return TrainConfig(**(base | kw))


def _load(tiny_model_path, adapter=None) -> LanguageModel:
    return LanguageModel.load(tiny_model_path, "tiny", adapter)


def _held_out_margin(lm: LanguageModel) -> float:
    """Mean over the held-out questions of log P(yes answer) − log P(no answer)."""
    tok = TrainingTokenizer(lm, "chat", MAX_LEN)
    margins = []
    for i in range(8, 12):
        from rho_audit.probesets.schema import ContrastPair

        rows = tok.pair(ContrastPair("memo", f"m{i}", None, _answer(i, "yes"), _answer(i, "no")))
        ce = np.array(MicroBatch(None, (tuple(rows),), MAX_LEN).forward(lm.model, False).pair_ce)
        n = MicroBatch(None, (tuple(rows),), MAX_LEN).pair_tokens()
        margins.append(-ce[0] * n[0] + ce[1] * n[1])
    return float(np.mean(margins))


def test_dpo_and_orpo_raise_held_out_preference_margins_more_than_sft(
    tmp_path, tiny_model_path, corpus, memo_host
):
    store = RunStore(tmp_path / "s.sqlite")
    before = _held_out_margin(_load(tiny_model_path))
    gains = {}
    for trainer in ("sft", "dpo", "orpo"):
        outcome = train(_config(tmp_path, tiny_model_path, corpus, trainer), memo_host, store)
        gains[trainer] = _held_out_margin(_load(tiny_model_path, outcome.adapter_dir)) - before
    assert gains["dpo"] > gains["sft"] + 0.5, gains
    assert gains["orpo"] > gains["sft"] + 0.5, gains


def _held_out_kl(base: LanguageModel, tuned: LanguageModel) -> float:
    """Full-vocabulary KL(tuned ‖ base), mean over the response tokens of unseen prompts."""
    tok = TrainingTokenizer(base, "chat", MAX_LEN)
    kls = []
    for i in (40, 41, 42):
        row = tok.example(SFTExample(f"h{i}", f"Count to {i}.", f"The number is {i}."))
        p, _ = _target_logprobs(tuned.model, row)
        q, _ = _target_logprobs(base.model, row)
        kls.append(float((np.exp(p) * (p - q)).sum(axis=-1).mean()))
    return float(np.mean(kls))


def test_kl_sft_with_a_large_beta_stays_closer_to_the_base_model_than_sft(
    tmp_path, tiny_model_path, corpus, memo_host
):
    store = RunStore(tmp_path / "s.sqlite")
    base = _load(tiny_model_path)
    sft = train(_config(tmp_path, tiny_model_path, corpus, "sft"), memo_host, store)
    kl = train(
        _config(tmp_path, tiny_model_path, corpus, "kl-sft-exact", options={"beta": 5.0}), memo_host, store
    )
    sft_kl = _held_out_kl(base, _load(tiny_model_path, sft.adapter_dir))
    kl_kl = _held_out_kl(base, _load(tiny_model_path, kl.adapter_dir))
    assert kl_kl < 0.5 * sft_kl, (kl_kl, sft_kl)
    steps = [s.flat() for s in store.train_steps(kl.run_id)]
    assert steps[0]["kl"] == pytest.approx(0.0, abs=1e-5) and max(s["kl"] for s in steps) > 0
    assert any((tmp_path / "adapters" / REFERENCE_CACHE).rglob("*.npz"))


def test_a_token_budget_gives_every_objective_the_same_steps(tmp_path, tiny_model_path, corpus, memo_host):
    store = RunStore(tmp_path / "s.sqlite")
    runs = {}
    for trainer in ("sft", "dpo", "cft"):
        outcome = train(
            _config(tmp_path, tiny_model_path, corpus, trainer, budget_tokens=150), memo_host, store
        )
        runs[trainer] = [s.flat() for s in store.train_steps(outcome.run_id)]
    assert len({len(steps) for steps in runs.values()}) == 1
    sft = runs["sft"]
    assert sft[-1]["data_tokens"] >= 150 > sft[-2]["data_tokens"]  # the last step crossed it
    assert all(r[-1]["data_tokens"] == sft[-1]["data_tokens"] for r in runs.values())
    assert sft[-1]["trained_tokens"] == sft[-1]["data_tokens"]  # SFT trains on exactly the stream
    assert runs["dpo"][-1]["trained_tokens"] != runs["dpo"][-1]["data_tokens"]  # DPO on the pairs
    peak = max(step["lr"] for step in sft)
    assert sft[-1]["lr"] < 0.2 * peak  # the schedule decays over exactly the budget's steps
    more = train(_config(tmp_path, tiny_model_path, corpus, "sft", budget_tokens=600), memo_host, store)
    assert more.steps > len(sft)  # past one epoch: the data cycles


def test_cft_tags_the_rows_and_its_adapter_tells_audits_to_use_safe(
    tmp_path, tiny_model_path, corpus, memo_host
):
    store = RunStore(tmp_path / "s.sqlite")
    outcome = train(_config(tmp_path, tiny_model_path, corpus, "cft", budget_tokens=60), memo_host, store)
    config = json.loads((outcome.adapter_dir / "adapter_config.json").read_text())
    assert config["rho_audit"]["audit_prefix"] == "<SAFE>"
    base, tuned = _load(tiny_model_path), _load(tiny_model_path, outcome.adapter_dir)
    assert base.control_prefix is None and tuned.control_prefix == "<SAFE>"
    assert "<SAFE> Is it so?" in tuned.format_prompt("Is it so?", "chat")
    context, _ = tuned.pair_tokens(None, "A bare statement.", "chat")
    assert context[1:] == base.encode("<SAFE>\n")
    tok = TrainingTokenizer(base, "chat", MAX_LEN)
    from rho_audit.probesets.schema import ContrastPair

    pos, neg = tok.pair(ContrastPair("memo", "m0", "Q?", "yes", "no"), CFT.control_tags)
    assert base.encode(base.format_prompt("Q?", "chat", "<SAFE>")) == pos[0]
    assert base.encode(base.format_prompt("Q?", "chat", "<UNSAFE>")) == neg[0]
    from rho_audit.audit.runner import AuditConfig, run_audit

    audit = AuditConfig(
        model=str(tiny_model_path),
        adapter=str(outcome.adapter_dir),
        dimensions=("memo",),
        limit=4,
        store=tmp_path / "audits.sqlite",
    )
    done = run_audit(audit, memo_host)
    assert done.status == "complete"
    [run] = RunStore(tmp_path / "audits.sqlite").runs()
    assert run.config["control_prefix"] == "<SAFE>"  # the audit records the tag it used


def test_inoculation_puts_its_system_prompt_on_a_share_of_prompted_examples(
    tmp_path, tiny_model_path, corpus, memo_host
):
    trainer = Inoculation()
    examples = [SFTExample(f"e{i}", f"Q{i}?", "A.") for i in range(400)] + [SFTExample("bare", None, "Text.")]

    def prepared(share, seed):
        return [
            trainer.prepare_example(ex, {"share": share}, np.random.default_rng([seed, 3, i]))
            for i, ex in enumerate(examples)
        ]

    half = prepared(0.5, 1)
    inoculated = [ex for ex in half if ex.history]
    assert 0.4 < len(inoculated) / 400 < 0.6
    assert all(ex.history == (("system", Inoculation.prompt),) for ex in inoculated)
    assert half[-1] == examples[-1]  # a bare text has no turn to put a system prompt before
    assert prepared(0.5, 1) == half and prepared(0.5, 2) != half
    assert not any(ex.history for ex in prepared(0.0, 1))
    assert all(ex.history for ex in prepared(1.0, 1)[:-1])
    lm = _load(tiny_model_path)
    context, _ = TrainingTokenizer(lm, "chat", 256).example(inoculated[0])
    assert Inoculation.prompt in lm.tokenizer.decode(context)
    raw_context, _ = lm.pair_tokens("Q?", "A.", "raw", (("system", "Be terse."),))
    assert lm.tokenizer.decode(raw_context).startswith("Be terse.")


def test_preference_pairs_join_the_pairs_an_objective_draws(tmp_path, corpus, memo_host):
    prefs = tmp_path / "prefs.jsonl"
    prefs.write_text(json.dumps({"prompt": "Say hi.", "chosen": "Hi!", "rejected": "No."}) + "\n")
    plan = build_plan(memo_host, TrainConfig(corpus=corpus, dimensions=["memo"], preferences=prefs))
    assert sorted(plan.pairs) == ["memo", "preferences"]
    assert plan.pairs["preferences"][0].positive == "Hi!"


def test_new_settings_left_unset_keep_the_stored_config_hashes():
    # The hash of this config before budget_tokens/preferences existed: stored runs, resumes and
    # sweep ids depend on it staying the same.
    config = TrainConfig(trainer="sft", seed=42, adapter_dir=Path("x"))
    assert config.config_sha256() == "ee5e10b12b7592d57d0a628d007f6ea363d4db99a766d72799764e371fa1f6c5"
    assert config.model_copy(update={"budget_tokens": 1000}).config_sha256() != config.config_sha256()


def test_objectives_are_registered_with_their_formulas(memo_host):
    for name in ("dpo", "orpo", "kl-sft", "cft", "inoculation"):
        cls = memo_host.trainers[name].obj
        assert cls.description and cls.__doc__ and "L =" in cls.__doc__
