"""The closed reply with two bridge instances on one PostgreSQL database: customer messages
of one closed period reaching both instances at once get one closed reply between them, and
the next closed period gets exactly one more."""

from __future__ import annotations

import asyncio

import pytest

from bridge.standins.clock import OffsetClock
from tests.conftest import Harness, HarnessFactory
from tests.helpers_pg import PG_URL, fresh_schema
from tests.test_auto_hours import HOURS, at
from tests.waiting import until

pytestmark = pytest.mark.backends("postgres")
CHAT = 801


async def both_say(first: Harness, second: Harness, texts: tuple[str, ...], base: int) -> None:
    """Each text reaches one instance (alternating), all at once, with distinct message ids."""
    async def one(i: int, text: str) -> None:
        h = first if i % 2 == 0 else second
        update = h.telegram.text_update(chat_id=CHAT, text=text, update_id=base + i,
                                        message_id=base + i)
        status, _ = await h.telegram.deliver(update, h.session)
        assert status == 200
    await asyncio.gather(*(one(i, text) for i, text in enumerate(texts)))
    await first.drained()
    await second.drained()


def closed_replies(first: Harness, second: Harness) -> list[str]:
    """What the customer received from either instance (the harnesses may share a stand-in)."""
    stands = {id(h.telegram): h.telegram for h in (first, second)}.values()
    return [str(m["text"]) for t in stands for m in t.sent if m["chat_id"] == CHAT]


async def test_two_instances_send_one_closed_reply_per_closed_period(
        make_harness: HarnessFactory) -> None:
    clock = OffsetClock()
    at(clock, "2026-12-12 10:00")  # a Saturday: closed until Monday 9:00
    async with fresh_schema() as schema:
        config = {**HOURS, "teams.support": {"hours": "office", "closed_reply": True},
                  "storage": {"url": PG_URL, "schema": schema}}
        first = await make_harness(config, clock=clock)
        second = await make_harness(config, clock=clock)
        await both_say(first, second, ("Hello", "Anyone?", "Order 42 is late", "Hello??"),
                       1000)
        await until(lambda: len(closed_replies(first, second)) == 1,
                    lambda: f"one closed reply, got {closed_replies(first, second)}")
        assert first.rows("SELECT COUNT(*) FROM messages WHERE direction = 'in'") == [(4,)]

        at(clock, "2026-12-14 18:00")  # Monday evening: a new closed period
        await both_say(first, second, ("Still there?", "Hello?"), 2000)
        await until(lambda: len(closed_replies(first, second)) == 2,
                    lambda: f"two closed replies, got {closed_replies(first, second)}")
        assert "Tuesday 9:00" in closed_replies(first, second)[1]
        assert first.rows("SELECT origin, COUNT(*) FROM messages WHERE direction = 'out'"
                          " GROUP BY origin") == [("auto", 2)]
        assert first.rows("SELECT COUNT(*) FROM auto_answers WHERE kind = 'closed'") == [(2,)]
        await first.bridge.stop()
        await second.bridge.stop()
