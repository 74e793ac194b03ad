"""Thread commands for one customer across channels:

- `!handoff <channel>`: send the customer a one-time link or code for another channel;
- `!via <channel> <text>`: send this reply on that channel, not the latest one;
- `!link <name, phone or email>`: find another customer; a *Link* button (shown only to the
  agent who asked) joins them into this one;
- `!unlink [n]`: undo the latest link of this customer, or link n;
- `!who`: who the customer is: their channels, and every link with how, by whom and when.

Everything is committed before Slack gets its acknowledgement, like the other commands.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from bridge.console.people import card_text, identities_line
from bridge.console.slack import SlackConsole
from storage.base import CustomerCard, LinkResult
from vocab.models import (
    AgentReply,
    Conversation,
    ConversationId,
    CustomerId,
    IngestResult,
    Link,
    LinkMethod,
)
from vocab.mrkdwn import mrkdwn_escape
from vocab.untrusted import load_json, parse_id

log = logging.getLogger(__name__)
Ack = Callable[..., Awaitable[None]]
LINK_ACTION = "bridge_link"  # the button under `!link`'s candidates (value: JSON)
NAMES = ("handoff", "via", "link", "unlink", "who")
_CHANNEL = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_SLACK_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")
_SLACK_ENTITIES = {"&lt;": "<", "&gt;": ">", "&amp;": "&"}


def typed_query(text: str) -> str:
    """What the agent typed, from Slack's event text: Slack turns a typed email address into
    `<mailto:ann@example.org|ann@example.org>` (a number sometimes into `<tel:…|…>`) and
    escapes `&`, `<` and `>`."""
    def label(match: re.Match[str]) -> str:
        if match[2]:
            return match[2]
        scheme, colon, rest = match[1].partition(":")
        return rest if colon else scheme
    plain = _SLACK_LINK.sub(label, text)
    return re.sub(r"&(?:lt|gt|amp);", lambda m: _SLACK_ENTITIES[m[0]], plain).strip()


class ContinuityActions(Protocol):
    """The router's side (see `bridge/router.py`)."""

    async def ingest_reply(self, reply: AgentReply) -> IngestResult: ...

    async def conversation_by_thread(self, channel: str,
                                     thread_ts: str) -> Conversation | None: ...

    async def handoff(self, reply: AgentReply, channel: str) -> IngestResult | str: ...

    async def find_customers(self, conversation: Conversation, query: str,
                             limit: int = 5) -> list[CustomerCard]: ...

    async def customer_card(self, customer_id: CustomerId) -> CustomerCard | None: ...

    async def link(self, conversation_id: ConversationId, other: CustomerId, actor: str,
                   evidence: str) -> LinkResult: ...

    async def unlink(self, conversation_id: ConversationId, link_id: int | None,
                     actor: str, request: str | None = None) -> LinkResult: ...

    async def links(self, customer_id: CustomerId) -> list[Link]: ...


def candidate_blocks(conversation_id: int, query: str,
                     cards: list[CustomerCard]) -> list[dict[str, Any]]:
    """What `!link` found, each with a Link button; only the asking agent sees it."""
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": (
        f"Customers matching *{mrkdwn_escape(query)}*. *Link* joins their channels and "
        "conversations into this customer (an open conversation of theirs joins this thread, "
        "history included); `unlink` undoes it.")}}]
    for card in cards:
        value = json.dumps({"conversation": conversation_id, "customer": card.customer_id,
                            "query": query[:200]})
        blocks.append({
            "type": "section", "text": {"type": "mrkdwn", "text": card_text(card)[:2900]},
            "accessory": {"type": "button", "action_id": LINK_ACTION, "style": "primary",
                          "text": {"type": "plain_text", "text": "Link"}, "value": value}})
    return blocks


def who_text(card: CustomerCard | None, links: list[Link], prefix: str) -> str:
    """`!who`: the customer's channels and links, for the asking agent only."""
    lines = [card_text(card) if card is not None else "This customer has no identity left."]
    how = {LinkMethod.PHONE: "same phone number", LinkMethod.HANDOFF: "handoff code",
           LinkMethod.AGENT: "linked by an agent"}
    for link in links:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(link.created_at))
        state = (f", undone by {link.undone_by}" if link.undone_at is not None
                 else f" (undo: `{prefix}unlink {link.id}`)")
        lines.append(f"• link {link.id}: {how[link.method]} ({mrkdwn_escape(link.evidence)}), "
                     f"by {link.actor}, {when}{state}")
    if not links:
        lines.append("No links: every channel above came in on its own.")
    return "\n".join(lines)


