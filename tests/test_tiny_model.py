"""The tiny test model of rho_audit.testing: it loads, chats, round-trips text, runs, is deterministic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import rho_audit
import rho_audit.testing as rt
from rho_audit.testing import CHAT_TEMPLATE, SPECIAL_TOKENS, build_tiny_model

pytest_plugins = ["pytester"]

# The plugin's fixture, made available here even where the plugin is not registered (an
# uninstalled checkout). Where it is registered too, this module-level definition wins.
tiny_model_path = rt.tiny_model_path

_REPO_ROOT = Path(rho_audit.__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def loaded(tiny_model_path):
    import mlx_lm

    return mlx_lm.load(str(tiny_model_path))


def _file_bytes(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def test_files_and_config(tiny_model_path):
    names = {p.name for p in tiny_model_path.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    } <= names
    assert not any(name.startswith(".") for name in names)
    config = json.loads((tiny_model_path / "config.json").read_text())
    assert config["model_type"] == "llama"
    assert config["num_hidden_layers"] == 2
    assert config["hidden_size"] == 64
    assert config["tie_word_embeddings"] is True
    tok_config = json.loads((tiny_model_path / "tokenizer_config.json").read_text())
    assert tok_config["chat_template"] == CHAT_TEMPLATE
    assert tok_config["bos_token"] == "<|im_start|>"
    assert tok_config["eos_token"] == "<|im_end|>"
    assert tok_config["pad_token"] == "<|im_end|>"
    assert tok_config["model_max_length"] == 2048
    size = sum(p.stat().st_size for p in tiny_model_path.iterdir())
    assert size < 2_000_000


def test_loads_with_mlx_lm(loaded, tiny_model_path):
    model, tokenizer = loaded
    config = json.loads((tiny_model_path / "config.json").read_text())
    assert model.args.vocab_size == len(tokenizer) == config["vocab_size"]
    assert len(model.layers) == 2
    assert 900 <= config["vocab_size"] <= 1000
    for i, token in enumerate(SPECIAL_TOKENS):
        assert tokenizer.convert_tokens_to_ids(token) == i
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.bos_token == "<|im_start|>"
    assert tokenizer.eos_token_ids == {SPECIAL_TOKENS.index("<|im_end|>")}
    assert type(tokenizer.detokenizer).__name__ == "BPEStreamingDetokenizer"


def test_chat_template(loaded):
    _, tokenizer = loaded
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert "<|im_start|>user\n" in text
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert ids[0] == SPECIAL_TOKENS.index("<|im_start|>")
    assert ids.count(SPECIAL_TOKENS.index("<|im_end|>")) == 2


@pytest.mark.parametrize(
    "text",
    [
        "The capital of France is Paris.",
        "I can't help with that.",
        "  leading and trailing spaces  ",
        "tabs\tand\nnew\r\nlines\n\n",
        "Numbers 0123456789 and 3.14159, -42, 1e-5",
        "Ünïcödé: café, naïve, Straße, Ærøskøbing",
        "日本語のテキスト、中文文本、한국어 텍스트",
        "Ελληνικά, русский, עברית, العربية",
        "emoji 🤖🎉 and a family 👨‍👩‍👧 and flags 🇫🇷",
        "math ∑∫√∞≈≠ and symbols ©®™ and \u00a0nbsp",
        "control \x00\x01\x7f and zero-width \u200b joiner",
        "<not a special token> <|im_start> |im_end|",
    ],
)
def test_encode_decode_round_trip(loaded, text):
    _, tokenizer = loaded
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert all(0 <= i < len(tokenizer) for i in ids)
    assert tokenizer.decode(ids) == text


def test_forward_logits_shape(loaded):
    import mlx.core as mx

    model, tokenizer = loaded
    ids = tokenizer.encode("Hello there! How are you today?", add_special_tokens=False)
    logits = model(mx.array([ids]))
    mx.eval(logits)
    assert logits.shape == (1, len(ids), len(tokenizer))
    assert logits.dtype == mx.float32
    assert mx.all(mx.isfinite(logits)).item()


def test_generate(loaded):
    import mlx_lm

    model, tokenizer = loaded
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Tell me a joke."}],
        tokenize=False,
        add_generation_prompt=True,
    )
    text = mlx_lm.generate(model, tokenizer, prompt, max_tokens=5)
    assert isinstance(text, str)
    responses = list(mlx_lm.stream_generate(model, tokenizer, "The sky is", max_tokens=5))
    assert 1 <= len(responses) <= 5
    assert all(r.token < len(tokenizer) for r in responses)


def test_same_seed_is_bit_identical(tmp_path, tiny_model_path):
    import mlx.core as mx

    first = build_tiny_model(tmp_path / "first", seed=0)
    second = build_tiny_model(tmp_path / "second", seed=0)
    assert _file_bytes(first) == _file_bytes(second) == _file_bytes(tiny_model_path)

    a = mx.load(str(first / "model.safetensors"))
    b = mx.load(str(second / "model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == mx.float32
        assert mx.array_equal(a[name], b[name]).item(), name


def test_other_seed_changes_weights_not_tokenizer(tmp_path, tiny_model_path):
    import mlx.core as mx

    other = build_tiny_model(tmp_path / "other", seed=1)
    assert (other / "tokenizer.json").read_bytes() == (tiny_model_path / "tokenizer.json").read_bytes()
    a = mx.load(str(tiny_model_path / "model.safetensors"))
    b = mx.load(str(other / "model.safetensors"))
    assert not mx.array_equal(a["model.embed_tokens.weight"], b["model.embed_tokens.weight"]).item()


def test_idempotent_and_rebuilds_for_another_seed(tmp_path):
    out = build_tiny_model(tmp_path / "m", seed=0)
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert build_tiny_model(out, seed=0) == out
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes

    build_tiny_model(out, seed=3)
    assert json.loads((out / "config.json").read_text())["rho_audit_tiny_model"]["seed"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no staging dir left behind


def test_refuses_to_overwrite_a_foreign_model(tmp_path):
    out = build_tiny_model(tmp_path / "m", seed=0)
    config = json.loads((out / "config.json").read_text())
    del config["rho_audit_tiny_model"]
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(FileExistsError):
        build_tiny_model(out, seed=0)


def test_import_is_light():
    code = textwrap.dedent(
        """
        import sys
        import rho_audit.testing
        heavy = [m for m in ("mlx", "mlx_lm", "tokenizers", "transformers") if m in sys.modules]
        assert not heavy, heavy
        """
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(_REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_is_a_pytest_plugin(pytester, monkeypatch, tiny_model_path):
    """A third-party test suite gets ``tiny_model_path`` from the plugin alone, same bytes."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv(
        "PYTHONPATH",
        os.pathsep.join([str(_REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    )
    pytester.makepyfile(
        test_third_party="""
        from pathlib import Path

        def test_uses_fixture(tiny_model_path):
            assert (tiny_model_path / "config.json").is_file()
            Path("built_at.txt").write_text(str(tiny_model_path))
        """
    )
    result = pytester.runpytest_subprocess("-p", "rho_audit.testing", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    inner = Path((pytester.path / "built_at.txt").read_text())
    assert _file_bytes(inner) == _file_bytes(tiny_model_path)  # deterministic across processes
