"""`bridge backup PATH` and `bridge --version`, run as the admin runs them (a subprocess)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from importlib import metadata
from pathlib import Path

from storage.dialect import migrations
from tests.helpers_proc import db_rows, run_cli
from tests.test_cli import plain_config

LATEST = migrations()[-1].version


def leftovers(folder: Path) -> list[str]:
    """Partial copies a backup left behind."""
    return [p.name for p in folder.iterdir() if "partial" in p.name]


class Writer(threading.Thread):
    """Commits one row at a time into the live store (WAL mode, as `bridge run` keeps it)."""

    def __init__(self, db: Path) -> None:
        super().__init__(daemon=True)
        self.db, self.stop, self.written = db, threading.Event(), 0

    def run(self) -> None:
        conn = sqlite3.connect(self.db, timeout=30)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY)")
            conn.commit()
            while not self.stop.is_set():
                conn.execute("INSERT INTO probe (id) VALUES (?)", (self.written + 1,))
                conn.commit()
                self.written += 1
        finally:
            conn.close()


async def test_backup_is_one_consistent_snapshot_while_the_store_is_written(
        tmp_path: Path) -> None:
    db = tmp_path / "bridge.db"
    config = plain_config(tmp_path / "bridge.toml", f"sqlite:///{db}")
    migrated = await run_cli(["migrate", "--config", str(config)], env={})
    assert migrated.code == 0, migrated.stderr
    writer = Writer(db)
    writer.start()
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while writer.written < 200:  # the writer is committing before the backup starts
            assert asyncio.get_running_loop().time() < deadline, "the writer wrote nothing"
            await asyncio.sleep(0.01)
        done = await run_cli(["backup", str(tmp_path / "copy.db"), "--config", str(config)],
                             env={})
        during = writer.written
    finally:
        writer.stop.set()
        await asyncio.to_thread(writer.join, 10)
    assert done.code == 0, done.stderr
    copy = tmp_path / "copy.db"
    assert f"to {copy}" in done.stdout and f"schema version {LATEST}" in done.stdout
    assert db_rows(copy, "PRAGMA integrity_check") == [("ok",)]
    assert db_rows(copy, "PRAGMA journal_mode") == [("delete",)]  # one self-contained file
    assert db_rows(copy, "SELECT MAX(version) FROM bridge_schema") == [(LATEST,)]
    (count, low, high), = db_rows(copy, "SELECT COUNT(*), MIN(id), MAX(id) FROM probe")
    # a snapshot: rows 1..n with no gap, taken while the writer went on committing
    assert low == 1 and high == count and 200 <= count <= during
    assert leftovers(tmp_path) == []


async def test_backup_refuses_an_existing_file_and_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "bridge.db"
    config = plain_config(tmp_path / "bridge.toml", f"sqlite:///{db}")
    assert (await run_cli(["migrate", "--config", str(config)], env={})).code == 0
    existing = tmp_path / "old-backup.db"
    existing.write_bytes(b"an older backup")
    done = await run_cli(["backup", str(existing), "--config", str(config)], env={})
    assert done.code == 1
    assert done.stderr.strip() == (f"error: {existing} already exists "
                                   "(fix: name a new file, or remove it first)")
    assert existing.read_bytes() == b"an older backup"


async def test_backup_without_a_database_says_where_it_looked(tmp_path: Path) -> None:
    config = plain_config(tmp_path / "bridge.toml", f"sqlite:///{tmp_path / 'none.db'}")
    done = await run_cli(["backup", str(tmp_path / "copy.db"), "--config", str(config)],
                         env={})
    assert done.code == 1 and "no SQLite database at" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "copy.db").exists() and not (tmp_path / "none.db").exists()


async def test_backup_of_postgresql_points_to_pg_dump(tmp_path: Path) -> None:
    config = plain_config(tmp_path / "bridge.toml", "postgresql://postgres@127.0.0.1:5432/test")
    done = await run_cli(["backup", str(tmp_path / "copy.db"), "--config", str(config)],
                         env={})
    assert done.code == 1 and "pg_dump" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "copy.db").exists()


async def test_version_is_the_installed_distribution() -> None:
    done = await run_cli(["--version"], env={})
    assert done.code == 0
    assert done.stdout.strip() == f"bridge (support-bridge) {metadata.version('support-bridge')}"


async def test_backup_to_odd_paths_is_one_line_and_exit_1(tmp_path: Path) -> None:
    db = tmp_path / "bridge.db"
    config = plain_config(tmp_path / "bridge.toml", f"sqlite:///{db}")
    assert (await run_cli(["migrate", "--config", str(config)], env={})).code == 0
    folder = tmp_path / "backups"
    folder.mkdir()
    for target in (folder, tmp_path / "missing" / "dir" / "copy.db", tmp_path / ("x" * 300)):
        done = await run_cli(["backup", str(target), "--config", str(config)], env={})
        assert done.code == 1, target
        assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("error: ")
        assert done.stdout == ""
    assert list(folder.iterdir()) == [] and not (tmp_path / "missing").exists()
    unicode = tmp_path / "sauvegarde-\u00e9t\u00e9-\u2603.db"
    done = await run_cli(["backup", str(unicode), "--config", str(config)], env={})
    assert done.code == 0, done.stderr
    assert db_rows(unicode, "PRAGMA integrity_check") == [("ok",)]
    assert leftovers(tmp_path) == []
