"""What each kind of outbox row means: post into Slack, send to a customer, tell the agents."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from bridge.console.slack import SlackConsole
from bridge.console.text import mrkdwn_escape, slack_to_plain
from bridge.models import (
    ConversationId,
    DeliveryState,
    InboundMessage,
    MessageId,
    OutboundMessage,
    OutboxItem,
    OutboxKind,
)
from connectors.base import Connector, SendError
from storage.base import OutboxResult, Outcome, Store

log = logging.getLogger(__name__)
_HINTS_MAX = 200_000


class Delivery:
    def __init__(self, store: Store, console: SlackConsole,
                 connectors: Mapping[str, Connector]) -> None:
        self.store = store
        self.console = console
        self.connectors = connectors
        # What the router just stored, so the hot path posts without reading it back.
        self._hints: dict[MessageId, InboundMessage] = {}
        self._threads: dict[ConversationId, str] = {}

    def remember(self, message_id: MessageId, item: InboundMessage) -> None:
        if len(self._hints) >= _HINTS_MAX:
            self._hints.clear()  # only a cache: the store has everything
        self._hints[message_id] = item

    def gate_for(self, item: OutboxItem) -> str | None:
        if item.kind is OutboxKind.CUSTOMER_SEND:
            return None  # learnt from the connector's own 429 (one chat, one number...)
        return f"slack:{self.console.settings.support_channel}"

    async def _thread(self, conversation_id: ConversationId) -> str | None:
        ts = self._threads.get(conversation_id)
        if ts is None:
            conv = await self.store.get_conversation(conversation_id)
            if conv is not None and conv.slack_thread_ts:
                ts = self._threads[conversation_id] = conv.slack_thread_ts
        return ts

    async def deliver(self, item: OutboxItem) -> OutboxResult:
        if item.kind is OutboxKind.SLACK_POST:
            return await self._post_inbound(item)
        if item.kind is OutboxKind.CUSTOMER_SEND:
            return await self._send_to_customer(item)
        return await self._post_notice(item)

    async def _post_inbound(self, item: OutboxItem) -> OutboxResult:
        assert item.message_id is not None
        hint = self._hints.get(item.message_id)
        if hint is not None:
            name, connector, username, text = (hint.sender_name, hint.connector, hint.username,
                                               hint.text)
        else:
            msg = await self.store.get_message(item.message_id)
            if msg is None:
                raise SendError(f"message {item.message_id} is gone", retryable=False)
            name, connector, username, text = msg.author_name, msg.connector, None, msg.text
        thread = await self._thread(item.conversation_id)
        first = thread is None
        rendered = self.console.render_inbound(name, connector, username, text, first)
        ts = await self.console.post(rendered, thread)
        self._hints.pop(item.message_id, None)
        if first:
            self._threads[item.conversation_id] = ts
        return OutboxResult(
            item_id=item.id, outcome=Outcome.DONE, attempts=item.attempts + 1,
            message_id=item.message_id, message_state=DeliveryState.POSTED,
            slack_channel=self.console.settings.support_channel, slack_ts=ts,
            thread_ts=ts if first else None, conversation_id=item.conversation_id,
        )

    async def _send_to_customer(self, item: OutboxItem) -> OutboxResult:
        assert item.message_id is not None
        msg = await self.store.get_message(item.message_id)
        conv = await self.store.get_conversation(item.conversation_id)
        if msg is None or conv is None:
            raise SendError("the message or its conversation is gone", retryable=False)
        agent = await self.console.agent(msg.author_slack_user or "")
        if not agent.allowed:
            return OutboxResult(
                item_id=item.id, outcome=Outcome.BLOCKED, attempts=item.attempts + 1,
                message_id=msg.id, message_state=DeliveryState.BLOCKED, error=agent.reason,
                conversation_id=conv.id,
                notice=f":no_entry: Not sent to the customer: {agent.reason}.",
            )
        text = slack_to_plain(msg.text).strip()
        if not text:
            return OutboxResult(
                item_id=item.id, outcome=Outcome.BLOCKED, attempts=item.attempts + 1,
                message_id=msg.id, message_state=DeliveryState.BLOCKED,
                error="nothing to send", conversation_id=conv.id,
                notice=":information_source: Not sent: the reply has no text "
                       "(files are relayed by a later version of the bridge).",
            )
        connector = self.connectors.get(conv.connector)
        if connector is None:
            raise SendError(f"the {conv.connector} connector is not enabled", code="disabled",
                            retryable=False)
        receipt = await connector.send(OutboundMessage(
            message_id=msg.id, conversation_id=conv.id, address=conv.address,
            text=text, author_name=agent.name,
        ))
        return OutboxResult(
            item_id=item.id, outcome=Outcome.DONE, attempts=item.attempts + 1,
            message_id=msg.id, message_state=DeliveryState.SENT,
            sent_platform_ids=receipt.platform_message_ids, author_name=agent.name,
        )

    async def _post_notice(self, item: OutboxItem) -> OutboxResult:
        thread = await self._thread(item.conversation_id)
        await self.console.post(item.payload, thread)
        return OutboxResult(item_id=item.id, outcome=Outcome.DONE, attempts=item.attempts + 1)

    def failure(self, item: OutboxItem, error: SendError, attempts: int) -> OutboxResult:
        """The row is given up; for a customer send, the agents learn it in the thread."""
        notice = None
        state = None
        if item.kind is OutboxKind.CUSTOMER_SEND:
            state = DeliveryState.FAILED
            notice = (f":warning: Not delivered to the customer after {attempts} "
                      f"attempt{'s' if attempts != 1 else ''}: {mrkdwn_escape(error.describe())}")
        return OutboxResult(
            item_id=item.id, outcome=Outcome.FAILED, attempts=attempts, error=error.describe(),
            message_id=item.message_id, message_state=state,
            conversation_id=item.conversation_id, notice=notice,
        )
