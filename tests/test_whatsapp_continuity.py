"""WhatsApp Cloud and the other channels: the same phone as SMS through Twilio joins one
customer; `!handoff whatsapp` gives a wa.me link whose code, sent from WhatsApp, links."""

from __future__ import annotations

import pytest

from bridge.standins.clock import OffsetClock
from bridge.standins.config import TomlValue
from bridge.standins.twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, TwilioStandin
from bridge.standins.whatsapp import WhatsAppStandin
from tests.conftest import Harness, HarnessFactory
from tests.helpers_continuity import code_in, command, customers_of
from tests.helpers_twilio import SMS_FROM, customer
from tests.helpers_whatsapp import (
    KERRY,
    NUMBER_A,
    customer_writes,
    sender,
    whatsapp_harness,
)

pytestmark = pytest.mark.backends("sqlite", "postgres")  # links are store transactions


@pytest.fixture
async def h(make_harness: HarnessFactory, wa: WhatsAppStandin, twilio: TwilioStandin,
            clock: OffsetClock) -> Harness:
    """WhatsApp Cloud and Twilio SMS (and Telegram) in one bridge."""
    sms: dict[str, TomlValue] = {
        "enabled": True, "account_sid": DEFAULT_ACCOUNT_SID, "auth_token": DEFAULT_AUTH_TOKEN,
        "sms_from": SMS_FROM, "api_base_url": twilio.base_url}
    return await whatsapp_harness(make_harness, wa, clock, {"connectors.twilio": sms})


async def test_the_same_number_on_sms_and_whatsapp_cloud_is_one_customer(
    h: Harness, wa: WhatsAppStandin, clock: OffsetClock,
) -> None:
    await customer(h, "Hi by SMS", address=f"+{KERRY}")
    await customer_writes(h, sender(h, wa, clock), "and now on WhatsApp")
    await h.wait_rows("SELECT method, evidence, actor FROM links",
                      [("phone", f"+{KERRY}", "bridge")])
    assert len(set(customers_of(h).values())) == 1


async def test_handoff_whatsapp_gives_a_wa_me_link_whose_code_links(
    h: Harness, wa: WhatsAppStandin, clock: OffsetClock,
) -> None:
    assert await h.customer_says(4242, "Hello from Telegram") == 200
    thread = await h.thread_of(4242)
    await command(h, thread, "!handoff whatsapp")
    await h.telegram.wait_for("sendMessage", 1)
    text = str(h.telegram.sent[-1]["text"])
    assert "https://wa.me/15550783881?text=LINK-" in text
    code = code_in([text])
    s = sender(h, wa, clock)
    assert await s.send(NUMBER_A, s.message(KERRY, text=code)) == 200
    await h.wait_rows("SELECT method, evidence FROM links", [("handoff", "whatsapp")])
    assert len(set(customers_of(h).values())) == 1
