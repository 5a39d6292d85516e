"""Running a cell on a worker (another process or machine): the worker side of
:func:`rho_audit.api.executors.run_cell_payload`, and the model's content identity both sides use.

The worker never opens the driver's run store. It runs :func:`execute_cell` against a scratch
store in its machine's temp folder, seeded with what the driver's store held of the cell (see
:mod:`.transfer`), and returns the cell's result with every run the scratch store holds. The
scratch store is kept until the cell completes, so a retry on the same machine (after its worker
process was killed) finds the interrupted training run with all its steps, as the local executor
would in the driver's store.

A cell's model is identified by the SHA-256 of its converted folder's contents. A worker that
has the same folder at the same path uses it; otherwise it asks for the archive once (the
executor ships it, e.g. through Ray's object store) and unpacks it into a folder of its
machine's temp folder named by that hash, which every later cell on that machine reuses.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import os
import shutil
import socket
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rho_audit._util.naming import slug
from rho_audit.api.errors import RhoAuditError
from rho_audit.plugins import PluginHost, load_host
from rho_audit.store import RunStore
from rho_audit.train.sweep.execution import CellResult, execute_cell
from rho_audit.train.sweep.plan import CellSpec
from rho_audit.train.sweep.transfer import export_all, import_cell_row, import_runs

#: Under the machine's temp folder: scratch stores by cell, unpacked models by content hash.
WORK_DIR = "rho-audit-worker"

_HASHES: dict[tuple[str, tuple[tuple[str, int, int], ...]], str] = {}
_HOST: list[PluginHost] = []


def folder_sha256(folder: Path) -> str:
    """SHA-256 over the relative path, size and contents of every file under ``folder``
    (sorted), remembered for as long as no file's size or modification time changes."""
    folder = Path(folder).resolve()
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    stamp = tuple((p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    key = (str(folder), stamp)
    if key not in _HASHES:
        digest = hashlib.sha256()
        for path, (name, size, _) in zip(files, stamp, strict=True):
            digest.update(f"{name}\0{size}\0".encode())
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def model_identity(spec: str | None) -> dict[str, Any]:
    """Where the driver's copy of a cell's model lives and its content hash (converting a GGUF or
    the bundled model once, as an audit would)."""
    from rho_audit.model.paths import resolve_model

    resolved = resolve_model(spec)
    sha = folder_sha256(resolved.path)
    return {"spec": spec, "source": resolved.source, "path": str(resolved.path), "sha256": sha}


def archive_folder(folder: Path, names: tuple[str, ...] | None = None) -> bytes:
    """The folder (or only its files ``names``) as an uncompressed tar: weights do not compress."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        paths = [Path(folder) / n for n in names] if names is not None else sorted(Path(folder).rglob("*"))
        for path in paths:
            if path.is_file():
                tar.add(path, arcname=path.relative_to(folder).as_posix())
    return buffer.getvalue()


def unpack(data: bytes, folder: Path) -> None:
    """Extract an :func:`archive_folder` archive into ``folder`` (created if missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        if hasattr(tarfile, "data_filter"):  # refuses links and paths outside the folder
            tar.extractall(folder, filter="data")
        else:  # Python before 3.10.12: only plain files inside the folder, checked here
            members = [m for m in tar.getmembers() if m.isfile() and _inside(folder, m.name)]
            tar.extractall(folder, members=members)


def _inside(folder: Path, name: str) -> bool:
    target = (folder / name).resolve()
    return target.is_relative_to(folder.resolve())


def finished_adapter(cell: CellSpec) -> bytes | None:
    """The cell's finished adapter (weights, config, done marker; no checkpoints) as an archive,
    for a driver that does not share this machine's --out; None when it has none."""
    from rho_audit.train import checkpoints

    out = Path(cell.adapter_dir or "")
    if not cell.adapter_dir or not checkpoints.finished_run(out):
        return None
    return archive_folder(out, (checkpoints.ADAPTER_FILE, checkpoints.ADAPTER_CONFIG, checkpoints.DONE_FILE))


def work_dir() -> Path:
    """This machine's folder for scratch stores and unpacked models."""
    return Path(tempfile.gettempdir()) / WORK_DIR


def scratch_dir(cell: CellSpec) -> Path:
    """Where a worker on this machine keeps the cell's scratch store (until the cell completes)."""
    return work_dir() / "cells" / slug(cell.sweep_id) / f"{slug(cell.cell_id)}-{cell.config_sha256[:12]}"


def run_payload(
    payload: dict[str, Any], fetch_model: Callable[[], bytes] | None = None, attempt: int = 1
) -> dict[str, Any]:
    """See :func:`rho_audit.api.executors.run_cell_payload`."""
    node = socket.gethostname()
    cell = CellSpec.from_json(payload["spec"])
    model = payload.get("model")
    if model is not None:
        local = _local_model(model, fetch_model)
        if local is None:
            return {"cell_id": cell.cell_id, "needs_model": model["sha256"], "node": node}
        cell = _with_model(cell, model, local)
    scratch = scratch_dir(cell)
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "worker.pid").write_text(f"{os.getpid()}\n", encoding="utf-8")  # who runs the cell now
    store_path = scratch / "runs.sqlite"
    seed = payload.get("seed") or {"cell": None, "runs": []}
    store = RunStore(store_path)
    try:
        import_runs(store, seed["runs"])
        if store.cell(cell.sweep_id, cell.cell_id) is None:
            import_cell_row(store, cell, seed["cell"])
    finally:
        store.close()
    given = {r["row"]["run_id"] for r in seed["runs"] if r["row"]["status"] == "complete"}
    user_error = False
    try:
        _check_probe_folders(cell, node)
        result = execute_cell(cell, store_path, _host())
    except RhoAuditError as err:  # the row is marked failed; the driver stops the sweep
        user_error = True
        result = CellResult(cell.cell_id, "failed", error=str(err))
    store = RunStore(store_path)
    try:
        state = export_all(store, cell, skip=given)
    finally:
        store.close()
    report = {
        "cell_id": cell.cell_id,
        "result": result.to_json(),
        "state": state,
        "user_error": user_error,
        "node": node,
        "attempt": attempt,
        "pid": os.getpid(),
    }
    marker = payload.get("out_marker")
    if result.status == "complete":
        shutil.rmtree(scratch, ignore_errors=True)
        adapter = finished_adapter(cell) if marker and not Path(marker).is_file() else None
        if adapter is not None:  # the driver cannot see this machine's --out: send the adapter along
            report["adapter"] = base64.b64encode(adapter).decode("ascii")
    return report


def _host() -> PluginHost:
    """One plugin host per worker process (loading the entry points once)."""
    if not _HOST:
        _HOST.append(load_host())
    return _HOST[0]


def _local_model(model: dict[str, Any], fetch_model: Callable[[], bytes] | None) -> Path | None:
    """This machine's folder of the model with the driver's content hash: the driver's path when
    it holds the same files, else an unpacked copy (fetched once); None when it must be fetched."""
    sha = model["sha256"]
    path = Path(model["path"])
    if path.is_dir() and folder_sha256(path) == sha:
        return path
    copy = work_dir() / "models" / sha[:16] / path.name
    done = copy.parent / "unpacked"
    if done.is_file():
        return copy
    if fetch_model is None:
        return None
    data = fetch_model()
    base = work_dir() / "models"
    base.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix="unpacking-", dir=base))
    try:
        unpack(data, partial)
        got = folder_sha256(partial)
        if got != sha:
            raise RhoAuditError(
                f"the copy of model {model['spec'] or 'default'} shipped to {socket.gethostname()} has "
                f"content hash {got[:12]}, not the driver's {sha[:12]}: its folder {path} changed during "
                "the sweep. Leave the model folder alone while a sweep runs, and run the sweep again."
            )
        copy.parent.mkdir(parents=True, exist_ok=True)
        if not done.is_file():  # another worker on this machine may have finished first
            shutil.rmtree(copy, ignore_errors=True)
            os.replace(partial, copy)
            done.write_text(sha, encoding="utf-8")
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return copy


