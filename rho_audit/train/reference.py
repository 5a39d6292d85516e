"""The frozen base model's numbers for training rows (DPO's reference log-probs, a KL term's
reference distribution): computed once per distinct row with LoRA switched off, then cached.

The cache lives in memory for the run and, when the loop is given a folder, on disk: one ``.npz``
per row, named by a hash of the model's identity, the row's token ids and what was computed. Every
seed of a sweep then shares what the first one computed; nothing is recomputed per epoch.

For a KL term the reference distribution at each response position is kept as its ``k`` most
likely tokens (ids and log-probs) plus the log of the mass of all the others, so the KL is taken
over ``k + 1`` outcomes (:func:`bucketed_kl`): a full-vocabulary distribution per token would
be the vocabulary size times larger than the row itself.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rho_audit.model.intervene import adapter_off as lora_off  # the base model: every LoRA scale 0
from rho_audit.train.packing import MicroBatch, Row

#: Bumped when what a cached file holds changes, so old files are not read as new ones.
CACHE_FORMAT = 1
#: Added to the top-k tokens' log-probs to leave them out of the rest's logsumexp: finite, so
#: an empty rest (k = vocabulary) has a finite value and gradient, not −inf and NaN.
_LEAVE_OUT = -1e9
#: A rest bucket's log-prob is floored here: below it the bucket's KL term is 0 either way.
_REST_FLOOR = -80.0


@dataclass(frozen=True)
class ReferenceDistribution:
    """The base model's next-token distribution at a row's scored positions, top-k compressed."""

    ids: np.ndarray  # [positions, k] int32
    logprobs: np.ndarray  # [positions, k] float32
    log_rest: np.ndarray  # [positions] float32: log of the probability of every other token


def model_identity(model_path: Path, model_id: str) -> str:
    """What identifies the base model's weights cheaply: its id, config and weight file sizes."""
    path = Path(model_path)
    parts: list[Any] = [model_id]
    config = path / "config.json"
    if config.is_file():
        parts.append(hashlib.sha256(config.read_bytes()).hexdigest())
    parts += sorted((p.name, p.stat().st_size) for p in path.glob("*.safetensors"))
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def bucketed_kl(policy_logprobs: Any, reference: Any) -> Any:
    """Mean over positions of KL(policy ‖ reference) over the reference's top-k tokens plus one
    bucket holding every other token. ``policy_logprobs``: ``[positions, vocab]`` log-softmax;
    ``reference``: (ids ``[positions, k]``, log-probs ``[positions, k]``, log rest ``[positions]``)
    as MLX arrays. The policy's rest mass is a logsumexp over the tokens outside the top k (not
    ``1 − Σ top``, which loses its digits when the top k hold nearly all the mass)."""
    import mlx.core as mx

    ids, ref_top, ref_rest = reference
    top = mx.take_along_axis(policy_logprobs, ids, axis=-1)
    rest = mx.maximum(_rest(policy_logprobs, ids), _REST_FLOOR)
    ref_rest = mx.maximum(ref_rest, _REST_FLOOR)
    kl = (mx.exp(top) * (top - ref_top)).sum(axis=-1) + mx.exp(rest) * (rest - ref_rest)
    return kl.mean()


def _rest(logprobs: Any, ids: Any) -> Any:
    """log Σ exp(logprobs) over the tokens not in ``ids``, per position."""
    import mlx.core as mx

    outside = mx.put_along_axis(mx.zeros(logprobs.shape), ids, mx.array(_LEAVE_OUT), axis=-1)
    return mx.logsumexp(logprobs + outside, axis=-1)


