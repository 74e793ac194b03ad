"""The demo's teams act (issue 19): a routing rule sends Eve's refund question to the billing
team's own channel; Dana transfers Frank's conversation from support to billing, and the
billing thread answers him."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Callable
from typing import Any

import aiohttp

from bridge.demo_wait import until
from bridge.standins.slack import SlackEventSender, SlackStandin
from bridge.standins.telegram import TelegramStandin

BILLING = "C0DEMOBILL"
TEAM_CONFIG: dict[str, dict[str, Any]] = {
    "teams.billing": {"channel": BILLING},
    "routing": {"rules": [{"team": "billing", "keywords": ["refund", "refunds"]}]},
}


class TeamsAct:
    def __init__(self, slack: SlackStandin, telegram: TelegramStandin, agent: SlackEventSender,
                 support: str, user: str, readable: Callable[[str], str]) -> None:
        self.slack, self.telegram, self.agent = slack, telegram, agent
        self.support, self.user = support, user
        self.names = {f"<#{support}>": "#support", f"<#{BILLING}>": "#billing"}
        self._readable = readable

    def readable(self, text: str) -> str:
        for raw, name in self.names.items():
            text = text.replace(raw, name)
        return self._readable(text)

    async def _says(self, session: aiohttp.ClientSession, chat: int, name: str,
                    text: str) -> None:
        update = self.telegram.text_update(chat_id=chat, text=text, first_name=name)
        status, _ = await self.telegram.deliver(update, session)
        assert status == 200, f"webhook answered {status}"

    async def _agent(self, channel: str, thread: str, text: str) -> None:
        event = self.agent.message_event(channel=channel, user=self.user, text=text,
                                         thread_ts=thread)
        status, _ = await self.agent.post(event)
        assert status == 200, f"slack event answered {status}"

    async def play(self, out: list[str], session: aiohttp.ClientSession) -> bool:
        slack = self.slack
        supports = len(slack.parents(self.support))
        out.append("Two team channels, #support and #billing:")
        await self._says(session, 717171, "Eve", "Hello, how do refunds work?")
        await until(lambda: len(slack.parents(BILLING)) == 1, "Eve's thread in #billing")
        out.append("  Eve wrote 'Hello, how do refunds work?': a routing rule (keyword "
                   "'refund') opened her thread in #billing")
        await self._says(session, 818181, "Frank", "My kettle leaks. Can I have my money back?")
        await until(lambda: len(slack.parents(self.support)) == supports + 1,
                          "Frank's thread in #support")
        old = str(slack.parents(self.support)[-1]["ts"])
        out.append("  Frank's 'My kettle leaks. Can I have my money back?' matched no rule: "
                   "#support")
        await self._agent(self.support, old, "!transfer billing")
        await until(lambda: len(slack.parents(BILLING)) == 2, "Frank's parent in #billing")
        new = str(slack.parents(BILLING)[-1]["ts"])
        await until(lambda: len(slack.thread(BILLING, new)) >= 2, "the first notice")
        await until(lambda: len(slack.thread(self.support, old)) >= 2, "the last line")
        out.append("  Dana wrote '!transfer billing' in Frank's #support thread, which ends:")
        out.append(f"  [bridge] {self.readable(str(slack.thread(self.support, old)[-1]['text']))}")
        out.append("  In #billing, a new thread for Frank starts:")
        parent = str(slack.thread(BILLING, new)[0]["text"]).replace("\n", ": ")
        out.append(f"  [bridge] {self.readable(parent)}")
        for line in str(slack.thread(BILLING, new)[1]["text"]).splitlines():
            out.append(f"  [bridge] {self.readable(line)}")
        sent = len(self.telegram.calls_to("sendMessage"))
        await self._agent(self.support, old, "Written in the old thread")
        await self._agent(BILLING, new, "Billing here: a refund is on its way.")
        await until(lambda: len(self.telegram.calls_to("sendMessage")) > sent,
                          "the billing reply on Telegram")
        await asyncio.sleep(0.3)  # a reply from the old thread would have gone out by now
        got = [str(c.params.get("text")) for c in self.telegram.calls_to("sendMessage")[sent:]]
        shown = html.unescape(re.sub(r"</?b>", "", got[-1])).replace("\n", ": ")
        out.append(f"  Frank got on Telegram: {shown}")
        out.append("  A reply written in the old #support thread was not sent; Dana was told "
                   "privately where the conversation went.")
        told = any("was transferred" in str(e["text"]) for e in slack.ephemerals)
        return len(got) == 1 and "refund" in got[0] and told
