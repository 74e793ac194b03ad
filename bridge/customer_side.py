"""The customer side of delivery: an agent's reply, file, edit or deletion sent to the
customer's platform, after the channel's rules (the author may answer, no opt-out, the
platform's window).  What the agents must hear goes back as the result's notice."""

from __future__ import annotations

import json
import logging
import mimetypes
import secrets
import time
from collections.abc import Callable, Mapping

from bridge.console.people import identity_line
from bridge.console.slack import Agent, SlackConsole
from bridge.delivery_base import Handlers, connector_named, done, file_name, stored_message
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
from vocab.models import (
    Attachment,
    Choices,
    Conversation,
    DeliveryState,
    Identity,
    Message,
    OutboundFile,
    OutboundMessage,
    OutboxItem,
    OutboxKind,
)
from vocab.mrkdwn import mention_ids, mrkdwn_escape, mrkdwn_to_plain

log = logging.getLogger(__name__)
NO_RETRY_CODES = frozenset({"too_large", "unsupported", "disabled"})  # a Retry would not help
# A `customer_send` row whose payload starts so carries native choices (JSON of `Choices`),
# e.g. the FAQ's "talk to a person" button; a payload starting with "{" is a template.
CHOICES_PAYLOAD = "choices:"


def choices_payload(choices: Choices) -> str:
    return CHOICES_PAYLOAD + choices.model_dump_json()


# The author of automatic answers (closed replies, greetings, FAQ answers): no Slack user.
BRIDGE_AGENT = Agent(user_id="", name="Support", allowed=True)
OPTED_OUT_NOTICE = (":no_bell: Not sent: the customer opted out of messages on this channel "
                    "(replied STOP). Nothing goes out until they write START.")


