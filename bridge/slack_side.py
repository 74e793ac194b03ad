"""The Slack side of delivery: a customer's message, file, a thread's parent, a notice or a
receipt posted into the agents' Slack thread.  Notices the store queued are typed events
(`vocab/events.py`), rendered here by the console (`bridge/console/notices.py`)."""

from __future__ import annotations

import json
from datetime import UTC, tzinfo
from typing import Any

from bridge.console.due import due_line, missed_text
from bridge.console.notices import notice_text, reaction
from bridge.console.people import context_text, history_text
from bridge.console.render import Standing, inbound_text, notice_message, parent_message
from bridge.console.slack import SlackConsole
from bridge.console.transfer import moved_here_text, moved_parent, transfer_options
from bridge.delivery_base import CustomerFiles, Handlers, done, file_name, stored_message
from bridge.surveys import render_score
from connectors.base import SendError
from storage.base import OutboxResult, Outcome, Store
from vocab.events import (
    NEW_PARENT,
    ContinuesElsewhere,
    ConversationJoined,
    MovedAway,
    MovedHere,
    NotDelivered,
    ReturningCustomer,
    TargetMissed,
    parse_event,
)
from vocab.models import (
    Conversation,
    ConversationId,
    CustomerId,
    DeliveryState,
    InboundMessage,
    MessageId,
    OutboxItem,
    OutboxKind,
)
from vocab.mrkdwn import mrkdwn_escape

_HINTS_MAX = 200_000
# Posts that carry their outbox id and are looked up after a crash (a reaction or a redraw
# repeats harmlessly).
_CHECKED = frozenset({OutboxKind.SLACK_POST, OutboxKind.SLACK_NOTICE, OutboxKind.SLACK_FILE})
LOOKBACK = 120.0  # seconds before the attempt a lookup starts from (clocks differ)


