"""The files of a training run's output folder: resumable checkpoints, the adapter in mlx-lm's
layout, and the marker of a finished run.

A checkpoint (LoRA weights, optimizer state and RNG state) is written to a fresh folder and
then pointed to by an atomically replaced ``latest.json``, so a kill at any instant leaves a
loadable checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import rho_audit.model  # noqa: F401  (loads the fast BLAS before mlx is imported below)
from rho_audit._util.files import atomic_write_text, replace_dir
from rho_audit.api.errors import RhoAuditError

ADAPTER_FILE = "adapters.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
DONE_FILE = "training_complete.json"
CHECKPOINT_POINTER = "latest.json"
OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "state.json"


def save_checkpoint(
    out: Path, step: int, state: dict[str, Any], adapter: dict[str, Any], optimizer: dict[str, Any]
) -> None:
    """Write checkpoint ``step`` (``state``: run id, config hash, step, RNG state; ``adapter``
    and ``optimizer``: flat name -> array dicts), point ``latest.json`` at it, drop the others."""
    import mlx.core as mx

    folder = out / f"checkpoint-{step:06d}"
    tmp = out / f".tmp-checkpoint-{step:06d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    mx.save_safetensors(str(tmp / ADAPTER_FILE), adapter)
    mx.save_safetensors(str(tmp / OPTIMIZER_FILE), optimizer)
    (tmp / STATE_FILE).write_text(json.dumps(state), encoding="utf-8")
    replace_dir(tmp, folder)
    write_json(out / CHECKPOINT_POINTER, {**state, "folder": folder.name})
    for old in out.glob("checkpoint-*"):  # keep only the one the pointer names
        if old != folder:
            shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(
    out: Path, pointer: dict[str, Any]
) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
    """(adapter weights, optimizer state) of the checkpoint ``pointer`` names, as (name, array) lists."""
    import mlx.core as mx

    folder = out / pointer["folder"]
    adapter = list(mx.load(str(folder / ADAPTER_FILE)).items())
    optimizer = list(mx.load(str(folder / OPTIMIZER_FILE)).items())
    return adapter, optimizer


def write_adapter(out: Path, adapter: dict[str, Any], config: dict[str, Any], done: dict[str, Any]) -> None:
    """mlx-lm's adapter layout, each file replaced atomically; the done-marker goes last."""
    import mlx.core as mx

    tmp = out / f".tmp-{ADAPTER_FILE}"
    mx.save_safetensors(str(tmp), adapter)
    os.replace(tmp, out / ADAPTER_FILE)
    write_json(out / ADAPTER_CONFIG, config)
    write_json(out / DONE_FILE, done)


def copy_finished_adapter(source: Path, out: Path) -> None:
    """Copy a finished run's adapter into ``out`` (an empty folder), done-marker last, so a kill
    mid-copy leaves a folder that is not taken for a finished run."""
    out.mkdir(parents=True, exist_ok=True)
    for name in (ADAPTER_FILE, ADAPTER_CONFIG, DONE_FILE):
        tmp = out / f".tmp-{name}"
        shutil.copyfile(source / name, tmp)
        os.replace(tmp, out / name)


def latest_checkpoint(out: Path) -> dict[str, Any] | None:
    """The pointer to the newest complete checkpoint in ``out``, if any."""
    pointer = read_json(out / CHECKPOINT_POINTER)
    if pointer and (out / pointer["folder"] / ADAPTER_FILE).is_file():
        return pointer
    return None


def finished_run(out: Path) -> dict[str, Any] | None:
    """The done-marker of a run that finished in ``out``, if any."""
    return read_json(out / DONE_FILE)


def check_same_config(out: Path, state: dict[str, Any], sha: str) -> None:
    if state.get("config_sha256") != sha:
        raise RhoAuditError(
            f"{out} holds a training run with different settings (config "
            f"{state.get('config_sha256', '?')[:12]} vs {sha[:12]}). Choose another --out folder, or "
            "delete that one to start over."
        )


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True))
