"""Response-time targets with two bridge instances on one PostgreSQL database, and across a
restart: each reminder and each miss fires exactly once."""

from __future__ import annotations

import asyncio

import pytest

from bridge.standins.clock import OffsetClock
from tests.conftest import HarnessFactory
from tests.helpers_ownership import lines
from tests.helpers_pg import PG_URL, fresh_schema
from tests.test_targets import TARGETS, alerts, move

pytestmark = pytest.mark.backends("postgres")
CHATS = (701, 702, 703)


async def test_two_instances_remind_and_alert_once_each(make_harness: HarnessFactory) -> None:
    clock = OffsetClock()
    move(clock, "2026-12-10 10:00")  # a Thursday
    async with fresh_schema() as schema:
        config = {**TARGETS, "storage": {"url": PG_URL, "schema": schema}}
        first = await make_harness(config, clock=clock)
        second = await make_harness(config, clock=clock)
        for chat in CHATS:
            h = first if chat % 2 else second
            assert await h.customer_says(chat, f"hello {chat}", first_name="Ann") == 200
        threads = [await first.thread_of(chat) for chat in CHATS]
        await asyncio.gather(*(h.bridge.targets.tick() for h in (first, second) * 3))
        assert first.rows("SELECT COUNT(*) FROM response_targets") == [(2 * len(CHATS),)]

        move(clock, "2026-12-10 10:50")  # past 80 % of the first answer's hour
        await asyncio.gather(*(h.bridge.targets.tick() for h in (first, second) * 4))
        move(clock, "2026-12-10 11:01")  # missed
        await asyncio.gather(*(h.bridge.targets.tick() for h in (first, second) * 4))
        await first.drained()
        await second.drained()
        for thread in threads:
            assert len([t for t in lines(first, thread) if "80 %" in t]) == 1
        assert len(alerts(first)) == len(CHATS)
        assert first.rows("SELECT state, COUNT(*) FROM response_targets GROUP BY state"
                          " ORDER BY state") == [("missed", 3), ("running", 3)]

        # A restart: the second instance stops, a new one starts on the same database, and the
        # resolution targets ("2d": 48 business hours, Friday 18th 11:00) go on from their rows.
        await second.bridge.stop()
        third = await make_harness(config, clock=clock)
        move(clock, "2026-12-18 11:01")
        await asyncio.gather(*(h.bridge.targets.tick() for h in (first, third) * 3))
        await first.drained()
        await third.drained()
        assert len(alerts(first)) == 2 * len(CHATS)
        assert first.rows("SELECT state, COUNT(*) FROM response_targets GROUP BY state") == [
            ("missed", 6)]
        await first.bridge.stop()
        await third.bridge.stop()
