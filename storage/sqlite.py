"""SQLite conversation store (aiosqlite, WAL, group commit).

All writes go through one writer task: concurrent callers queue their work, the writer runs
everything queued so far in one transaction on aiosqlite's thread, commits once, and only then
resolves each caller.  A webhook is acknowledged after that commit, so durability costs one
commit per batch, not per message.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import aiosqlite

from bridge.models import (
    AgentEdit,
    AgentReply,
    Attachment,
    Conversation,
    ConversationId,
    ConversationStatus,
    CustomerId,
    DeliveryState,
    Direction,
    IdentityId,
    InboundMessage,
    IngestResult,
    Message,
    MessageId,
    OutboxId,
    OutboxItem,
)
from storage import sqlite_tx as tx
from storage.base import MediaFile, OutboxResult, SchemaOutdated, SchemaTooNew, StoreError
from storage.dialect import SQLITE, migrations, split_statements

log = logging.getLogger(__name__)
T = TypeVar("T")
_Op = tuple[Callable[[sqlite3.Connection], Any], "asyncio.Future[Any]"]

CONVERSATION_COLUMNS = (
    "id, customer_id, identity_id, connector, address, status, slack_channel, slack_thread_ts,"
    " created_at, last_inbound_at, closed_at, closed_by, previous_id"
)
MESSAGE_COLUMNS = (
    "id, conversation_id, direction, connector, text, attachments, platform_message_id,"
    " sent_platform_id, author_name, author_slack_user, slack_channel, slack_ts, state, error,"
    " created_at, platform_time, platform_ref, markup, edit_of"
)


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


def _conversation(row: Sequence[Any]) -> Conversation:
    return Conversation(
        id=ConversationId(row[0]), customer_id=CustomerId(row[1]), identity_id=IdentityId(row[2]),
        connector=row[3], address=row[4], status=ConversationStatus(row[5]),
        slack_channel=row[6], slack_thread_ts=row[7], created_at=row[8], last_inbound_at=row[9],
        closed_at=row[10], closed_by=row[11],
        previous_id=None if row[12] is None else ConversationId(row[12]),
    )


def _message(row: Sequence[Any]) -> Message:
    return Message(
        id=MessageId(row[0]), conversation_id=ConversationId(row[1]), direction=Direction(row[2]),
        connector=row[3], text=row[4],
        attachments=[Attachment.model_validate(a) for a in json.loads(row[5])],
        platform_message_id=row[6], sent_platform_id=row[7], author_name=row[8],
        author_slack_user=row[9], slack_channel=row[10], slack_ts=row[11],
        state=DeliveryState(row[12]), error=row[13], created_at=row[14], platform_time=row[15],
        platform_ref=row[16], markup=row[17], edit_of=row[18],
    )


class SQLiteStore:
    def __init__(self, url: str, *, synchronous: str = "full", batch_max: int = 512) -> None:
        self.path = sqlite_path(url)
        self._synchronous = synchronous.upper()
        self._batch_max = batch_max
        self._db: aiosqlite.Connection | None = None
        self._queue: asyncio.Queue[_Op] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self.commits = 0  # observability for benchmarks and /healthz

    # -- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(self.path, isolation_level=None)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute(f"PRAGMA synchronous={self._synchronous}")
        await db.execute("PRAGMA foreign_keys=ON")
        await db.execute("PRAGMA busy_timeout=5000")
        self._db = db
        self._writer = asyncio.create_task(self._write_loop(), name="sqlite-writer")

    async def close(self) -> None:
        if self._writer is not None:
            await self._queue.join()
            self._writer.cancel()
            try:
                await self._writer
            except asyncio.CancelledError:
                pass
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

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Queue `fn` for the next group commit and wait until it is durable."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((fn, future))
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
            results: list[tuple[bool, Any]] = [(True, fn(c)) for fn, _ in batch]
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

    # -- schema ------------------------------------------------------------------------------
    @staticmethod
    def _version(c: sqlite3.Connection) -> int:
        row = c.execute("SELECT name FROM sqlite_master WHERE type='table' AND"
                        " name='bridge_schema'").fetchone()
        if row is None:
            return 0
        got = c.execute("SELECT MAX(version) FROM bridge_schema").fetchone()
        return int(got[0] or 0)

    async def schema_version(self) -> int:
        return await self._run(self._version)

    async def migrate(self) -> list[int]:
        known = migrations()
        latest = known[-1].version if known else 0

        def apply(c: sqlite3.Connection) -> list[int]:
            applied: list[int] = []
            c.execute("BEGIN IMMEDIATE")  # also serialises concurrent `bridge migrate` runs
            try:
                c.execute("CREATE TABLE IF NOT EXISTS bridge_schema (version INTEGER NOT NULL,"
                          " name TEXT NOT NULL, applied_at REAL NOT NULL)")
                current = self._version(c)
                if current > latest:
                    raise SchemaTooNew(
                        f"database {self.path} has schema version {current}, but this bridge "
                        f"only knows up to {latest}; upgrade the bridge (or restore a backup)"
                    )
                for migration in known:
                    if migration.version <= current:
                        continue
                    c.execute(f"SAVEPOINT m{migration.version}")
                    for stmt in split_statements(SQLITE.expand(migration.sql)):
                        c.execute(stmt)
                    c.execute("INSERT INTO bridge_schema (version, name, applied_at)"
                              " VALUES (?, ?, ?)", (migration.version, migration.name,
                                                    time.time()))
                    c.execute(f"RELEASE m{migration.version}")
                    applied.append(migration.version)
                c.execute("COMMIT")
            except BaseException:
                if c.in_transaction:
                    c.execute("ROLLBACK")
                raise
            return applied

        return await self._run(apply)

    async def check_schema(self) -> None:
        latest = migrations()[-1].version
        current = await self.schema_version()
        if current > latest:
            raise SchemaTooNew(f"database {self.path} has schema version {current}, but this "
                               f"bridge only knows up to {latest}; upgrade the bridge")
        if current < latest:
            raise SchemaOutdated(f"database {self.path} is at schema version {current}; "
                                 f"run `bridge migrate` to reach {latest}")

    # -- writes ------------------------------------------------------------------------------
    async def ingest_inbound(
        self, items: Sequence[InboundMessage], slack_channel: str, now: float,
        reopen_within: float = 0.0,
    ) -> list[IngestResult]:
        def fn(c: sqlite3.Connection) -> list[IngestResult]:
            return [tx.ingest_inbound(c, item, slack_channel, now, reopen_within)
                    for item in items]
        return await self._write(fn)

    async def ingest_agent_edit(self, edit: AgentEdit, now: float) -> IngestResult:
        return await self._write(lambda c: tx.ingest_agent_edit(c, edit, now))

    async def set_status(self, conversation_id: ConversationId, status: ConversationStatus,
                         actor: str, now: float) -> IngestResult:
        return await self._write(lambda c: tx.set_status(c, conversation_id, status, actor, now))

    async def put_media(self, token: str, filename: str, mime_type: str, data: bytes,
                        now: float, expires_at: float) -> None:
        await self._write(lambda c: tx.put_media(c, token, filename, mime_type, data, now,
                                                 expires_at))

    async def ingest_agent_reply(self, reply: AgentReply, now: float) -> IngestResult:
        return await self._write(lambda c: tx.ingest_agent_reply(c, reply, now))

    async def finish_outbox(self, results: Sequence[OutboxResult], now: float) -> list[OutboxItem]:
        def fn(c: sqlite3.Connection) -> list[OutboxItem]:
            created: list[OutboxItem] = []
            for r in results:
                created.extend(tx.finish_outbox(c, r, now))
            return created
        return await self._write(fn)

    async def retry_outbox(
        self, ids: Sequence[int], all_failed: bool, now: float
    ) -> list[OutboxId]:
        return await self._write(lambda c: tx.retry_outbox(c, ids, all_failed, now))

    async def set_state(self, connector: str, key: str, value: str, now: float) -> None:
        def fn(c: sqlite3.Connection) -> None:
            c.execute("INSERT INTO connector_state (connector, key, value, updated_at)"
                      " VALUES (?, ?, ?, ?) ON CONFLICT (connector, key) DO UPDATE SET"
                      " value = excluded.value, updated_at = excluded.updated_at",
                      (connector, key, value, now))
        await self._write(fn)

    # -- reads -------------------------------------------------------------------------------
    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return await self._run(lambda c: c.execute(sql, params).fetchall())

    async def pending_outbox(self, limit: int, updated_since: float = 0.0) -> list[OutboxItem]:
        rows = await self._fetchall(f"SELECT {tx.OUTBOX_COLUMNS} FROM outbox WHERE status ="
                                    " 'pending' AND updated_at >= ? ORDER BY id LIMIT ?",
                                    (updated_since, limit))
        return [tx.outbox_from_row(r) for r in rows]

    async def list_outbox(self, statuses: Sequence[str]) -> list[OutboxItem]:
        marks = ", ".join("?" for _ in statuses)
        rows = await self._fetchall(f"SELECT {tx.OUTBOX_COLUMNS} FROM outbox WHERE status IN"
                                    f" ({marks}) ORDER BY id", tuple(statuses))
        return [tx.outbox_from_row(r) for r in rows]

    async def get_conversation(self, conversation_id: ConversationId) -> Conversation | None:
        rows = await self._fetchall(f"SELECT {CONVERSATION_COLUMNS} FROM conversations"
                                    " WHERE id = ?", (conversation_id,))
        return _conversation(rows[0]) if rows else None

    async def conversation_by_thread(self, channel: str, thread_ts: str) -> Conversation | None:
        rows = await self._fetchall(f"SELECT {CONVERSATION_COLUMNS} FROM conversations"
                                    " WHERE slack_channel = ? AND slack_thread_ts = ?",
                                    (channel, thread_ts))
        return _conversation(rows[0]) if rows else None

    async def get_message(self, message_id: MessageId) -> Message | None:
        rows = await self._fetchall(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?",
                                    (message_id,))
        return _message(rows[0]) if rows else None

    async def messages(self, conversation_id: ConversationId) -> list[Message]:
        rows = await self._fetchall(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE"
                                    " conversation_id = ? ORDER BY id", (conversation_id,))
        return [_message(r) for r in rows]

    async def get_media(self, token: str, now: float) -> MediaFile | None:
        rows = await self._fetchall("SELECT filename, mime_type, data FROM media WHERE token = ?"
                                    " AND expires_at >= ?", (token, now))
        if not rows:
            return None
        return MediaFile(filename=rows[0][0], mime_type=rows[0][1], data=bytes(rows[0][2]))

    async def get_outbox(self, ids: Sequence[int]) -> list[OutboxItem]:
        if not ids:
            return []
        marks = ", ".join("?" for _ in ids)
        rows = await self._fetchall(f"SELECT {tx.OUTBOX_COLUMNS} FROM outbox WHERE id IN"
                                    f" ({marks}) ORDER BY id", tuple(ids))
        return [tx.outbox_from_row(r) for r in rows]

    async def message_by_slack_ts(self, channel: str, ts: str) -> Message | None:
        rows = await self._fetchall(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE"
                                    " slack_channel = ? AND slack_ts = ?", (channel, ts))
        return _message(rows[0]) if rows else None

    async def first_message(self, conversation_id: ConversationId) -> Message | None:
        rows = await self._fetchall(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE"
                                    " conversation_id = ? AND direction = 'in' ORDER BY id"
                                    " LIMIT 1", (conversation_id,))
        return _message(rows[0]) if rows else None

    async def get_state(self, connector: str, key: str) -> str | None:
        rows = await self._fetchall("SELECT value FROM connector_state WHERE connector = ? AND"
                                    " key = ?", (connector, key))
        return str(rows[0][0]) if rows else None
