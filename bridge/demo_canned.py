"""The demo's canned-reply act (issue 22): Dana previews a ready answer filled for Gina (only
Dana sees it), then sends it; Gina gets it once, and the thread shows it under Dana's name."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from bridge.console.canned_views import SEND_ACTION
from bridge.demo_wait import until
from bridge.standins.slack import SlackEventSender, SlackStandin
from bridge.standins.telegram import TelegramStandin

CANNED_CONFIG: dict[str, dict[str, Any]] = {"canned": {"dir": "canned"}}
LATE = """---
name: late
title: Parcel running late
---
Hi {{ customer.first_name | default("there") }}, this is {{ agent.name }}: order
{{ customer.fields.order_id }} left our depot today and arrives tomorrow.
"""


def write_replies(workdir: Path) -> None:
    """The demo's `[canned] dir`: one team reply."""
    (workdir / "canned").mkdir(exist_ok=True)
    (workdir / "canned" / "late.md").write_text(LATE, encoding="utf-8")


class CannedAct:
    def __init__(self, slack: SlackStandin, telegram: TelegramStandin, agent: SlackEventSender,
                 channel: str, user: str, readable: Callable[[str], str]) -> None:
        self.slack, self.telegram, self.agent = slack, telegram, agent
        self.channel, self.user, self.readable = channel, user, readable

    async def _agent(self, thread: str, text: str) -> None:
        event = self.agent.message_event(channel=self.channel, user=self.user, text=text,
                                         thread_ts=thread)
        status, _ = await self.agent.post(event)
        assert status == 200, f"slack event answered {status}"

    async def play(self, out: list[str], session: aiohttp.ClientSession) -> bool:
        slack, telegram = self.slack, self.telegram
        parents = len(slack.parents(self.channel))
        out.append("A canned reply, filled for the customer:")
        update = telegram.text_update(chat_id=929292, text="Where is my parcel?",
                                      first_name="Gina")
        assert (await telegram.deliver(update, session))[0] == 200
        await until(lambda: len(slack.parents(self.channel)) > parents, "Gina's thread")
        thread = str(slack.parents(self.channel)[-1]["ts"])
        out.append("  Gina wrote 'Where is my parcel?'; Dana wrote '!field order_id A-1042' "
                   "and '!canned late' in her thread")
        await self._agent(thread, "!field order_id A-1042")
        shown = len(slack.ephemerals)
        await self._agent(thread, "!canned late")
        await until(lambda: any(e.get("blocks") for e in slack.ephemerals[shown:]),
                          "the preview")
        preview = next(e for e in slack.ephemerals[shown:] if e.get("blocks"))
        text = str(preview["blocks"][0]["text"]["text"]).replace(">", "").replace("\n", " ")
        out.append(f"  Only Dana sees, with Send / Edit / Cancel: {self.readable(text)}")
        sent = len(telegram.calls_to("sendMessage"))
        button = next(e for b in preview["blocks"] for e in b.get("elements") or []
                      if e.get("action_id") == SEND_ACTION)
        click = self.agent.ephemeral_action(channel=self.channel, user=self.user,
                                            ephemeral=preview, action_id=SEND_ACTION,
                                            value=str(button["value"]),
                                            response_url=slack.response_url(preview))
        assert (await self.agent.post_interaction(click))[0] == 200
        def canned() -> list[str]:  # other answers (a greeting) may reach Gina too
            return [str(c.params.get("text")) for c in telegram.calls_to("sendMessage")[sent:]
                    if "A-1042" in str(c.params.get("text"))]
        await until(lambda: bool(canned()), "the canned reply on Telegram")
        got = canned()[0]
        shown_to_gina = html.unescape(re.sub(r"</?b>", "", got)).replace("\n", ": ", 1)
        out.append(f"  Dana clicked Send; Gina got on Telegram: "
                   f"{shown_to_gina.replace(chr(10), ' ')}")
        posts = [m for m in slack.thread(self.channel, thread) if m.get("username")]
        out.append(f"  The thread shows it posted as {posts[0]['username'] if posts else '?'}")
        return len(posts) == 1 and "A-1042" in got and "Hi Gina" in got
