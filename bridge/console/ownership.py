"""Who holds a conversation and where it stands, from its thread: `!claim`, `!assign <@U…>`,
`!unassign`, `!pending`, `!snooze <when>`; the Claim button and the Assign picker on the
parent; and reactions on the parent as shortcuts (✅ closes, 👀 claims, removing ✅ reopens).

What changed is committed before Slack's 200 (`process_before_response=True`); the store
queues the redraw of the parent and the line in the thread.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import tzinfo
from typing import Any, Protocol

from bridge.console.payload import field, where
from bridge.console.render import ASSIGN_ACTION, CLAIM_ACTION, when
from bridge.console.slack import SlackConsole
from bridge.console.when import parse_when
from connectors.base import SendError
from storage.base import Assignment, How
from vocab.models import (
    AgentReply,
    Conversation,
    ConversationId,
    ConversationStatus,
    IngestResult,
)

log = logging.getLogger(__name__)
Ack = Callable[..., Awaitable[None]]
Allowed = Callable[[str, str | None], Awaitable[bool]]
SetStatus = Callable[[str, str, str, ConversationStatus, bool], Awaitable[None]]
NAMES = ("claim", "assign", "unassign", "pending", "snooze")
CLOSE_REACTION = "white_check_mark"
CLAIM_REACTION = "eyes"
_MENTION = re.compile(r"^<@([UW][A-Z0-9]{2,40})(?:\|[^>]{0,200})?>$")  # ids: ~11


class OwnershipActions(Protocol):
    async def assign(self, conversation_id: ConversationId, user: str | None, actor: str,
                     how: How) -> Assignment: ...

    async def set_status(self, conversation_id: ConversationId, status: ConversationStatus,
                         actor: str, until: float | None = None,
                         request: str | None = None) -> IngestResult: ...

    async def conversation_by_thread(self, channel: str,
                                     thread_ts: str) -> Conversation | None: ...

    def now(self) -> float: ...

    @property
    def zone(self) -> tzinfo:
        """The team's time zone (`[conversations] timezone`): `!snooze tomorrow 9:00`."""
        ...


def mentioned_user(text: str) -> str | None:
    """`<@U123>` or `<@U123|dana>` (how Slack sends a mention): the user id."""
    found = _MENTION.match(text.strip())
    return found[1] if found else None


