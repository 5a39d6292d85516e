"""A damaged model folder (cut-off weights, broken config.json) stops `rho-audit run` with exit 2
and a message naming the file and the fix, never a traceback."""

import shutil

import pytest

from rho_audit.testing import build_lora_adapter

from .test_cli import rho_audit


@pytest.fixture
def model_copy(tmp_path, tiny_model_path):
    return shutil.copytree(tiny_model_path, tmp_path / "model")


def run_on(model, tmp_path, *extra):
    proc = rho_audit(
        "run",
        "--model",
        str(model),
        "--probes",
        "bias",
        "-n",
        "2",
        "--store",
        str(tmp_path / "s.sqlite"),
        *extra,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stderr


@pytest.mark.parametrize("keep", [0, 5, 100, 0.5])
def test_truncated_weights_name_the_file_and_the_fix(model_copy, tmp_path, keep):
    weights = model_copy / "model.safetensors"
    size = weights.stat().st_size
    with weights.open("r+b") as handle:
        handle.truncate(int(size * keep) if isinstance(keep, float) else keep)
    err = run_on(model_copy, tmp_path)
    assert f"{weights}: " in err and "truncated" in err
    assert "Re-convert or re-download the model" in err


def test_weights_that_are_no_safetensors_file(model_copy, tmp_path):
    (model_copy / "model.safetensors").write_bytes(
        b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!" + bytes(64)
    )
    err = run_on(model_copy, tmp_path)
    assert "model.safetensors: its header is not valid JSON" in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"model_type": "llama",', "config.json:1:24: not valid JSON: Expecting property name"),
        ("[1, 2]", "config.json:1: expected a JSON object of settings, got a list"),
        (
            '{"hidden_size": 64}',
            'config.json: model_type: expected the architecture name (e.g. "llama"), got missing',
        ),
        (None, "config.json:1: not valid UTF-8 (byte 0xff)"),
    ],
)
def test_broken_config_json_is_named(model_copy, tmp_path, text, expected):
    config = model_copy / "config.json"
    if text is None:
        config.write_bytes(b"\xff\xfe{}")
    else:
        config.write_text(text)
    assert f"{model_copy / expected}" in run_on(model_copy, tmp_path)


def test_config_that_does_not_fit_the_weights_names_config_json(model_copy, tmp_path):
    config = model_copy / "config.json"
    config.write_text(config.read_text().replace('"hidden_size": 64', '"hidden_size": "wide"'))
    err = run_on(model_copy, tmp_path)
    assert f"could not load the model at {model_copy}: TypeError" in err
    assert f"Check that {config} describes the weights" in err


def test_truncated_adapter_weights_are_named(model_copy, tmp_path):
    adapter = build_lora_adapter(model_copy, tmp_path / "adapter")
    weights = adapter / "adapters.safetensors"
    with weights.open("r+b") as handle:
        handle.truncate(weights.stat().st_size - 10)
    err = run_on(model_copy, tmp_path, "--adapter", str(adapter))
    assert f"{weights}: tensor " in err and "it is truncated" in err


def test_gguf_with_contradictory_metadata_is_a_user_error(tmp_path):
    import mlx.core as mx

    gguf = tmp_path / "odd.gguf"
    meta = {
        "general.architecture": "llama",
        "llama.embedding_length": mx.array(4),
        "llama.attention.head_count": mx.array(0),  # no heads: nothing divides by it
        "llama.block_count": mx.array(0),
        "llama.feed_forward_length": mx.array(8),
        "tokenizer.ggml.model": "gpt2",
    }
    mx.save_gguf(
        str(gguf), {"token_embd.weight": mx.zeros((8, 4)), "output_norm.weight": mx.ones((4,))}, meta
    )
    err = run_on(gguf, tmp_path)
    assert f"{gguf}: cannot convert it (ZeroDivisionError" in err and "Re-download the file" in err
    with gguf.open("r+b") as handle:
        handle.truncate(gguf.stat().st_size - 20)
    assert f"cannot read the GGUF file {gguf}" in run_on(gguf, tmp_path)
