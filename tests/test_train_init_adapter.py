"""Training from an existing adapter (``init_adapter``, ``--init-adapter``) on the tiny model: the run
starts at the adapter's loss, a LoRA shape that is not the adapter's is refused before the model
loads, the config hash holds the adapter's weights (and is unchanged without one), and a resumed
run takes its checkpoint's weights."""

import hashlib
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from rho_audit.api.errors import RhoAuditError
from rho_audit.cli import main
from rho_audit.model.language_model import LanguageModel
from rho_audit.store import RunStore
from rho_audit.train.batches import TrainingTokenizer
from rho_audit.train.config import build_plan, check_config
from rho_audit.train.loop import train
from rho_audit.train.packing import MicroBatch

from . import test_training

corpus, memo_host = test_training.corpus, test_training.memo_host  # fixtures shared with it


def config(folder, tiny_model_path, corpus, name, **kw):
    """test_training's settings, with the sft objective."""
    return test_training.config(folder, tiny_model_path, corpus, name, **({"trainer": "sft"} | kw))


@pytest.fixture(scope="module")
def adapter(tmp_path_factory, tiny_model_path, corpus, memo_host):
    """An SFT adapter trained with a seed other than the runs that start from it."""
    folder = tmp_path_factory.mktemp("init")
    store = RunStore(folder / "s.sqlite")
    return train(config(folder, tiny_model_path, corpus, "a", seed=11), memo_host, store).adapter_dir


def _steps(cfg, host, store, **kw):
    outcome = train(cfg, host, store, **kw)
    return outcome, [s.flat() for s in store.train_steps(outcome.run_id)]


def _first_step_loss(tiny_model_path, adapter_dir, cfg, host) -> float:
    """The SFT loss of the run's first optimizer step (its first two examples), computed apart
    from the loop with mlx-lm's own loading of ``adapter_dir`` (None: the base model)."""
    lm = LanguageModel.load(tiny_model_path, "tiny", adapter_dir)
    tok = TrainingTokenizer(lm, lm.resolve_template(cfg.template), cfg.max_seq_len)
    examples = build_plan(host, cfg).examples[: cfg.grad_accumulation]
    ces = [
        MicroBatch(tok.example(ex), (), cfg.max_seq_len).forward(lm.model, False).sft_ce for ex in examples
    ]
    return float(np.mean([float(ce[0]) for ce in ces]))


def test_a_run_from_an_adapter_starts_at_that_adapters_loss(
    tmp_path, tiny_model_path, corpus, memo_host, adapter
):
    store = RunStore(tmp_path / "s.sqlite")
    fresh_cfg = config(tmp_path, tiny_model_path, corpus, "fresh")
    init_cfg = config(tmp_path, tiny_model_path, corpus, "init", init_adapter=adapter)
    _, fresh = _steps(fresh_cfg, memo_host, store)
    outcome, init = _steps(init_cfg, memo_host, store)
    base_loss = _first_step_loss(tiny_model_path, None, fresh_cfg, memo_host)
    adapter_loss = _first_step_loss(tiny_model_path, adapter, init_cfg, memo_host)
    assert base_loss - adapter_loss > 0.5  # the adapter learnt the corpus: a different start
    assert fresh[0]["loss"] == pytest.approx(base_loss, abs=1e-4)
    assert init[0]["loss"] == pytest.approx(adapter_loss, abs=1e-4)
    assert init[-1]["loss"] < fresh[-1]["loss"]
    recorded = json.loads((outcome.adapter_dir / "adapter_config.json").read_text())["rho_audit"]
    assert recorded["init_adapter"]["path"] == str(adapter)
    weights = (adapter / "adapters.safetensors").read_bytes()
    assert recorded["init_adapter"]["weights_sha256"] == hashlib.sha256(weights).hexdigest()


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"lora_rank": 4}, r"rank 8 \(this run: 4\).*--lora-rank 8, --lora-alpha 16"),
        ({"lora_alpha": 32.0}, r"scale 2 = alpha/rank \(this run: 4\).*--lora-alpha 16\)"),
        ({"lora_keys": ["self_attn.q_proj"]}, r"projections .*lora_keys: \[.*in the --config file"),
        ({"lora_layers": 1}, r"last 2 layers \(this run: 1\).*--lora-layers 2"),
    ],
)
def test_a_lora_shape_other_than_the_adapters_is_refused_before_the_model_loads(
    tmp_path, tiny_model_path, corpus, memo_host, adapter, monkeypatch, settings, expected
):
    def must_not_load(*args, **kw):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(LanguageModel, "load", must_not_load)
    cfg = config(tmp_path, tiny_model_path, corpus, "x", init_adapter=adapter, **settings)
    with pytest.raises(RhoAuditError, match=expected) as err:
        check_config(memo_host, cfg)
    assert "or drop --init-adapter" in str(err.value)
    with pytest.raises(RhoAuditError, match=expected):
        train(cfg, memo_host, RunStore(tmp_path / "s.sqlite"))
    assert not (tmp_path / "x").exists()


def test_lora_on_every_layer_is_checked_against_the_models_depth_before_it_loads(
    tmp_path, tiny_model_path, corpus, memo_host, adapter, monkeypatch
):
    """``lora_layers`` unset means every layer: the local model's config.json says how many."""
    shallow = tmp_path / "shallow"
    shutil.copytree(adapter, shallow)
    meta = json.loads((shallow / "adapter_config.json").read_text())
    (shallow / "adapter_config.json").write_text(json.dumps(meta | {"num_layers": 1}))
    monkeypatch.setattr(LanguageModel, "load", lambda *a, **k: pytest.fail("the model was loaded"))
    cfg = config(tmp_path, tiny_model_path, corpus, "x", init_adapter=shallow)
    with pytest.raises(RhoAuditError, match=r"last 1 layers \(this run: 2\).*--lora-layers 1"):
        check_config(memo_host, cfg)


