"""The demo's CSAT act (issue 23): the #care team asks how it went.  Mila's lamp question is
routed to #care; Dana answers and closes; Mila gets the question with buttons on Telegram,
presses 4, and the answer lands in the thread; the buttons are gone and the conversation
stays closed."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import aiohttp

from bridge.demo_wait import until
from bridge.standins.slack import SlackEventSender, SlackStandin
from bridge.standins.telegram import TelegramStandin

CARE = "C0DEMOCARE"
MILA = 636363
SHOWN = {":star:": "⭐", ":clipboard:": "📋", ":lock:": "🔒"}


def with_csat(config: dict[str, Any]) -> dict[str, Any]:
    """The demo's config plus a #care team (keyword "lamp") whose closes ask for a rating."""
    routing = config.get("routing", {})
    rules = [*routing.get("rules", []), {"team": "care", "keywords": ["lamp"]}]
    return {**config, "teams.care": {"channel": CARE}, "teams.care.csat": {"enabled": True},
            "routing": {**routing, "rules": rules}}


class CsatAct:
    def __init__(self, slack: SlackStandin, telegram: TelegramStandin, agent: SlackEventSender,
                 user: str, readable: Callable[[str], str]) -> None:
        self.slack, self.telegram, self.agent, self.user = slack, telegram, agent, user
        self._readable = readable

    def readable(self, text: str) -> str:
        for code, emoji in SHOWN.items():
            text = text.replace(code, emoji)
        return self._readable(text)

    async def _agent(self, thread: str, text: str) -> None:
        event = self.agent.message_event(channel=CARE, user=self.user, text=text,
                                         thread_ts=thread)
        status, _ = await self.agent.post(event)
        assert status == 200, f"slack event answered {status}"

    def _lines(self, thread: str) -> list[str]:
        return [str(m["text"]) for m in self.slack.thread(CARE, thread)[1:]]

    async def play(self, out: list[str], session: aiohttp.ClientSession) -> bool:
        out.append("Mila, on Telegram: how did it go?")
        update = self.telegram.text_update(chat_id=MILA, text="My new lamp flickers.",
                                           first_name="Mila")
        status, _ = await self.telegram.deliver(update, session)
        assert status == 200, f"webhook answered {status}"
        await until(lambda: len(self.slack.parents(CARE)) == 1, "Mila's thread in #care")
        thread = str(self.slack.parents(CARE)[0]["ts"])
        await self._agent(thread, "Try another socket; if it still flickers, we replace it.")
        await self._agent(thread, "!close")

        def question() -> list[dict[str, Any]]:
            return [m for m in self.telegram.sent
                    if m["chat_id"] == MILA and m.get("reply_markup")]
        await until(lambda: bool(question()), "the survey on Telegram")
        [asked] = question()
        keys = [b for row in asked["reply_markup"]["inline_keyboard"] for b in row]
        text = html.unescape(re.sub(r"</?b>", "", str(asked["text"]))).replace("\n", ": ")
        out.append(f"  Dana closed the conversation; Mila got: {text} "
                   f"{' '.join('[' + b['text'] + ']' for b in keys)}")
        press = self.telegram.callback_update(chat_id=MILA, message_id=asked["message_id"],
                                              data=keys[3]["callback_data"], first_name="Mila")
        status, _ = await self.telegram.deliver(press, session)
        assert status == 200, f"webhook answered {status}"
        await until(lambda: any("4/5" in line for line in self._lines(thread)),
                          "the answer in the thread")
        out.append("  Mila pressed [4]; the #care thread now ends:")
        for line in self._lines(thread)[-3:]:
            out.append(f"  [bridge] {self.readable(line)}")
        gone = self.telegram.markups.get((MILA, int(asked["message_id"]))) is None
        answered = all(self.telegram.callbacks.values())
        out.append("  The buttons were removed from Mila's message after her answer; the "
                   "conversation stays closed." if gone else "ERROR: the buttons stayed")
        return gone and answered
