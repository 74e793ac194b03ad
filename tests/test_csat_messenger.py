"""CSAT on Messenger (issue 23): the question carries quick replies (each a signed choice id), a
tap is the answer and no message; a forged payload changes nothing; past the 24-hour window
nothing is sent (an automatic message may not use the HUMAN_AGENT tag)."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.standins.clock import OffsetClock
from bridge.standins.messenger import DEFAULT_APP_ID, DEFAULT_APP_SECRET, MessengerStandin
from tests.conftest import Harness, HarnessFactory
from tests.helpers_messenger import ANN, HOUR, PAGE_A, TOKEN_A, VERIFY_TOKEN, sender, thread_of
from tests.helpers_ownership import lines

pytestmark = pytest.mark.backends("sqlite")  # the store's part runs on both in the other files


async def bridge(make_harness: HarnessFactory, meta: MessengerStandin,
                 clock: OffsetClock) -> Harness:
    table: dict[str, Any] = {
        "enabled": True, "app_secret": "${MESSENGER_APP_SECRET}",
        "verify_token": "${MESSENGER_VERIFY_TOKEN}", "app_id": DEFAULT_APP_ID,
        "graph_base_url": meta.base_url, "human_agent_tag": True,
        "pages": [{"id": PAGE_A, "access_token": "${MESSENGER_PAGE_TOKEN}"}]}
    env = {"MESSENGER_APP_SECRET": DEFAULT_APP_SECRET, "MESSENGER_VERIFY_TOKEN": VERIFY_TOKEN,
           "MESSENGER_PAGE_TOKEN": TOKEN_A}
    return await make_harness({"connectors.messenger": table, "csat": {"enabled": True}},
                              env=env, clock=clock)


async def says(h: Harness, text: str, quick_reply: str | None = None) -> None:
    s = sender(h, h.bridge.clock)
    assert await s.send(PAGE_A, s.message(PAGE_A, ANN, text, quick_reply=quick_reply)) == 200
    await h.drained()


async def test_quick_reply_answer_and_forgery(make_harness: HarnessFactory,
                                              meta: MessengerStandin) -> None:
    clock = OffsetClock()
    h = await bridge(make_harness, meta, clock)
    await says(h, "My order?")
    thread = await thread_of(h, PAGE_A, ANN)
    assert await h.agent_says(thread, "!close") == 200
    await h.wait_rows("SELECT state FROM surveys", [("sent",)])
    await h.drained()
    [question] = [m for m in meta.sent if m["message"].get("quick_replies")]
    replies = question["message"]["quick_replies"]
    assert [r["title"] for r in replies] == ["1", "2", "3", "4", "5"]
    assert question["messaging_type"] == "RESPONSE"

    await says(h, "5", quick_reply="s:AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAA:5")  # forged
    assert h.rows("SELECT state FROM surveys") == [("sent",)]
    await says(h, "3", quick_reply=replies[2]["payload"])
    assert h.rows("SELECT state, score FROM surveys") == [("answered", 3)]
    assert h.rows("SELECT status FROM conversations") == [("closed",)]
    assert h.count("messages WHERE direction = 'in'") == 1
    assert any(line.startswith(":star: 3/5 from") for line in lines(h, thread))


async def test_no_survey_past_the_window(make_harness: HarnessFactory,
                                         meta: MessengerStandin) -> None:
    clock = OffsetClock()
    h = await bridge(make_harness, meta, clock)
    await says(h, "Hello")
    thread = await thread_of(h, PAGE_A, ANN)
    clock.offset = 30 * HOUR
    before = len(meta.sent)
    assert await h.agent_says(thread, "!close") == 200
    await h.wait_rows("SELECT state FROM surveys", [("blocked",)])
    await h.drained()
    assert len(meta.sent) == before
    assert any("satisfaction survey was not sent" in line and "24-hour window" in line
               for line in lines(h, thread))
