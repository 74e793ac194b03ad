"""The demo's automatic-answers act (issue 21): on a Saturday the shop team is closed; Greta's
shipping question gets one closed reply naming Monday's opening and an FAQ answer at once,
and her "agent" hands the conversation to a person (the thread calls Dana)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from bridge.demo_wait import until
from bridge.standins.clock import OffsetClock
from bridge.standins.slack import SlackStandin
from bridge.standins.telegram import TelegramStandin

SHOP = "C0DEMOSHOP"
ZONE = ZoneInfo("Europe/Belgrade")
GRETA = 939393
FAQ = """
[[faq]]
questions = ["Do you ship to Austria?", "Do you deliver abroad?"]
answer = "Yes: we ship to every EU country, in 3 to 5 working days."
"""
EMOJI = {":robot_face:": "🤖", ":raising_hand:": "🙋"}


def auto_config(workdir: Path, base: Mapping[str, Mapping[str, Any]],
                agent: str) -> dict[str, Any]:
    """`base` plus the shop team (weekday hours, a closed reply), a rule sending shipping
    questions to it, and an FAQ file written into `workdir`."""
    (workdir / "faq.toml").write_text(FAQ, encoding="utf-8")
    rules = [*base.get("routing", {}).get("rules", []),
             {"team": "shop", "keywords": ["ship", "shipping"]}]
    weekdays = ("monday", "tuesday", "wednesday", "thursday", "friday")
    return {**base, "routing": {"rules": rules},
            "hours.shop": {"timezone": ZONE.key, **{d: ["09:00-17:00"] for d in weekdays}},
            "teams.shop": {"channel": SHOP, "members": [agent], "hours": "shop",
                           "closed_reply": True},
            "faq": {"file": str(workdir / "faq.toml"), "threshold": 80}}


class AutoAct:
    def __init__(self, slack: SlackStandin, telegram: TelegramStandin, clock: OffsetClock,
                 readable: Callable[[str], str]) -> None:
        self.slack, self.telegram, self.clock = slack, telegram, clock
        self._readable = readable

    def readable(self, text: str) -> str:
        for code, emoji in EMOJI.items():
            text = text.replace(code, emoji)
        return self._readable(text)

    def _saturday(self) -> None:
        """Move the business clock to the next Saturday, 10:00 in the shop's zone."""
        now = datetime.fromtimestamp(self.clock(), ZONE)
        day = now + timedelta(days=(5 - now.weekday()) % 7 or 7)
        target = day.replace(hour=10, minute=0, second=0, microsecond=0)
        self.clock.offset += target.timestamp() - self.clock()

    def _sent(self) -> list[str]:
        out = []
        for m in self.telegram.sent:
            if m["chat_id"] == GRETA:
                who, _, said = html.unescape(re.sub(r"</?b>", "", str(m["text"]))).partition("\n")
                out.append(f"{who}: {' '.join(said.split())}")
        return out

    async def _says(self, session: aiohttp.ClientSession, text: str, count: int) -> None:
        update = self.telegram.text_update(chat_id=GRETA, text=text, first_name="Greta")
        status, _ = await self.telegram.deliver(update, session)
        assert status == 200, f"webhook answered {status}"
        await until(lambda: len(self._sent()) >= count, f"{count} answers to Greta")

    async def play(self, out: list[str], session: aiohttp.ClientSession) -> bool:
        self._saturday()
        out.append("Saturday 10:00, the shop team is closed (open Monday to Friday, 9-17):")
        await self._says(session, "Hi, do you ship to Austria?", 2)
        out.append("  Greta (customer): Hi, do you ship to Austria?")
        await self._says(session, "Thanks! And is there a discount?", 2)
        await self._says(session, "agent", 3)
        for line in self._sent():
            out.append(f"  Greta got: {line}")
        thread = str(self.slack.parents(SHOP)[-1]["ts"])
        out.append("  The #shop thread shows:")
        await until(lambda: any("asked for a person" in str(m["text"])
                                for m in self.slack.thread(SHOP, thread)),
                    "the handover in the thread")
        for msg in self.slack.thread(SHOP, thread)[1:]:
            out.append(f"  [thread] {self.readable(str(msg['text'])).replace(chr(10), ' ')}")
        got = self._sent()
        return (len(got) == 3 and "Monday 9:00" in got[0] and "EU country" in got[1]
                and "a person will answer" in got[2])
