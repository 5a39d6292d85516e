"""Where an audited adapter came from: the ``train``/``sweep`` run that produced it.

Two sources, each optional, so a card says what it can wherever it is rendered:

* the adapter folder's ``adapter_config.json`` (its ``rho_audit`` block: trainer, resolved
  options, the training config and its hash) and ``training_complete.json`` (the training run id
  and its steps), when the folder is on this machine;
* the run store's training run: the one the done-marker names, else the newest complete one of
  the same config hash, else the newest one that wrote into the same folder.

An adapter from anywhere else (mlx-lm, a download) has neither, and the card says so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from rho_audit.report.gather import run_header
from rho_audit.report.records import AdapterProvenance, RunHeader
from rho_audit.store import RunRow, RunStore

# mlx-lm's adapter layout as rho-audit's trainer writes it (rho_audit.train.checkpoints; not
# imported here, as it loads the model layer).
ADAPTER_CONFIG = "adapter_config.json"
DONE_FILE = "training_complete.json"


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _train_run(store: RunStore, adapter: str, run_id: object, sha: object) -> RunRow | None:
    if isinstance(run_id, str):
        found = store.get_run(run_id)
        if found is not None and found.kind == "train":
            return found
    trains = [r for r in reversed(store.runs()) if r.kind == "train"]  # newest first
    if isinstance(sha, str):
        same = [r for r in trains if r.config_sha256 == sha]
        if same:
            return next((r for r in same if r.status == "complete"), same[0])
    where = str(Path(adapter).resolve())
    return next((r for r in trains if r.adapter and str(Path(r.adapter).resolve()) == where), None)


def _data(config: Mapping[str, Any]) -> str:
    """What the training read: the SFT corpus, the dimensions, preference pairs, the token budget."""
    parts = [f"SFT corpus {config['corpus']}" if config.get("corpus") else "built-in SFT corpus"]
    dims = config.get("dimensions")
    if isinstance(dims, list) and dims:
        parts.append("dimensions " + ", ".join(map(str, dims)))  # its contrast pairs, if the trainer uses any
    if config.get("preferences"):
        parts.append(f"preference pairs {config['preferences']}")
    if config.get("budget_tokens"):
        parts.append(f"budget {config['budget_tokens']} response tokens")
    if config.get("init_adapter"):
        parts.append(f"started from adapter {config['init_adapter']}")
    return "; ".join(parts)


def adapter_provenance(store: RunStore, adapter: str) -> AdapterProvenance:
    """What produced ``adapter``, from its folder and the store (see the module docs)."""
    folder = Path(adapter)
    block = _read(folder / ADAPTER_CONFIG).get("rho_audit")
    block = block if isinstance(block, dict) else {}
    done = _read(folder / DONE_FILE)
    run = _train_run(store, adapter, done.get("run_id"), block.get("config_sha256"))
    config = block.get("config") if isinstance(block.get("config"), dict) else None
    if config is None:
        config = run.config if run is not None else {}
    if not block and run is None:
        unknown = (
            f"unknown: no rho-audit training record in {ADAPTER_CONFIG} or the run store (trained "
            "elsewhere, or the folder is not on this machine)"
        )
        return AdapterProvenance(None, (), None, None, None, None, None, unknown)
    options = block.get("options") if isinstance(block.get("options"), dict) else config.get("options") or {}
    steps = done.get("steps")
    if not isinstance(steps, int) and run is not None:
        logged = store.train_steps(run.run_id)
        steps = logged[-1].step if logged else None
    seed = config.get("seed", run.seed if run is not None else None)
    sources = [
        s
        for s, ok in ((f"{folder.name}/{ADAPTER_CONFIG}", bool(block)), ("run store", run is not None))
        if ok
    ]
    return AdapterProvenance(
        trainer=str(block.get("trainer") or config.get("trainer") or "?"),
        options=tuple((str(k), v) for k, v in options.items()),
        seed=seed if isinstance(seed, int) else None,
        train_run_id=run.run_id if run is not None else done.get("run_id"),
        train_status=run.status if run is not None else None,
        steps=steps if isinstance(steps, int) else None,
        data=_data(config) if config else None,
        source=" and ".join(sources),
    )


def header_with_provenance(store: RunStore, run: RunRow) -> RunHeader:
    """The run's header, with its adapter's provenance when it has an adapter."""
    header = run_header(run)
    if not header.adapter:
        return header
    return replace(header, provenance=adapter_provenance(store, header.adapter))
