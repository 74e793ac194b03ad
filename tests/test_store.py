"""The store on SQLite and PostgreSQL: migrations, dedupe by unique key, outbox bookkeeping.

Every test here runs on both backends through the `db` fixture (PostgreSQL: a fresh schema
per test); the few about one backend's machinery say so in their name.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from storage.base import OutboxResult, Outcome, SchemaOutdated, SchemaTooNew
from storage.dialect import migrations
from storage.postgres import PostgresStore
from storage.query import Tx, execute, insert
from storage.sqlite import SQLiteStore, sqlite_path
from storage.sqlstore import SQLStore
from tests.helpers_pg import PG_URL, connect, fresh_schema, pg_rows
from vocab.models import (
    AgentReply,
    ConversationStatus,
    DeliveryState,
    InboundMessage,
    OutboxKind,
)

CHANNEL = "C0STORE"
LATEST = migrations()[-1].version


def inbound(n: int, chat: str = "1") -> InboundMessage:
    return InboundMessage(connector="telegram", platform_message_id=str(n), address=chat,
                          sender_name="Ann", text=f"m{n}")


@dataclass
class Db:
    """A migrated store, and a way to read and write its database behind the store's back."""

    store: SQLStore
    rows: Callable[..., Awaitable[list[tuple[Any, ...]]]]  # (sql with ?, *params)
    unique_violation: type[Exception]
    new_store: Callable[[], SQLStore]  # another store on the same database (another instance)


def sqlite_rows(path: str) -> Callable[..., Awaitable[list[tuple[Any, ...]]]]:
    async def run(sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(path) as conn:
            return conn.execute(sql, params).fetchall()
    return run


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Db]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/store.db"
        store: SQLStore = SQLiteStore(url)
        await store.open()
        await store.migrate()
        yield Db(store, sqlite_rows(sqlite_path(url)), sqlite3.IntegrityError,
                 lambda: SQLiteStore(url))
        await store.close()
        return
    async with fresh_schema() as schema:
        async def rows(sql: str, *params: Any) -> list[tuple[Any, ...]]:
            return await pg_rows(schema, sql, *params)
        store = PostgresStore(PG_URL, schema=schema)
        await store.open()
        try:
            await store.migrate()
            yield Db(store, rows, asyncpg.UniqueViolationError,
                     lambda: PostgresStore(PG_URL, schema=schema))
        finally:
            await store.close()


def test_sqlite_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert sqlite_path("sqlite:///bridge.db") == str(tmp_path / "bridge.db")
    assert sqlite_path("sqlite:///data/b.db") == str(tmp_path / "data" / "b.db")
    assert sqlite_path("sqlite:////var/lib/bridge/b.db") == "/var/lib/bridge/b.db"


async def test_migrations_are_idempotent_and_recorded(db: Db) -> None:
    assert await db.store.schema_version() == LATEST
    assert await db.store.migrate() == []
    await db.store.check_schema()
    assert await db.rows("SELECT version FROM bridge_schema ORDER BY version") == [
        (m.version,) for m in migrations()]


async def test_newer_database_is_refused(db: Db) -> None:
    await db.rows("INSERT INTO bridge_schema VALUES (999, '0999_future.sql', 0)")
    with pytest.raises(SchemaTooNew, match="999"):
        await db.store.migrate()
    with pytest.raises(SchemaTooNew):
        await db.store.check_schema()


async def test_an_unmigrated_database_is_outdated(db: Db) -> None:
    await db.rows("DELETE FROM bridge_schema WHERE version = ?", LATEST)
    with pytest.raises(SchemaOutdated, match="bridge migrate"):
        await db.store.check_schema()


async def test_duplicates_are_stopped_by_the_database(db: Db) -> None:
    first = await db.store.ingest_inbound([inbound(1), inbound(1)], CHANNEL, 1.0)
    again = await db.store.ingest_inbound([inbound(1)], CHANNEL, 2.0)
    assert [r.duplicate for r in first + again] == [False, True, True]
    assert len(first[0].outbox) == 1 and first[1].outbox == () and again[0].outbox == ()
    with pytest.raises(db.unique_violation):
        await db.rows("INSERT INTO messages (conversation_id, direction, connector,"
                      " platform_message_id, state, created_at) VALUES (1, 'in', 'telegram',"
                      " '1', 'received', 0)")


