"""What each kind of outbox row means: post into Slack, send to a customer, tell the agents."""

from __future__ import annotations

import json
import logging
import mimetypes
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from bridge.console.notices import notice_text, reaction
from bridge.console.people import context_text, history_text, identity_line
from bridge.console.render import inbound_text, notice_message, parent_message
from bridge.console.slack import Agent, SlackConsole
from bridge.settings import MediaSettings
from connectors.base import (
    Connector,
    OptedOut,
    OutsideWindow,
    SendError,
    Unsupported,
    too_large,
)
from storage.base import OutboxResult, Outcome, Store
from vocab.events import (
    ContinuesElsewhere,
    ConversationJoined,
    NotDelivered,
    ReturningCustomer,
    parse_event,
)
from vocab.models import (
    Attachment,
    Conversation,
    ConversationId,
    CustomerId,
    DeliveryState,
    Identity,
    InboundMessage,
    Message,
    MessageId,
    OutboundFile,
    OutboundMessage,
    OutboxItem,
    OutboxKind,
)
from vocab.mrkdwn import mention_ids, mrkdwn_escape, mrkdwn_to_plain

log = logging.getLogger(__name__)
_HINTS_MAX = 200_000
NO_RETRY_CODES = frozenset({"too_large", "unsupported", "disabled"})  # a Retry would not help
OPTED_OUT_NOTICE = (":no_bell: Not sent: the customer opted out of messages on this channel "
                    "(replied STOP). Nothing goes out until they write START.")


def _done(item: OutboxItem, **fields: object) -> OutboxResult:
    return OutboxResult(item_id=item.id, outcome=Outcome.DONE, attempts=item.attempts + 1,
                        **fields)


def _filename(attachment: Attachment) -> str:
    if attachment.filename:
        return attachment.filename
    ext = mimetypes.guess_extension(attachment.mime_type or "") or ".bin"
    return f"{attachment.kind}{'.jpg' if ext == '.jpe' else ext}"


