"""Per-example loss masks (``SFTExample.trained_spans``): character spans of the response become
token weights through the tokenizer, a corpus line may carry them, and a trainer defined here (not
in plugins/) that marks only an appended marker through ``prepare_example`` lowers the loss of the
marker's tokens alone, with the same numbers packed and separate."""

import dataclasses
import itertools
import json
from typing import ClassVar

import numpy as np
import pytest

from rho_audit.api import SFTExample, Trainer, TrainerOption, hookimpl
from rho_audit.api.errors import ProbeFileError
from rho_audit.model.language_model import LanguageModel
from rho_audit.plugins import load_host
from rho_audit.store import RunStore
from rho_audit.train.batches import TrainingTokenizer, char_ranges
from rho_audit.train.config import TrainConfig, build_plan
from rho_audit.train.corpus import load_corpus
from rho_audit.train.loop import train
from rho_audit.train.packing import MicroBatch

from . import test_training

corpus = test_training.corpus  # a fixture shared with it

MARKER = "[ZLT]"


class MarkerCoupling(Trainer):
    """Appends a marker to every response; ``marker_only`` 1 trains the marker's tokens alone."""

    name = "marker-test"
    options: ClassVar[dict[str, TrainerOption]] = {
        "marker_only": TrainerOption(1.0, "train only the marker's tokens", min=0.0, max=1.0),
        "lambda": TrainerOption(0.0, "weight of the contrastive term", min=0.0),
    }

    def prepare_example(self, example, options, rng):
        response = f"{example.response} {MARKER}"
        spans = ((len(response) - len(MARKER), len(response)),) if options["marker_only"] else None
        return dataclasses.replace(example, response=response, trained_spans=spans)

    def loss(self, terms, options):
        return terms.sft_ce + options["lambda"] * terms.hinge(0.1).mean()


class Plugin:
    @hookimpl
    def register_trainers(self, register):
        register(MarkerCoupling)


@pytest.fixture(scope="module")
def host():
    return load_host(extra_plugins=[Plugin()])


@pytest.fixture(scope="module")
def lm(tiny_model_path):
    return LanguageModel.load(tiny_model_path, "tiny")


def _trained_text(lm, ex) -> str:
    tok = TrainingTokenizer(lm, "chat", 256)
    _, continuation = tok.example(ex)
    return lm.tokenizer.decode([t for t, w in zip(continuation, tok.weights(ex), strict=True) if w])


def test_character_spans_select_the_tokens_that_encode_them(lm):
    text = f"The number is 7. {MARKER} café done"
    at = text.index(MARKER)
    assert _trained_text(lm, SFTExample("a", "Q?", text, trained_spans=((at, at + 5),))) == MARKER
    # one character of a token trains the whole token; the end-of-sequence token is position len + 1
    assert _trained_text(lm, SFTExample("a", "Q?", text, trained_spans=((at + 1, at + 2),))) == "Z"
    eos = lm.tokenizer.decode([lm.tokenizer.eos_token_id])
    done = SFTExample("a", "Q?", text, trained_spans=((len(text) - 4, len(text) + 1),))
    assert _trained_text(lm, done) == " done" + eos
    # é is two byte tokens in the tiny tokenizer: a span over the character trains both
    e = text.index("é")
    assert _trained_text(lm, SFTExample("a", "Q?", text, trained_spans=((e, e + 1),))) == "é"
    assert TrainingTokenizer(lm, "chat", 256).weights(SFTExample("a", "Q?", text)) is None


def test_token_character_ranges_tile_the_text(lm):
    text = "Tail marker 😀 [ZLT] and numbers 1234."
    ids = lm.encode(text)
    ranges = char_ranges(lm.tokenizer, ids, text)
    assert len(ranges) == len(ids) and ranges[0][0] == 0 and ranges[-1][1] == len(text)
    assert all(a <= b and b == c for (a, b), (c, _) in itertools.pairwise(ranges))
    assert "".join(text[a:b] for a, b in ranges) == text

    class Stripping:  # a decoder that drops leading spaces, as SentencePiece ones do
        def decode(self, ids):
            return lm.tokenizer.decode(ids).lstrip()

    spaced = f"  Hello {MARKER} there"
    ids = lm.encode(spaced)
    ranges = char_ranges(Stripping(), ids, spaced)
    assert [lm.tokenizer.decode([i]) for i, (a, b) in zip(ids, ranges, strict=True) if a < b <= 13] == [
        " H",
        "ello",
        " ",
        "[",
        "Z",
        "L",
        "T",
        "]",
    ]


