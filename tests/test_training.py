"""Trainers on the tiny model: objectives, seeding, logging, checkpoints and resume (SIGKILL too)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rho_audit.api import PairDimension, hookimpl
from rho_audit.api.errors import ProbeFileError, RhoAuditError
from rho_audit.plugins import load_host
from rho_audit.probesets.schema import ContrastPair
from rho_audit.store import RunStore
from rho_audit.train.config import TrainConfig
from rho_audit.train.loop import train


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "sft.jsonl"
    rows = [{"instruction": f"Count to {i}.", "output": f"The number is {i}."} for i in range(16)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def memo_host(tmp_path_factory):
    """A host with an extra trainable dimension of eight pairs, small enough to learn quickly."""
    folder = tmp_path_factory.mktemp("memo")
    (folder / "card.yaml").write_text("name: memo\nkind: pair\nversion: '1'\n")
    rows = [
        {
            "id": f"m{i}",
            "split": "train",
            "positive": f"The answer to question {i} is yes.",
            "negative": f"The answer to question {i} is no.",
        }
        for i in range(8)
    ]
    (folder / "probes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    class Memo(PairDimension):
        name = "memo"

    class Plugin:
        @hookimpl
        def register_dimensions(self, register):
            register(Memo)

        @hookimpl
        def register_probe_sets(self, register):
            register("memo", folder)

    return load_host(extra_plugins=[Plugin()])


def config(tmp_path, tiny_model_path, corpus, name, **kw):
    base = dict(
        model=str(tiny_model_path),
        adapter_dir=tmp_path / name,
        corpus=corpus,
        trap_texts=0,
        dimensions=["memo"],
        pairs_per_dimension=4,
        learning_rate=3e-3,
        epochs=2,
        grad_accumulation=2,
        seed=3,
        checkpoint_every=2,
    )
    return TrainConfig(**(base | kw))


def run(cfg, host, store, **kw):
    outcome = train(cfg, host, store, **kw)
    return outcome, [s.flat() for s in store.train_steps(outcome.run_id)]


def test_rho_guided_contrastive_loss_falls_while_sfts_does_not(tmp_path, tiny_model_path, corpus, memo_host):
    store = RunStore(tmp_path / "s.sqlite")
    _, sft = run(config(tmp_path, tiny_model_path, corpus, "sft", trainer="sft"), memo_host, store)
    _, rho = run(config(tmp_path, tiny_model_path, corpus, "rho", trainer="rho-guided"), memo_host, store)
    first = np.mean([s["contrastive_loss"] for s in rho[:2]])
    assert first == pytest.approx(np.mean([s["contrastive_loss"] for s in sft[:2]]), abs=0.02)
    rho_last = np.mean([s["contrastive_loss"] for s in rho[-3:]])
    sft_last = np.mean([s["contrastive_loss"] for s in sft[-3:]])
    assert rho_last < 0.1 * first
    assert sft_last > 0.2 * first and sft_last > 5 * rho_last
    assert rho[-1]["active_share"] < sft[-1]["active_share"]


def test_logged_metrics_and_schedule(tmp_path, tiny_model_path, corpus, memo_host):
    store = RunStore(tmp_path / "s.sqlite")
    outcome, steps = run(
        config(tmp_path, tiny_model_path, corpus, "m", trainer="contrastive-only", warmup_fraction=0.25),
        memo_host,
        store,
    )
    assert [s["step"] for s in steps] == list(range(1, outcome.steps + 1)) and outcome.steps == 16
    for s in steps:
        assert {"sft_loss", "contrastive_loss", "active_share", "lr", "grad_norm", "tokens_per_s"} <= set(s)
        assert s["loss"] == pytest.approx(s["contrastive_loss"], abs=1e-6)  # no SFT term at all
        assert 0 <= s["active_share"] <= 1
    lrs = [s["lr"] for s in steps]
    assert lrs[0] == 0.0 and max(lrs) == pytest.approx(3e-3) and lrs.index(max(lrs)) == 4  # 25% of 16
    assert lrs[-1] < lrs[5]  # linear decay after warm-up
    sft_steps = run(config(tmp_path, tiny_model_path, corpus, "s", trainer="sft"), memo_host, store)[1]
    assert all(s["loss"] == pytest.approx(s["sft_loss"], abs=1e-6) for s in sft_steps)


def test_same_seed_same_result_other_seed_differs(tmp_path, tiny_model_path, corpus, memo_host):
    store = RunStore(tmp_path / "s.sqlite")
    a, _ = run(config(tmp_path, tiny_model_path, corpus, "a"), memo_host, store)
    b, _ = run(config(tmp_path, tiny_model_path, corpus, "b"), memo_host, store)
    c, _ = run(config(tmp_path, tiny_model_path, corpus, "c", seed=4), memo_host, store)
    assert a.final_metrics["loss"] == pytest.approx(b.final_metrics["loss"], abs=1e-5)
    assert (tmp_path / "a" / "adapters.safetensors").read_bytes() == (
        tmp_path / "b" / "adapters.safetensors"
    ).read_bytes()
    assert abs(a.final_metrics["loss"] - c.final_metrics["loss"]) > 1e-4


@pytest.mark.parametrize("trainer", ["rho-guided", "sft"])
def test_packed_micro_steps_train_as_the_separate_batches_do(
    tmp_path, tiny_model_path, corpus, memo_host, monkeypatch, trainer
):
    """The loop packs each micro-step into one forward where the model allows it; the logged
    metrics and the adapter are those of the separate per-row batches."""
    from safetensors.numpy import load_file

    import rho_audit.train.loop as loop

    store = RunStore(tmp_path / "s.sqlite")
    chosen = []
    supported = loop.packing_supported
    monkeypatch.setattr(
        loop, "packing_supported", lambda model: chosen.append(supported(model)) or chosen[-1]
    )
    _, packed_steps = run(
        config(tmp_path, tiny_model_path, corpus, "p", trainer=trainer, epochs=1), memo_host, store
    )
    monkeypatch.setattr(loop, "packing_supported", lambda model: False)
    _, separate_steps = run(
        config(tmp_path, tiny_model_path, corpus, "s", trainer=trainer, epochs=1), memo_host, store
    )
    assert chosen == [True] and len(packed_steps) == len(separate_steps) == 8
    for p, s in zip(packed_steps, separate_steps, strict=True):
        for key in ("loss", "sft_loss", "contrastive_loss", "active_share", "grad_norm"):
            assert p[key] == pytest.approx(s[key], rel=1e-4, abs=1e-5), key
        assert p["tokens_per_s"] * p["seconds"] == pytest.approx(s["tokens_per_s"] * s["seconds"])
    a, b = (load_file(tmp_path / name / "adapters.safetensors") for name in ("p", "s"))
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_allclose(a[name], b[name], atol=1e-4 * float(np.abs(b[name]).max()))


def test_interrupted_run_resumes_to_the_same_result(tmp_path, tiny_model_path, corpus, memo_host):
    store = RunStore(tmp_path / "s.sqlite")
    whole, _ = run(config(tmp_path, tiny_model_path, corpus, "whole", trainer="shuffled"), memo_host, store)

    def stop_after_step_6(event):
        if event.kind == "checkpoint_saved" and event.done == 6:
            raise KeyboardInterrupt

    cfg = config(tmp_path, tiny_model_path, corpus, "cut", trainer="shuffled")
    with pytest.raises(KeyboardInterrupt):
        train(cfg, memo_host, store, say=stop_after_step_6)
    assert store.run(store.runs()[-1].run_id).status == "interrupted"
    with pytest.raises(RhoAuditError, match="--resume"):
        train(cfg, memo_host, store, resume=False)
    resumed, steps = run(cfg, memo_host, store)
    assert [s["step"] for s in steps] == list(range(1, 17))
    assert resumed.final_metrics["loss"] == pytest.approx(whole.final_metrics["loss"], abs=1e-5)
    again = train(cfg, memo_host, store)  # finished: returns at once, nothing re-trained
    assert again.run_id == resumed.run_id and len(store.train_steps(again.run_id)) == 16
    with pytest.raises(RhoAuditError, match="different settings"):
        train(cfg.model_copy(update={"seed": 9}), memo_host, store)


def test_trainer_options_and_dimensions_are_checked(tmp_path, tiny_model_path, corpus, memo_host):
    store = RunStore(tmp_path / "s.sqlite")
    with pytest.raises(RhoAuditError, match="no option 'lambda'"):
        train(
            config(tmp_path, tiny_model_path, corpus, "x", trainer="sft", options={"lambda": 0.2}),
            memo_host,
            store,
        )
    with pytest.raises(RhoAuditError, match="yields no contrast pairs"):
        train(config(tmp_path, tiny_model_path, corpus, "y", dimensions=["overrefusal"]), memo_host, store)
    with pytest.raises(RhoAuditError, match="Did you mean 'rho-guided'"):
        train(config(tmp_path, tiny_model_path, corpus, "z", trainer="rho-guidd"), memo_host, store)


def test_shuffled_swaps_labels_per_draw_seeded(memo_host):
    shuffled = memo_host.trainers["shuffled"].obj()
    pairs = [ContrastPair("d", f"p{i}", None, f"good {i}", f"bad {i}") for i in range(200)]
    first = shuffled.prepare_pairs(pairs, np.random.default_rng(1))
    again = shuffled.prepare_pairs(pairs, np.random.default_rng(1))
    other = shuffled.prepare_pairs(pairs, np.random.default_rng(2))
    swapped = [p.positive.startswith("bad") for p in first]
    assert first == again and first != other
    assert 0.4 < np.mean(swapped) < 0.6


def test_user_corpus_errors_name_file_line_and_field(tmp_path):
    from rho_audit.train.corpus import load_corpus

    path = tmp_path / "c.jsonl"
    path.write_text(
        '{"instruction": "a", "output": "b"}\n'
        '{"instruction": "a"}\n'
        '{"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "x"}]}\n'
        "not json\n"
    )
    with pytest.raises(ProbeFileError) as err:
        load_corpus(path)
    text = str(err.value)
    assert f"{path}:2: field 'output'" in text and f"{path}:3: field 'messages.1.role'" in text
    assert f"{path}:4: not valid JSON" in text
    path.write_text(
        '{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"},'
        ' {"role": "assistant", "content": "Hello."}]}\n'
    )
    [example] = load_corpus(path)
    assert (example.prompt, example.response, example.history) == ("hi", "Hello.", (("system", "Be brief."),))


def cli(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "rho_audit.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"COLUMNS": "160"},
    )


def test_sigkill_during_training_then_resume(tmp_path, tiny_model_path, corpus):
    """A real SIGKILL mid-run: re-running with --resume finishes with the uninterrupted result."""
    common = [
        "train",
        "--model",
        str(tiny_model_path),
        "--corpus",
        str(corpus),
        "--trap-texts",
        "0",
        "--dimensions",
        "factual",
        "--epochs",
        "25",
        "--grad-accumulation",
        "1",
        "--checkpoint-every",
        "3",
        "--no-audit",
        "--display",
        "plain",
        "--seed",
        "5",
    ]
    whole = cli(*common, "--out", str(tmp_path / "whole"), "--store", str(tmp_path / "w.sqlite"))
    assert whole.wait(timeout=600) == 0, whole.stderr.read()
    assert "too late to speed up" not in whole.stderr.read()  # training loads the fast BLAS first
    out = tmp_path / "cut"
    proc = cli(*common, "--out", str(out), "--store", str(tmp_path / "c.sqlite"))
    deadline = time.time() + 300
    while time.time() < deadline:
        pointer = out / "latest.json"
        if pointer.exists() and json.loads(pointer.read_text())["step"] >= 6:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "training_complete.json").exists(), "finished before the kill: the test proved nothing"
    refused = cli(*common, "--out", str(out), "--store", str(tmp_path / "c.sqlite"))
    assert refused.wait(timeout=600) == 2 and "--resume" in refused.stderr.read()
    resumed = cli(*common, "--out", str(out), "--store", str(tmp_path / "c.sqlite"), "--resume")
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()
    done = json.loads((out / "training_complete.json").read_text())
    expected = json.loads((tmp_path / "whole" / "training_complete.json").read_text())
    assert done["final_metrics"]["loss"] == pytest.approx(expected["final_metrics"]["loss"], abs=1e-5)
    store = RunStore(tmp_path / "c.sqlite")
    steps = [s.step for s in store.train_steps(done["run_id"])]
    assert steps == list(range(1, done["steps"] + 1))
    assert store.run(done["run_id"]).status == "complete"


def test_train_cli_audits_before_and_after_and_adapter_loads_in_mlx_lm(tmp_path, tiny_model_path, corpus):
    out = tmp_path / "adapter"
    proc = cli(
        "train",
        "--trainer",
        "rho-guided",
        "--lambda",
        "0.5",
        "--model",
        str(tiny_model_path),
        "--corpus",
        str(corpus),
        "--trap-texts",
        "4",
        "--max-sft-examples",
        "8",
        "--out",
        str(out),
        "--store",
        str(tmp_path / "s.sqlite"),
        "-n",
        "6",
        "--display",
        "plain",
    )
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert "base → adapter" in stdout and "refusal" in stdout and "delta" in stdout
    from mlx_lm import load

    model, _ = load(str(tiny_model_path), adapter_path=str(out))
    assert any("lora_a" in name for name, _ in __import__("mlx.utils").utils.tree_flatten(model.parameters()))
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["lora_parameters"]["keys"] == ["self_attn.q_proj", "self_attn.k_proj", "self_attn.o_proj"]
    assert config["lora_parameters"]["scale"] == 2.0 and config["rho_audit"]["options"]["lambda"] == 0.5
    runs = RunStore(tmp_path / "s.sqlite").runs()
    assert [r.kind for r in runs] == ["audit", "train", "audit"]
    assert Path(runs[2].config["adapter"]) == out


def test_bad_training_yaml_names_file_line_and_key(tmp_path):
    bad = tmp_path / "train.yaml"
    bad.write_text("trainer: sft\nlora_rank: eight\nlearning_rat: 0.1\n")
    proc = cli("train", "--config", str(bad), "--no-audit")
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "Traceback" not in stderr
    assert (
        f"{bad}:2: lora_rank:" in stderr and f"{bad}:3: learning_rat:" in stderr and "unknown key" in stderr
    )


# --------------------------------------------------------------------------------------------
# `rho-audit train` checks every setting before it audits or loads anything
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--trainer", "sft", "--lambda", "0.5"],
            "command line: --lambda: trainer 'sft' has no option 'lambda' (its options: none); drop it, "
            "or pick a trainer that takes it (cft, orpo, rho-guided, shuffled)",
        ),
        (
            ["--trainer", "rho-guided", "--lambda", "-0.2"],
            "command line: --lambda: must be ≥ 0 (got -0.2); it is rho-guided's weight λ of the "
            "contrastive term",
        ),
        (
            ["--trainer", "contrastive-only", "--margin", "-0.1"],
            "command line: --margin: must be ≥ 0 (got -0.1); it is contrastive-only's hinge margin γ",
        ),
        (["--trainer", "shuffled", "--lambda", "nan"], "must be a finite number"),
        (["--model", "no/such/model/dir"], "model directory no/such/model/dir does not exist"),
        (["--dimensions", "overrefusal"], "dimension 'overrefusal' yields no contrast pairs"),
    ],
)
def test_train_refuses_a_bad_setting_before_any_audit(tmp_path, monkeypatch, args, expected):
    from click.testing import CliRunner

    from rho_audit.cli import main

    def must_not_run(*args, **kw):
        raise AssertionError("the base model was audited before the settings were checked")

    monkeypatch.setattr("rho_audit.audit.runner.run_audit", must_not_run)
    monkeypatch.setattr("rho_audit.train.loop.train", must_not_run)
    store = tmp_path / "runs.sqlite"
    result = CliRunner().invoke(main, ["train", *args, "--store", str(store), "--display", "none"])
    assert isinstance(result.exception, RhoAuditError), (result.exception, result.output)
    assert result.exception.exit_code == 2 and expected in str(result.exception)
    assert not store.exists()


def test_train_options_from_a_config_file_name_their_line(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from rho_audit.cli import main

    monkeypatch.setattr("rho_audit.audit.runner.run_audit", lambda *a, **k: pytest.fail("audited"))
    cfg = tmp_path / "train.yaml"
    cfg.write_text("trainer: rho-guided\noptions:\n  lambda: 0.3\n  margin: -1\n")
    store = tmp_path / "s.sqlite"
    result = CliRunner().invoke(
        main, ["train", "--config", str(cfg), "--lambda", "-3", "--store", str(store)]
    )
    assert isinstance(result.exception, RhoAuditError)
    assert str(result.exception).splitlines() == [
        "invalid training settings; nothing was trained.",
        "  command line: --lambda: must be ≥ 0 (got -3); it is rho-guided's weight λ of the contrastive term",
        f"  {cfg}:4: options.margin: must be ≥ 0 (got -1); it is rho-guided's hinge margin γ, in nats "
        "per token",
    ]
    result = CliRunner().invoke(
        main, ["train", "--config", str(cfg), "--trainer", "sft", "--store", str(store)]
    )
    assert f"{cfg}:3: options.lambda: trainer 'sft' has no option 'lambda'" in str(result.exception)
    assert f"{cfg}:4: options.margin: trainer 'sft' has no option 'margin'" in str(result.exception)
    assert not store.exists()