class Delivery:
    def __init__(self, store: Store, console: SlackConsole, connectors: Mapping[str, Connector],
                 media: MediaSettings, public_url: str,
                 clock: Callable[[], float] = time.time, history_size: int = 5) -> None:
        self.store = store
        self.history_size = history_size  # earlier conversations a returning customer's shows
        self.console = console
        self.connectors = connectors
        self.media = media
        self.public_url = public_url
        self.clock = clock
        # What the router just stored, so the hot path posts without reading it back.
        self._hints: dict[MessageId, InboundMessage] = {}
        self._threads: dict[ConversationId, str] = {}
        self._handlers = {
            OutboxKind.SLACK_POST: self._post_inbound,
            OutboxKind.SLACK_FILE: self._post_file,
            OutboxKind.SLACK_STATUS: self._post_status,
            OutboxKind.SLACK_NOTICE: self._post_notice,
            OutboxKind.SLACK_REACTION: self._react,
            OutboxKind.CUSTOMER_SEND: self._send_text,
            OutboxKind.CUSTOMER_FILE: self._send_file,
            OutboxKind.CUSTOMER_EDIT: self._edit,
            OutboxKind.CUSTOMER_DELETE: self._delete,
        }

    def remember(self, message_id: MessageId, item: InboundMessage) -> None:
        if len(self._hints) >= _HINTS_MAX:
            self._hints.clear()  # only a cache: the store has everything
        self._hints[message_id] = item

    def gate_for(self, item: OutboxItem) -> str | None:
        if item.kind.customer_side:
            return None  # learnt from the connector's own 429 (one chat, one number...)
        return f"slack:{self.console.settings.support_channel}"

    async def deliver(self, item: OutboxItem) -> OutboxResult:
        return await self._handlers[item.kind](item)

    # -- into Slack --------------------------------------------------------------------------
    async def _thread(self, conversation_id: ConversationId) -> str | None:
        ts = self._threads.get(conversation_id)
        if ts is None:
            conv = await self.store.get_conversation(conversation_id)
            if conv is not None and conv.slack_thread_ts:
                ts = self._threads[conversation_id] = conv.slack_thread_ts
        return ts

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
        return parent_message(first_text, conv.status, conversation_id=conv.id,
                              closed_by=conv.closed_by, closed_at=conv.closed_at,
                              previous_link=previous, joined_link=joined)

    async def _post_inbound(self, item: OutboxItem) -> OutboxResult:
        assert item.message_id is not None
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
            ts = await self.console.post(rendered, None, blocks=blocks)
            self._threads[item.conversation_id] = ts
        else:
            ts = await self.console.post(rendered, thread)
        self._hints.pop(item.message_id, None)
        return _done(item, message_id=item.message_id, message_state=DeliveryState.POSTED,
                     slack_channel=self.console.settings.support_channel, slack_ts=ts,
                     thread_ts=ts if first else None, conversation_id=item.conversation_id)

    async def _post_file(self, item: OutboxItem) -> OutboxResult:
        msg = await self._message(item)
        attachment = msg.attachments[int(item.payload)]
        connector = self._connector(msg.connector)
        if attachment.size is not None and attachment.size > self.media.max_bytes:
            raise too_large(attachment.size, self.media.max_bytes)
        data = await connector.fetch_file(attachment, self.media.max_bytes)
        comment = f"*{mrkdwn_escape(msg.author_name)}* sent a {attachment.kind}"
        await self.console.upload(await self._thread(item.conversation_id), _filename(attachment),
                                  data, comment)
        return _done(item)

    async def _post_status(self, item: OutboxItem) -> OutboxResult:
        conv = await self.store.get_conversation(item.conversation_id)
        first = await self.store.first_message(item.conversation_id)
        if conv is None or first is None or not conv.slack_thread_ts:
            return _done(item)  # no parent in Slack yet: it is drawn with the status when posted
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
        return _done(item)

    async def _react(self, item: OutboxItem) -> OutboxResult:
        msg = await self._message(item)
        if msg.slack_ts:
            await self.console.react(msg.slack_ts, reaction(item.payload),
                                     channel=msg.slack_channel)
        return _done(item)

    async def _post_notice(self, item: OutboxItem) -> OutboxResult:
        text, retry, templates = item.payload, None, []
        event = parse_event(item.payload)
        if event is not None:
            # What the store recorded, rendered now; some notices show what is there now.
            text = notice_text(event)
            if isinstance(event, NotDelivered):
                templates = list(event.templates)
            elif isinstance(event, ReturningCustomer):
                text = await self._expand(item, text, {"context": event.customer_id})
            elif isinstance(event, ConversationJoined):
                text = await self._expand(item, text, {"history": event.merged})
            elif isinstance(event, ContinuesElsewhere):
                text = await self._expand(item, text, {"thread_of": event.target})
        elif text.startswith("{"):  # a notice the core wrote, with its buttons
            data = json.loads(text)
            text, retry = str(data["text"]), data.get("retry")
            templates = [str(name) for name in data.get("templates") or []]
            text = await self._expand(item, text, data)
        text, blocks = notice_message(text, retry, templates)
        await self.console.post(text, await self._thread(item.conversation_id), blocks=blocks)
        return _done(item)

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

    # -- to the customer ---------------------------------------------------------------------
    async def _message(self, item: OutboxItem) -> Message:
        msg = None if item.message_id is None else await self.store.get_message(item.message_id)
        if msg is None:
            raise SendError(f"message {item.message_id} is gone", retryable=False)
        return msg

    def _connector(self, name: str) -> Connector:
        connector = self.connectors.get(name)
        if connector is None:
            raise SendError(f"the {name} connector is not enabled", code="disabled",
                            retryable=False)
        return connector

    async def _outbound(self, item: OutboxItem) -> tuple[Message, Conversation, Agent | None]:
        msg = await self._message(item)
        conv = await self._reply_target(msg, await self.store.get_conversation(
            item.conversation_id))
        if conv is None:
            raise SendError("the conversation is gone", retryable=False)
        agent = None
        if msg.state is not DeliveryState.DELETED:
            agent = await self.console.agent(msg.author_slack_user or "")
        return msg, conv, agent

    async def _reply_target(self, msg: Message,
                            conv: Conversation | None) -> Conversation | None:
        """The conversation as seen by this reply: on the identity it was written for (the
        customer's channel then, or the one `!via` picked), which its sends, edits, deletes
        and receipts all use."""
        if conv is not None and msg.identity_id is not None and \
                msg.identity_id != conv.identity_id:
            target = await self.store.get_identity(msg.identity_id)
            if target is not None:
                conv = conv.model_copy(update={"identity_id": target.id, "address": target.address,
                                               "connector": target.connector})
        return conv

    async def _compose(self, msg: Message, conv: Conversation, agent: Agent,
                       identity: Identity | None = None) -> OutboundMessage:
        names = await self.console.names(mention_ids(msg.text))
        return OutboundMessage(
            message_id=msg.id, conversation_id=conv.id, address=conv.address,
            text=mrkdwn_to_plain(msg.text, names).strip(), author_name=agent.name,
            mrkdwn=msg.text, mentions=names,
            last_inbound_at=None if identity is None else identity.last_inbound_at,
        )

    def _blocked(self, item: OutboxItem, msg: Message, reason: str, notice: str,
                 **extra: object) -> OutboxResult:
        return OutboxResult(item_id=item.id, outcome=Outcome.BLOCKED, attempts=item.attempts + 1,
                            message_id=msg.id, message_state=DeliveryState.BLOCKED, error=reason,
                            conversation_id=msg.conversation_id, notice=notice, **extra)

    def _refused(self, item: OutboxItem, msg: Message, conv: Conversation, what: str,
                 exc: SendError) -> OutboxResult:
        """A channel rule stopped the send before anything went out: say why, and what is
        still possible (approved templates outside a window)."""
        if isinstance(exc, OptedOut):
            return self._blocked(item, msg, exc.describe(),
                                 f":no_bell: {what} was not sent to the customer: "
                                 f"{mrkdwn_escape(exc.describe())}. Nothing more goes out on "
                                 "this channel until they write START.",
                                 opted_out_identity=conv.identity_id)
        reason = mrkdwn_escape(exc.message)
        templates = tuple(self._connector(conv.connector).templates(conv.address))
        hint = ""
        if templates:
            prefix = self.console.settings.command_prefix
            hint = (f" Send an approved template with a button below or "
                    f"`{prefix}template <name> [1=value 2=value]`.")
        return self._blocked(item, msg, exc.describe(),
                             f":hourglass: {what} was not sent to the customer: {reason}.{hint}",
                             notice_templates=templates)

    async def _sendable(self, item: OutboxItem, not_sent: str
                        ) -> OutboxResult | tuple[Message, Conversation, Agent, Identity | None]:
        """What must hold before anything goes to a customer: the reply still exists, its
        author may answer customers, and the customer has not opted out on this address.
        Returns the result that stops the delivery, or what the delivery needs."""
        msg, conv, agent = await self._outbound(item)
        if agent is None:  # deleted in Slack before it went out
            return OutboxResult(item_id=item.id, outcome=Outcome.BLOCKED,
                                attempts=item.attempts + 1)
        if not agent.allowed:
            return self._blocked(item, msg, agent.reason,
                                 f":no_entry: {not_sent} to the customer: {agent.reason}.")
        identity = await self.store.get_identity(conv.identity_id)
        if identity is not None and identity.opted_out_at is not None:
            return self._blocked(item, msg, "the customer opted out", OPTED_OUT_NOTICE)
        return msg, conv, agent, identity

    async def _send_text(self, item: OutboxItem) -> OutboxResult:
        checked = await self._sendable(item, "Not sent")
        if isinstance(checked, OutboxResult):
            return checked
        msg, conv, agent, identity = checked
        out = await self._compose(msg, conv, agent, identity)
        connector = self._connector(conv.connector)
        template = json.loads(item.payload) if item.payload.startswith("{") else None
        if not out.text and template is None:
            return self._blocked(item, msg, "nothing to send",
                                 ":information_source: Not sent: the reply has no text.")
        try:
            if template is not None:
                receipt = await connector.send_template(
                    out, str(template["name"]), dict(template.get("variables") or {}))
            else:
                receipt = await connector.send(out)
        except (OutsideWindow, OptedOut) as exc:
            what = "The reply" if template is None else f"The template {template['name']}"
            return self._refused(item, msg, conv, what, exc)
        notice = await self._which_channel(identity, receipt.note)
        return _done(item, message_id=msg.id, message_state=DeliveryState.SENT,
                     sent_platform_ids=receipt.platform_message_ids, author_name=agent.name,
                     conversation_id=conv.id, notice=notice)

    async def _which_channel(self, identity: Identity | None,
                             note: str | None) -> str | None:
        """A customer known on several channels: the thread says which one a reply took."""
        if identity is None:
            return note
        if await self.store.identity_count(identity.customer_id) < 2:
            return note
        line = f":outbox_tray: Sent via {identity_line(identity)}."
        return line if note is None else f"{line} {note}"

    async def _publish(self, file: OutboundFile) -> str:
        """Serve a file at GET /media/<token> for a while; return its public URL."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        await self.store.put_media(token, file.filename, file.mime_type, file.data, now,
                                   now + self.media.link_ttl_hours * 3600)
        return f"{self.public_url}/media/{token}"

    async def _send_file(self, item: OutboxItem) -> OutboxResult:
        checked = await self._sendable(item, "File not sent")
        if isinstance(checked, OutboxResult):
            return checked
        msg, conv, agent, identity = checked
        attachment = msg.attachments[int(item.payload)]
        name = _filename(attachment)
        if attachment.size is not None and attachment.size > self.media.max_bytes:
            raise too_large(attachment.size, self.media.max_bytes)
        if not attachment.url:
            raise SendError(f"{name} has no download URL", code="no_url", retryable=False)
        data = await self.console.download(attachment.url, self.media.max_bytes)
        mime = attachment.mime_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        connector = self._connector(conv.connector)
        out = (await self._compose(msg, conv, agent, identity)).model_copy(update={"text": ""})
        file = OutboundFile(filename=name, mime_type=mime, data=data)
        if connector.fetches_media_by_url:
            file = file.model_copy(update={"url": await self._publish(file)})
        notice = None
        try:
            receipt = await connector.send_file(out, file)
        except (OutsideWindow, OptedOut) as exc:
            return self._refused(item, msg, conv, f"The file {name}", exc)
        except Unsupported as exc:
            # The channel cannot carry it: the customer gets a link, the agent a note.
            url = file.url or await self._publish(file)
            receipt = await connector.send(out.model_copy(update={"text": f"{name}: {url}"}))
            notice = (f":link: {mrkdwn_escape(exc.message)}, so the customer got a link to "
                      f"{mrkdwn_escape(name)} instead (valid for "
                      f"{self.media.link_ttl_hours:g} hours).")
        return _done(item, message_id=msg.id, message_state=DeliveryState.SENT,
                     sent_platform_ids=receipt.platform_message_ids, author_name=agent.name,
                     conversation_id=conv.id, notice=notice)

    async def _edit(self, item: OutboxItem) -> OutboxResult:
        msg, conv, agent = await self._outbound(item)
        if not msg.sent_platform_id or agent is None or not agent.allowed:
            return _done(item)  # not sent yet (the send reads the new text), or never will be
        connector = self._connector(conv.connector)
        out = await self._compose(msg, conv, agent)
        try:
            await connector.edit(out, msg.sent_platform_id.split(","))
        except Unsupported as exc:
            return _done(item, conversation_id=conv.id, notice=(
                f":information_source: The edit did not reach the customer: "
                f"{mrkdwn_escape(exc.message)}; they still see the original."))
        return _done(item)

    async def _delete(self, item: OutboxItem) -> OutboxResult:
        msg = await self._message(item)
        conv = await self._reply_target(msg, await self.store.get_conversation(
            item.conversation_id))
        if conv is None or not msg.sent_platform_id:
            return _done(item, message_id=msg.id, message_state=DeliveryState.DELETED)
        try:
            await self._connector(conv.connector).delete(conv.address,
                                                         msg.sent_platform_id.split(","))
        except Unsupported as exc:
            return _done(item, conversation_id=conv.id, notice=(
                f":information_source: Deleted here only: {mrkdwn_escape(exc.message)}; "
                f"the customer still has the message."))
        return _done(item, message_id=msg.id, message_state=DeliveryState.DELETED)

    # -- giving up ---------------------------------------------------------------------------
    def failure(self, item: OutboxItem, error: SendError, attempts: int) -> OutboxResult:
        """The row is given up; the agents learn it in the thread where that can help."""
        notice, state, retry = None, None, None
        reason = mrkdwn_escape(error.describe())
        tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
        if item.kind in (OutboxKind.CUSTOMER_SEND, OutboxKind.CUSTOMER_FILE):
            state = DeliveryState.FAILED
            what = "A file was not" if item.kind is OutboxKind.CUSTOMER_FILE else "Not"
            notice = f":warning: {what} delivered to the customer {tries}: {reason}"
            if error.code not in NO_RETRY_CODES:
                retry = item.id
        elif item.kind is OutboxKind.CUSTOMER_EDIT:
            notice = f":warning: The edit did not reach the customer {tries}: {reason}"
        elif item.kind is OutboxKind.CUSTOMER_DELETE:
            notice = f":warning: Could not delete the reply on the customer's side: {reason}"
        elif item.kind is OutboxKind.SLACK_FILE:
            notice = f":warning: The customer's file could not be copied here: {reason}"
        return OutboxResult(
            item_id=item.id, outcome=Outcome.FAILED, attempts=attempts, error=error.describe(),
            message_id=item.message_id, message_state=state,
            conversation_id=item.conversation_id, notice=notice, notice_retry=retry,
        )