class OwnershipCommands:
    def __init__(self, console: SlackConsole, actions: OwnershipActions, allowed: Allowed,
                 set_status: SetStatus) -> None:
        self.console = console
        self.actions = actions
        self.allowed = allowed  # may this person act here (else told why)?
        self.set_status = set_status  # close and reopen, as the Close button does
        self.zone = actions.zone
        self.channels = console.channels  # every team's channel

    def register(self, bolt: Any) -> None:
        bolt.action(CLAIM_ACTION)(self._on_claim_button)
        bolt.action(ASSIGN_ACTION)(self._on_picker)
        bolt.event("reaction_added")(self._on_reaction_added)
        bolt.event("reaction_removed")(self._on_reaction_removed)

    async def _conversation(self, channel: str, thread_ts: str, user: str,
                            tell: bool = True) -> Conversation | None:
        conv = None
        if channel in self.channels and thread_ts:
            conv = await self.actions.conversation_by_thread(channel, thread_ts)
        if conv is None:
            if tell:
                await self.console.ephemeral(
                    user, "This message is not part of a customer conversation.", None)
            return None
        if not await self.allowed(user, thread_ts):
            return None
        return conv

    # -- thread commands ---------------------------------------------------------------------
    async def command(self, reply: AgentReply, name: str, rest: str) -> None:
        user, thread = reply.slack_user, reply.thread_ts
        prefix = self.console.settings.command_prefix
        target = mentioned_user(rest) or ""
        if name == "assign" and not target:
            await self.console.ephemeral(
                user, f"Usage: `{prefix}assign @someone`. Nothing was changed.", thread)
            return
        until = None
        if name == "snooze":
            zone = self.console.zone_of(reply.slack_channel) or self.zone  # the team's
            until = parse_when(rest, self.actions.now(), zone)
            if until is None:
                await self.console.ephemeral(
                    user, f"Usage: `{prefix}snooze <when>`, such as `30m`, `2h`, `3d`, "
                    "`tomorrow 9:00` or `mon 9:00` (a time ahead). Nothing was changed.", thread)
                return
        conv = await self._conversation(reply.slack_channel, thread, user)
        if conv is None:
            return
        if name == "claim":
            await self.claim(conv, user, thread)
        elif name == "assign":
            await self.assign(conv, target, user, thread)
        elif name == "unassign":
            result = await self.actions.assign(conv.id, None, f"<@{user}>", "unassign")
            if not result.changed:
                await self.console.ephemeral(user, "Nobody is assigned.", thread)
        elif name == "pending":
            await self._status(conv, user, thread, ConversationStatus.PENDING, None,
                               reply.event_id)
        else:
            await self._status(conv, user, thread, ConversationStatus.SNOOZED, until,
                               reply.event_id)

    async def _status(self, conv: Conversation, user: str, thread: str,
                      status: ConversationStatus, until: float | None,
                      request: str | None) -> None:
        """`request`: the Slack event's id, so a redelivered command changes nothing more
        (a snooze's time is computed anew on each delivery)."""
        result = await self.actions.set_status(conv.id, status, f"<@{user}>", until, request)
        if result.duplicate:
            zone = self.console.zone_of(conv.slack_channel) or self.zone
            said = status.value if until is None else f"snoozed until {when(until, zone)}"
            await self.console.ephemeral(user, f"The conversation is already {said}.", thread)

    async def claim(self, conv: Conversation, user: str, thread: str | None) -> None:
        result = await self.actions.assign(conv.id, user, f"<@{user}>", "claim")
        if result.refused:
            prefix = self.console.settings.command_prefix
            await self.console.ephemeral(
                user, f"Not claimed: <@{result.holder}> has this conversation. Use "
                f"`{prefix}assign <@{user}>` to take it over.", thread)
        elif not result.changed:
            await self.console.ephemeral(user, "You already have this conversation.", thread)

    async def assign(self, conv: Conversation, target: str, user: str,
                     thread: str | None) -> None:
        """Anyone of the workspace who may answer customers (checked with `users.info`)."""
        try:
            agent = await self.console.agent(target)
        except SendError as exc:
            if exc.retryable:
                raise
            agent = None
        if agent is None or not agent.allowed:
            why = agent.reason if agent is not None else "Slack does not know this user"
            await self.console.ephemeral(
                user, f"Not assigned to <@{target}>: {why}.", thread)
            return
        result = await self.actions.assign(conv.id, target, f"<@{user}>", "assign")
        if not result.changed:
            await self.console.ephemeral(user, f"<@{target}> already has it.", thread)

    # -- the parent's Claim button and Assign picker -----------------------------------------
    async def _on_claim_button(self, ack: Ack, body: dict[str, Any]) -> None:
        channel, thread_ts, user = where(body)
        conv = await self._conversation(channel, thread_ts, user)
        if conv is not None:
            await self.claim(conv, user, thread_ts)
        await ack()

    async def _on_picker(self, ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        channel, thread_ts, user = where(body)
        target = field(action, "selected_user")
        conv = await self._conversation(channel, thread_ts, user)
        if conv is not None and target:
            await self.assign(conv, target, user, thread_ts)
        await ack()

    # -- reactions on the parent -------------------------------------------------------------
    def _reaction(self, event: dict[str, Any]) -> tuple[str, str, str] | None:
        user, ts, channel = field(event, "user"), field(event, "item", "ts"), \
            field(event, "item", "channel")
        ws = self.console.workspace
        if (field(event, "item", "type") != "message" or channel not in self.channels
                or not user or not ts or (ws is not None and user == ws.bot_user_id)):
            return None
        return channel, ts, user

    async def _on_reaction_added(self, event: dict[str, Any]) -> None:
        found = self._reaction(event)
        name = event.get("reaction")
        if found is None or name not in (CLOSE_REACTION, CLAIM_REACTION):
            return
        channel, ts, user = found
        if name == CLOSE_REACTION:
            await self.set_status(channel, ts, user, ConversationStatus.CLOSED, True)
            return
        conv = await self._conversation(channel, ts, user, tell=False)
        if conv is not None:
            await self.claim(conv, user, ts)

    async def _on_reaction_removed(self, event: dict[str, Any]) -> None:
        found = self._reaction(event)
        if found is None or event.get("reaction") != CLOSE_REACTION:
            return
        channel, ts, user = found
        conv = await self.actions.conversation_by_thread(channel, ts)
        if conv is not None and conv.status is ConversationStatus.CLOSED:
            await self.set_status(channel, ts, user, ConversationStatus.OPEN, True)