def top_k_distribution(logprobs: Any, k: int) -> ReferenceDistribution:
    """Compress ``[positions, vocab]`` log-probs to their top ``k`` and the log of the rest."""
    import mlx.core as mx

    k = min(k, logprobs.shape[-1])
    ids = mx.argpartition(-logprobs, kth=k - 1, axis=-1)[:, :k]
    top = mx.take_along_axis(logprobs, ids, axis=-1)
    rest = _rest(logprobs, ids)
    mx.eval(ids, top, rest)
    return ReferenceDistribution(
        np.array(ids, dtype=np.int32), np.array(top, dtype=np.float32), np.array(rest, dtype=np.float32)
    )


class ReferenceScores:
    """The base model's per-row CE and response distributions, computed on first use and cached."""

    def __init__(
        self, model: Any, packed: bool, max_len: int, identity: str, folder: Path | None = None
    ) -> None:
        self.model, self.packed, self.max_len = model, packed, max_len
        self.identity = identity
        self.folder = Path(folder) if folder else None
        self._ce: dict[str, float] = {}
        self._distributions: dict[str, ReferenceDistribution] = {}
        #: Rows computed by this process (the rest came from memory or disk); for the run's log.
        self.computed = 0

    def _key(self, kind: str, row: Row, extra: Any = None) -> str:
        context, continuation = row
        data = [CACHE_FORMAT, self.identity, self.max_len, kind, extra, list(context), list(continuation)]
        return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:32]

    def pair_ce(self, rows: Sequence[Row]) -> np.ndarray:
        """Mean CE per row ``[rows]`` under the base model."""
        keys = [self._key("ce", row) for row in rows]
        missing = [i for i, key in enumerate(keys) if key not in self._ce and not self._load_ce(key)]
        if missing:
            import mlx.core as mx

            batch = MicroBatch(None, ((*(rows[i] for i in missing),),), self.max_len)
            with lora_off(self.model):
                ce = batch.forward(self.model, self.packed).pair_ce
                mx.eval(ce)
            for i, value in zip(missing, np.array(ce).tolist(), strict=True):
                self._ce[keys[i]] = float(value)
                self._save(keys[i], ce=np.array([value], dtype=np.float64))
            self.computed += len(missing)
        return np.array([self._ce[key] for key in keys], dtype=np.float32)

    def distribution(self, row: Row, k: int) -> ReferenceDistribution:
        """The base model's top-``k`` distribution at the row's scored positions."""
        key = self._key("top", row, k)
        found = self._distributions.get(key) or self._load_distribution(key)
        if found is None:
            with lora_off(self.model):
                logprobs = (
                    MicroBatch(row, (), self.max_len).forward(self.model, self.packed, True).sft_logprobs
                )
                found = top_k_distribution(logprobs, k)
            self._save(key, ids=found.ids, logprobs=found.logprobs, log_rest=found.log_rest)
            self.computed += 1
        self._distributions[key] = found
        return found

    # -- disk ---------------------------------------------------------------------------------

    def _path(self, key: str) -> Path | None:
        return self.folder / key[:2] / f"{key}.npz" if self.folder else None

    def _read(self, key: str) -> Any:
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path) as data:
                return {name: data[name] for name in data.files}
        except (OSError, ValueError, EOFError):  # a torn or foreign file: recompute it
            return None

    def _load_ce(self, key: str) -> bool:
        data = self._read(key)
        if data is None or "ce" not in data:
            return False
        self._ce[key] = float(data["ce"][0])
        return True

    def _load_distribution(self, key: str) -> ReferenceDistribution | None:
        data = self._read(key)
        if data is None or not {"ids", "logprobs", "log_rest"} <= set(data):
            return None
        return ReferenceDistribution(data["ids"], data["logprobs"], data["log_rest"])

    def _save(self, key: str, **arrays: np.ndarray) -> None:
        path = self._path(key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)  # atomic: a reader sees the old file or the whole new one


def as_mlx(distribution: ReferenceDistribution) -> tuple[Any, Any, Any]:
    import mlx.core as mx

    return (
        mx.array(distribution.ids),
        mx.array(distribution.logprobs),
        mx.array(distribution.log_rest),
    )