async def test_concurrent_writes_share_commits(db: Db) -> None:
    sqlite = db.store if isinstance(db.store, SQLiteStore) else None
    before = sqlite.commits if sqlite else 0
    results = await asyncio.gather(*(db.store.ingest_inbound([inbound(n, chat=str(n % 7))],
                                                             CHANNEL, 1.0) for n in range(300)))
    assert all(not r[0].duplicate for r in results)
    if sqlite:
        assert sqlite.commits - before < 300 / 4  # group commit: many webhooks per transaction
    assert await db.rows("SELECT COUNT(*) FROM messages") == [(300,)]
    assert await db.rows("SELECT COUNT(*) FROM conversations") == [(7,)]
    assert await db.rows("SELECT COUNT(*) FROM customers") == [(7,)]


async def test_two_instances_store_a_redelivered_webhook_once(db: Db) -> None:
    other = db.new_store()
    await other.open()
    try:
        # Both instances get every update of 20 new customers, at the same time.
        results = await asyncio.gather(*(store.ingest_inbound([inbound(n, chat=f"c{n % 20}")],
                                                              CHANNEL, 1.0)
                                         for n in range(60) for store in (db.store, other)))
    finally:
        await other.close()
    assert sorted(r[0].duplicate for r in results) == [False] * 60 + [True] * 60
    assert await db.rows("SELECT COUNT(*) FROM messages") == [(60,)]
    assert await db.rows("SELECT COUNT(*) FROM customers") == [(20,)]
    assert await db.rows("SELECT COUNT(*) FROM conversations") == [(20,)]
    assert await db.rows("SELECT COUNT(*) FROM outbox") == [(60,)]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_instances_starting_together_migrate_once(backend: str, tmp_path: Path) -> None:
    schema = f"test_{secrets.token_hex(6)}"  # PostgreSQL: not there yet, the stores create it
    stores: list[SQLStore] = [
        SQLiteStore(f"sqlite:///{tmp_path}/new.db") if backend == "sqlite"
        else PostgresStore(PG_URL, schema=schema) for _ in range(4)]
    admin = await connect() if backend == "postgres" else None
    try:
        if backend == "sqlite":  # SQLite: one at a time (a new file's switch to WAL can fail
            for store in stores:  # with "locked" when several connections race it)
                await store.open()
        else:
            await asyncio.gather(*(store.open() for store in stores))
        applied = await asyncio.gather(*(store.migrate() for store in stores))
        assert sorted(applied) == [[], [], [], [m.version for m in migrations()]]
        await stores[0].check_schema()
    finally:
        for store in stores:
            await store.close()
        if admin is not None:
            await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            await admin.close()


async def test_reopen_within_and_a_new_thread_after(db: Db) -> None:
    store = db.store
    [first] = await store.ingest_inbound([inbound(1)], CHANNEL, 1.0)
    assert first.conversation_id is not None
    closed = await store.set_status(first.conversation_id, ConversationStatus.CLOSED, "Dana", 2.0)
    assert not closed.duplicate and [o.kind for o in closed.outbox] == [
        OutboxKind.SLACK_STATUS, OutboxKind.SLACK_NOTICE]
    again = await store.set_status(first.conversation_id, ConversationStatus.CLOSED, "Dana", 2.5)
    assert again.duplicate
    [back] = await store.ingest_inbound([inbound(2)], CHANNEL, 10.0, reopen_within=60)
    assert back.conversation_id == first.conversation_id
    assert [o.kind for o in back.outbox] == [OutboxKind.SLACK_NOTICE, OutboxKind.SLACK_STATUS,
                                             OutboxKind.SLACK_POST]
    await store.set_status(first.conversation_id, ConversationStatus.CLOSED, "Dana", 20.0)
    [later] = await store.ingest_inbound([inbound(3)], CHANNEL, 1000.0, reopen_within=60)
    assert later.conversation_id != first.conversation_id and later.conversation_id is not None
    conv = await store.get_conversation(later.conversation_id)
    assert conv is not None and conv.previous_id == first.conversation_id
    assert [m.text for m in await store.messages(first.conversation_id)] == ["m1", "m2"]
    first_message = await store.first_message(later.conversation_id)
    assert first_message is not None and first_message.text == "m3"


