"""CSAT on WhatsApp Cloud (issue 23): 1-5 do not fit WhatsApp's 3 reply buttons, so the question
is a list message; the picked row (its signed id) is the answer and no message; outside the
24-hour window nothing is sent and the thread says why."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.standins.clock import OffsetClock
from tests.conftest import HarnessFactory
from tests.helpers_ownership import lines
from tests.helpers_whatsapp import (
    HOUR,
    KERRY,
    NUMBER_A,
    customer_writes,
    sender,
    standin,
    whatsapp_harness,
)

pytestmark = pytest.mark.backends("sqlite")  # the store's part runs on both in the other files
CSAT: dict[str, dict[str, Any]] = {"csat": {"enabled": True}}


async def test_list_answer(make_harness: HarnessFactory) -> None:
    clock = OffsetClock()
    async with standin(clock) as wa:
        h = await whatsapp_harness(make_harness, wa, clock, others=CSAT)
        s = sender(h, wa, clock)
        thread = await customer_writes(h, s, "Where is my order?")
        assert await h.agent_says(thread, "!close") == 200
        await h.wait_rows("SELECT state FROM surveys", [("sent",)])
        await h.drained()
        [question] = [m for m in wa.sent if m["type"] == "interactive"]
        interactive = question["interactive"]
        assert interactive["type"] == "list"
        rows = [r for sec in interactive["action"]["sections"] for r in sec["rows"]]
        assert [r["title"] for r in rows] == ["1", "2", "3", "4", "5"]

        forged = {"type": "list_reply", "list_reply": {"id": "s:AAAAAAAAAAAAAAAA.AAAAAAAAAAA"
                                                       "AAAAA:5", "title": "5"}}
        assert await s.send(NUMBER_A, s.message(KERRY, "interactive", forged)) == 200
        await h.drained()
        assert h.rows("SELECT state FROM surveys") == [("sent",)]
        picked = {"type": "list_reply", "list_reply": {"id": rows[1]["id"], "title": "2"}}
        assert await s.send(NUMBER_A, s.message(KERRY, "interactive", picked)) == 200
        await h.drained()
        assert h.rows("SELECT state, score FROM surveys") == [("answered", 2)]
        assert h.rows("SELECT status FROM conversations") == [("closed",)]
        assert h.count("messages WHERE direction = 'in'") == 1
        assert any(line.startswith(":star: 2/5 from") for line in lines(h, thread))


async def test_no_survey_outside_the_window(make_harness: HarnessFactory) -> None:
    clock = OffsetClock()
    async with standin(clock) as wa:
        h = await whatsapp_harness(make_harness, wa, clock, others=CSAT)
        s = sender(h, wa, clock)
        thread = await customer_writes(h, s, "Hello")
        await h.drained()
        clock.offset = 25 * HOUR
        before = len(wa.sent)
        assert await h.agent_says(thread, "!close") == 200
        await h.wait_rows("SELECT state FROM surveys", [("blocked",)])
        await h.drained()
        assert len(wa.sent) == before
        assert any("satisfaction survey was not sent" in line for line in lines(h, thread))