def test_weights_that_do_not_fit_the_runs_lora_are_refused(
    tmp_path, tiny_model_path, corpus, memo_host, adapter
):
    """An adapter whose config lists no projections (as some mlx-lm adapters do) is checked by
    its weights once the LoRA layers exist: names and shapes must be exactly the run's."""
    other = tmp_path / "other"
    shutil.copytree(adapter, other)
    meta = json.loads((other / "adapter_config.json").read_text())
    del meta["lora_parameters"]["keys"]
    (other / "adapter_config.json").write_text(json.dumps(meta))
    cfg = config(tmp_path, tiny_model_path, corpus, "x", init_adapter=other, lora_keys=["self_attn.v_proj"])
    with pytest.raises(RhoAuditError, match=r"do not fit this run's LoRA layers \(12 weights this run"):
        train(cfg, memo_host, RunStore(tmp_path / "s.sqlite"))


def test_an_init_adapter_folder_without_an_adapter_is_refused(tmp_path, tiny_model_path, corpus, memo_host):
    (tmp_path / "empty").mkdir()
    cfg = config(tmp_path, tiny_model_path, corpus, "x", init_adapter=tmp_path / "empty")
    with pytest.raises(RhoAuditError, match=r"has no adapters\.safetensors or adapter_config\.json"):
        check_config(memo_host, cfg)
    with pytest.raises(RhoAuditError, match=r"--init-adapter: .*has no adapters\.safetensors"):
        cfg.config_sha256()


def test_the_config_hash_holds_the_init_adapters_weights_not_its_path(
    tmp_path, tiny_model_path, corpus, memo_host, adapter
):
    plain = config(tmp_path, tiny_model_path, corpus, "h")
    started = plain.model_copy(update={"init_adapter": adapter})
    assert started.config_sha256() != plain.config_sha256()
    moved = tmp_path / "moved"
    shutil.copytree(adapter, moved)
    assert started.model_copy(update={"init_adapter": moved}).config_sha256() == started.config_sha256()
    # Other weights in the same folder: another run, whose output folder is not reused.
    store = RunStore(tmp_path / "s.sqlite")
    first = config(tmp_path, tiny_model_path, corpus, "out", init_adapter=moved, epochs=1)
    train(first, memo_host, store)
    before = first.config_sha256()
    shutil.copyfile(first.adapter_dir / "adapters.safetensors", moved / "adapters.safetensors")
    assert first.config_sha256() != before
    with pytest.raises(RhoAuditError, match="different settings"):
        train(first, memo_host, store)


def test_a_resumed_run_takes_its_checkpoints_weights_not_the_adapters(
    tmp_path, tiny_model_path, corpus, memo_host, adapter
):
    store = RunStore(tmp_path / "s.sqlite")
    whole, _ = _steps(
        config(tmp_path, tiny_model_path, corpus, "whole", init_adapter=adapter), memo_host, store
    )

    def stop_after_step_4(event):
        if event.kind == "checkpoint_saved" and event.done == 4:
            raise KeyboardInterrupt

    cut = config(tmp_path, tiny_model_path, corpus, "cut", init_adapter=adapter)
    with pytest.raises(KeyboardInterrupt):
        train(cut, memo_host, store, say=stop_after_step_4)
    resumed, steps = _steps(cut, memo_host, store)
    assert [s["step"] for s in steps] == list(range(1, whole.steps + 1))
    assert resumed.final_metrics["loss"] == pytest.approx(whole.final_metrics["loss"], abs=1e-5)
    assert (whole.adapter_dir / "adapters.safetensors").read_bytes() == (
        resumed.adapter_dir / "adapters.safetensors"
    ).read_bytes()


def test_the_train_command_takes_init_adapter(tmp_path, tiny_model_path, corpus, adapter):
    args = ["train", "--model", str(tiny_model_path), "--corpus", str(corpus), "--no-audit"]
    args += ["--init-adapter", str(adapter), "--lora-rank", "4", "--store", str(tmp_path / "s.sqlite")]
    result = CliRunner().invoke(main, args)
    assert isinstance(result.exception, RhoAuditError)
    assert "its LoRA is not this run's shape: rank 8 (this run: 4)" in str(result.exception)
    assert not (tmp_path / "s.sqlite").exists()  # refused before anything ran


def test_a_sweep_takes_init_adapter_and_checks_it_at_its_line(tmp_path, tiny_model_path, memo_host, adapter):
    from rho_audit.train.sweep import SweepFileError, plan_sweep

    def cells(init: str | None) -> list:
        extra = f", init_adapter: {init}" if init else ""
        path = tmp_path / "s.yaml"
        path.write_text(
            f"name: s\nmodels: [{tiny_model_path}]\ngrid: {{trainer: [sft], seed: [1]}}\n"
            f"train: {{dimensions: [memo]{extra}}}\n"
        )
        return plan_sweep(path, memo_host, out=tmp_path / "o").train_cells

    [plain], [started] = cells(None), cells(str(adapter))
    assert started.train["init_adapter"] == str(adapter)
    assert started.config_sha256 != plain.config_sha256
    with pytest.raises(SweepFileError) as err:
        cells(str(tmp_path / "nowhere"))
    assert f"4: train.init_adapter: init adapter '{tmp_path}/nowhere' has no adapters.safetensors" in str(
        err.value
    )
