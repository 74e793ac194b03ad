"""Migration 0005 and the identity flags channel rules read: when the customer last wrote from
an address, and whether they opted out; on both store backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from storage import reads
from storage.dialect import migrations
from storage.postgres import PostgresStore
from storage.query import Tx, execute
from storage.sqlite import SQLiteStore
from storage.sqlstore import SQLStore
from tests.helpers_pg import PG_URL, fresh_schema
from vocab.models import IdentityId, InboundMessage

CHANNEL = "C0SUPPORT1"


@asynccontextmanager
async def opened(backend: str, tmp_path: Path) -> AsyncIterator[SQLStore]:
    if backend == "sqlite":
        store: SQLStore = SQLiteStore(f"sqlite:///{tmp_path}/store.db")
        await store.open()
        try:
            yield store
        finally:
            await store.close()
        return
    async with fresh_schema() as schema:
        store = PostgresStore(PG_URL, schema=schema)
        await store.open()
        try:
            yield store
        finally:
            await store.close()


def message(n: int, text: str = "hi", **kw: object) -> InboundMessage:
    return InboundMessage(connector="twilio", platform_message_id=f"SM{n}",
                          address="whatsapp:+14155550100", sender_name="Ann", text=text,
                          **kw)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_0005_carries_the_last_message_time_over(backend: str, tmp_path: Path) -> None:
    async with opened(backend, tmp_path) as store:
        before = migrations()[:4]
        assert [m.version for m in before] == [1, 2, 3, 4]
        await store._write(lambda: reads.migrate(store.dialect, before, store.where))

        def v4_rows() -> Tx[None]:  # a customer as 0004 stored it: the time on the conversation
            yield from execute("INSERT INTO customers (id, display_name, created_at)"
                               " VALUES (1, 'Ann', 1)")
            yield from execute("INSERT INTO identities (id, customer_id, connector, address,"
                               " created_at) VALUES (1, 1, 'twilio', 'whatsapp:+1415', 1)")
            yield from execute("INSERT INTO conversations (customer_id, identity_id, connector,"
                               " address, created_at, updated_at, last_inbound_at)"
                               " VALUES (1, 1, 'twilio', 'whatsapp:+1415', 1, 1, 1234.5)")

        await store._write(v4_rows)
        assert await store.migrate() == [5, *[m.version for m in migrations()[5:]]]
        identity = await store.get_identity(IdentityId(1))
        assert identity is not None and identity.last_inbound_at == 1234.5


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_last_message_time_moves_forward_only(backend: str, tmp_path: Path) -> None:
    async with opened(backend, tmp_path) as store:
        await store.migrate()
        await store.ingest_inbound([message(1, platform_time=500.0)], CHANNEL, 1000.0)
        await store.ingest_inbound([message(2, platform_time=400.0)], CHANNEL, 1001.0)  # late
        await store.ingest_inbound([message(3, text="fixed", edit_of="SM1")], CHANNEL, 2000.0)
        identity = await store.get_identity(IdentityId(1))
        assert identity is not None and identity.last_inbound_at == 500.0


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_opt_out_and_back_in(backend: str, tmp_path: Path) -> None:
    async with opened(backend, tmp_path) as store:
        await store.migrate()
        [first] = await store.ingest_inbound([message(1, "STOP", opt_out=True)], CHANNEL, 10.0)
        [again] = await store.ingest_inbound([message(2, "stop", opt_out=True)], CHANNEL, 11.0)
        kinds = [[o.kind.value for o in r.outbox] for r in (first, again)]
        assert kinds == [["slack_post", "slack_notice"], ["slack_post"]]  # told once
        identity = await store.get_identity(IdentityId(1))
        assert identity is not None and identity.opted_out_at == 10.0
        assert not await store.set_opted_out(IdentityId(1), True, 12.0)  # already
        await store.ingest_inbound([message(3, "START", opt_out=False)], CHANNEL, 20.0)
        identity = await store.get_identity(IdentityId(1))
        assert identity is not None and identity.opted_out_at is None
        assert await store.set_opted_out(IdentityId(1), True, 30.0)
