"""CSAT through Twilio (issue 23): SMS gets the question with "reply 1-5" and a number reply is
the answer (not a message; it reopens nothing); WhatsApp outside the 24-hour window sends
nothing and the thread says why, unless a Content template is configured; NPS as a number
reply.  Both stores."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.standins.clock import OffsetClock
from bridge.standins.twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, TwilioStandin
from tests.conftest import Harness, HarnessFactory
from tests.helpers_ownership import lines
from tests.helpers_twilio import CUSTOMER, FOLLOW_UP, HOUR, SMS_FROM, WA, WA_FROM, customer, sender
from tests.waiting import poll

TEMPLATE = "HX" + "c" * 32


async def bridge(make_harness: HarnessFactory, twilio: TwilioStandin, clock: OffsetClock,
                 **csat: Any) -> Harness:
    return await make_harness({
        "csat": {"enabled": True, **csat},
        "connectors.twilio": {
            "enabled": True, "account_sid": DEFAULT_ACCOUNT_SID,
            "auth_token": DEFAULT_AUTH_TOKEN, "sms_from": SMS_FROM, "whatsapp_from": WA_FROM,
            "api_base_url": twilio.base_url,
            "templates": [{"name": "follow_up", "content_sid": FOLLOW_UP},
                          {"name": "rate", "content_sid": TEMPLATE}]}}, clock=clock)


async def close(h: Harness, thread: str, surveys: int = 1) -> None:
    """Close; wait until the survey (the `surveys`-th) was sent or stopped."""
    assert await h.agent_says(thread, "!close") == 200
    await h.wait_rows("SELECT COUNT(*) FROM surveys WHERE state <> 'scheduled'", [(surveys,)])
    await h.drained()


async def sms_says(h: Harness, body: str) -> None:
    s = sender(h)
    assert (await s.post(s.sms(from_=CUSTOMER, body=body)))[0] == 200
    await h.drained()


async def test_sms_number_reply_is_the_answer(make_harness: HarnessFactory,
                                              twilio: TwilioStandin, clock: OffsetClock) -> None:
    h = await bridge(make_harness, twilio, clock)
    thread = await customer(h, "Where is my parcel?", address=CUSTOMER)
    await close(h, thread)
    [question] = [m for m in twilio.sent if "How did we do?" in str(m.get("body"))]
    assert "Reply with a number from 1 (very bad) to 5 (excellent)." in question["body"]
    assert question["to"] == CUSTOMER

    s = sender(h)
    answer = s.sms(from_=CUSTOMER, body=" 5 ")
    for _ in range(2):  # Twilio delivers the same webhook again: one answer, no message
        assert (await s.post(answer))[0] == 200
    await h.drained()
    assert h.rows("SELECT kind, state, score FROM surveys") == [("csat", "answered", 5)]
    assert h.rows("SELECT status FROM conversations") == [("closed",)]
    assert h.count("messages WHERE direction = 'in'") == 1  # "5" is no message
    assert any(line.startswith(":star: 5/5 from") for line in lines(h, thread))

    # Once answered, a number is the customer writing again, as usual.
    await sms_says(h, "4")
    assert h.rows("SELECT score FROM surveys") == [(5,)]
    assert h.count("messages WHERE direction = 'in'") == 2


async def test_text_that_is_no_answer_continues_as_usual(
        make_harness: HarnessFactory, twilio: TwilioStandin, clock: OffsetClock) -> None:
    h = await bridge(make_harness, twilio, clock)
    thread = await customer(h, "Hi", address=CUSTOMER)
    await close(h, thread)
    await sms_says(h, "I have another question")
    assert h.rows("SELECT state FROM surveys") == [("sent",)]
    assert h.count("messages WHERE direction = 'in'") == 2
    # Once answer_days have passed, a number is a message, not an answer.
    clock.offset = 8 * 24 * HOUR
    await sms_says(h, "3")
    assert h.rows("SELECT state, score FROM surveys") == [("sent", None)]
    assert h.count("messages WHERE direction = 'in'") == 3


async def test_no_survey_through_a_closed_whatsapp_window(
        make_harness: HarnessFactory, twilio: TwilioStandin, clock: OffsetClock) -> None:
    h = await bridge(make_harness, twilio, clock)
    thread = await customer(h, "Hello", address=WA)
    await h.drained()
    clock.offset = 25 * HOUR
    sent_before = len(twilio.sent)
    await close(h, thread)
    assert len(twilio.sent) == sent_before  # nothing attempted
    [(state, reason)] = h.rows("SELECT state, reason FROM surveys")
    assert state == "blocked" and "24-hour window" in reason
    assert any("satisfaction survey was not sent" in line and "24-hour window" in line
               for line in lines(h, thread))


async def test_whatsapp_template_goes_out_of_window(
        make_harness: HarnessFactory, twilio: TwilioStandin, clock: OffsetClock) -> None:
    h = await bridge(make_harness, twilio, clock, twilio_template="rate")
    thread = await customer(h, "Hello", address=WA)
    await h.drained()
    clock.offset = 25 * HOUR
    await close(h, thread)
    [sent] = [m for m in twilio.sent if m["params"].get("ContentSid") == TEMPLATE]
    assert sent["to"] == WA
    assert h.rows("SELECT state FROM surveys") == [("sent",)]
    # The list's row comes back as its title: a number reply.
    s = sender(h)
    assert (await s.post(s.whatsapp(from_=WA, body="4")))[0] == 200
    await h.drained()
    assert h.rows("SELECT score FROM surveys") == [(4,)]


async def test_opted_out_customer_gets_no_survey(
        make_harness: HarnessFactory, twilio: TwilioStandin, clock: OffsetClock) -> None:
    h = await bridge(make_harness, twilio, clock)
    thread = await customer(h, "Hello", address=CUSTOMER)
    await sms_says(h, "STOP")
    sent_before = len(twilio.sent)
    await close(h, thread)
    assert len(twilio.sent) == sent_before
    assert h.rows("SELECT state, reason FROM surveys") == [("blocked", "the customer opted out")]
    assert any("opted out" in line for line in lines(h, thread))


@pytest.mark.backends("sqlite")
async def test_nps_after_csat_and_once_per_interval(
        make_harness: HarnessFactory, twilio: TwilioStandin, clock: OffsetClock) -> None:
    h = await bridge(make_harness, twilio, clock, nps=True, nps_interval_days=30)
    thread = await customer(h, "Hi", address=CUSTOMER)
    await close(h, thread)
    await sms_says(h, "4")

    async def nps_sent() -> list[Any]:
        return [m for m in twilio.sent if "0 to 10" in str(m.get("body"))]
    await poll(nps_sent, lambda got: len(got) == 1, "the NPS question")
    await h.drained()
    await sms_says(h, "10")
    assert h.rows("SELECT kind, state, score FROM surveys ORDER BY id") == [
        ("csat", "answered", 4), ("nps", "answered", 10)]
    assert any("NPS 10/10" in line for line in lines(h, thread))
    # A new conversation (past the reopen window) within 30 days: CSAT again, no NPS.
    clock.offset = 8 * 24 * HOUR
    thread = await customer(h, "Me again", address=CUSTOMER)
    await close(h, thread, surveys=3)
    await sms_says(h, "3")
    assert h.rows("SELECT kind FROM surveys ORDER BY id") == [("csat",), ("nps",), ("csat",)]
