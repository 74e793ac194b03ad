"""Routing: store what arrives (one transaction), then hand the new outbox rows to the worker."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from bridge.delivery import Delivery
from bridge.models import (
    AgentEdit,
    AgentReply,
    Conversation,
    ConversationId,
    ConversationStatus,
    DeliveryState,
    InboundMessage,
    IngestResult,
)
from bridge.outbox import OutboxWorker
from storage.base import Store


class Router:
    def __init__(self, store: Store, worker: OutboxWorker, delivery: Delivery,
                 slack_channel: str, clock: Callable[[], float] = time.time,
                 reopen_within: float = 0.0) -> None:
        self.store = store
        self.worker = worker
        self.delivery = delivery
        self.slack_channel = slack_channel
        self.clock = clock
        self.reopen_within = reopen_within  # seconds

    async def ingest(self, items: Sequence[InboundMessage]) -> list[IngestResult]:
        """Customer messages: returns once they are committed (then the webhook may say 200)."""
        results = await self.store.ingest_inbound(items, self.slack_channel, self.clock(),
                                                  self.reopen_within)
        for item, result in zip(items, results, strict=True):
            if not result.duplicate and result.message_id is not None:
                self.delivery.remember(result.message_id, item)
            self.worker.submit(result.outbox)
        return results

    async def ingest_reply(self, reply: AgentReply) -> IngestResult:
        """An agent's thread reply or note: committed before Slack gets its 200."""
        result = await self.store.ingest_agent_reply(reply, self.clock())
        self.worker.submit(result.outbox)
        return result

    async def ingest_edit(self, edit: AgentEdit) -> IngestResult:
        """An agent edited or deleted a reply in Slack."""
        result = await self.store.ingest_agent_edit(edit, self.clock())
        self.worker.submit(result.outbox)
        return result

    async def set_status(self, conversation_id: ConversationId, status: ConversationStatus,
                         actor: str) -> IngestResult:
        """Close or reopen a conversation (from a button, a shortcut or a thread command)."""
        result = await self.store.set_status(conversation_id, status, actor, self.clock())
        self.worker.submit(result.outbox)
        return result

    async def retry(self, ids: Sequence[int]) -> list[int]:
        """Queue failed deliveries again (the thread's Retry button)."""
        done = await self.store.retry_outbox(ids, False, self.clock())
        self.worker.submit(await self.store.get_outbox(done))
        return list(done)

    async def conversation_by_thread(self, channel: str, thread_ts: str) -> Conversation | None:
        return await self.store.conversation_by_thread(channel, thread_ts)

    async def receipt(self, connector: str, platform_id: str, state: DeliveryState,
                      error: str | None, templates: Sequence[str] = ()) -> None:
        """A platform's delivery receipt (Twilio status callback...): committed, then shown."""
        self.worker.submit(await self.store.record_receipt(connector, platform_id, state, error,
                                                           self.clock(), templates))