class ContinuityCommands:
    def __init__(self, console: SlackConsole, actions: ContinuityActions,
                 allowed: Callable[[str, str | None], Awaitable[bool]]) -> None:
        self.console = console
        self.actions = actions
        self.allowed = allowed  # may this user act? (tells them why not)
        self.prefix = console.settings.command_prefix

    def register(self, bolt: Any) -> None:
        bolt.action(LINK_ACTION)(self._on_link)

    async def _tell(self, reply: AgentReply, text: str) -> None:
        await self.console.ephemeral(reply.slack_user, text, reply.thread_ts)

    async def _conversation(self, reply: AgentReply) -> Conversation | None:
        conv = await self.actions.conversation_by_thread(reply.slack_channel, reply.thread_ts)
        if conv is None:
            await self._tell(reply, "This thread is not a customer conversation.")
        return conv

    async def command(self, reply: AgentReply, name: str, rest: str) -> None:
        if not await self.allowed(reply.slack_user, reply.thread_ts):
            return
        if name == "handoff":
            await self._handoff(reply, rest)
        elif name == "via":
            await self._via(reply, rest)
        elif name == "link":
            await self._link(reply, rest)
        elif name == "who":
            await self._who(reply)
        else:
            await self._unlink(reply, rest)

    async def _handoff(self, reply: AgentReply, rest: str) -> None:
        channel = rest.strip().lower()
        if not _CHANNEL.match(channel):
            await self._tell(reply, f"Usage: `{self.prefix}handoff <channel>`, for example "
                             f"`{self.prefix}handoff whatsapp`. Nothing was sent.")
            return
        result = await self.actions.handoff(reply, channel)
        if isinstance(result, str):
            await self._tell(reply, f"No handoff sent: {result}.")
        elif result.conversation_id is None:
            await self._tell(reply, "This thread is not a customer conversation.")

    async def _via(self, reply: AgentReply, rest: str) -> None:
        channel, _, text = rest.partition(" ")
        channel = channel.lower()
        if not _CHANNEL.match(channel) or not (text.strip() or reply.files):
            await self._tell(reply, f"Usage: `{self.prefix}via <channel> <text>`, for example "
                             f"`{self.prefix}via sms Your parcel left`. Nothing was sent.")
            return
        result = await self.actions.ingest_reply(
            reply.model_copy(update={"text": text.strip(), "via": channel}))
        if result.conversation_id is None:
            await self._tell(reply, "This thread is not a customer conversation.")
        elif result.message_id is None:
            conv = await self.actions.conversation_by_thread(reply.slack_channel,
                                                             reply.thread_ts)
            card = None if conv is None else await self.actions.customer_card(conv.customer_id)
            known = "none" if card is None else identities_line(card.identities)
            await self._tell(reply, f"Not sent: this customer has no `{channel}` channel "
                             f"(they are known on {known}).")

    async def _link(self, reply: AgentReply, rest: str) -> None:
        query = typed_query(rest)
        if not query:
            await self._tell(reply, f"Usage: `{self.prefix}link <name, phone or email>`.")
            return
        conv = await self._conversation(reply)
        if conv is None:
            return
        cards = await self.actions.find_customers(conv, query)
        if not cards:
            await self._tell(reply, f"No other customer matches *{mrkdwn_escape(query)}* "
                             "(names match in part; phone numbers with their country code and "
                             "email addresses match exactly). Nothing was linked.")
            return
        await self.console.ephemeral(reply.slack_user, f"Customers matching {query}",
                                     reply.thread_ts,
                                     blocks=candidate_blocks(conv.id, query, cards))

    async def _who(self, reply: AgentReply) -> None:
        conv = await self._conversation(reply)
        if conv is None:
            return
        card = await self.actions.customer_card(conv.customer_id)
        links = await self.actions.links(conv.customer_id)
        await self._tell(reply, who_text(card, links, self.prefix))

    async def _unlink(self, reply: AgentReply, rest: str) -> None:
        arg = rest.strip()
        number = parse_id(arg) if arg else None
        if arg and number is None:
            await self._tell(reply, f"Usage: `{self.prefix}unlink` (the latest link) or "
                             f"`{self.prefix}unlink <link number>`.")
            return
        conv = await self._conversation(reply)
        if conv is None:
            return
        result = await self.actions.unlink(conv.id, number,
                                           f"<@{reply.slack_user}>",
                                           f"unlink:{reply.slack_channel}:{reply.slack_ts}")
        if not result.found:
            await self._tell(reply, "No link of this customer to undo" +
                             (f" with number {arg}." if arg else "."))
        elif result.already and result.link_id is not None:
            await self._tell(reply, f"Link {result.link_id} was already undone.")

    async def _on_link(self, ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        """The Link button: the value says which conversation and which customer."""
        user = str((body.get("user") or {}).get("id") or "")
        try:
            value = load_json(str(action.get("value") or ""))
            conversation, customer = parse_id(value["conversation"]), parse_id(value["customer"])
            if conversation is None or customer is None:
                raise ValueError("the button's ids are out of range")
            conversation_id, other = ConversationId(conversation), CustomerId(customer)
            query = str(value.get("query") or "")
        except (ValueError, KeyError, TypeError, AttributeError):
            await ack()
            return
        if await self.allowed(user, None):
            result: LinkResult = await self.actions.link(
                conversation_id, other, f"<@{user}>", f"searched for {query!r}")
            if result.already:
                await self.console.ephemeral(user, "They are already the same customer.", None)
            elif not result.found:
                await self.console.ephemeral(
                    user, "Not linked: that customer no longer exists on its own (linked "
                    "meanwhile?). Search again.", None)
        await ack()
