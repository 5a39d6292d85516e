"""Store errors: every SQLite failure becomes a :class:`StoreError` that names the cause and the fix."""

from __future__ import annotations

import errno
import sqlite3
import tempfile
from collections.abc import Iterable
from pathlib import Path

from rho_audit.api.errors import RhoAuditError

#: How long an open or a write waits for another process's write lock before giving up.
BUSY_TIMEOUT_S = 30.0


class StoreError(RhoAuditError):
    """The run store cannot be opened, read or written; the message names the cause and the fix.

    ``detail`` is SQLite's own message (or the message itself); ``retryable`` is true for
    failures that may pass on the next try (a lock, a half-written page), which the monitor retries.
    """

    def __init__(self, message: str, *, detail: str | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.detail = message if detail is None else detail
        self.retryable = retryable


class StoreNotWritable(StoreError):
    """The store (or its folder) cannot be written by this user or on this file system."""


class StoreBusy(StoreError):
    """Another process held the store's write lock for longer than :data:`BUSY_TIMEOUT_S`."""


class StoreNotReady(StoreError):
    """The file exists but its tables do not yet (a writer is creating them)."""


class AmbiguousId(StoreError):
    """A prefix that matches several run or sweep ids."""

    def __init__(self, target: str, matches: Iterable[str], what: str, where: Path | str) -> None:
        self.matches = sorted(matches)
        super().__init__(
            f"{target!r} matches {len(self.matches)} {what}s in {where}: {', '.join(self.matches)}. "
            "Give more of the id."
        )


def _errorname(err: sqlite3.Error) -> str:
    return getattr(err, "sqlite_errorname", "") or ""  # Python 3.11+


def cannot_write_or_open(err: sqlite3.Error) -> bool:
    """SQLite could not open the file, or not write it (or its folder, for -wal and -shm)."""
    if _errorname(err).startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")):
        return True
    return any(s in str(err) for s in ("readonly database", "unable to open"))  # Python 3.10


def is_busy(err: sqlite3.Error) -> bool:
    return _errorname(err).startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in str(err)


def os_reason(err: OSError, what: str) -> str:
    if err.errno == errno.EROFS:
        return f"{what}: it is on a read-only file system"
    if err.errno in (errno.EACCES, errno.EPERM):
        return f"{what} (permission denied for this user)"
    return f"{what} ({err.strerror or err})"


def unwritable_reason(path: Path) -> str | None:
    """Why the store file ``path`` (existing or not) cannot be written here, or None if it can.

    SQLite in WAL mode writes ``-wal`` and ``-shm`` files next to the store, so its folder must be
    writable too, not only the file."""
    path = Path(path)
    if path.exists():
        try:
            with open(path, "r+b"):
                pass
        except OSError as err:
            return os_reason(err, "the file is not writable")
    try:
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as err:
        return os_reason(
            err, f"its folder {path.parent} is not writable (SQLite keeps -wal and -shm files there)"
        )
    return None


def damaged(path: Path, detail: str) -> str:
    return (
        f"the run store {path} is damaged ({detail}). Recover what it holds with "
        f"`sqlite3 {path} .recover | sqlite3 recovered.sqlite` and pass --store recovered.sqlite, "
        "or pass a new --store."
    )


def store_error(path: Path, err: sqlite3.Error, doing: str = "open") -> StoreError:
    """The :class:`StoreError` for a SQLite failure on the store at ``path``: busy, not writable,
    damaged, not a store, disk full, no tables yet, or else the SQLite message itself."""
    name, text = _errorname(err), str(err)
    extra = {"detail": text, "retryable": isinstance(err, sqlite3.OperationalError)}
    if is_busy(err):
        return StoreBusy(
            f"the run store {path} is busy: another process held its write lock for over "
            f"{BUSY_TIMEOUT_S:.0f}s, so rho-audit could not {doing} it ({text}). Wait for the other "
            "rho-audit command to finish (or stop it) and retry, or pass another --store.",
            **extra,
        )
    if cannot_write_or_open(err):
        reason = unwritable_reason(path)
        if reason:
            return StoreNotWritable(
                f"cannot {doing} the run store {path}: {reason}. Fix its permissions (or remount "
                "the disk read-write), or pass --store with a path you can write; `rho-audit report`, "
                "`rho-audit monitor` and `rho-audit judges agree` can still read it as it is.",
                **extra,
            )
    if name.startswith("SQLITE_CORRUPT") or "malformed" in text:
        return StoreError(damaged(path, text), **extra)
    if name == "SQLITE_NOTADB" or "not a database" in text:
        return StoreError(f"{path}: not a rho-audit run store ({text}). Pass another --store path.", **extra)
    if name.startswith("SQLITE_FULL") or "disk is full" in text:
        return StoreError(
            f"cannot {doing} the run store {path}: the disk is full ({text}). Free some space, or "
            "pass --store on another disk.",
            **extra,
        )
    if "no such table" in text:
        return StoreNotReady(f"the run store {path} has no tables yet ({text}); retry in a moment.", **extra)
    return StoreError(
        f"cannot {doing} the run store {path} ({text}). Check the path and the disk, or pass "
        "another --store.",
        **extra,
    )


def newer_schema(path: Path, version: int, supported: int) -> RhoAuditError:
    return RhoAuditError(
        f"{path} has schema version {version}, newer than this rho-audit "
        f"({supported}). Upgrade rho-audit or use another --store."
    )
