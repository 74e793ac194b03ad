"""Routing: store what arrives (one transaction), then hand the new outbox rows to the worker."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from bridge.delivery import Delivery
from bridge.models import AgentReply, InboundMessage, IngestResult
from bridge.outbox import OutboxWorker
from storage.base import Store


class Router:
    def __init__(self, store: Store, worker: OutboxWorker, delivery: Delivery,
                 slack_channel: str, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.worker = worker
        self.delivery = delivery
        self.slack_channel = slack_channel
        self.clock = clock

    async def ingest(self, items: Sequence[InboundMessage]) -> list[IngestResult]:
        """Customer messages: returns once they are committed (then the webhook may say 200)."""
        results = await self.store.ingest_inbound(items, self.slack_channel, self.clock())
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
