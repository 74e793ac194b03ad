"""SQLite conversation store (aiosqlite, WAL, group commit).

All writes go through one writer task: concurrent callers queue their transactions, the writer
runs everything queued so far in one SQLite transaction on aiosqlite's thread, commits once,
and only then resolves each caller.  A webhook is acknowledged after that commit, so
durability costs one commit per batch, not per message.  The transactions themselves are the
backend-neutral generators of `storage/transactions.py`, run here by `run_sync`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import aiosqlite

from storage.base import StoreError
from storage.dialect import SQLITE
from storage.query import Tx, TxFactory, Want
from storage.sqlstore import SQLStore, stop_writer

log = logging.getLogger(__name__)
T = TypeVar("T")
_Op = tuple[TxFactory[Any], "asyncio.Future[Any]"]


def sqlite_path(url: str) -> str:
    """`sqlite:///rel.db` is relative to the working directory, `sqlite:////abs.db` absolute."""
    if not url.startswith("sqlite:///"):
        raise StoreError(f"not a SQLite URL: {url!r} (expected sqlite:///path.db)")
    path = url[len("sqlite:///"):]
    if not path:
        raise StoreError("the SQLite URL names no file (sqlite:///bridge.db)")
    if path == ":memory:":
        return path
    return str(Path(path).resolve())


def run_sync(c: sqlite3.Connection, tx: Tx[T]) -> T:
    """Drive a transaction generator on a raw connection (no BEGIN/COMMIT of its own)."""
    result: Any = None
    while True:
        try:
            query = tx.send(result)
        except StopIteration as stop:
            return cast(T, stop.value)
        if query.want is Want.CLAIM:
            result = None
            continue
        cur = c.execute(SQLITE.prepare(query.sql), query.params)
        if query.want is Want.COUNT:
            result = cur.rowcount
        elif query.want is Want.ONE:
            result = cur.fetchone()
            cur.close()
        elif query.want is Want.ALL:
            result = cur.fetchall()
        else:  # Want.ID: step to the end, so the INSERT ... RETURNING statement is finished
            result = cur.fetchall()[0][0]


class SQLiteStore(SQLStore):
    dialect = SQLITE

    def __init__(self, url: str, *, synchronous: str = "full", batch_max: int = 512) -> None:
        self.path = sqlite_path(url)
        self._synchronous = synchronous.upper()
        self._batch_max = batch_max
        self._db: aiosqlite.Connection | None = None
        self._queue: asyncio.Queue[_Op] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self.commits = 0  # observability for benchmarks and /healthz
        self._aside: aiosqlite.Connection | None = None  # long reads (KPIs), opened when needed
        self._aside_lock = asyncio.Lock()

    @property
    def where(self) -> str:
        return self.path

    # -- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            # The busy timeout first: switching a new file to WAL waits for other openers.
            await db.execute("PRAGMA busy_timeout=5000")
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute(f"PRAGMA synchronous={self._synchronous}")
            await db.execute("PRAGMA foreign_keys=ON")
            # Rows are read by column name (`row["id"]`), as asyncpg's Records are.
            db.row_factory = sqlite3.Row
        except BaseException:
            await db.close()
            raise
        self._db = db
        self._writer = asyncio.create_task(self._write_loop(), name="sqlite-writer")

    async def close(self) -> None:
        if self._aside is not None:
            await self._aside.close()
            self._aside = None
        if self._writer is not None:
            await stop_writer(self._queue, self._writer)
            self._writer = None
        if self._db is not None:
            await self._db.close()
            self._db = None

    @property
    def is_open(self) -> bool:
        return self._db is not None

    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("store is not open")
        return self._db

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(raw_connection)` on aiosqlite's worker thread (outside the write queue)."""
        db = self._conn()
        # aiosqlite offers no public call for "run this function on the connection's thread";
        # `_execute` is what its own methods use, and `_conn` is the sqlite3 connection.
        return cast(T, await db._execute(lambda: fn(db._conn)))  # type: ignore[no-untyped-call]

    async def _read(self, make: TxFactory[T]) -> T:
        return await self._run(lambda c: run_sync(c, make()))

    async def _read_aside(self, make: TxFactory[T]) -> T:
        """On a second, read-only connection (a thread of its own): WAL lets it read while the
        writer commits, so a long read does not hold webhooks back."""
        if self.path == ":memory:":
            return await self._read(make)
        async with self._aside_lock:
            if self._aside is None:
                db = await aiosqlite.connect(f"file:{self.path}?mode=ro", uri=True,
                                             isolation_level=None)
                await db.execute("PRAGMA busy_timeout=5000")
                # Reads of a month of history jump around the file: map it, and keep a
                # larger cache than the writer's.
                await db.execute("PRAGMA mmap_size=1073741824")
                await db.execute("PRAGMA cache_size=-65536")
                db.row_factory = sqlite3.Row
                self._aside = db
            aside = self._aside
            return cast(T, await aside._execute(  # type: ignore[no-untyped-call]
                lambda: run_sync(aside._conn, make())))

    async def _write(self, make: TxFactory[T], *, together: bool = False,
                     leases: bool = False) -> T:
        """Queue the transaction for the next group commit and wait until it is durable."""
        self._conn()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((make, future))
        return await future

    async def _write_loop(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while len(batch) < self._batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                results = await self._run(functools.partial(self._apply, batch=batch))
            except Exception as exc:  # the commit itself failed: nothing in the batch is durable
                log.exception("group commit of %d operations failed", len(batch))
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(StoreError(f"commit failed: {exc}"))
            else:
                self.commits += 1
                for (_, fut), (ok, value) in zip(batch, results, strict=True):
                    if fut.done():
                        continue
                    if ok:
                        fut.set_result(value)
                    else:
                        fut.set_exception(value)
            for _ in batch:
                self._queue.task_done()

    @staticmethod
    def _apply(c: sqlite3.Connection, batch: list[_Op]) -> list[tuple[bool, Any]]:
        """Run the batch in one transaction.  If one operation raises, roll back and run each
        in a transaction of its own, so one bad operation cannot sink the others."""
        try:
            c.execute("BEGIN IMMEDIATE")
            results: list[tuple[bool, Any]] = [(True, run_sync(c, make())) for make, _ in batch]
            c.execute("COMMIT")
            return results
        except sqlite3.OperationalError:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise  # the database itself failed (disk full, locked): nothing is durable
        except Exception:
            if c.in_transaction:
                c.execute("ROLLBACK")
            if len(batch) == 1:
                _, exc, _ = sys.exc_info()
                return [(False, exc)]
        results = []
        for op in batch:
            results.extend(SQLiteStore._apply(c, [op]))
        return results
