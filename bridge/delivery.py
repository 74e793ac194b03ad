"""What each kind of outbox row means: post into Slack (`bridge/slack_side.py`) or send to a
customer (`bridge/customer_side.py`).  `Delivery` is the outbox worker's one entry point:
`gate_for`, `deliver` and `failure` pick the side from the row's kind."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping

from bridge.console.erase import SlackEraser
from bridge.console.slack import SlackConsole
from bridge.customer_side import CustomerSide
from bridge.settings import ConversationSettings, MediaSettings
from bridge.slack_side import SlackSide
from connectors.base import Connector, SendError
from storage.base import OutboxResult, Store
from vocab.models import InboundMessage, MessageId, OutboxItem, OutboxKind


class Delivery:
    def __init__(self, store: Store, console: SlackConsole, connectors: Mapping[str, Connector],
                 media: MediaSettings, public_url: str,
                 clock: Callable[[], float] = time.time, history_size: int = 5,
                 conversations: ConversationSettings | None = None,
                 shared: bool = False) -> None:
        conv = conversations or ConversationSettings()
        # Several instances: a conversation's Slack lane moves between them, and a transfer
        # made elsewhere changes its thread, so each Slack row reads where it goes afresh.
        self.shared = shared
        self.store = store
        self.console = console
        self.connectors = connectors
        self.customers = CustomerSide(store, console, connectors, media, public_url, clock)
        self.slack = SlackSide(store, console, self.customers, history_size, zone=conv.zone,
                               notify_assignee=conv.notify_assignee)
        self._handlers = {**self.slack.handlers(), **self.customers.handlers(),
                          **SlackEraser(console).handlers()}
        self._failures: dict[OutboxKind, Callable[[OutboxItem, SendError, int],
                                                  OutboxResult]] = {}

    def add_handlers(self, handlers: Mapping[OutboxKind, Callable[[OutboxItem],
                                                                  Awaitable[OutboxResult]]],
                     failure: Callable[[OutboxItem, SendError, int], OutboxResult]) -> None:
        """Rows of kinds another part of the core delivers (surveys)."""
        for kind, handler in handlers.items():
            self._handlers[kind] = handler
            self._failures[kind] = failure

    def remember(self, message_id: MessageId, item: InboundMessage) -> None:
        """What the router just stored, so the Slack post need not read it back."""
        self.slack.remember(message_id, item)

    def gate_for(self, item: OutboxItem) -> str | None:
        if item.kind.customer_side:
            return None  # learnt from the connector's own 429 (one chat, one number...)
        return f"slack:{self.slack.gate(item.conversation_id)}"

    async def deliver(self, item: OutboxItem) -> OutboxResult:
        if self.shared and not item.kind.customer_side:
            self.slack.forget(item.conversation_id)
        return await self._handlers[item.kind](item)

    @property
    def settle(self) -> float:
        """How long after it started a send may still land: its request timeout."""
        return self.console.settings.request_timeout

    def checked(self, item: OutboxItem) -> bool:
        return not item.kind.customer_side and self.slack.checked(item)

    async def recover(self, item: OutboxItem) -> OutboxResult | None:
        return await self.slack.recover(item)

    def failure(self, item: OutboxItem, error: SendError, attempts: int) -> OutboxResult:
        """The row is given up; the agents learn it in the thread where that can help."""
        other = self._failures.get(item.kind)
        if other is not None:
            return other(item, error, attempts)
        side = self.customers if item.kind.customer_side else self.slack
        return side.failure(item, error, attempts)
