"""Where a conversation stands: `!pending` until the customer answers, `!snooze <when>` until
the time comes (a moved clock) or the customer writes, ✅ on the parent closes and removing it
reopens.  The parent says it in words; every change is kept with who and when."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from bridge.standins.clock import OffsetClock
from bridge.standins.config import TomlValue
from tests.conftest import AGENT, CHANNEL, Harness, HarnessFactory
from tests.helpers_ownership import context, lines, parent, privately, started
from tests.helpers_pg import PG_URL, fresh_schema
from tests.waiting import until

STATUS = "SELECT status, status_by FROM conversations"
HISTORY = ("SELECT old_value, new_value, actor FROM conversation_changes WHERE kind = 'status'"
           " ORDER BY id")


async def test_pending_until_the_customer_answers(harness: Harness) -> None:
    h = harness
    thread = await started(h)
    assert await h.agent_says(thread, "!pending") == 200
    assert h.rows(STATUS) == [("pending", f"<@{AGENT}>")]
    await until(lambda: "*Pending*" in context(h, thread), "the parent saying Pending")
    assert parent(h, thread)["text"].startswith("[pending] ")
    assert await h.customer_says(4242, "here is the number", first_name="Ann") == 200
    assert h.rows(STATUS) == [("open", "customer")]
    await until(lambda: "*Open*" in context(h, thread), "the parent saying Open")
    await h.drained()
    assert any("Open again: the customer wrote (it was pending)" in t
               for t in lines(h, thread))
    assert h.rows(HISTORY) == [("open", "pending", f"<@{AGENT}>"),
                               ("pending", "open", "customer")]


async def test_snooze_wakes_when_the_time_comes_once(make_harness: HarnessFactory) -> None:
    clock = OffsetClock()
    h = await make_harness(clock=clock)
    thread = await started(h)
    assert await h.agent_says(thread, "!snooze 2h") == 200
    [(status, until_at)] = h.rows("SELECT status, snooze_until FROM conversations")
    assert status == "snoozed" and abs(until_at - (clock() + 7200)) < 5
    await until(lambda: "*Snoozed until <!date^" in context(h, thread), "the parent snoozed")
    assert parent(h, thread)["text"].startswith("[snoozed] ")
    await h.drained()
    assert h.rows(STATUS) == [("snoozed", f"<@{AGENT}>")]  # not yet

    clock.offset += 2 * 3600 + 1
    await h.wait_rows(STATUS, [("open", "bridge")])
    await until(lambda: "*Open*" in context(h, thread), "the parent open again")
    await h.drained()
    woke = [t for t in lines(h, thread) if "Snooze over" in t]
    assert len(woke) == 1
    assert h.rows(HISTORY) == [("open", "snoozed", f"<@{AGENT}>"),
                               ("snoozed", "open", "bridge")]


async def test_snooze_ends_when_the_customer_writes_first(make_harness: HarnessFactory) -> None:
    clock = OffsetClock()
    h = await make_harness(clock=clock)
    thread = await started(h)
    assert await h.agent_says(thread, "!snooze tomorrow 9:00") == 200
    assert await h.agent_says(thread, "!snooze whenever") == 200  # refused, privately
    assert any("Usage: `!snooze <when>`" in t for t in privately(h, AGENT))
    assert await h.customer_says(4242, "any news?", first_name="Ann") == 200
    assert h.rows("SELECT status, snooze_until FROM conversations") == [("open", None)]
    clock.offset += 3 * 86400
    await h.drained()
    assert await h.agent_says(thread, "ok") == 200  # the waker has had rounds since
    await h.drained()
    assert h.rows(HISTORY) == [("open", "snoozed", f"<@{AGENT}>"),
                               ("snoozed", "open", "customer")]
    assert not any("Snooze over" in t for t in lines(h, thread))


async def test_a_snooze_survives_a_restart(make_harness: HarnessFactory, tmp_path: Path,
                                           store_backend: str) -> None:
    clock = OffsetClock()
    async with AsyncExitStack() as stack:
        if store_backend == "postgres":
            schema = await stack.enter_async_context(fresh_schema())
            storage: dict[str, TomlValue] = {"url": PG_URL, "schema": schema}
        else:
            storage = {"url": f"sqlite:///{tmp_path / 'kept.db'}"}
        first = await make_harness({"storage": storage}, clock=clock)
        thread = await started(first)
        assert await first.agent_says(thread, "!snooze 30m") == 200
        await first.drained()
        await first.bridge.stop()
        clock.offset += 31 * 60
        second = await make_harness({"storage": storage}, clock=clock)
        await second.wait_rows(STATUS, [("open", "bridge")])
        await second.bridge.stop()


@pytest.mark.backends("sqlite")  # Slack interactions; the store's part runs on both above
async def test_check_mark_reaction_closes_and_removing_it_reopens(harness: Harness) -> None:
    h = harness
    thread = await started(h)
    check = h.agent.reaction_event(channel=CHANNEL, user=AGENT, ts=thread,
                                   reaction="white_check_mark")
    assert (await h.agent.post(check))[0] == 200
    assert h.rows("SELECT status, closed_by FROM conversations") == [("closed", f"<@{AGENT}>")]
    await until(lambda: "*Closed*" in context(h, thread), "the parent closed")
    # A reaction elsewhere, or another emoji, changes nothing.
    for other in (h.agent.reaction_event(channel=CHANNEL, user=AGENT, ts="1.000001",
                                         reaction="white_check_mark", added=False),
                  h.agent.reaction_event(channel=CHANNEL, user=AGENT, ts=thread,
                                         reaction="tada", added=False)):
        assert (await h.agent.post(other))[0] == 200
    assert h.rows("SELECT status FROM conversations") == [("closed",)]
    removed = h.agent.reaction_event(channel=CHANNEL, user=AGENT, ts=thread,
                                     reaction="white_check_mark", added=False)
    assert (await h.agent.post(removed))[0] == 200
    assert h.rows("SELECT status FROM conversations") == [("open",)]
    assert privately(h, AGENT) == []  # reactions say nothing when they do nothing
