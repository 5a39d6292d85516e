"""One process per sweep: OS file locks on the sweep (in its store) and on its adapter folder."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rho_audit.api.errors import RhoAuditError


@contextmanager
def sweep_lock(
    store_path: Path,
    sweep_id: str,
    out_dir: Path | None = None,
    wait: bool = False,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """One process per sweep at a time, keyed on the sweep in the store: two processes would
    train and audit every cell twice and overwrite each other's rows, whatever their --out.
    ``out_dir`` (the sweep's adapter folder) is locked too: two stores must not train into the
    same folders. Each lock is an OS file lock (``flock``) on a file holding the holder's pid:
    the kernel releases it when the holder dies, SIGKILL included, so a lock file left by a dead
    process never blocks; the pid in it only names the holder in the refusal."""
    store_path = Path(store_path).resolve()
    where = f"sweep {sweep_id} on the store {store_path}"
    with _file_lock(store_path.parent / f".{store_path.name}.{sweep_id}.lock", where, wait, on_wait):
        if out_dir is None:
            yield
            return
        with _file_lock(Path(out_dir) / ".lock", f"a sweep writing adapters to {out_dir}", wait, on_wait):
            yield


@contextmanager
def _file_lock(
    path: Path, what: str, wait: bool, on_wait: Callable[[str], None] | None, poll_s: float = 0.2
) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        told = None
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pid = _lock_holder(path)
                if not wait:
                    raise RhoAuditError(
                        f"another rho-audit process (pid {pid}) is running {what}. Wait for it to "
                        "finish (add --wait to start when it does), or stop it; a re-run then resumes "
                        "where it stopped."
                    ) from None
                if pid != told and on_wait is not None:
                    on_wait(f"waiting for rho-audit pid {pid}, which is running {what}")
                told = pid
                time.sleep(poll_s)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _lock_holder(path: Path) -> str:
    """The pid the holder wrote (it writes it just after taking the lock: retry briefly)."""
    for _ in range(20):
        try:
            pid = path.read_text(encoding="utf-8").strip()
        except OSError:
            pid = ""
        if pid:
            return pid
        time.sleep(0.05)
    return "?"
