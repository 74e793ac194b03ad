"""The demo's response-time act (issue 20): Gus's urgent message opens a thread in #urgent,
whose team owes a first answer within 10 minutes; the clock moves 9 minutes on and the
parent turns amber (🟡) with one reminder to Dana; her reply meets the target."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from bridge.demo_wait import until
from bridge.standins.clock import OffsetClock
from bridge.standins.slack import SlackEventSender, SlackStandin
from bridge.standins.telegram import TelegramStandin

URGENT = "C0DEMOURGE"


def with_targets(config: dict[str, Any], agent: str) -> dict[str, Any]:
    """The demo's config plus a team `urgent` with a 10-minute first-answer target."""
    rules = [{"team": "urgent", "keywords": ["urgent"]}, *config["routing"]["rules"]]
    return {**config, "routing": {"rules": rules},
            "teams.urgent": {"channel": URGENT, "members": [agent], "first_response": "10m"}}


class HoursAct:
    def __init__(self, slack: SlackStandin, telegram: TelegramStandin, agent: SlackEventSender,
                 user: str, clock: OffsetClock, tick: Callable[[], Awaitable[int]],
                 readable: Callable[[str], str]) -> None:
        self.slack, self.telegram, self.agent, self.user = slack, telegram, agent, user
        self.clock, self.tick, self.readable = clock, tick, readable

    def _context(self) -> str:
        top = self.slack.parents(URGENT)[-1]
        return next((str(b["elements"][0]["text"]) for b in top.get("blocks") or []
                     if b["type"] == "context"), "")

    async def play(self, out: list[str], session: aiohttp.ClientSession) -> bool:
        update = self.telegram.text_update(chat_id=919191, text="URGENT: I was charged twice",
                                           first_name="Gus")
        status, _ = await self.telegram.deliver(update, session)
        assert status == 200, f"webhook answered {status}"
        await until(lambda: bool(self.slack.parents(URGENT)), "Gus's thread in #urgent")
        thread = str(self.slack.parents(URGENT)[-1]["ts"])
        out.append("Gus, a response-time target (team urgent: first answer within 10 minutes):")
        await self.tick()
        await until(lambda: "⏱" in self._context(), "the due time on the parent")
        out.append(f"  The parent shows: {self.readable(self._context())}")
        self.clock.offset += 9 * 60
        await self.tick()
        await until(lambda: "🟡" in self._context(), "the parent turning amber")
        out.append(f"  Nine minutes later (a moved clock): {self.readable(self._context())}")
        await until(lambda: len(self.slack.thread(URGENT, thread)) >= 2, "the reminder")
        reminder = str(self.slack.thread(URGENT, thread)[1]["text"])
        out.append(f"  [bridge] {self.readable(reminder)}")
        sent = len(self.telegram.calls_to("sendMessage"))
        event = self.agent.message_event(channel=URGENT, user=self.user, thread_ts=thread,
                                         text="Sorry Gus, the second charge is refunded.")
        assert (await self.agent.post(event))[0] == 200
        await self.telegram.wait_for("sendMessage", sent + 1)
        await self.tick()
        await until(lambda: "🟡" not in self._context(), "the target met")
        out.append(f"  Dana answered; the parent shows: {self.readable(self._context())}")
        return "80 %" in reminder
