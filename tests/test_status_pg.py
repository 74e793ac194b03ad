"""Two bridge instances on one PostgreSQL database: a snooze wakes exactly once, and two agents
claiming at once end with one assignee, one line saying who has it, the other told privately."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bridge.standins.clock import OffsetClock
from tests.conftest import AGENT, Harness, HarnessFactory
from tests.helpers_ownership import OTHER, add_other, lines, privately
from tests.helpers_pg import PG_URL, fresh_schema

pytestmark = pytest.mark.backends("postgres")
CHATS = (5101, 5102, 5103, 5104, 5105)


@pytest.fixture
async def pair(make_harness: HarnessFactory) -> AsyncIterator[tuple[Harness, Harness,
                                                                    OffsetClock]]:
    clock = OffsetClock()
    async with fresh_schema() as schema:
        storage = {"storage": {"url": PG_URL, "schema": schema}}
        first = await make_harness(storage, clock=clock)
        second = await make_harness(storage, clock=clock)
        add_other(first)
        yield first, second, clock
        await first.bridge.stop()
        await second.bridge.stop()


async def threads(h: Harness) -> list[str]:
    for chat in CHATS:
        assert await h.customer_says(chat, f"hello from {chat}", first_name="Ann") == 200
    return [await h.thread_of(chat) for chat in CHATS]


async def test_two_agents_claiming_at_once_end_with_one(
        pair: tuple[Harness, Harness, OffsetClock]) -> None:
    first, second, _ = pair
    for thread in await threads(first):
        statuses = await asyncio.gather(first.agent_says(thread, "!claim", user=AGENT),
                                        second.agent_says(thread, "!claim", user=OTHER))
        assert list(statuses) == [200, 200]
    await first.drained()
    rows = first.rows("SELECT c.slack_thread_ts, c.assignee, COUNT(h.id) FROM conversations c"
                      " JOIN conversation_changes h ON h.conversation_id = c.id"
                      " GROUP BY c.slack_thread_ts, c.assignee")
    assert len(rows) == len(CHATS) and all(count == 1 for _, _, count in rows)
    for thread, holder, _ in rows:
        said = [t for t in lines(first, thread) if "claimed the conversation" in t]
        assert said == [f":bust_in_silhouette: <@{holder}> claimed the conversation."]
    losers = {AGENT: 0, OTHER: 0}
    for _, holder, _ in rows:
        losers[OTHER if holder == AGENT else AGENT] += 1
    for user, lost in losers.items():
        assert len([t for t in privately(first, user) if "has this conversation" in t]) == lost


async def test_a_snooze_wakes_exactly_once(pair: tuple[Harness, Harness, OffsetClock]) -> None:
    first, second, clock = pair
    mine = await threads(first)
    for n, thread in enumerate(mine):
        h = (first, second)[n % 2]
        assert await h.agent_says(thread, "!snooze 30m") == 200
    await first.drained()
    clock.offset += 31 * 60
    await first.wait_rows("SELECT COUNT(*) FROM conversations WHERE status = 'open'",
                          [(len(CHATS),)])
    await first.drained()
    woke = first.rows("SELECT conversation_id, COUNT(*) FROM conversation_changes"
                      " WHERE actor = 'bridge' GROUP BY conversation_id")
    assert len(woke) == len(CHATS) and all(count == 1 for _, count in woke)
    for thread in mine:
        assert len([t for t in lines(first, thread) if "Snooze over" in t]) == 1
