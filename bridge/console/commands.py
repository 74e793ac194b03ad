"""What agents do in a conversation's thread besides replying: close and reopen (button, message
shortcut, `!close`; claiming, assigning, pending and snoozing are `bridge/console/ownership.py`),
retry a failed delivery, and edit or delete a reply already sent.

Every action is committed before Bolt acknowledges it (`process_before_response=True`), so an
acknowledged click or command is never lost.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from bridge.canned import CannedLibrary
from bridge.console.canned import NAMES as CANNED
from bridge.console.canned import CannedCommands
from bridge.console.continuity import NAMES as CONTINUITY
from bridge.console.continuity import ContinuityActions, ContinuityCommands
from bridge.console.ownership import NAMES as OWNERSHIP
from bridge.console.ownership import OwnershipActions, OwnershipCommands
from bridge.console.payload import where
from bridge.console.queue import QueueActions, QueueCommands
from bridge.console.render import (
    CLOSE_ACTION,
    CLOSE_SHORTCUT,
    REOPEN_ACTION,
    RETRY_ACTION,
    TEMPLATE_ACTION,
)
from bridge.console.slack import SlackConsole
from bridge.console.stats import StatsCommand
from bridge.console.transfer import NAMES as TEAMS
from bridge.console.transfer import TeamActions, TeamCommands
from connectors.base import SendError
from vocab.models import (
    AgentEdit,
    AgentReply,
    Attachment,
    ConversationStatus,
    IngestResult,
)
from vocab.untrusted import parse_id

log = logging.getLogger(__name__)
Ack = Callable[..., Awaitable[None]]
COMMANDS = {"close": ConversationStatus.CLOSED, "reopen": ConversationStatus.OPEN}


class ConsoleActions(ContinuityActions, OwnershipActions, TeamActions, QueueActions, Protocol):
    """The core's side of the console (the router implements it)."""

    async def ingest_reply(self, reply: AgentReply) -> IngestResult: ...

    async def ingest_edit(self, edit: AgentEdit) -> IngestResult: ...

    async def retry(self, ids: Sequence[int]) -> list[int]: ...



def slack_files(event: dict[str, Any]) -> tuple[Attachment, ...]:
    """Files attached to an agent's message, as attachments to fetch with the bot token."""
    found: list[Attachment] = []
    for f in event.get("files") or []:
        if not isinstance(f, dict) or f.get("mode") == "tombstone":
            continue
        url = f.get("url_private_download") or f.get("url_private")
        mime = f.get("mimetype") if isinstance(f.get("mimetype"), str) else None
        size = f.get("size")
        found.append(Attachment(
            kind="photo" if (mime or "").startswith("image/") else "document",
            platform_file_id=str(f.get("id") or ""), filename=f.get("name") or None,
            mime_type=mime, size=size if isinstance(size, int) else None,
            url=url if isinstance(url, str) else None,
        ))
    return tuple(found)


def parse_template_args(rest: str) -> tuple[str, dict[str, str]] | None:
    """`follow_up 1=Dana 2="order 123"` -> ("follow_up", {"1": "Dana", "2": "order 123"})."""
    try:
        words = shlex.split(rest)
    except ValueError:
        return None
    if not words or "=" in words[0]:
        return None
    variables: dict[str, str] = {}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep or not key:
            return None
        variables[key] = value
    return words[0], variables


def template_reply(reply: AgentReply, name: str, variables: dict[str, str]) -> AgentReply:
    """The agent's template send, stored like a reply: its text says what went out."""
    shown = " ".join(f"{k}={v}" for k, v in variables.items())
    return reply.model_copy(update={
        "text": f"[template {name}{' ' + shown if shown else ''}]", "files": (),
        "template": json.dumps({"name": name, "variables": variables})})


def parse_command(text: str, prefix: str) -> tuple[str, str] | None:
    """`!close`, `!reopen ...`: (name, rest); None unless the text is a thread command."""
    stripped = text.strip()
    if not stripped.startswith(prefix):
        return None
    name, _, rest = stripped[len(prefix):].partition(" ")
    if not name or not name[0].isalpha():
        return None  # "!!! urgent" is a reply, not a command
    return name.lower(), rest.strip()


