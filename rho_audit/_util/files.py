"""Crash-safe file and directory replacement: a reader sees the old version or the new one,
never a half-written file or a missing folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file in the same folder, flushed to
    disk before it replaces ``path``: after a crash or power loss ``path`` holds the old text or
    the new one. Returns ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """:func:`atomic_write_text` for bytes (a PDF, a PNG). Returns ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path


def replace_dir(new: Path, target: Path) -> None:
    """Move the complete directory ``new`` to ``target``, replacing any directory there.

    A rename cannot replace a non-empty directory, so the old one is first moved aside (next to
    ``new``) and deleted afterwards: ``target`` is always either the old or the new directory.
    """
    try:
        os.rename(new, target)
        return
    except OSError:
        if not Path(target).exists():
            raise
    old = Path(new).with_name(Path(new).name + ".old")
    os.rename(target, old)
    os.rename(new, target)
    shutil.rmtree(old, ignore_errors=True)