async def test_a_message_that_may_not_reopen_starts_a_new_thread(db: Db) -> None:
    """`reopen=False` (email's sender-address fallback): an open conversation is joined, a
    recently closed one is not reopened."""
    store = db.store
    [first] = await store.ingest_inbound([inbound(1)], CHANNEL, 1.0)
    assert first.conversation_id is not None
    [same] = await store.ingest_inbound([inbound(2).model_copy(update={"reopen": False})],
                                        CHANNEL, 2.0, reopen_within=60)
    assert same.conversation_id == first.conversation_id  # still open: joined
    await store.set_status(first.conversation_id, ConversationStatus.CLOSED, "Dana", 3.0)
    [new] = await store.ingest_inbound([inbound(3).model_copy(update={"reopen": False})],
                                       CHANNEL, 4.0, reopen_within=60)
    assert new.conversation_id not in (None, first.conversation_id)
    conv = await store.get_conversation(first.conversation_id)
    assert conv is not None and conv.status == ConversationStatus.CLOSED
    assert new.conversation_id is not None
    later = await store.get_conversation(new.conversation_id)
    assert later is not None and later.previous_id == first.conversation_id


async def test_media_and_connector_state(db: Db) -> None:
    store = db.store
    await store.put_media("tok" * 8, "a.png", "image/png", b"\x89PNG\x00\xff", 1.0, 100.0)
    found = await store.get_media("tok" * 8, 50.0)
    assert found is not None and found.data == b"\x89PNG\x00\xff" and found.filename == "a.png"
    assert await store.get_media("tok" * 8, 101.0) is None  # expired
    await store.put_media("new" * 8, "b.txt", "text/plain", b"x", 200.0, 300.0)
    assert await db.rows("SELECT token FROM media") == [("new" * 8,)]  # expired ones pruned
    assert await store.get_state("telegram", "offset") is None
    await store.set_state("telegram", "offset", "41", 1.0)
    await store.set_state("telegram", "offset", "42", 2.0)
    assert await store.get_state("telegram", "offset") == "42"


async def test_pruning_connector_state_by_prefix_and_age(db: Db) -> None:
    store = db.store
    for connector, key, at in [("email", "raw:old", 1.0), ("email", "raw:new", 5.0),
                               ("email", "RAW:old", 1.0), ("email", "raw_old", 1.0),
                               ("email", "cursor", 1.0), ("other", "raw:old", 1.0)]:
        await store.set_state(connector, key, "x", at)
    assert await store.prune_state("email", "raw:", 3.0) == 1
    assert sorted(await db.rows("SELECT connector, key FROM connector_state")) == [
        ("email", "RAW:old"), ("email", "cursor"), ("email", "raw:new"), ("email", "raw_old"),
        ("other", "raw:old")]
    assert await store.prune_state("email", "raw:", 3.0) == 0


async def test_outbox_lifecycle_and_agent_replies(db: Db) -> None:
    store = db.store
    [res] = await store.ingest_inbound([inbound(1)], CHANNEL, 1.0)
    [post] = res.outbox
    assert post.kind is OutboxKind.SLACK_POST and res.conversation_id is not None
    reply = AgentReply(slack_channel=CHANNEL, slack_ts="2.0", thread_ts="1.0", slack_user="U1",
                       text="hi", is_note=False, event_id="Ev1")
    assert (await store.ingest_agent_reply(reply, 2.0)).conversation_id is None  # no thread yet
    await store.finish_outbox([OutboxResult(
        item_id=post.id, outcome=Outcome.DONE, attempts=1, message_id=post.message_id,
        message_state=DeliveryState.POSTED, slack_channel=CHANNEL, slack_ts="1.0", thread_ts="1.0",
        conversation_id=res.conversation_id)], 3.0)
    conv = await store.conversation_by_thread(CHANNEL, "1.0")
    assert conv is not None and conv.id == res.conversation_id
    posted = await store.message_by_slack_ts(CHANNEL, "1.0")
    assert posted is not None and posted.state == "posted"
    stored = await store.ingest_agent_reply(reply, 4.0)
    assert not stored.duplicate and len(stored.outbox) == 1
    assert (await store.ingest_agent_reply(reply, 5.0)).duplicate  # Slack retry, same event
    [send] = stored.outbox
    assert [i.id for i in await store.get_outbox([send.id, post.id])] == [post.id, send.id]
    created = await store.finish_outbox([OutboxResult(
        item_id=send.id, outcome=Outcome.FAILED, attempts=3, error="boom",
        message_id=send.message_id, message_state=DeliveryState.FAILED,
        sent_platform_ids=("7", "8"),
        conversation_id=send.conversation_id, notice="failed", notice_retry=send.id)], 6.0)
    assert [c.kind for c in created] == [OutboxKind.SLACK_NOTICE]
    assert send.message_id is not None
    failed = await store.get_message(send.message_id)
    assert failed is not None and (failed.state, failed.error) == ("failed", "boom")
    assert failed.sent_platform_id == "7,8"
    assert [i.id for i in await store.list_outbox(["failed"])] == [send.id]
    assert await store.retry_outbox([], True, 7.0) == [send.id]
    requeued = await store.get_message(send.message_id)
    assert requeued is not None and requeued.state == "queued" and requeued.error is None
    assert {i.id for i in await store.pending_outbox(10)} == {send.id, created[0].id}
    assert await store.pending_outbox(10, updated_since=100.0) == []


