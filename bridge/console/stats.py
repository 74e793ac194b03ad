"""The KPIs in Slack (issue 24): `!stats [today|week|month]` in a thread (a private note with
the figures of the thread's team), today's figures on the Home tab (bridge/console/queue.py
asks `home_blocks`), and the digest posted to `[reports] digest_channel` on a schedule."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bridge.console.slack import SlackConsole
from bridge.loops import Rounds
from vocab.models import AgentReply

log = logging.getLogger(__name__)
PERIODS = {"today": "today", "week": "the last 7 days", "month": "the last 30 days"}
# (channel of the thread, period) -> (team, lines); None: no team there
StatsSource = Callable[[str, str], Awaitable[tuple[str, list[str]] | None]]
# agent -> [(team, lines)] for the teams the agent is in
HomeSource = Callable[[str], Awaitable[list[tuple[str, list[str]]]]]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class StatsCommand:
    def __init__(self, console: SlackConsole) -> None:
        self.console = console
        self.source: StatsSource | None = None  # set by the app
        self.home: HomeSource | None = None

    async def command(self, reply: AgentReply, rest: str) -> None:
        period = rest.strip().lower() or "today"
        prefix = self.console.settings.command_prefix
        if period not in PERIODS or self.source is None:
            await self.console.ephemeral(
                reply.slack_user, f"Usage: `{prefix}stats [today|week|month]`. Nothing was"
                " sent to the customer.", reply.thread_ts)
            return
        found = await self.source(reply.slack_channel, period)
        if found is None:
            text = "This thread belongs to no team, so there are no team figures here."
        else:
            team, lines = found
            text = f"*Team {team}, {PERIODS[period]}*\n" + "\n".join(f"• {ln}" for ln in lines)
        await self.console.ephemeral(reply.slack_user, text, reply.thread_ts)

    async def home_blocks(self, user: str) -> list[dict[str, Any]]:
        if self.home is None:
            return []
        blocks: list[dict[str, Any]] = []
        for team, lines in await self.home(user):
            blocks.append({"type": "section", "text": {
                "type": "mrkdwn", "text": f"*Today in team {team}*"}})
            blocks.append({"type": "context", "elements": [{
                "type": "mrkdwn", "text": "\n".join(lines)}]})
        return blocks


def next_digest(now: float, every: str, at: str, zone: ZoneInfo) -> float:
    """The first digest instant after `now`: `at` is "mon 09:00" (daily: the weekday is
    ignored), in `zone`."""
    day_name, clock = at.split()
    hour, minute = (int(x) for x in clock.split(":"))
    local = datetime.fromtimestamp(now, zone)
    for ahead in range(0, 9):
        day = (local + timedelta(days=ahead)).date()
        if every == "weekly" and WEEKDAYS[day.weekday()] != day_name:
            continue
        moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).timestamp()
        if moment > now:
            return moment
    raise AssertionError("unreachable: a weekday comes within a week")


# (instant due, period) -> text to post; claim(key) True for the one instance that posts it
DigestText = Callable[[float, str], Awaitable[str]]
Claim = Callable[[str, bool], Awaitable[bool]]


class DigestJob:
    """Posts the digest when it is due, once across instances: each due instant is claimed in
    the store first (a unique key), and released again when the post fails."""

    def __init__(self, console: SlackConsole, channel: str, every: str, at: str, zone: ZoneInfo,
                 text: DigestText, claim: Claim, clock: Callable[[], float],
                 check_every: float = 30.0) -> None:
        self.console, self.channel, self.every, self.at, self.zone = (
            console, channel, every, at, zone)
        self.text, self.claim, self.clock, self.check_every = text, claim, clock, check_every
        self.due = next_digest(clock(), every, at, zone)
        self.posted: list[float] = []
        self._rounds = Rounds("kpi-digest", lambda: self.tick(), lambda: self.check_every, log,
                              "KPI digest check failed")

    async def tick(self) -> bool:
        now = self.clock()
        if now < self.due:
            return False
        due = self.due
        self.due = next_digest(now, self.every, self.at, self.zone)
        key = f"digest:{int(due)}"
        if not await self.claim(key, True):
            return False  # another instance posts this one
        try:
            await self.console.post(await self.text(due, self.every), None,
                                    channel=self.channel)
        except Exception as exc:
            log.warning("the KPI digest was not posted (%s); trying again", type(exc).__name__)
            await self.claim(key, False)
            self.due = due
            return False
        self.posted.append(due)
        return True

    async def start(self) -> None:
        self._rounds.start()

    async def stop(self) -> None:
        await self._rounds.stop()
