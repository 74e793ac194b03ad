"""Automatic answers follow each channel's rules (issue 21): over Twilio WhatsApp they go out
as the bridge's (no agent's name), a STOP is never answered, and nothing automatic reaches a
customer who opted out."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.standins.clock import OffsetClock
from bridge.standins.twilio import (
    CREATE,
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    TwilioStandin,
)
from tests.conftest import Harness, HarnessFactory
from tests.helpers_twilio import SMS_FROM, WA, WA_FROM, customer

pytestmark = pytest.mark.backends("sqlite")  # the channel's rules; the SQL runs elsewhere

FAQ = '[[faq]]\nquestions = ["When are you open?"]\nanswer = "Weekdays 9 to 5."\n'


@pytest.fixture
async def h(make_harness: HarnessFactory, twilio: TwilioStandin, clock: OffsetClock,
            tmp_path: Path) -> Harness:
    (tmp_path / "faq.toml").write_text(FAQ, encoding="utf-8")
    return await make_harness({
        "connectors.twilio": {
            "enabled": True, "account_sid": DEFAULT_ACCOUNT_SID,
            "auth_token": DEFAULT_AUTH_TOKEN, "sms_from": SMS_FROM, "whatsapp_from": WA_FROM,
            "api_base_url": twilio.base_url},
        "teams.support": {"greeting": "Hello {{ customer.first_name or 'there' }}!"},
        "faq": {"file": "faq.toml"}}, clock=clock)


async def test_automatic_answers_respect_opt_out(h: Harness, twilio: TwilioStandin) -> None:
    await customer(h, "When are you open?", address=WA)
    calls = await twilio.wait_for(CREATE, 2)
    bodies = [c.params["Body"] for c in calls]
    assert bodies[0].startswith("Support: Hello") and "Weekdays 9 to 5." in bodies[1]
    assert not any(b.startswith("Dana") for b in bodies)  # the bridge's words, not an agent's

    await customer(h, "STOP", address=WA)
    await h.wait_rows("SELECT opted_out_at IS NOT NULL FROM identities", [(True,)])
    await customer(h, "When are you open?", address=WA)
    await h.drained()
    assert len(twilio.sent) == 2  # nothing more: not to the STOP, not after it
    assert h.rows("SELECT origin, state FROM messages WHERE direction = 'out' ORDER BY id") == [
        ("auto", "sent"), ("faq", "sent")]