def _with_model(cell: CellSpec, model: dict[str, Any], local: Path) -> CellSpec:
    """The cell as this machine runs it: its own model spec where that resolves here to the
    driver's files without a download (the bundled model with its package installed, an absolute
    path present here, a Hugging Face id already in the same cache folder), else ``local`` (the
    run's config then records where the worker loaded the model from)."""
    spec, same = model["spec"], Path(model["path"]) == local
    source = model.get("source")
    if same and source == "default" and _bundled_model_here():
        return cell
    if same and source == "hub":
        return cell
    path = Path(spec).expanduser() if spec else None
    if same and source in ("local", "gguf") and path is not None and path.is_absolute() and path.exists():
        return cell
    train = {**cell.train, "model": str(local)} if cell.train else None
    return dataclasses.replace(cell, model=str(local), train=train)


def _bundled_model_here() -> bool:
    from rho_audit.model.paths import check_model

    try:
        check_model(None)
    except RhoAuditError:
        return False
    return True


def _check_probe_folders(cell: CellSpec, node: str) -> None:
    """A sweep's extra probe sets named by folder must exist on the worker too."""
    for item in cell.audit.get("probes") or ():
        source = item.partition("=")[2] or item
        path = Path(source.strip()).expanduser()
        if (path.is_absolute() or os.sep in source) and not path.exists():
            raise RhoAuditError(
                f"probe set folder {path} (audit.probes of the sweep) is not on worker {node}. Put it on a "
                "path every machine of the cluster shares, or install it there as a probe-set package "
                "(`rho-audit probes import`, or a plugin's register_probe_sets) and name it instead."
            )