class ConsoleCommands:
    def __init__(self, console: SlackConsole, actions: ConsoleActions,
                 canned: CannedLibrary | None = None) -> None:
        self.console = console
        self.actions = actions
        self.channels = console.channels  # every team's channel
        self.continuity = ContinuityCommands(console, actions, self._allowed)
        self.ownership = OwnershipCommands(console, actions, self._allowed, self._set)
        self.teams = TeamCommands(console, actions, self._allowed)
        self.queue = QueueCommands(console, actions)
        self.canned = (None if canned is None
                       else CannedCommands(console, actions, canned, self._allowed))
        self.stats = StatsCommand(console)
        self.queue.extra_home = self.stats.home_blocks

    def register(self, bolt: Any) -> None:
        self.continuity.register(bolt)
        self.ownership.register(bolt)
        self.teams.register(bolt)
        self.queue.register(bolt)
        if self.canned is not None:
            self.canned.register(bolt)
        bolt.action(CLOSE_ACTION)(self._on_close_button)
        bolt.action(REOPEN_ACTION)(self._on_reopen_button)
        bolt.action(RETRY_ACTION)(self._on_retry)
        bolt.action(re.compile(f"^{TEMPLATE_ACTION}:"))(self._on_template)
        bolt.shortcut(CLOSE_SHORTCUT)(self._on_close_shortcut)

    async def _allowed(self, user: str, thread_ts: str | None) -> bool:
        try:
            agent = await self.console.agent(user)
        except SendError as exc:
            if exc.retryable:  # Slack could not say who asked: refuse the event, Slack retries
                raise
            log.warning("not done: could not look up %s: %s", user, exc.describe())
            return False
        if not agent.allowed:
            await self.console.ephemeral(user, f"Not done: {agent.reason}.", thread_ts)
        return agent.allowed

    async def _set(self, channel: str, thread_ts: str, user: str,
                   status: ConversationStatus, quiet: bool = False) -> None:
        """Close or reopen; `quiet` (a reaction): nothing said when nothing was done."""
        conv = None
        if channel in self.channels:
            conv = await self.actions.conversation_by_thread(channel, thread_ts)
        if conv is None:
            if not quiet:
                await self.console.ephemeral(
                    user, "This message is not part of a customer conversation.", None)
            return
        if not await self._allowed(user, thread_ts):
            return
        result = await self.actions.set_status(conv.id, status, f"<@{user}>")
        if result.duplicate and not quiet:
            state = "closed" if status is ConversationStatus.CLOSED else "open"
            await self.console.ephemeral(user, f"The conversation is already {state}.",
                                         thread_ts)

    # -- thread commands (called by the message listener) ------------------------------------
    async def command(self, reply: AgentReply, name: str, rest: str = "") -> None:
        if name == "template":
            await self._template_command(reply, rest)
            return
        if name in CONTINUITY:
            await self.continuity.command(reply, name, rest)
            return
        if name in OWNERSHIP:
            await self.ownership.command(reply, name, rest)
            return
        if name in TEAMS:
            await self.teams.command(reply, name, rest)
            return
        if name == "queue":
            await self.queue.command(reply)
            return
        if name in CANNED and self.canned is not None:
            await self.canned.command(reply, name, rest)
            return
        if name == "stats":
            await self.stats.command(reply, rest)
            return
        status = COMMANDS.get(name)
        if status is None:
            prefix = self.console.settings.command_prefix
            known = ", ".join(f"{prefix}{c}" for c in (*OWNERSHIP, *COMMANDS, "template",
                                                       *CONTINUITY, *TEAMS, "queue",
                                                       *CONTINUITY, *TEAMS, "queue", "stats",
                                                       *(CANNED if self.canned else ())))
            await self.console.ephemeral(
                reply.slack_user, f"Unknown command `{name}`; this thread knows {known}. "
                "Nothing was sent to the customer.", reply.thread_ts)
            return
        await self._set(reply.slack_channel, reply.thread_ts, reply.slack_user, status)

    async def _template_command(self, reply: AgentReply, rest: str) -> None:
        """`!template <name> [1=value 2=value]`: send an approved template (outside a window)."""
        parsed = parse_template_args(rest)
        if parsed is None:
            prefix = self.console.settings.command_prefix
            await self.console.ephemeral(
                reply.slack_user, f"Usage: `{prefix}template &lt;name&gt; [1=value 2=value ...]`. "
                "Nothing was sent to the customer.", reply.thread_ts)
            return
        name, variables = parsed
        if not await self._allowed(reply.slack_user, reply.thread_ts):
            return
        result = await self.actions.ingest_reply(template_reply(reply, name, variables))
        if result.conversation_id is None:
            await self.console.ephemeral(
                reply.slack_user, "This thread is not a customer conversation.", None)

    async def _on_template(self, ack: Ack, body: dict[str, Any],
                           action: dict[str, Any]) -> None:
        """A "Send template" button on a window notice: queued once per notice (the notice's
        ts keys the send, so a second click is a duplicate), then the buttons go away."""
        channel, thread_ts, user = where(body)
        message = body.get("message") or {}
        name = str(action.get("value") or "")
        ts = str(message.get("ts") or "")
        if channel in self.channels and name and ts and await self._allowed(user, thread_ts):
            reply = AgentReply(slack_channel=channel, slack_ts=ts, thread_ts=thread_ts,
                               slack_user=user, text="", is_note=False)
            result = await self.actions.ingest_reply(template_reply(reply, name, {}))
            note = (f"template *{name}* queued by <@{user}>" if not result.duplicate
                    else "a template was already sent from this notice")
            await self._settle_notice(message, channel, note)
        await ack()

    async def _settle_notice(self, message: dict[str, Any], channel: str, note: str) -> None:
        """A notice's button was used: its buttons go away and `note` says what came of it.
        What the click did is already committed, so a failed update only loses the note."""
        try:
            await self.console.update(str(message.get("ts") or ""),
                                      f"{message.get('text') or ''}\n_{note}._", [],
                                      channel=channel)
        except SendError as exc:
            log.warning("could not update the notice: %s", exc.describe())

    # -- buttons and shortcuts ---------------------------------------------------------------
    async def _on_close_button(self, ack: Ack, body: dict[str, Any]) -> None:
        channel, thread_ts, user = where(body)
        await self._set(channel, thread_ts, user, ConversationStatus.CLOSED)
        await ack()

    async def _on_reopen_button(self, ack: Ack, body: dict[str, Any]) -> None:
        channel, thread_ts, user = where(body)
        await self._set(channel, thread_ts, user, ConversationStatus.OPEN)
        await ack()

    async def _on_close_shortcut(self, ack: Ack, body: dict[str, Any]) -> None:
        channel, thread_ts, user = where(body)
        await self._set(channel, thread_ts, user, ConversationStatus.CLOSED)
        await ack()

    async def _on_retry(self, ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        channel, thread_ts, user = where(body)
        item_id = parse_id(action.get("value"))
        if channel in self.channels and item_id is not None and \
                await self._allowed(user, thread_ts):
            queued = await self.actions.retry([item_id])
            message = body.get("message") or {}
            note = "queued again" if queued else "already done or queued"
            await self._settle_notice(message, channel, f"Retry {note} by <@{user}>")
        await ack()

    # -- edits and deletions of sent replies -------------------------------------------------
    def edit_of(self, event: dict[str, Any], body: dict[str, Any]) -> AgentEdit | None:
        """An agent's change to a reply (message_changed / message_deleted), or None."""
        channel = event.get("channel")
        if not isinstance(channel, str) or channel not in self.channels:
            return None
        event_id = body.get("event_id") if isinstance(body.get("event_id"), str) else None
        if event.get("subtype") == "message_deleted":
            ts = event.get("deleted_ts") or (event.get("previous_message") or {}).get("ts")
            if not isinstance(ts, str):
                return None
            return AgentEdit(slack_channel=channel, slack_ts=ts, text=None,
                             event_id=event_id)
        message = event.get("message") or {}
        previous = event.get("previous_message") or {}
        if message.get("bot_id") or not isinstance(message.get("ts"), str):
            return None
        text = message.get("text")
        if not isinstance(text, str) or text == previous.get("text"):
            return None  # an unfurl, a reply count, a reaction: not an edit of the words
        return AgentEdit(slack_channel=channel, slack_ts=message["ts"], text=text,
                         event_id=event_id)
