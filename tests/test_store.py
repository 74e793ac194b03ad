"""The SQLite store: migrations, dedupe by unique key, group commit, outbox bookkeeping."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.models import AgentReply, InboundMessage, OutboxKind
from storage.base import OutboxResult, Outcome, SchemaTooNew
from storage.dialect import migrations
from storage.sqlite import SQLiteStore, sqlite_path

CHANNEL = "C0STORE"


def inbound(n: int, chat: str = "1") -> InboundMessage:
    return InboundMessage(connector="telegram", platform_message_id=str(n), address=chat,
                          sender_name="Ann", text=f"m{n}")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(f"sqlite:///{tmp_path}/store.db")
    await s.open()
    await s.migrate()
    yield s
    await s.close()


def test_sqlite_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert sqlite_path("sqlite:///bridge.db") == str(tmp_path / "bridge.db")
    assert sqlite_path("sqlite:///data/b.db") == str(tmp_path / "data" / "b.db")
    assert sqlite_path("sqlite:////var/lib/bridge/b.db") == "/var/lib/bridge/b.db"


async def test_migrations_are_idempotent_and_recorded(store: SQLiteStore) -> None:
    latest = migrations()[-1].version
    assert await store.schema_version() == latest
    assert await store.migrate() == []
    await store.check_schema()


async def test_newer_database_is_refused(tmp_path: Path, store: SQLiteStore) -> None:
    with sqlite3.connect(store.path) as conn:
        conn.execute("INSERT INTO bridge_schema VALUES (999, '0999_future.sql', 0)")
    with pytest.raises(SchemaTooNew, match="999"):
        await store.migrate()
    with pytest.raises(SchemaTooNew):
        await store.check_schema()


async def test_duplicates_are_stopped_by_the_database(store: SQLiteStore) -> None:
    first = await store.ingest_inbound([inbound(1), inbound(1)], CHANNEL, 1.0)
    again = await store.ingest_inbound([inbound(1)], CHANNEL, 2.0)
    assert [r.duplicate for r in first + again] == [False, True, True]
    assert len(first[0].outbox) == 1 and first[1].outbox == () and again[0].outbox == ()
    with sqlite3.connect(store.path) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO messages (conversation_id, direction, connector,"
                     " platform_message_id, state, created_at) VALUES (1, 'in', 'telegram',"
                     " '1', 'received', 0)")


async def test_concurrent_writes_share_commits(store: SQLiteStore) -> None:
    before = store.commits
    results = await asyncio.gather(*(store.ingest_inbound([inbound(n, chat=str(n % 7))],
                                                          CHANNEL, 1.0) for n in range(300)))
    assert all(not r[0].duplicate for r in results)
    assert store.commits - before < 300 / 4  # group commit: many webhooks per transaction
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM messages").fetchone() == (300,)
        assert conn.execute("SELECT COUNT(*) FROM conversations").fetchone() == (7,)
        assert conn.execute("SELECT COUNT(*) FROM customers").fetchone() == (7,)


async def test_outbox_lifecycle_and_agent_replies(store: SQLiteStore) -> None:
    [res] = await store.ingest_inbound([inbound(1)], CHANNEL, 1.0)
    [post] = res.outbox
    assert post.kind is OutboxKind.SLACK_POST and res.conversation_id is not None
    reply = AgentReply(slack_channel=CHANNEL, slack_ts="2.0", thread_ts="1.0", slack_user="U1",
                       text="hi", is_note=False, event_id="Ev1")
    assert (await store.ingest_agent_reply(reply, 2.0)).conversation_id is None  # no thread yet
    await store.finish_outbox([OutboxResult(
        item_id=post.id, outcome=Outcome.DONE, attempts=1, message_id=post.message_id,
        slack_channel=CHANNEL, slack_ts="1.0", thread_ts="1.0",
        conversation_id=res.conversation_id)], 3.0)
    conv = await store.conversation_by_thread(CHANNEL, "1.0")
    assert conv is not None and conv.id == res.conversation_id
    stored = await store.ingest_agent_reply(reply, 4.0)
    assert not stored.duplicate and len(stored.outbox) == 1
    assert (await store.ingest_agent_reply(reply, 5.0)).duplicate  # Slack retry, same event
    [send] = stored.outbox
    created = await store.finish_outbox([OutboxResult(
        item_id=send.id, outcome=Outcome.FAILED, attempts=3, error="boom",
        message_id=send.message_id, conversation_id=send.conversation_id, notice="failed")],
        6.0)
    assert [c.kind for c in created] == [OutboxKind.SLACK_NOTICE]
    assert [i.id for i in await store.list_outbox(["failed"])] == [send.id]
    assert await store.retry_outbox([], True, 7.0) == [send.id]
    assert {i.id for i in await store.pending_outbox(10)} == {send.id, created[0].id}


async def test_one_failing_operation_does_not_sink_its_batch(store: SQLiteStore) -> None:
    def broken(c: sqlite3.Connection) -> None:
        c.execute("INSERT INTO customers (display_name, created_at) VALUES ('ghost', 0)")
        raise ValueError("bug in one operation")

    good = store.ingest_inbound([inbound(1)], CHANNEL, 1.0)
    bad = store._write(broken)
    results = await asyncio.gather(good, bad, return_exceptions=True)
    assert isinstance(results[1], ValueError)
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT display_name FROM customers").fetchall() == [("Ann",)]
        assert conn.execute("SELECT COUNT(*) FROM messages").fetchone() == (1,)