async def test_a_receipt_that_beats_the_sends_commit_is_applied_by_it(db: Db) -> None:
    store = db.store
    [res] = await store.ingest_inbound([inbound(1)], CHANNEL, 1.0)
    [post] = res.outbox
    await store.finish_outbox([OutboxResult(
        item_id=post.id, outcome=Outcome.DONE, attempts=1, message_id=post.message_id,
        message_state=DeliveryState.POSTED, slack_channel=CHANNEL, slack_ts="1.0", thread_ts="1.0",
        conversation_id=res.conversation_id)], 2.0)
    reply = AgentReply(slack_channel=CHANNEL, slack_ts="3.0", thread_ts="1.0", slack_user="U1",
                       text="hi", is_note=False)
    [send] = (await store.ingest_agent_reply(reply, 3.0)).outbox
    assert send.message_id is not None
    # Twilio's callback lands before the bridge committed the send that produced the SID.
    assert await store.record_receipt("telegram", "SM1", DeliveryState.DELIVERED, None, 4.0) == []
    created = await store.finish_outbox([OutboxResult(
        item_id=send.id, outcome=Outcome.DONE, attempts=1, message_id=send.message_id,
        message_state=DeliveryState.SENT, sent_platform_ids=("SM1",))], 5.0)
    assert [c.kind for c in created] == [OutboxKind.SLACK_REACTION]
    sent = await store.get_message(send.message_id)
    assert sent is not None and sent.state == "delivered"
    # Later receipts only move it forward.
    assert await store.record_receipt("telegram", "SM1", DeliveryState.SENT, None, 6.0) == []
    read = await store.record_receipt("telegram", "SM1", DeliveryState.READ, None, 7.0)
    assert [c.payload for c in read] == ["read"]  # the state: the console picks the emoji


async def test_sqlite_one_failing_operation_does_not_sink_its_batch(tmp_path: Path) -> None:
    store = SQLiteStore(f"sqlite:///{tmp_path}/store.db")
    await store.open()
    await store.migrate()

    def broken() -> Tx[None]:
        yield from insert("INSERT INTO customers (display_name, created_at) VALUES ('ghost', 0)")
        raise ValueError("bug in one operation")

    try:
        good = store.ingest_inbound([inbound(1)], CHANNEL, 1.0)
        results = await asyncio.gather(good, store._write(broken), return_exceptions=True)
    finally:
        await store.close()
    assert isinstance(results[1], ValueError)
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT display_name FROM customers").fetchall() == [("Ann",)]
        assert conn.execute("SELECT COUNT(*) FROM messages").fetchone() == (1,)


@pytest.mark.services  # a real PostgreSQL
async def test_postgres_reruns_a_transaction_that_lost_a_race() -> None:
    async with fresh_schema() as schema:
        store = PostgresStore(PG_URL, schema=schema)
        await store.open()
        await store.migrate()
        runs: list[int] = []

        def racy() -> Tx[int]:
            runs.append(1)
            if len(runs) == 1:  # as if another instance had committed this key just before
                yield from execute("INSERT INTO slack_events VALUES ('Ev1', 0)")
                yield from execute("INSERT INTO slack_events VALUES ('Ev1', 0)")
            return (yield from execute("INSERT INTO slack_events VALUES ('Ev2', 0)"))

        try:
            assert await store._write(racy) == 1
        finally:
            await store.close()
        assert len(runs) == 2
        assert await pg_rows(schema, "SELECT event_id FROM slack_events") == [("Ev2",)]
