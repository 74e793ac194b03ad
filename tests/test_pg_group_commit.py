"""Group commit on PostgreSQL (storage/postgres.py, storage/pgbatch.py): what arrives together
is committed together, statement by statement for the whole batch; one customer's messages
never interleave; a batch that fails runs each transaction alone; other instances hear which
lanes got rows (NOTIFY)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from storage.pgbatch import grouped_sql
from storage.postgres import PostgresStore
from storage.query import Tx, Want
from tests.helpers_pg import PG_URL, connect, fresh_schema, pg_rows
from tests.waiting import until
from vocab.models import InboundMessage


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    async with fresh_schema() as name:
        yield name


async def opened(schema: str) -> PostgresStore:
    store = PostgresStore(PG_URL, schema=schema)
    await store.open()
    await store.migrate()
    return store


def message(n: int, chat: int) -> InboundMessage:
    return InboundMessage(connector="telegram", platform_message_id=f"m{n}", address=str(chat),
                          sender_name=f"customer {chat}", text=f"text {n}")


def test_statements_get_an_ordinal_column_to_tell_their_rows_apart() -> None:
    assert grouped_sql("SELECT id FROM t WHERE a = $1", Want.ONE, 1) == \
        "SELECT $2::int AS _ord, id FROM t WHERE a = $1"
    assert grouped_sql("SELECT DISTINCT lane FROM o", Want.ALL, 0) == \
        "SELECT DISTINCT $1::int AS _ord, lane FROM o"
    assert grouped_sql("INSERT INTO t (a) VALUES ($1) RETURNING id", Want.ID, 1) == \
        "INSERT INTO t (a) VALUES ($1) RETURNING id, $2::int AS _ord"
    assert grouped_sql("UPDATE t SET a = $1", Want.COUNT, 1) == \
        "UPDATE t SET a = $1 RETURNING $2::int AS _ord"
    assert grouped_sql("SELECT pg_advisory_xact_lock(1)", Want.COUNT, 0) is None


async def test_a_burst_is_committed_in_few_batches_in_order_per_customer(schema: str) -> None:
    store = await opened(schema)
    try:
        before = store.counters.as_dict()
        results = await asyncio.gather(*(store.ingest_inbound([message(n, n % 7)], "C1",
                                                              time.time())
                                         for n in range(140)))
        after = store.counters.as_dict()
        batches = after["batches"] - before["batches"]
        trips = after["write_round_trips"] - before["write_round_trips"]
        assert batches < 140 // 5, batches  # many messages per commit
        assert trips < 140 * 2, trips  # not ~9 per message
        assert not any(r.duplicate for [r] in results)
        # One conversation per customer; its messages stored in the order they were sent.
        assert await pg_rows(schema, "SELECT COUNT(*) FROM conversations") == [(7,)]
        for chat in range(7):
            texts = [r[0] for r in await pg_rows(
                schema, "SELECT m.text FROM messages m JOIN conversations c ON"
                " c.id = m.conversation_id WHERE c.address = ? ORDER BY m.id", str(chat))]
            assert texts == [f"text {n}" for n in range(chat, 140, 7)]
        # The same messages again: duplicates, in one batch as well.
        again = await asyncio.gather(*(store.ingest_inbound([message(n, n % 7)], "C1",
                                                            time.time()) for n in range(140)))
        assert all(r.duplicate for [r] in again)
    finally:
        await store.close()


async def test_a_failing_transaction_does_not_sink_its_batch(schema: str) -> None:
    store = await opened(schema)
    try:
        def broken() -> Tx[None]:
            yield from ()
            raise ValueError("a bug in one transaction")

        good = [store.ingest_inbound([message(n, n)], "C1", time.time()) for n in range(5)]
        results = await asyncio.gather(*good, store._write(broken, together=True),
                                       return_exceptions=True)
        assert isinstance(results[-1], ValueError)
        assert await pg_rows(schema, "SELECT COUNT(*) FROM messages") == [(5,)]
    finally:
        await store.close()


async def test_another_instance_hears_which_lanes_got_rows(schema: str) -> None:
    a, b = await opened(schema), await opened(schema)
    heard_a: list[list[str]] = []
    heard_b: list[list[str]] = []
    try:
        await a.watch_lanes(heard_a.append)
        await b.watch_lanes(heard_b.append)
        [result] = await a.ingest_inbound([message(1, 42)], "C1", time.time())
        lane = f"slack:{result.conversation_id}"
        await until(lambda: bool(heard_b), "B hearing of the lane", timeout=5)
        assert heard_b == [[lane]]
        assert heard_a == []  # its own commits: it knows already
    finally:
        await a.close()
        await b.close()


async def test_a_customer_locked_by_another_instance_does_not_hold_up_the_batch(
    schema: str,
) -> None:
    """Its message goes to a later batch (SKIP LOCKED), the others commit meanwhile; once the
    other transaction ends, it is stored too."""
    store = await opened(schema)
    other = await connect(schema)
    try:
        await store.ingest_inbound([message(0, 1)], "C1", time.time())
        tx = other.transaction()
        await tx.start()
        await other.execute("SELECT id FROM identities WHERE address = '1' FOR UPDATE")
        locked = asyncio.ensure_future(store.ingest_inbound([message(1, 1)], "C1", time.time()))
        free = await asyncio.wait_for(store.ingest_inbound([message(2, 2)], "C1", time.time()),
                                      5)
        assert not free[0].duplicate and not locked.done()
        assert store.counters.deferred >= 1
        await tx.rollback()
        [stored] = await asyncio.wait_for(locked, 5)
        assert not stored.duplicate
        assert await pg_rows(schema, "SELECT COUNT(*) FROM messages") == [(3,)]
    finally:
        await other.close()
        await store.close()
