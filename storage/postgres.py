"""PostgreSQL conversation store (asyncpg, connection pool, group commit).

The transactions are the backend-neutral generators of `storage/transactions.py`; `run_async`
drives one on an asyncpg connection, with `?` rewritten to `$1..$n` (`storage/dialect.py`).

All writes go through a writer task, as on SQLite: concurrent callers queue their
transactions, the writer runs everything queued so far in one database transaction on its own
connection and commits once, and only then resolves each caller (a webhook is acknowledged
after the commit that holds its message).  An instance has two writers: one for messages and
outbox rows, one for leases, so lease rows are never locked in the same transaction as a
customer's rows (two instances' batches then cannot deadlock on them).  The transactions
that may be grouped statement by statement (storing a customer's message, finishing outbox
rows, leases) run in lockstep (`storage/pgbatch.py`): a batch costs a round trip per step,
not per statement.

If anything in a batch fails, it is rolled back and each transaction runs alone on a pooled
connection.  Several bridge instances may share the database: when a transaction loses a race
on a unique key (two instances received the same webhook) it is rolled back and run again from
the start, and then finds the row the other instance committed.  Migrations run under a
transaction-scoped advisory lock.

Outbox rows committed by a batch are announced with NOTIFY (channel `bridge_lanes`, payload:
the writer's token and the lanes), so the instance holding a lane works them at once
(`watch_lanes`); the outbox poll remains the safety net.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from storage.base import StoreError
from storage.dialect import POSTGRES, valid_schema_name
from storage.pgbatch import DEFERRED, Counters, Lockstep, run_one
from storage.query import Tx, TxFactory, Want
from storage.sqlstore import SQLStore, stop_writer
from vocab.models import IngestResult, OutboxItem

log = logging.getLogger(__name__)
T = TypeVar("T")

# A transaction stopped by one of these saw another one's commit: run it again from the start.
RETRYABLE = (asyncpg.UniqueViolationError, asyncpg.SerializationError,
             asyncpg.DeadlockDetectedError, asyncpg.LockNotAvailableError)
# A batch waiting this long on a row lock gives up and runs again (rather than wait for the
# server's deadlock check, a second by default, when two instances' batches lock rows in
# different orders).
LOCK_TIMEOUT = "200ms"
LOCKED = (asyncpg.DeadlockDetectedError, asyncpg.LockNotAvailableError)
ATTEMPTS = 10
CHANNEL = "bridge_lanes"  # NOTIFY: lanes that got rows; payload "<token> <lane> <lane>..."
PAYLOAD_MAX = 7000  # PostgreSQL's limit is 8000 bytes
# Where the store writes its counters when it closes (benchmarks: round trips per message).
STATS_ENV = "BRIDGE_PG_STATS"
# Two writers take turns on messages and outbox rows (one gathers and writes the next batch
# while the other waits for its COMMIT); one writes lane and singleton leases.
WRITERS = ("main-1", "main-2", "leases")
_Op = tuple[TxFactory[Any], bool, "asyncio.Future[Any]"]


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


async def run_async(conn: Any, tx: Tx[T]) -> T:
    """Drive a transaction generator on an asyncpg connection (inside the caller's transaction)."""
    result: Any = None
    while True:
        try:
            query = tx.send(result)
        except StopIteration as stop:
            return cast(T, stop.value)
        if query.want is Want.CLAIM:
            result = None
            continue
        result = await run_one(conn, POSTGRES.prepare(query.sql), query.want, query.params)


def outbox_lanes(value: Any) -> set[str]:
    """The lanes of the outbox rows a transaction's result names."""
    if isinstance(value, OutboxItem):
        return {value.lane}
    if isinstance(value, IngestResult):
        return {item.lane for item in value.outbox}
    if isinstance(value, list | tuple):
        return set().union(*(outbox_lanes(v) for v in value)) if value else set()
    return set()


def quoted(text: str) -> str:
    """An SQL string literal (standard_conforming_strings: only quotes are doubled)."""
    return "'" + text.replace("'", "''") + "'"


def notify_payloads(token: str, lanes: Sequence[str]) -> list[str]:
    """NOTIFY payloads naming these lanes, each under PostgreSQL's size limit."""
    out: list[str] = []
    current = token
    for lane in lanes:
        if len(current) + len(lane) + 1 > PAYLOAD_MAX:
            out.append(current)
            current = token
        current += " " + lane
    if current != token:
        out.append(current)
    return out


class PostgresStore(SQLStore):
    dialect = POSTGRES
    shared = True  # several bridge instances may run on one PostgreSQL database

    def __init__(self, url: str, *, schema: str | None = None, pool_size: int = 10,
                 batch_max: int = 256) -> None:
        if not is_postgres_url(url):
            raise StoreError(f"not a PostgreSQL URL: {redacted(url)!r}"
                             " (expected postgresql://user@host:5432/db)")
        if schema is not None and not valid_schema_name(schema):
            raise StoreError(f"storage.schema {schema!r} is not a valid schema name (lower-case"
                             " letters, digits and _, not starting with a digit or pg_)")
        self.url = url
        self.schema = schema
        self._pool_size = pool_size
        self._pool: Any = None  # asyncpg.Pool
        self._batch_max = batch_max
        # Two writers: the conversations' writes, and the leases (small, quick transactions
        # that must not wait behind, nor hold locks with, a batch of messages).
        self._writers: dict[str, _Writer] = {}
        self._deferrals: dict[int, int] = {}
        self._listener: Any = None  # the LISTEN connection, once a watcher asks
        self._watchers: list[Callable[[list[str]], None]] = []
        self._relisten: asyncio.Task[None] | None = None
        self._token = secrets.token_hex(4)  # tells our own notifications apart
        self.counters = Counters()
        self.commits = 0

    @property
    def where(self) -> str:
        schema = f" (schema {self.schema})" if self.schema else ""
        return f"{redacted(self.url)}{schema}"

    # -- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        # Quoted, so that a name that is also an SQL keyword ("user") still works.
        settings = {"search_path": f'"{self.schema}"'} if self.schema else None
        try:
            if self.schema:
                await self._create_schema()
            # No reset query on release (a round trip each): pooled connections run only
            # whole transactions and reads, and LISTEN has a connection of its own.  Each
            # writer holds one on top of `pool_size`.
            self._pool = await asyncpg.create_pool(
                self.url, min_size=1, max_size=self._pool_size + len(WRITERS),
                server_settings=settings, reset=_no_reset)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:  # and timeouts
            raise StoreError(f"cannot open PostgreSQL store {self.where}: {exc}") from exc
        shared: dict[str, tuple[asyncio.Queue[_Op], asyncio.Lock]] = {}
        self._writers = {name: _Writer(self, f"postgres-writer-{name}", *shared.setdefault(
            name.split("-")[0], (asyncio.Queue(), asyncio.Lock()))) for name in WRITERS}

    async def _create_schema(self) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            if await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1",
                                   self.schema) is None:
                async with conn.transaction():
                    # Serialised with migrations, so instances starting together never race.
                    await conn.execute(POSTGRES.migration_lock)
                    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        finally:
            await conn.close()

    async def close(self) -> None:
        writers, self._writers = self._writers, {}
        for writer in writers.values():
            await writer.stop()
        if self._relisten is not None:
            self._relisten.cancel()
        if self._listener is not None:
            listener, self._listener = self._listener, None
            try:
                await listener.close(timeout=5)
            except Exception:  # the server went away: nothing to unlisten
                listener.terminate()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
        self._write_stats()

    def _write_stats(self) -> None:
        path = os.environ.get(STATS_ENV)
        if path:
            try:
                with open(path, "a", encoding="utf-8") as out:
                    out.write(json.dumps({**self.counters.as_dict(),
                                          "commits": self.commits}) + "\n")
            except OSError:
                log.warning("cannot write the store's counters to %s", path)

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    def _require_pool(self) -> Any:
        if self._pool is None:
            raise StoreError("store is not open")
        return self._pool

    # -- running transactions ----------------------------------------------------------------
    async def _write(self, make: TxFactory[T], *, together: bool = False,
                     leases: bool = False) -> T:
        """Queue the transaction for the next group commit and wait until it is committed."""
        self._require_pool()
        writer = self._writers.get("leases" if leases else "main-1")
        if writer is None:
            raise StoreError("store is not open")
        return cast(T, await writer.submit(make, together))

    async def _alone(self, make: TxFactory[T]) -> T:
        """One transaction on a pooled connection, run again when it lost a race."""
        pool = self._require_pool()
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with pool.acquire() as conn:
                    self.counters.round_trips += 2  # BEGIN, COMMIT
                    self.counters.transactions += 1
                    async with conn.transaction():
                        result = await run_async(_Counting(conn, self.counters), make())
                        lanes = outbox_lanes(result)
                        if lanes:
                            await self._notify(conn, sorted(lanes))
                        return result
            except RETRYABLE as exc:
                if attempt == ATTEMPTS:
                    raise
                log.debug("transaction lost a race (%s); running it again", exc)
        raise AssertionError("unreachable")

    async def _read(self, make: TxFactory[T]) -> T:
        async with self._require_pool().acquire() as conn:
            return await run_async(_Counting(conn, self.counters, read=True), make())

    async def _notify(self, conn: Any, lanes: Sequence[str]) -> None:
        for payload in notify_payloads(self._token, lanes):
            self.counters.round_trips += 1
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)

    # -- lanes woken by other instances' commits ---------------------------------------------
    async def watch_lanes(self, callback: Callable[[list[str]], None]) -> None:
        """Call `callback(lanes)` when another instance commits outbox rows into these lanes
        (LISTEN on a connection of its own)."""
        self._watchers.append(callback)
        if self._listener is not None:
            return
        await self._listen()

    async def _listen(self) -> None:
        settings = {"search_path": f'"{self.schema}"'} if self.schema else None
        self._listener = await asyncpg.connect(self.url, server_settings=settings)
        await self._listener.add_listener(CHANNEL, self._notified)
        self._listener.add_termination_listener(self._listener_lost)

    def _listener_lost(self, conn: Any) -> None:
        if self._listener is conn and self._pool is not None:
            # Until it is back, the outbox poll picks up what other instances commit.
            log.warning("the LISTEN connection was lost; reconnecting")
            self._relisten = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        while self._pool is not None:
            await asyncio.sleep(1.0)
            try:
                await self._listen()
                return
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("LISTEN connection: %s; trying again", exc)

    def _notified(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        token, *lanes = payload.split(" ")
        if token == self._token or not lanes:
            return
        for callback in self._watchers:
            try:
                callback(lanes)
            except Exception:
                log.exception("a lane watcher failed")


class _Writer:
    """One writer task and its connection: batches what its queue holds, commits it once."""

    def __init__(self, store: PostgresStore, name: str, queue: asyncio.Queue[_Op],
                 turn: asyncio.Lock) -> None:
        self.store = store
        self.queue = queue  # shared by the writers of one kind
        self.turn = turn  # held from taking a batch until its COMMIT is sent
        self.deferrals = store._deferrals  # how often a transaction waiting its turn was put back
        self._my_turn = False
        self.conn: Any = None  # held while it works
        self.task = asyncio.create_task(self.loop(), name=name)

    def submit(self, make: TxFactory[Any], together: bool) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((make, together, future))
        return future

    async def stop(self) -> None:
        await stop_writer(self.queue, self.task)
        if self.conn is not None:
            conn, self.conn = self.conn, None
            await self.store._require_pool().release(conn)

    def _pass_turn(self) -> None:
        if self.turn.locked() and self._my_turn:
            self._my_turn = False
            self.turn.release()

    async def loop(self) -> None:
        self._my_turn = False
        while True:
            await self.turn.acquire()
            self._my_turn = True
            try:
                batch = [await self.queue.get()]
            except BaseException:
                self._pass_turn()
                raise
            while len(batch) < self.store._batch_max and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                await self._commit_batch(batch)
            except Exception as exc:
                log.exception("group commit of %d transactions failed", len(batch))
                for _, _, fut in batch:
                    if not fut.done():
                        fut.set_exception(StoreError(f"commit failed: {exc}"))
            finally:
                self._pass_turn()
                for _ in batch:
                    self.queue.task_done()

    async def _commit_batch(self, batch: list[_Op]) -> None:
        try:
            try:
                results = await self._together(batch)
            except LOCKED as exc:  # the other transaction has moved on by now: once more
                log.debug("group commit of %d waited on a lock (%s); again", len(batch), exc)
                results = await self._together(batch)
        except Exception as exc:  # a race, or one of them failed: each runs alone
            if len(batch) == 1 and not isinstance(exc, RETRYABLE):
                batch[0][2].set_exception(exc)
                return
            log.debug("group commit of %d rolled back (%r); running each alone",
                      len(batch), exc)
        else:
            self.store.commits += 1
            for op, value in zip(batch, results, strict=True):
                if value is DEFERRED:  # back in the queue, for a later batch
                    self.queue.put_nowait(op)
                    self.deferrals[id(op)] = self.deferrals.get(id(op), 0) + 1
                    self.store.counters.batched_ops -= 1
                    continue
                self.deferrals.pop(id(op), None)
                if not op[2].done():
                    op[2].set_result(value)
            return
        for op in batch:  # alone, so one failure cannot sink the others
            make, _, fut = op
            self.deferrals.pop(id(op), None)
            if fut.done():
                continue
            try:
                value = await self.store._alone(make)
            except Exception as exc:
                fut.set_exception(exc)
            else:
                self.store.commits += 1
                fut.set_result(value)

    async def _together(self, batch: list[_Op]) -> list[Any]:
        """The whole batch in one transaction on the writer's connection."""
        if self.conn is None:
            self.conn = await self.store._require_pool().acquire()
            # Pooled connections run only whole, retried transactions: the setting may stay.
            await self.conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
        conn = self.conn
        counters = self.store.counters
        counters.batches += 1
        counters.batched_ops += len(batch)
        counters.transactions += 1
        counters.round_trips += 1
        await conn.execute("BEGIN")
        try:
            grouped = [i for i, (_, together, _) in enumerate(batch) if together]
            results: list[Any] = [None] * len(batch)
            if grouped:
                # Deferred twice already: wait for row locks like anyone (no starving).
                patient = [self.deferrals.get(id(batch[i]), 0) >= 2 for i in grouped]
                done = await Lockstep(conn, counters).run([batch[i][0]() for i in grouped],
                                                          patient)
                for i, value in zip(grouped, done, strict=True):
                    results[i] = value
            counting = _Counting(conn, counters)
            for i, (make, together, _) in enumerate(batch):
                if not together:
                    results[i] = await run_async(counting, make())
            lanes = sorted(set().union(*(outbox_lanes(r) for r in results)))
            # The notifications go out with the commit, in the same round trip.
            notify = "".join(f"SELECT pg_notify('{CHANNEL}', {quoted(p)}); "
                             for p in notify_payloads(self.store._token, lanes))
            counters.round_trips += 1
            self._pass_turn()  # the other writer gathers the next batch meanwhile
            await conn.execute(notify + "COMMIT")
        except BaseException:
            try:
                if conn.is_closed():
                    raise ConnectionError("closed")
                await conn.execute("ROLLBACK")
            except Exception:
                await self._drop_connection()
            raise
        return results

    async def _drop_connection(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.terminate()
            await self.store._require_pool().release(conn)



async def _no_reset(conn: Any) -> None:
    """Pooled connections need no reset query on release (see `open`)."""


class _Counting:
    """An asyncpg connection that counts the statements sent (each one round trip)."""

    __slots__ = ("_conn", "_counters", "_read")

    def __init__(self, conn: Any, counters: Counters, *, read: bool = False) -> None:
        self._conn = conn
        self._counters = counters
        self._read = read

    def _count(self) -> None:
        self._counters.round_trips += 1
        if self._read:
            self._counters.read_round_trips += 1

    async def execute(self, sql: str, *args: Any) -> Any:
        self._count()
        return await self._conn.execute(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        self._count()
        return await self._conn.fetchrow(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> Any:
        self._count()
        return await self._conn.fetch(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        self._count()
        return await self._conn.fetchval(sql, *args)