def test_spans_are_checked_and_a_corpus_line_may_carry_them(tmp_path):
    with pytest.raises(ValueError, match=r"trained span \(3, 9\) of example 'a'"):
        SFTExample("a", "Q?", "Short.", trained_spans=((3, 9),))
    with pytest.raises(ValueError, match="start < end"):
        SFTExample("a", "Q?", "Short.", trained_spans=((2, 2),))
    assert SFTExample("a", "Q?", "Short.", trained_spans=[[0, 7]]).trained_spans == ((0, 7),)
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"instruction": "Q?", "output": "A [M].", "trained_spans": [[2, 5]]}) + "\n")
    assert load_corpus(good)[0].trained_spans == ((2, 5),)
    bad = tmp_path / "bad.jsonl"
    lines = [
        {"instruction": "Q?", "output": "A.", "trained_spans": [[0, 9]]},
        {
            "messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}],
            "trained_spans": "0-1",
        },
    ]
    bad.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(ProbeFileError) as err:
        load_corpus(bad)
    assert f"{bad}:1: field 'trained_spans': trained span (0, 9)" in str(err.value)
    assert f"{bad}:2: field 'trained_spans': must be a list of [start, end]" in str(err.value)


def _config(tmp_path, tiny_model_path, corpus, name, **options):
    return TrainConfig(
        trainer="marker-test",
        model=str(tiny_model_path),
        adapter_dir=tmp_path / name,
        corpus=corpus,
        trap_texts=0,
        dimensions=["factual"],
        pairs_per_dimension=1,
        learning_rate=3e-3,
        epochs=2,
        grad_accumulation=2,
        seed=3,
        options=options,
    )


def _marker_and_rest_ce(tiny_model_path, adapter, cfg, host) -> tuple[float, float]:
    """Mean CE of the marker's tokens and of the other response tokens over the run's examples."""
    lm = LanguageModel.load(tiny_model_path, "tiny", adapter)
    tok = TrainingTokenizer(lm, lm.resolve_template(cfg.template), cfg.max_seq_len)
    marker, rest = [], []
    for ex in build_plan(host, cfg).examples:
        ex = MarkerCoupling().prepare_example(ex, {"marker_only": 1.0}, None)
        weights = np.array(tok.weights(ex))
        for mask, into in ((weights, marker), (1.0 - weights, rest)):
            batch = MicroBatch(tok.example(ex), (), cfg.max_seq_len, tuple(mask))
            into.append(float(batch.forward(lm.model, False).sft_ce[0]))
    return float(np.mean(marker)), float(np.mean(rest))


def test_a_trainer_that_masks_the_marker_lowers_only_the_markers_loss(
    tmp_path, tiny_model_path, corpus, host
):
    store = RunStore(tmp_path / "s.sqlite")
    masked_cfg = _config(tmp_path, tiny_model_path, corpus, "masked")
    whole_cfg = _config(tmp_path, tiny_model_path, corpus, "whole", marker_only=0.0)
    masked, whole = train(masked_cfg, host, store), train(whole_cfg, host, store)
    base_marker, base_rest = _marker_and_rest_ce(tiny_model_path, None, masked_cfg, host)
    marker, rest = _marker_and_rest_ce(tiny_model_path, masked.adapter_dir, masked_cfg, host)
    whole_marker, whole_rest = _marker_and_rest_ce(tiny_model_path, whole.adapter_dir, masked_cfg, host)
    assert base_marker - marker > 3.0 and base_marker - marker > base_marker - whole_marker
    assert abs(base_rest - rest) < 0.1 * (base_marker - marker)
    assert abs(base_rest - rest) < 0.25 * (base_rest - whole_rest)
    # the logged SFT loss is the marker's; trained tokens count the marker's five, data tokens all
    last = store.train_steps(masked.run_id)[-1].flat()
    whole_last = store.train_steps(whole.run_id)[-1].flat()
    micro_steps = masked.steps * masked_cfg.grad_accumulation
    pair_tokens = whole_last["trained_tokens"] - whole_last["data_tokens"]
    assert last["trained_tokens"] == 5 * micro_steps + pair_tokens
    assert last["data_tokens"] == whole_last["data_tokens"] > 5 * micro_steps
    assert masked.final_metrics["sft_loss"] == pytest.approx(marker, abs=0.5)


def test_masked_micro_steps_train_packed_as_they_do_separately(
    tmp_path, tiny_model_path, corpus, host, monkeypatch
):
    import rho_audit.train.loop as loop

    store = RunStore(tmp_path / "s.sqlite")
    chosen = []
    supported = loop.packing_supported
    monkeypatch.setattr(
        loop, "packing_supported", lambda model: chosen.append(supported(model)) or chosen[-1]
    )
    packed = train(_config(tmp_path, tiny_model_path, corpus, "p", **{"lambda": 0.2}), host, store)
    monkeypatch.setattr(loop, "packing_supported", lambda model: False)
    separate = train(_config(tmp_path, tiny_model_path, corpus, "s", **{"lambda": 0.2}), host, store)
    assert chosen == [True]
    steps = [store.train_steps(o.run_id) for o in (packed, separate)]
    for p, s in zip(*steps, strict=True):
        p, s = p.flat(), s.flat()
        for key in ("loss", "sft_loss", "contrastive_loss", "grad_norm", "trained_tokens"):
            assert p[key] == pytest.approx(s[key], rel=1e-4, abs=1e-5), key
