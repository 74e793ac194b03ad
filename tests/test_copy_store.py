"""`bridge copy-store`: a SQLite store moved into PostgreSQL (and back), ids kept, reruns safe,
and the bridge carrying on from the copy."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bridge.cli import main
from storage.base import OutboxResult, Outcome
from storage.copy import NOT_COPIED, TABLES
from storage.postgres import PostgresStore
from storage.sqlite import SQLiteStore
from tests.conftest import CHANNEL, HarnessFactory
from tests.helpers_pg import PG_URL, fresh_schema, pg_rows, wait_pg_rows
from vocab.models import AgentReply, DeliveryState, InboundMessage

THREAD = "1700000000.000100"
Rows = dict[str, list[tuple[Any, ...]]]


def inbound(n: int, chat: str) -> InboundMessage:
    return InboundMessage(connector="telegram", platform_message_id=str(n), address=chat,
                          sender_name="Ann Lee", text=f"message {n}")


async def seed(path: Path) -> None:
    """A store as a running bridge leaves it: a thread with a reply, files, state."""
    store = SQLiteStore(f"sqlite:///{path}")
    await store.open()
    try:
        await store.migrate()
        [first] = await store.ingest_inbound([inbound(1, "4242")], CHANNEL, 1.0)
        [post] = first.outbox
        await store.finish_outbox([OutboxResult(
            item_id=post.id, outcome=Outcome.DONE, attempts=1, message_id=post.message_id,
            message_state=DeliveryState.POSTED, slack_channel=CHANNEL, slack_ts=THREAD,
            thread_ts=THREAD, conversation_id=first.conversation_id)], 2.0)
        reply = await store.ingest_agent_reply(AgentReply(
            slack_channel=CHANNEL, slack_ts="1700000001.000200", thread_ts=THREAD,
            slack_user="U0AGENT1", text="hello", is_note=False, event_id="Ev1"), 3.0)
        await store.finish_outbox([OutboxResult(
            item_id=reply.outbox[0].id, outcome=Outcome.DONE, attempts=1,
            message_id=reply.message_id, message_state=DeliveryState.SENT,
            sent_platform_ids=("9",), author_name="Dana")], 4.0)
        await store.ingest_inbound([inbound(2, "77")], CHANNEL, 5.0)  # still pending
        await store.set_state("telegram", "offset", "1234", 6.0)
        await store.put_media("m" * 32, "a.png", "image/png", b"\x89PNG\x00\xff", 7.0, 9e9)
    finally:
        await store.close()


def sqlite_tables(path: Path) -> Rows:
    with sqlite3.connect(path) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type ="
                                            " 'table' AND name NOT LIKE 'sqlite_%'")}
        # nothing left out
        assert names - {"bridge_schema"} - NOT_COPIED == {table for table, _ in TABLES}
        return {table: conn.execute(f"SELECT * FROM {table} ORDER BY {key}").fetchall()
                for table, key in TABLES}


async def pg_tables(schema: str) -> Rows:
    return {table: await pg_rows(schema, f"SELECT * FROM {table} ORDER BY {key}")
            for table, key in TABLES}


async def copy(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, ["copy-store", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def counts(out: str) -> dict[str, tuple[int, int]]:
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 6 and parts[2] == "copied":
            found[parts[0]] = (int(parts[1]), int(parts[3]))
    return found


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    async with fresh_schema() as name:
        yield name


@pytest.mark.services  # a real PostgreSQL
async def test_copy_into_postgres_is_complete_and_safe_to_rerun(
    tmp_path: Path, schema: str, capsys: pytest.CaptureFixture[str],
) -> None:
    db = tmp_path / "old.db"
    await seed(db)
    args = ("--from", f"sqlite:///{db}", "--to", PG_URL, "--to-schema", schema)
    code, out, err = await copy(capsys, *args)
    assert code == 0, err
    source = sqlite_tables(db)
    assert counts(out) == {table: (len(rows), 0) for table, rows in source.items()}
    assert counts(out)["messages"] == (3, 0) and schema in out
    assert await pg_tables(schema) == source  # every row, every id, every value

    code, out, err = await copy(capsys, *args)  # a rerun copies nothing twice
    assert code == 0, err
    assert counts(out) == {table: (0, len(rows)) for table, rows in source.items()}

    await seed_more(db)
    code, out, _ = await copy(capsys, *args)
    assert counts(out)["messages"] == (1, 3) and counts(out)["customers"] == (1, 2)
    assert await pg_tables(schema) == sqlite_tables(db)

    # The ids PostgreSQL hands out next follow the copied ones.
    store = PostgresStore(PG_URL, schema=schema)
    await store.open()
    try:
        [new] = await store.ingest_inbound([inbound(99, "5")], CHANNEL, 20.0)
    finally:
        await store.close()
    assert new.message_id == 5 and new.conversation_id == 4 and new.outbox[0].id == 5


async def seed_more(path: Path) -> None:
    store = SQLiteStore(f"sqlite:///{path}")
    await store.open()
    try:
        await store.ingest_inbound([inbound(3, "88")], CHANNEL, 10.0)
    finally:
        await store.close()


@pytest.mark.backends("postgres")  # the test points the bridge at its own schema
async def test_the_bridge_carries_on_from_the_copy(
    tmp_path: Path, schema: str, capsys: pytest.CaptureFixture[str],
    make_harness: HarnessFactory,
) -> None:
    db = tmp_path / "old.db"
    await seed(db)
    code, _, err = await copy(capsys, "--from", f"sqlite:///{db}", "--to", PG_URL,
                              "--to-schema", schema)
    assert code == 0, err
    h = await make_harness({"storage": {"url": PG_URL, "schema": schema}})
    # The message left pending in the old store is delivered from the copy...
    posted = await h.slack.wait_for("chat.postMessage", 1)
    assert posted[0].params["text"].endswith("message 2")
    # ...and the customer's next message lands in their old thread.
    assert await h.customer_says(4242, "back again") == 200
    posts = await h.slack.wait_for("chat.postMessage", 2)
    assert posts[1].params["thread_ts"] == THREAD and "back again" in posts[1].params["text"]
    assert await h.agent_says(THREAD, "welcome back") == 200
    sent = await h.telegram.wait_for("sendMessage", 1)
    assert sent[0].params["chat_id"] == "4242" and sent[0].params["text"].endswith("welcome back")
    sql = "SELECT id, direction, state FROM messages ORDER BY id"
    expected = [(1, "in", "posted"), (2, "out", "sent"), (3, "in", "posted"),
                (4, "in", "posted"), (5, "out", "sent")]
    assert await wait_pg_rows(schema, sql, expected) == expected


@pytest.mark.services  # a real PostgreSQL
async def test_copy_back_into_sqlite(
    tmp_path: Path, schema: str, capsys: pytest.CaptureFixture[str],
) -> None:
    db = tmp_path / "old.db"
    await seed(db)
    assert (await copy(capsys, "--from", f"sqlite:///{db}", "--to", PG_URL,
                       "--to-schema", schema))[0] == 0
    back = tmp_path / "back.db"
    code, _, err = await copy(capsys, "--from", PG_URL, "--from-schema", schema,
                              "--to", f"sqlite:///{back}")
    assert code == 0, err
    assert sqlite_tables(back) == sqlite_tables(db)


@pytest.mark.services  # a real PostgreSQL
async def test_copy_refuses_what_it_cannot_copy_safely(
    tmp_path: Path, schema: str, capsys: pytest.CaptureFixture[str],
) -> None:
    to_pg = ("--to", PG_URL, "--to-schema", schema)
    code, _, err = await copy(capsys, "--from", f"sqlite:///{tmp_path}/missing.db", *to_pg)
    assert code == 1 and "does not exist" in err
    with sqlite3.connect(tmp_path / "other.db") as conn:
        conn.execute("CREATE TABLE notes (id INTEGER)")
    code, _, err = await copy(capsys, "--from", f"sqlite:///{tmp_path}/other.db", *to_pg)
    assert code == 1 and "no bridge schema" in err

    db = tmp_path / "old.db"
    await seed(db)
    code, _, err = await copy(capsys, "--from", f"sqlite:///{db}", "--to", PG_URL,
                              "--to-schema", "Bad-Name")
    assert code == 1 and "--to: storage.schema must be" in err
    code, _, err = await copy(capsys, "--from", f"sqlite:///{db}", "--to", f"sqlite:///{db}")
    assert code == 1 and "same database" in err
    await pg_rows(schema, "CREATE TABLE bridge_schema (version INTEGER NOT NULL,"
                  " name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)")
    await pg_rows(schema, "INSERT INTO bridge_schema VALUES (999, '0999_future.sql', 0)")
    code, _, err = await copy(capsys, "--from", f"sqlite:///{db}", *to_pg)
    assert code == 1 and "schema version 999" in err and "upgrade the bridge" in err
    assert await pg_rows(schema, "SELECT COUNT(*) FROM bridge_schema") == [(1,)]