class SlackSide:
    def __init__(self, store: Store, console: SlackConsole, files: CustomerFiles,
                 history_size: int = 5, zone: tzinfo = UTC,
                 notify_assignee: bool = False) -> None:
        self.store = store
        self.console = console
        self.files = files
        self.history_size = history_size  # earlier conversations a returning customer's shows
        self.zone = zone  # the team's time zone: times shown to agents
        self.notify_assignee = notify_assignee  # a customer's message mentions the assignee
        # What the router just stored, so the hot path posts without reading it back.
        self._hints: dict[MessageId, InboundMessage] = {}
        self._threads: dict[ConversationId, str] = {}
        self._channels: dict[ConversationId, str] = {}  # each conversation's team channel

    def handlers(self) -> Handlers:
        return {
            OutboxKind.SLACK_POST: self._post_inbound,
            OutboxKind.SLACK_FILE: self._post_file,
            OutboxKind.SLACK_STATUS: self._post_status,
            OutboxKind.SLACK_NOTICE: self._post_notice,
            OutboxKind.SLACK_REACTION: self._react,
        }

    def remember(self, message_id: MessageId, item: InboundMessage) -> None:
        if len(self._hints) >= _HINTS_MAX:
            self._hints.clear()  # only a cache: the store has everything
        self._hints[message_id] = item

    async def _thread(self, conversation_id: ConversationId) -> str | None:
        ts = self._threads.get(conversation_id)
        if ts is None:
            conv = await self.store.get_conversation(conversation_id)
            if conv is not None and conv.slack_channel:
                self._channels[conversation_id] = conv.slack_channel
            if conv is not None and conv.slack_thread_ts:
                ts = self._threads[conversation_id] = conv.slack_thread_ts
        return ts

    def forget(self, conversation_id: ConversationId) -> None:
        """Read the conversation's thread and channel again on next use."""
        self._threads.pop(conversation_id, None)
        self._channels.pop(conversation_id, None)

    async def channel(self, conversation_id: ConversationId) -> str:
        """The team channel the conversation lives in (chosen by the routing rules)."""
        found = self._channels.get(conversation_id)
        if found is None:
            conv = await self.store.get_conversation(conversation_id)
            found = (conv.slack_channel if conv is not None and conv.slack_channel
                     else self.console.settings.support_channel)
            self._channels[conversation_id] = found
        return found

    def gate(self, conversation_id: ConversationId) -> str:
        """Slack's limit is per channel: each team channel has its own gate."""
        return self._channels.get(conversation_id, self.console.settings.support_channel)

    async def _parent(self, conv: Conversation,
                      first_text: str) -> tuple[str, list[dict[str, Any]]]:
        previous = None
        if conv.previous_id is not None:
            prev = await self.store.get_conversation(conv.previous_id)
            if prev is not None and prev.slack_thread_ts:
                previous = self.console.permalink(prev.slack_thread_ts, prev.slack_channel)
        joined = None
        if conv.merged_into is not None:
            into = await self.store.get_conversation(conv.merged_into)
            if into is not None and into.slack_thread_ts:
                joined = self.console.permalink(into.slack_thread_ts, into.slack_channel)
        tags = [*conv.tags, *(f"customer:{t}" for t in conv.customer_tags)]
        found, target = await self.store.parent_extras(conv.id)  # one read
        ratings = [render_score(s, s.score) for s in found
                   if s.state == "answered" and s.score is not None]
        zone = self.console.zone_of(conv.slack_channel) or self.zone
        return parent_message(first_text, Standing.of(conv), conversation_id=conv.id,
                              ratings=ratings,
                              previous_link=previous, joined_link=joined,
                              zone=zone, tags=tags, transfer=transfer_options(
                                  self.console.teams,
                                  self.console.channel_team(conv.slack_channel)),
                              due=None if target is None else due_line(target, zone))

    async def _post_inbound(self, item: OutboxItem) -> OutboxResult:
        assert item.message_id is not None
        if item.payload == NEW_PARENT:  # a transfer: the new parent, in the new channel
            self.forget(item.conversation_id)
        hint = self._hints.get(item.message_id)
        if hint is not None:
            name, connector, username = (hint.echo_author or hint.sender_name, hint.connector,
                                         None if hint.echo_author else hint.username)
            text, markup, edit_of = hint.text, hint.markup, hint.edit_of
        else:
            msg = await self.store.get_message(item.message_id)
            if msg is None:
                raise SendError(f"message {item.message_id} is gone", retryable=False)
            name, connector, username = msg.author_name, msg.connector, None
            text, markup, edit_of = msg.text, msg.markup, msg.edit_of
        body = markup if markup is not None else mrkdwn_escape(text)
        thread = await self._thread(item.conversation_id)
        channel = await self.channel(item.conversation_id)
        first = thread is None
        rendered = inbound_text(name, connector, username, body, first=first,
                                edit=edit_of is not None and not first)
        if first:
            conv = await self.store.get_conversation(item.conversation_id)
            if conv is None:
                raise SendError(f"conversation {item.conversation_id} is gone", retryable=False)
            rendered = inbound_text(name, connector, username, body, first=True,
                                    address=conv.address)
            rendered, blocks = await self._parent(conv, rendered)
            ts = await self.console.post(rendered, None, blocks=blocks, channel=channel,
                                         outbox_id=item.id)
            self._threads[item.conversation_id] = ts
        else:
            if self.notify_assignee and edit_of is None:
                rendered += await self._mention(item.conversation_id)
            ts = await self.console.post(rendered, thread, channel=channel, outbox_id=item.id)
        self._hints.pop(item.message_id, None)
        return self._posted(item, ts, first, channel)

    def _posted(self, item: OutboxItem, ts: str, first: bool, channel: str) -> OutboxResult:
        return done(item, message_id=item.message_id, message_state=DeliveryState.POSTED,
                    slack_channel=channel, slack_ts=ts,
                    thread_ts=ts if first else None, conversation_id=item.conversation_id)

    # -- a post whose outcome a crash left unknown ---------------------------------------------
    def checked(self, item: OutboxItem) -> bool:
        """Rows whose post carries its outbox id (metadata) and so can be looked up."""
        return item.kind in _CHECKED

    async def recover(self, item: OutboxItem) -> OutboxResult | None:
        """A send of `item` started and its end was not seen (a crash, a lost instance): the
        post found in Slack (the thread's replies; the channel's history for a thread's
        parent) is adopted as if the send had returned; None when Slack has no such post."""
        assert item.attempted_at is not None
        thread = await self._thread(item.conversation_id)
        channel = await self.channel(item.conversation_id)
        ts = await self.console.find_posted(item.id, thread, item.attempted_at - LOOKBACK,
                                            channel=channel)
        if ts is None:
            return None
        if item.kind is not OutboxKind.SLACK_POST:
            return done(item)
        if thread is None:
            self._threads[item.conversation_id] = ts
        if item.message_id is not None:
            self._hints.pop(item.message_id, None)
        return self._posted(item, ts, thread is None, channel)

    async def _mention(self, conversation_id: ConversationId) -> str:
        """`[conversations] notify_assignee`: the assignee is mentioned under the message."""
        conv = await self.store.get_conversation(conversation_id)
        return "" if conv is None or not conv.assignee else f"\n:bell: <@{conv.assignee}>"

    async def _post_file(self, item: OutboxItem) -> OutboxResult:
        msg = await stored_message(self.store, item)
        attachment = msg.attachments[int(item.payload)]
        data = await self.files.fetch_file(msg.connector, attachment)
        comment = f"*{mrkdwn_escape(msg.author_name)}* sent a {attachment.kind}"
        await self.console.upload(await self._thread(item.conversation_id), file_name(attachment),
                                  data, comment, channel=await self.channel(item.conversation_id),
                                  outbox_id=item.id)
        return done(item)

    async def _post_status(self, item: OutboxItem) -> OutboxResult:
        conv = await self.store.get_conversation(item.conversation_id)
        first = await self.store.first_message(item.conversation_id)
        if conv is None or first is None or not conv.slack_thread_ts:
            return done(item)  # no parent in Slack yet: it is drawn with the status when posted
        body = first.markup if first.markup is not None else mrkdwn_escape(first.text)
        # The parent shows who wrote first, from where: the identity of the first message.
        identity = await self.store.get_identity(first.identity_id or conv.identity_id)
        username = identity.username if identity is not None else None
        address = identity.address if identity is not None else None
        text = inbound_text(first.author_name, first.connector, username, body, first=True,
                            address=address if identity is not None
                            and identity.connector == first.connector else None)
        text, blocks = await self._parent(conv, text)
        await self.console.update(conv.slack_thread_ts, text, blocks,
                                  channel=conv.slack_channel)
        return done(item)

    async def _react(self, item: OutboxItem) -> OutboxResult:
        msg = await stored_message(self.store, item)
        if msg.slack_ts:
            await self.console.react(msg.slack_ts, reaction(item.payload),
                                     channel=msg.slack_channel)
        return done(item)

    async def _post_notice(self, item: OutboxItem) -> OutboxResult:
        text, retry, templates = item.payload, None, []
        event = parse_event(item.payload)
        where: tuple[str, str] | None = None  # a notice for an earlier thread of it
        if event is not None:
            # What the store recorded, rendered now; some notices show what is there now.
            zone = self.console.zone_of(await self.channel(item.conversation_id)) or self.zone
            text = notice_text(event, zone)
            if isinstance(event, NotDelivered):
                templates = list(event.templates)
            elif isinstance(event, ReturningCustomer):
                text = await self._expand(item, text, {"context": event.customer_id})
            elif isinstance(event, ConversationJoined):
                text = await self._expand(item, text, {"history": event.merged})
            elif isinstance(event, ContinuesElsewhere):
                text = await self._expand(item, text, {"thread_of": event.target})
            elif isinstance(event, MovedAway):
                where = (event.thread_channel, event.thread_ts)
            elif isinstance(event, MovedHere):
                text = await moved_here_text(self.store, item.conversation_id, event, text,
                                             self.console.permalink)
        elif text.startswith("{"):  # a notice the core wrote, with its buttons
            data = json.loads(text)
            text, retry = str(data["text"]), data.get("retry")
            templates = [str(name) for name in data.get("templates") or []]
            text = await self._expand(item, text, data)
        text, blocks = notice_message(text, retry, templates)
        if isinstance(event, TargetMissed):  # one line in the team's alerts channel
            conv = await self.store.get_conversation(item.conversation_id)
            link = (self.console.permalink(conv.slack_thread_ts, conv.slack_channel)
                    if conv is not None and conv.slack_thread_ts else None)
            zone = self.console.zone_of(conv.slack_channel if conv else None) or self.zone
            await self.console.post(missed_text(event, link, zone), None,
                                    channel=event.alerts_channel, outbox_id=item.id)
            return done(item)
        if where is not None and isinstance(event, MovedAway):
            await self.console.post(text, where[1], blocks=blocks, channel=where[0],
                                    outbox_id=item.id)
            await self._retire_parent(item, event)
            return done(item)
        await self.console.post(text, await self._thread(item.conversation_id), blocks=blocks,
                                channel=await self.channel(item.conversation_id),
                                outbox_id=item.id)
        return done(item)

    async def _retire_parent(self, item: OutboxItem, event: MovedAway) -> None:
        """The old thread's parent says where the conversation went, without buttons."""
        first = await self.store.first_message(item.conversation_id)
        if first is None:
            return
        body = first.markup if first.markup is not None else mrkdwn_escape(first.text)
        text, blocks = moved_parent(inbound_text(first.author_name, first.connector, None, body,
                                                 first=True), event.team, event.channel)
        await self.console.update(event.thread_ts, text, blocks, channel=event.thread_channel)

    async def _expand(self, item: OutboxItem, text: str, data: dict[str, Any]) -> str:
        """Notices drawn when posted: a returning customer's context, a joined conversation's
        history, a link to the thread a conversation continues in."""
        if "context" in data:
            card = await self.store.customer_card(CustomerId(int(data["context"])))
            if card is None:
                return text or "(customer gone)"
            earlier = await self.store.history(card.customer_id, item.conversation_id,
                                               self.history_size)
            return context_text(card, earlier, self.console.permalink)
        if "history" in data:
            merged = ConversationId(int(data["history"]))
            messages = await self.store.messages(merged)
            conv = await self.store.get_conversation(merged)
            card = None if conv is None else await self.store.customer_card(conv.customer_id)
            known = {} if card is None else {i.id: i for i in card.identities}
            if conv is not None and conv.slack_thread_ts:
                text += (f" (<{self.console.permalink(conv.slack_thread_ts, conv.slack_channel)}"
                         "|its thread>)")
            return history_text(text, messages, known)
        if "thread_of" in data:
            conv = await self.store.get_conversation(ConversationId(int(data["thread_of"])))
            if conv is not None and conv.slack_thread_ts:
                there = self.console.permalink(conv.slack_thread_ts, conv.slack_channel)
                return (f"{text} <{there}|continue there>. Replies written here still reach "
                        "the customer.")
        return text

    def failure(self, item: OutboxItem, error: SendError, attempts: int) -> OutboxResult:
        """A Slack row given up (only a customer's file is: posts are retried until they
        land); the thread says so where that helps."""
        notice = None
        if item.kind is OutboxKind.SLACK_FILE:
            notice = (":warning: The customer's file could not be copied here: "
                      f"{mrkdwn_escape(error.describe())}")
        return OutboxResult(
            item_id=item.id, outcome=Outcome.FAILED, attempts=attempts, error=error.describe(),
            message_id=item.message_id, conversation_id=item.conversation_id, notice=notice,
        )
