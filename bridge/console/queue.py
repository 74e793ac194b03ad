"""The queue in Slack: the app's Home tab (`app_home_opened` → `views.publish`) and `!queue`
(a private note), each showing the asking agent what `bridge/queue.py` selects."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from bridge.console.due import due_line
from bridge.console.slack import SlackConsole
from bridge.queue import Section, agent_sections, waited
from storage.base import QueueEntry
from vocab.continuity import channel_label
from vocab.models import AgentReply
from vocab.mrkdwn import mrkdwn_escape

log = logging.getLogger(__name__)
MAX_BLOCKS = 100  # Slack's cap for a view
PER_SECTION = 20  # entries shown per section (the count says how many there are)


class QueueActions(Protocol):
    async def queue(self) -> list[QueueEntry]: ...

    def now(self) -> float: ...


def entry_line(entry: QueueEntry, now: float, link: Callable[[str, str | None], str]) -> str:
    name = mrkdwn_escape(entry.customer or "A customer")
    if entry.slack_thread_ts:
        name = f"<{link(entry.slack_thread_ts, entry.slack_channel)}|{name}>"
    where = f" · <#{entry.slack_channel}>" if entry.slack_channel else ""
    wait = waited(entry, now)
    wait = "answered, waiting on nobody" if wait == "answered" else f"waiting {wait}"
    due = f" · {due_line(entry.target)}" if entry.target is not None else ""
    return f"{name} · {channel_label(entry.connector)} · {wait}{due}{where}"


def queue_text(sections: Sequence[Section], now: float,
               link: Callable[[str, str | None], str]) -> str:
    lines: list[str] = []
    for section in sections:
        lines.append(f"*{section.title}* ({len(section.entries)})")
        lines.extend(f"• {entry_line(e, now, link)}" for e in section.entries[:PER_SECTION])
        if not section.entries:
            lines.append("_nobody_")
    return "\n".join(lines)


def home_blocks(sections: Sequence[Section], now: float,
                link: Callable[[str, str | None], str]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {
        "type": "plain_text", "text": "Your queue"}}]
    for section in sections:
        if len(blocks) + 2 > MAX_BLOCKS:
            break
        blocks.append({"type": "section", "text": {
            "type": "mrkdwn", "text": f"*{section.title}* ({len(section.entries)})"}})
        shown = [f"• {entry_line(e, now, link)}" for e in section.entries[:PER_SECTION]]
        blocks.append({"type": "context", "elements": [{
            "type": "mrkdwn", "text": "\n".join(shown) or "_nobody_"}]})
    return blocks


class QueueCommands:
    def __init__(self, console: SlackConsole, actions: QueueActions) -> None:
        self.console = console
        self.actions = actions
        # More blocks for the Home tab (the KPIs of the agent's teams, bridge/console/stats.py)
        self.extra_home: Callable[[str], Awaitable[list[dict[str, Any]]]] | None = None

    def register(self, bolt: Any) -> None:
        bolt.event("app_home_opened")(self._on_home)

    async def sections(self, user: str) -> list[Section]:
        return agent_sections(await self.actions.queue(), self.console.team_info, user)

    async def command(self, reply: AgentReply) -> None:
        """`!queue`: the same as the Home tab, privately, in the thread."""
        text = queue_text(await self.sections(reply.slack_user), self.actions.now(),
                          self.console.permalink)
        await self.console.ephemeral(reply.slack_user, text, reply.thread_ts)

    async def _on_home(self, event: dict[str, Any]) -> None:
        user = event.get("user")
        if event.get("tab", "home") != "home" or not isinstance(user, str) or not user:
            return
        blocks = home_blocks(await self.sections(user), self.actions.now(),
                             self.console.permalink)
        if self.extra_home is not None:
            extra = await self.extra_home(user)
            blocks = blocks[:MAX_BLOCKS - len(extra)] + extra
        await self.console.publish_home(user, blocks)
