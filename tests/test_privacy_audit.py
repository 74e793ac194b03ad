"""The audit log records links and unlinks (who, which customers, how), never the evidence.
Both stores."""

from __future__ import annotations

from storage.sqlstore import SQLStore
from tests.test_privacy_retention import Factory, opened, stores
from vocab.models import ConversationId, CustomerId, InboundMessage

__all__ = ["stores"]  # the fixture, on both backends


async def ingest(store: SQLStore, chat: str, at: float) -> tuple[int, int]:
    [result] = await store.ingest_inbound([InboundMessage(
        connector="telegram", platform_message_id=f"{chat}-1", address=chat,
        sender_name="Ann", text="hi")], "C1", at)
    assert result.conversation_id is not None
    conv = await store.get_conversation(result.conversation_id)
    assert conv is not None
    return int(conv.id), int(conv.customer_id)


async def test_links_and_unlinks_are_audited(stores: Factory) -> None:
    store = await opened(stores)
    try:
        conv, keep = await ingest(store, "1", 10.0)
        _, gone = await ingest(store, "2", 11.0)
        linked = await store.link_customers(ConversationId(conv), CustomerId(gone), "<@U1>",
                                            "+15550001111", 12.0)
        assert linked.found
        undone = await store.undo_link(ConversationId(conv), None, "<@U2>", 13.0)
        assert undone.found
        entries = [(e.action, e.actor, e.customer_id, e.other_customer_id, e.at)
                   for e in await store.audit_entries(0)]
        assert entries == [("link", "<@U1>", keep, gone, 12.0),
                           ("unlink", "<@U2>", keep, gone, 13.0)]
        details = " ".join(e.detail for e in await store.audit_entries(0))
        assert "5550001111" not in details and "method agent" in details
        assert [e.action for e in await store.audit_entries(12.5)] == ["unlink"]
    finally:
        await store.close()
