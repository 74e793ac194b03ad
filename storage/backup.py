"""An online backup of a SQLite store: safe while `bridge run` writes to it.

SQLite's backup API copies the database page by page under its own locking, so the copy is one
consistent snapshot even in WAL mode while another process commits.  The copy is written beside
its destination under a temporary name, checked (`PRAGMA integrity_check`) and then renamed into
place, so a backup that fails leaves no partial file under the name asked for.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from storage.base import StoreError


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    size: int  # bytes
    schema_version: int


def backup_sqlite(source: Path, target: Path, *, pages_per_step: int = 256) -> BackupResult:
    """Copy the SQLite database at `source` to `target` (which must not exist yet)."""
    try:
        return _backup(source, target, pages_per_step)
    except OSError as exc:  # a name too long, a folder not writable, ...
        raise StoreError(f"cannot write {exc.filename or target}: {exc.strerror or exc} "
                         "(fix: name a file in a folder the bridge can write)") from None


def _backup(source: Path, target: Path, pages_per_step: int) -> BackupResult:
    if not source.is_file():
        raise StoreError(f"no SQLite database at {source} (fix: check [storage] url)")
    if target.exists():
        raise StoreError(f"{target} already exists (fix: name a new file, or remove it first)")
    if not target.parent.is_dir():
        raise StoreError(f"{target.parent} is not a directory (fix: create it first)")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        src = sqlite3.connect(source, timeout=30)
        try:
            dst = sqlite3.connect(partial)
            try:
                src.backup(dst, pages=pages_per_step)
                dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
                (check,) = dst.execute("PRAGMA integrity_check").fetchone()
                if check != "ok":
                    raise StoreError(f"the copy failed its integrity check: {check}")
                row = dst.execute("SELECT MAX(version) FROM bridge_schema").fetchone()
            finally:
                dst.close()
        finally:
            src.close()
        os.replace(partial, target)
    except sqlite3.Error as exc:
        raise StoreError(f"backup of {source} failed: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(target, target.stat().st_size, int(row[0] or 0))
