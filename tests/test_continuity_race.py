"""Two channels of one customer at once, on PostgreSQL: a link made while the customer writes
on their other channel still leaves them one open conversation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from storage.ingest import ingest_inbound
from storage.postgres import PostgresStore, run_async
from tests.helpers_pg import PG_URL, connect, fresh_schema, pg_rows, wait_pg_rows
from vocab.models import ConversationStatus, InboundMessage

pytestmark = pytest.mark.services  # a real PostgreSQL

PHONE = "+14155550100"
WA = f"whatsapp:{PHONE}"


def sms(mid: str, text: str, address: str = PHONE, channel: str = "sms",
        proof: str | None = PHONE) -> InboundMessage:
    return InboundMessage(connector="twilio", platform_message_id=mid, address=address,
                          sender_name="", text=text, channel=channel, verified_phone=proof)


@pytest.fixture
async def store() -> AsyncIterator[tuple[PostgresStore, str]]:
    async with fresh_schema() as schema:
        s = PostgresStore(PG_URL, schema=schema)
        await s.open()
        await s.migrate()
        try:
            yield s, schema
        finally:
            await s.close()


async def test_a_phone_link_waits_for_the_other_channels_new_conversation(
    store: tuple[PostgresStore, str],
) -> None:
    s, schema = store
    [first] = await s.ingest_inbound([sms("SM1", "hi")], "C1", 1000.0, 0.0)
    assert first.conversation_id is not None
    await s.set_status(first.conversation_id, ConversationStatus.CLOSED, "<@U1>", 2000.0)
    # Another channel, open, that has not proved its number yet.
    await s.ingest_inbound([sms("WA1", "hello", WA, "whatsapp", None)], "C1", 3000.0, 0.0)

    # The SMS customer writes again (a new conversation, not yet committed) while WhatsApp
    # proves the same number and links the two.
    other = await connect(schema)
    try:
        tx = other.transaction()
        await tx.start()
        await run_async(other, ingest_inbound(sms("SM2", "again by SMS"), "C1", 9000.0))
        linking = asyncio.create_task(s.ingest_inbound(
            [sms("WA2", "my number", WA, "whatsapp")], "C1", 9000.0, 0.0))
        # The link waits for a lock this uncommitted transaction holds: then let it go.
        blocker = other.get_server_pid()
        await wait_pg_rows(schema, "SELECT COUNT(*) > 0 FROM pg_stat_activity WHERE"
                           f" {int(blocker)} = ANY(pg_blocking_pids(pid))", [(True,)])
        await tx.commit()
        await linking
    finally:
        await other.close()
    assert await pg_rows(schema, "SELECT method FROM links") == [("phone",)]
    assert await pg_rows(schema, "SELECT COUNT(DISTINCT customer_id) FROM identities") == [(1,)]
    assert await pg_rows(schema, "SELECT COUNT(*) FROM conversations WHERE status = 'open'"
                         " AND merged_into IS NULL") == [(1,)]
