"""Starting a run from an existing LoRA adapter (``TrainConfig.init_adapter``, ``--init-adapter``).

The adapter is a folder in mlx-lm's layout (``adapters.safetensors`` + ``adapter_config.json``), e.g.
one ``rho-audit train`` wrote. Its LoRA shape (rank, scale, projections, layers) must be the run's:
the run's LoRA layers are made as usual and then take the adapter's weights, so the first step
starts at the adapter's loss. Only the LoRA weights carry over; the optimizer starts fresh, and a
resumed run's checkpoint weights replace them. A reference model (DPO's, a KL term's) is still the
base model: LoRA off, the init adapter included.

The adapter's identity in the run's config hash is the SHA-256 of its weights file, so a resume or a
reused adapter folder never mixes runs started from two different adapters.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rho_audit.api.errors import RhoAuditError
from rho_audit.train.checkpoints import ADAPTER_CONFIG, ADAPTER_FILE

if TYPE_CHECKING:
    from rho_audit.train.config import TrainConfig

#: Weights-file hashes by (path, size, mtime): a config's hash is asked for several times a run.
_HASHES: dict[tuple[str, int, int], str] = {}


def init_adapter_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be an init adapter (files missing, not LoRA), or None."""
    folder = Path(folder)
    missing = [name for name in (ADAPTER_FILE, ADAPTER_CONFIG) if not (folder / name).is_file()]
    if missing:
        return (
            f"init adapter {str(folder)!r} has no {' or '.join(missing)} (an adapter folder in mlx-lm's "
            "layout, as `rho-audit train` writes it)"
        )
    try:
        config = json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return f"{folder / ADAPTER_CONFIG}: not readable JSON ({err})"
    kind = config.get("fine_tune_type", "lora") if isinstance(config, dict) else None
    if kind != "lora" or not isinstance(config.get("lora_parameters"), dict):
        return f"{folder / ADAPTER_CONFIG}: a {kind!r} adapter; only LoRA adapters can start a run"
    return None


def adapter_config(folder: Path) -> dict[str, Any]:
    """The init adapter's ``adapter_config.json``; a :class:`RhoAuditError` when it is unusable."""
    problem = init_adapter_problem(folder)
    if problem:
        raise RhoAuditError(f"--init-adapter: {problem}.")
    return json.loads((Path(folder) / ADAPTER_CONFIG).read_text(encoding="utf-8"))


def weights_sha256(folder: Path) -> str:
    """SHA-256 of the init adapter's weights file (its identity in the run's config hash)."""
    path = Path(folder) / ADAPTER_FILE
    try:
        stat = path.stat()
    except OSError:
        raise RhoAuditError(f"--init-adapter: {init_adapter_problem(Path(folder))}.") from None
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def check_shape(config: TrainConfig, model_layers: int | None = None) -> None:
    """Refuse an init adapter whose LoRA shape is not the run's, naming each difference and the
    settings that would match it. ``model_layers``: the base model's layer count, when known
    (it resolves ``lora_layers`` unset, which means every layer)."""
    if config.init_adapter is None:
        return
    found = adapter_config(config.init_adapter)
    params = found["lora_parameters"]
    differences, fixes = [], []
    rank = params.get("rank")
    if rank is not None and int(rank) != config.lora_rank:
        differences.append(f"rank {rank} (this run: {config.lora_rank})")
        fixes.append(f"--lora-rank {rank}")
    scale = params.get("scale")
    run_scale = config.lora_alpha / config.lora_rank
    if scale is not None and rank is not None and not math.isclose(float(scale), run_scale, rel_tol=1e-6):
        differences.append(f"scale {float(scale):g} = alpha/rank (this run: {run_scale:g})")
        fixes.append(f"--lora-alpha {float(scale) * int(rank):g}")
    keys = params.get("keys")
    if keys is not None and sorted(keys) != sorted(config.lora_keys):
        differences.append(f"projections {sorted(keys)} (this run: {sorted(config.lora_keys)})")
        fixes.append(f"lora_keys: {json.dumps(sorted(keys))} in the --config file")
    layers = found.get("num_layers")
    run_layers = config.lora_layers
    if model_layers is not None:  # unset means every layer; more than the model has, all of them
        run_layers = min(run_layers or model_layers, model_layers)
    if layers is not None and run_layers is not None and int(layers) != run_layers:
        differences.append(f"LoRA on the last {layers} layers (this run: {run_layers})")
        fixes.append(f"--lora-layers {layers}")
    if differences:
        raise RhoAuditError(
            f"--init-adapter {config.init_adapter}: its LoRA is not this run's shape: "
            + "; ".join(differences)
            + f". Train with the adapter's shape ({', '.join(fixes)}), or drop --init-adapter to start "
            "from a fresh LoRA."
        )


def load_weights(model: Any, folder: Path) -> None:
    """Put the adapter's weights into ``model``'s LoRA layers (already added), refusing an adapter
    whose weight names or shapes are not exactly the model's LoRA parameters."""
    import mlx.core as mx
    from mlx.utils import tree_flatten

    weights = mx.load(str(Path(folder) / ADAPTER_FILE))
    expected = dict(tree_flatten(model.trainable_parameters()))
    problems = _weight_problems(
        {k: tuple(v.shape) for k, v in weights.items()}, {k: tuple(v.shape) for k, v in expected.items()}
    )
    if problems:
        raise RhoAuditError(
            f"--init-adapter {folder}: its weights do not fit this run's LoRA layers "
            f"({'; '.join(problems)}). "
            "Train with the adapter's LoRA settings (rank, lora_keys, lora_layers in its "
            f"{ADAPTER_CONFIG}) on the model it was trained on."
        )
    model.load_weights(list(weights.items()), strict=False)


def _weight_problems(found: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]]) -> list[str]:
    problems = []
    extra, missing = sorted(set(found) - set(expected)), sorted(set(expected) - set(found))
    if extra:
        problems.append(f"{len(extra)} weights this run has no place for, e.g. {extra[0]}")
    if missing:
        problems.append(f"{len(missing)} LoRA weights it lacks, e.g. {missing[0]}")
    both = sorted(set(found) & set(expected))
    shapes = [f"{k} {found[k]} vs {expected[k]}" for k in both if found[k] != expected[k]]
    if shapes:
        problems.append(f"{len(shapes)} of another shape, e.g. {shapes[0]}")
    return problems


def model_layer_count(model_spec: str | None, source: str) -> int | None:
    """The base model's layer count read from a local model folder's ``config.json`` (None for a
    model that must first be converted or downloaded: the loop checks after it loads)."""
    if source != "local" or model_spec is None:
        return None
    try:
        data = json.loads((Path(model_spec).expanduser() / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    layers = data.get("num_hidden_layers") if isinstance(data, dict) else None
    return int(layers) if isinstance(layers, int) else None