class CustomerSide:
    def __init__(self, store: Store, console: SlackConsole, connectors: Mapping[str, Connector],
                 media: MediaSettings, public_url: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.console = console
        self.connectors = connectors
        self.media = media
        self.public_url = public_url
        self.clock = clock

    def handlers(self) -> Handlers:
        return {
            OutboxKind.CUSTOMER_SEND: self._send_text,
            OutboxKind.CUSTOMER_FILE: self._send_file,
            OutboxKind.CUSTOMER_EDIT: self._edit,
            OutboxKind.CUSTOMER_DELETE: self._delete,
        }

    async def fetch_file(self, connector: str, attachment: Attachment) -> bytes:
        """A customer's file from their platform, for the thread (`CustomerFiles`)."""
        if attachment.size is not None and attachment.size > self.media.max_bytes:
            raise too_large(attachment.size, self.media.max_bytes)
        return await self._connector(connector).fetch_file(attachment, self.media.max_bytes)

    def _connector(self, name: str) -> Connector:
        return connector_named(self.connectors, name)

    async def _outbound(self, item: OutboxItem) -> tuple[Message, Conversation, Agent | None]:
        msg = await stored_message(self.store, item)
        conv = await self._reply_target(msg, await self.store.get_conversation(
            item.conversation_id))
        if conv is None:
            raise SendError("the conversation is gone", retryable=False)
        agent = None
        if msg.origin != "person" and msg.author_slack_user is None:
            agent = BRIDGE_AGENT  # an automatic answer: the bridge's own words
        elif msg.state is not DeliveryState.DELETED:
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
        last_inbound = None if identity is None else identity.last_inbound_at
        if agent is BRIDGE_AGENT:  # plain text already; marked automatic (RFC 3834, Meta)
            return OutboundMessage(message_id=msg.id, conversation_id=conv.id,
                                   address=conv.address, text=msg.text.strip(),
                                   author_name=agent.name, last_inbound_at=last_inbound,
                                   automatic=True)
        names = await self.console.names(mention_ids(msg.text))
        return OutboundMessage(
            message_id=msg.id, conversation_id=conv.id, address=conv.address,
            text=mrkdwn_to_plain(msg.text, names).strip(), author_name=agent.name,
            author_avatar=agent.avatar,
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
                    f"`{prefix}template &lt;name&gt; [1=value 2=value]`.")
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
        if item.payload.startswith(CHOICES_PAYLOAD):  # buttons where the platform has them
            out = out.model_copy(update={"choices": Choices.model_validate_json(
                item.payload.removeprefix(CHOICES_PAYLOAD))})
        if not out.text and template is None:
            return self._blocked(item, msg, "nothing to send",
                                 ":information_source: Not sent: the reply has no text.")
        if template is None:
            await self._shown_too(identity, out, None)
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
        return done(item, message_id=msg.id, message_state=DeliveryState.SENT,
                    sent_platform_ids=receipt.platform_message_ids, author_name=agent.name,
                    conversation_id=conv.id, notice=notice)

    async def _shown_too(self, identity: Identity | None, out: OutboundMessage,
                         file: OutboundFile | None) -> None:
        """Replies to an address left in the web chat's offline prompt are also shown in
        that web chat (first: a failed email must not hide the answer from the page).  The
        page keeps each reply once by its id, so a retried delivery shows it once."""
        if identity is None or identity.shown_on is None or identity.shown_on == identity.id:
            return
        shown = await self.store.get_identity(identity.shown_on)
        if shown is None or shown.customer_id != identity.customer_id:
            return
        copy = out.model_copy(update={"address": shown.address, "last_inbound_at": None})
        connector = self._connector(shown.connector)
        try:
            if file is None:
                await connector.send(copy)
            else:
                await connector.send_file(copy, file)
        except SendError as exc:  # the email still goes; the page misses this one
            log.warning("showing a reply in %s failed: %s", shown.connector, exc.code)

    async def _which_channel(self, identity: Identity | None,
                             note: str | None) -> str | None:
        """A customer known on several channels: the thread says which one a reply took."""
        if identity is None:
            return note
        if await self.store.identity_count(identity.customer_id) < 2:
            return note
        line = f":outbox_tray: Sent via {identity_line(identity)}."
        return line if note is None else f"{line} {note}"

    async def _publish(self, file: OutboundFile, conversation_id: int) -> str:
        """Serve a file at GET /media/<token> for a while; return its public URL."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        await self.store.put_media(token, file.filename, file.mime_type, file.data, now,
                                   now + self.media.link_ttl_hours * 3600, conversation_id)
        return f"{self.public_url}/media/{token}"

    async def _send_file(self, item: OutboxItem) -> OutboxResult:
        checked = await self._sendable(item, "File not sent")
        if isinstance(checked, OutboxResult):
            return checked
        msg, conv, agent, identity = checked
        attachment = msg.attachments[int(item.payload)]
        name = file_name(attachment)
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
            file = file.model_copy(update={"url": await self._publish(file, conv.id)})
        notice = None
        await self._shown_too(identity, out, file)
        try:
            receipt = await connector.send_file(out, file)
        except (OutsideWindow, OptedOut) as exc:
            return self._refused(item, msg, conv, f"The file {name}", exc)
        except Unsupported as exc:
            # The channel cannot carry it: the customer gets a link, the agent a note.
            url = file.url or await self._publish(file, conv.id)
            receipt = await connector.send(out.model_copy(update={"text": f"{name}: {url}"}))
            notice = (f":link: {mrkdwn_escape(exc.message)}, so the customer got a link to "
                      f"{mrkdwn_escape(name)} instead (valid for "
                      f"{self.media.link_ttl_hours:g} hours).")
        return done(item, message_id=msg.id, message_state=DeliveryState.SENT,
                    sent_platform_ids=receipt.platform_message_ids, author_name=agent.name,
                    conversation_id=conv.id, notice=notice)

    async def _edit(self, item: OutboxItem) -> OutboxResult:
        msg, conv, agent = await self._outbound(item)
        if not msg.sent_platform_id or agent is None or not agent.allowed:
            return done(item)  # not sent yet (the send reads the new text), or never will be
        connector = self._connector(conv.connector)
        out = await self._compose(msg, conv, agent)
        try:
            await connector.edit(out, msg.sent_platform_id.split(","))
        except Unsupported as exc:
            return done(item, conversation_id=conv.id, notice=(
                f":information_source: The edit did not reach the customer: "
                f"{mrkdwn_escape(exc.message)}; they still see the original."))
        return done(item)

    async def _delete(self, item: OutboxItem) -> OutboxResult:
        msg = await stored_message(self.store, item)
        conv = await self._reply_target(msg, await self.store.get_conversation(
            item.conversation_id))
        if conv is None or not msg.sent_platform_id:
            return done(item, message_id=msg.id, message_state=DeliveryState.DELETED)
        try:
            await self._connector(conv.connector).delete(conv.address,
                                                         msg.sent_platform_id.split(","))
        except Unsupported as exc:
            return done(item, conversation_id=conv.id, notice=(
                f":information_source: Deleted here only: {mrkdwn_escape(exc.message)}; "
                f"the customer still has the message."))
        return done(item, message_id=msg.id, message_state=DeliveryState.DELETED)

    def failure(self, item: OutboxItem, error: SendError, attempts: int) -> OutboxResult:
        """A customer row given up; the agents learn it in the thread, with a Retry button
        where a retry can help."""
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
        return OutboxResult(
            item_id=item.id, outcome=Outcome.FAILED, attempts=attempts, error=error.describe(),
            message_id=item.message_id, message_state=state,
            conversation_id=item.conversation_id, notice=notice, notice_retry=retry,
        )
