"""The KPIs in Slack: `!stats` in a thread, today's figures on the Home tab, and the digest
posted once when due (also with two bridges on one database), through the real bridge and
the Slack stand-in on both stores, at a moved clock over tests/helpers_kpi.py's history."""

from __future__ import annotations

import asyncio
from typing import Any

from bridge.console.stats import DigestJob
from tests.conftest import AGENT, CHANNEL, Harness, HarnessFactory
from tests.helpers_kpi import NOW, H, T, load_history
from tests.helpers_ownership import privately
from tests.test_queue import home
from tests.waiting import until

OVERRIDES: dict[str, dict[str, Any]] = {
    "teams.billing": {"channel": "C0BILLING1"},
    "reports": {"digest_channel": CHANNEL, "digest_every": "daily", "digest_at": "mon 18:30"},
}


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


async def thread_command(h: Harness, thread: str, text: str) -> None:
    event = h.agent.message_event(channel=CHANNEL, user=AGENT, text=text, thread_ts=thread)
    assert (await h.agent.post(event))[0] == 200


async def test_stats_home_and_digest(make_harness: HarnessFactory) -> None:
    clock = Clock()
    h = await make_harness(OVERRIDES, clock=clock)
    assert h.bridge.store is not None
    await load_history(h.bridge.store)
    thread = "1001.000100"  # conversation 1's, in support's channel

    await thread_command(h, thread, "!stats")
    await until(lambda: any("Team support, today" in t for t in privately(h, AGENT)),
                "!stats, privately")
    [text] = [t for t in privately(h, AGENT) if "Team support, today" in t]
    # Support's conversations 1, 3 and 4 were opened today; 1 was closed.
    assert "3 opened, 1 closed" in text
    assert "1 after a web chat invitation" in text  # conversation 3
    assert "First response: median 5m30s" in text
    await thread_command(h, thread, "!stats month")
    await until(lambda: any("the last 30 days" in t for t in privately(h, AGENT)),
                "!stats month")
    await thread_command(h, thread, "!stats forever")
    await until(lambda: any("Usage: `!stats" in t for t in privately(h, AGENT)),
                "the usage of !stats")
    assert not [m for m in h.slack.messages if "Team support" in str(m.get("text"))]

    shown = await home(h, AGENT)
    assert "Today in team support" in shown and "Today in team billing" in shown

    # The digest: not before 18:30, then once, however often the job looks.
    digest = h.bridge.digest
    assert digest is not None
    await digest.stop()  # ticked here, not by its own loop
    assert await digest.tick() is False
    clock.now = T + 18 * H + 31 * 60
    assert await digest.tick() is True
    assert await digest.tick() is False
    posted = [m for m in h.slack.messages if "Support KPIs, yesterday" in str(m.get("text"))]
    assert len(posted) == 1
    assert posted[0]["channel"] == CHANNEL
    assert "Team billing" in str(posted[0]["text"])


async def two_bridges(make_harness: HarnessFactory,
                      clock: Clock) -> tuple[Harness, tuple[DigestJob, DigestJob]]:
    """Two bridges on one database (and one Slack stand-in); the first and both digest jobs."""
    a = await make_harness(OVERRIDES, clock=clock)
    url = a.bridge.settings.storage.url
    schema = a.bridge.settings.storage.schema_
    storage: dict[str, Any] = {"url": url} if not schema else {"url": url, "schema": schema}
    b = await make_harness({**OVERRIDES, "storage": storage}, clock=clock)
    assert a.bridge.digest is not None and b.bridge.digest is not None
    return a, (a.bridge.digest, b.bridge.digest)


async def test_digest_posts_once_across_two_bridges(make_harness: HarnessFactory) -> None:
    clock = Clock()
    a, jobs = await two_bridges(make_harness, clock)
    for job in jobs:
        await job.stop()  # their own loops would race the ticks below (and look every 30 s)
    clock.now = T + 18 * H + 31 * 60
    posted_by = []
    for _ in range(25):  # a post Slack refuses (rate limits) is given back and tried again
        for job in jobs:
            if await job.tick():
                posted_by.append(job)
        if posted_by:
            break
        await asyncio.sleep(0.2)
    assert len(posted_by) == 1
    assert [await job.tick() for job in jobs] == [False, False]
    posted = [m for m in a.slack.messages if "Support KPIs" in str(m.get("text"))]
    assert len(posted) == 1


def digest_calls(h: Harness) -> list[bool]:
    """Whether each chat.postMessage of the digest the Slack stand-in received succeeded."""
    return [c.ok for c in h.slack.calls if c.method == "chat.postMessage"
            and "Support KPIs" in str(c.params.get("text"))]


async def test_a_failed_digest_is_retried_once_by_either_bridge(
        make_harness: HarnessFactory) -> None:
    clock = Clock()
    a, jobs = await two_bridges(make_harness, clock)
    for job in jobs:
        await job.stop()
    clock.now = T + 18 * H + 31 * 60
    a.slack.fail_next("chat.postMessage", status=200, error="channel_not_found")
    assert await jobs[0].tick() is False  # refused: the claim is given back
    assert digest_calls(a) == [False]
    assert await jobs[1].tick() is True  # the other bridge takes it and posts it
    assert [await job.tick() for job in jobs] == [False, False]  # nobody posts it again
    assert [await job.tick() for job in jobs] == [False, False]
    assert digest_calls(a) == [False, True]
    posted = [m for m in a.slack.messages if "Support KPIs" in str(m.get("text"))]
    assert len(posted) == 1
    # The next day's digest is due again once, at the next 18:30.
    clock.now += 24 * H
    assert sorted([await job.tick() for job in jobs]) == [False, True]
    assert digest_calls(a) == [False, True, True]


async def test_stats_with_junk_answers_privately_and_writes_nothing(
        make_harness: HarnessFactory) -> None:
    h = await make_harness(OVERRIDES, clock=Clock())
    assert h.bridge.store is not None
    await load_history(h.bridge.store)
    thread = "1001.000100"

    def written() -> tuple[object, ...]:
        return tuple(h.reader.rows(f"SELECT COUNT(*) FROM {table}")[0][0]
                     for table in ("messages", "outbox", "conversations", "connector_state"))

    before, posted = written(), len(h.slack.messages)
    junk = ["é" * 4000, "week month", "\u202etoday", "9" * 400, "today\u200b", "<!channel>"]
    def usages() -> int:
        return sum("Usage: `!stats" in t for t in privately(h, AGENT))

    for rest in junk:
        await thread_command(h, thread, f"!stats {rest}")
        await until(lambda: usages() == junk.index(rest) + 1,  # noqa: B023 (awaited here)
                    f"the usage of !stats for {rest[:20]!r}")
    assert written() == before
    assert len(h.slack.messages) == posted
    assert not [t for t in privately(h, AGENT) if "Team support" in t]
