"""Response-time targets (issue 20) beside the features built with them: a canned reply's Send
meets the first-response target, a survey and its answer after the close neither meet one nor
reopen or start one, and WhatsApp Cloud and web chat conversations get targets like any other.
The real bridge on a moved business clock, on both stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bridge.standins.clock import OffsetClock
from bridge.standins.config import TomlValue
from bridge.standins.whatsapp import WhatsAppStandin
from tests.conftest import HarnessFactory
from tests.helpers_canned import REFUND, click, preview, write_replies
from tests.helpers_webchat import webchat_thread
from tests.helpers_whatsapp import customer_writes, sender, whatsapp_harness
from tests.test_csat_telegram import buttons, press
from tests.test_targets import TARGETS, move, settle
from tests.waiting import poll, until

CHAT = 4242
TARGET_ROWS = ("SELECT conversation_id, kind, state FROM response_targets"
               " ORDER BY conversation_id, kind")
ORIGIN = "https://shop.example"


async def test_canned_send_meets_it_and_a_survey_answer_starts_nothing(
        tmp_path: Path, make_harness: HarnessFactory) -> None:
    clock = OffsetClock()
    move(clock, "2026-12-10 10:00")  # a Thursday, open
    write_replies(tmp_path, refund=REFUND)
    h = await make_harness({**TARGETS, "canned": {"dir": "canned"},
                            "csat": {"enabled": True, "low_score": 2}}, clock=clock)
    assert await h.customer_says(CHAT, "My refund?", first_name="Ann") == 200
    thread = await h.thread_of(CHAT)
    await settle(h)
    assert h.rows(TARGET_ROWS) == [(1, "first_response", "running"), (1, "resolution", "running")]

    move(clock, "2026-12-10 10:10")
    shown = await preview(h, thread, "!canned refund")
    await settle(h)
    assert h.rows(TARGET_ROWS)[0] == (1, "first_response", "running")  # a preview is no reply
    assert await click(h, shown, "send") == 200
    await until(lambda: any("Refunds take five" in str(m.get("text")) for m in h.telegram.sent),
                lambda: str(h.telegram.sent))
    await h.drained()
    await settle(h)
    assert h.rows("SELECT origin FROM messages WHERE direction = 'out'") == [("person",)]
    [(state, took)] = h.rows("SELECT state, business_seconds FROM response_targets"
                             " WHERE kind = 'first_response'")
    assert state == "met" and took == pytest.approx(600, abs=30)

    move(clock, "2026-12-10 10:20")
    assert await h.agent_says(thread, "!close") == 200

    async def asked() -> list[dict[str, Any]]:
        return [m for m in h.telegram.sent if m.get("reply_markup")]
    [question] = await poll(asked, lambda got: len(got) == 1, "the survey with buttons")
    await h.drained()
    await settle(h)
    before = h.rows(TARGET_ROWS)
    assert before == [(1, "first_response", "met"), (1, "resolution", "met")]
    move(clock, "2026-12-10 10:30")
    await press(h, question, buttons(question)[0]["callback_data"])  # 1 of 5: asks why
    comment = h.telegram.text_update(chat_id=CHAT, text="Too slow", first_name="Ann")
    assert (await h.telegram.deliver(comment, h.session))[0] == 200
    await h.drained()
    await settle(h)
    assert h.rows("SELECT score, comment FROM surveys") == [(1, "Too slow")]
    assert h.rows("SELECT status FROM conversations") == [("closed",)]
    assert h.rows(TARGET_ROWS) == before  # no target reopened or started
    assert h.rows("SELECT origin FROM messages WHERE direction = 'out' ORDER BY id")[1:] == [
        ("survey",), ("survey",)]


@pytest.fixture
def clock() -> OffsetClock:
    c = OffsetClock()
    move(c, "2026-12-10 10:00")
    return c


async def test_whatsapp_cloud_and_web_chat_conversations_get_targets(
        make_harness: HarnessFactory, wa: WhatsAppStandin, clock: OffsetClock) -> None:
    site: dict[str, TomlValue] = {"id": "shop", "allowed_origins": [ORIGIN], "title": "Acme"}
    others: dict[str, dict[str, TomlValue]] = {
        **TARGETS, "connectors.webchat": {"enabled": True, "sites": [site]}}
    h = await whatsapp_harness(make_harness, wa, clock, others)
    wa_thread = await customer_writes(h, sender(h, wa, clock), "where is my order")
    ws = await h.session.ws_connect(f"ws://127.0.0.1:{h.port}/webchat/ws?site=shop",
                                    headers={"Origin": ORIGIN})
    assert (await ws.receive_json(timeout=5))["type"] == "welcome"
    await ws.send_json({"type": "message", "client_id": "c-1", "text": "hello from the shop"})
    assert (await ws.receive_json(timeout=5))["type"] == "ack"
    web_thread = await webchat_thread(h)
    await settle(h)
    convs: dict[str, int] = dict(h.rows("SELECT connector, id FROM conversations"))
    assert h.rows(TARGET_ROWS) == [
        (convs["whatsapp"], "first_response", "running"), (convs["whatsapp"], "resolution",
                                                            "running"),
        (convs["webchat"], "first_response", "running"), (convs["webchat"], "resolution",
                                                           "running")]
    move(clock, "2026-12-10 10:05")
    assert await h.agent_says(wa_thread, "It ships today") == 200
    assert await h.agent_says(web_thread, "Hi, how can I help?") == 200
    await h.drained()
    await settle(h)
    assert h.rows("SELECT conversation_id, state FROM response_targets WHERE kind ="
                  " 'first_response' ORDER BY conversation_id") == [
        (convs["whatsapp"], "met"), (convs["webchat"], "met")]
    await ws.close()
