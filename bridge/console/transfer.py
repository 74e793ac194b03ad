"""Teams from a thread: `!transfer <team>` (and the parent's Transfer picker) moves a conversation
to another team's channel; `!tag <word>` / `!untag <word>` tag it (`customer:<word>`: its
customer, what routing rules' `customer_tags` match).

A transfer is one transaction (storage/teams.py): the old thread gets a last line naming the new
channel and takes no more replies, the new channel gets a parent (the customer's first message,
status, assignee) and a first notice with the customer's card, the last messages and a link back.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from bridge.console.payload import field, where
from bridge.console.people import card_text, history_text
from bridge.console.render import TRANSFER_PICKER as TRANSFER_ACTION
from bridge.console.slack import SlackConsole
from storage.base import Moved, Store, Tagged
from vocab.events import MovedHere
from vocab.models import AgentReply, Conversation, ConversationId
from vocab.mrkdwn import mrkdwn_escape

log = logging.getLogger(__name__)
Ack = Callable[..., Awaitable[None]]
Allowed = Callable[[str, str | None], Awaitable[bool]]
NAMES = ("transfer", "tag", "untag")
SUMMARY_MESSAGES = 5  # the last messages the new thread's first notice shows
_TAG = re.compile(r"(customer:)?[\w][\w.-]{0,39}")


class TeamActions(Protocol):
    async def conversation_by_thread(self, channel: str,
                                     thread_ts: str) -> Conversation | None: ...

    async def transfer(self, conversation_id: ConversationId, team: str,
                       actor: str) -> Moved | str: ...

    async def tag(self, conversation_id: ConversationId, word: str, add: bool) -> Tagged: ...

    async def moved_thread(self, channel: str, thread_ts: str) -> Conversation | None: ...


def transfer_options(teams: Sequence[str], current: str | None) -> list[dict[str, Any]]:
    """The Transfer picker's options: every team but the conversation's own."""
    return [{"text": {"type": "plain_text", "text": name}, "value": name}
            for name in teams if name != current][:100]


def moved_parent(body: str, team: str, channel: str) -> tuple[str, list[dict[str, Any]]]:
    """The old thread's parent once the conversation moved: its text, where it went, no
    buttons (they would act on nothing here)."""
    said = f":arrow_right: Transferred to team *{team}* (<#{channel}>)"
    return f"{body}\n{said}", [
        {"type": "section", "text": {"type": "mrkdwn", "text": body[:3000] or " "}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": said}]}]


async def moved_here_text(store: Store, conversation_id: ConversationId, event: MovedHere,
                          text: str, link: Callable[[str, str | None], str]) -> str:
    """The new thread's first notice, drawn when posted: a link to the old thread, the
    customer's card and the last messages."""
    text += f" <{link(event.from_thread, event.from_channel)}|The earlier thread>."
    conv = await store.get_conversation(conversation_id)
    card = None if conv is None else await store.customer_card(conv.customer_id)
    if card is not None:
        text += "\n" + card_text(card)
    messages = await store.messages(conversation_id)
    known = {} if card is None else {i.id: i for i in card.identities}
    return history_text(text + "\nThe last messages:", messages[-SUMMARY_MESSAGES:], known)


class TeamCommands:
    def __init__(self, console: SlackConsole, actions: TeamActions, allowed: Allowed) -> None:
        self.console = console
        self.actions = actions
        self.allowed = allowed

    def register(self, bolt: Any) -> None:
        bolt.action(TRANSFER_ACTION)(self._on_picker)

    async def moved_away(self, reply: AgentReply) -> bool:
        """A reply (or command) in a thread the conversation moved away from: the agent is
        told where it went, privately; nothing is sent."""
        conv = await self.actions.moved_thread(reply.slack_channel, reply.thread_ts)
        if conv is None:
            return False
        where = ""
        if conv.slack_channel:
            where = f" to <#{conv.slack_channel}>"
            if conv.slack_thread_ts:
                link = self.console.permalink(conv.slack_thread_ts, conv.slack_channel)
                where += f" (<{link}|its thread>)"
        await self.console.ephemeral(
            reply.slack_user, f"This conversation was transferred{where}: write there. "
            "Nothing was sent to the customer.", reply.thread_ts)
        return True

    async def command(self, reply: AgentReply, name: str, rest: str) -> None:
        user, thread = reply.slack_user, reply.thread_ts
        prefix = self.console.settings.command_prefix
        word = rest.strip().lower()
        if name == "transfer" and not word:
            await self.console.ephemeral(
                user, f"Usage: `{prefix}transfer &lt;team&gt;` (teams: "
                f"{', '.join(self.console.teams)}). Nothing was changed.", thread)
            return
        if name in ("tag", "untag") and not _TAG.fullmatch(word):
            await self.console.ephemeral(
                user, f"Usage: `{prefix}{name} &lt;word&gt;` or "
                f"`{prefix}{name} customer:&lt;word&gt;` (letters, digits, `-`, `.`, `_`). "
                "Nothing was changed.", thread)
            return
        conv = await self.actions.conversation_by_thread(reply.slack_channel, thread)
        if conv is None:
            await self.console.ephemeral(
                user, "This thread is not a customer conversation.", thread)
            return
        if not await self.allowed(user, thread):
            return
        if name == "transfer":
            await self.transfer(conv, word, user, thread)
            return
        result = await self.actions.tag(conv.id, word, name == "tag")
        if not result.changed:
            state = "already has" if name == "tag" else "does not have"
            whose = "The customer" if result.customer else "The conversation"
            await self.console.ephemeral(
                user, f"{whose} {state} the tag `{mrkdwn_escape(word)}`.", thread)

    async def transfer(self, conv: Conversation, team: str, user: str,
                       thread: str | None) -> None:
        result = await self.actions.transfer(conv.id, team, f"<@{user}>")
        if isinstance(result, str):
            await self.console.ephemeral(user, f"Not transferred: {result}.", thread)
        elif result.already:
            await self.console.ephemeral(
                user, f"The conversation is already with team {team}.", thread)
        elif result.not_posted:
            await self.console.ephemeral(
                user, "Not transferred yet: the conversation is still being posted here; "
                "try again in a moment.", thread)

    async def _on_picker(self, ack: Ack, body: dict[str, Any],
                         action: dict[str, Any]) -> None:
        """The parent's Transfer picker."""
        channel, thread, user = where(body)
        team = field(action, "selected_option", "value")
        conv = None
        if channel in self.console.channels and thread and team:
            conv = await self.actions.conversation_by_thread(channel, thread)
        if conv is not None and await self.allowed(user, thread):
            await self.transfer(conv, team, user, None)
        await ack()
