"""Shared setup of the Twilio tests (a pytest plugin, see conftest): the numbers, a signed
webhook sender, a movable clock, the stand-in, a bridge with templates, and small readers of
what the thread shows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bridge.standins.clock import OffsetClock
from bridge.standins.twilio import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    TwilioStandin,
    TwilioWebhookSender,
)
from tests.conftest import CHANNEL, Harness, HarnessFactory

CUSTOMER = "+14155550100"
SMS_FROM = "+14155550199"
WA_FROM = "whatsapp:+14155238886"
WA = f"whatsapp:{CUSTOMER}"
HOUR = 3600.0
FOLLOW_UP = "HX" + "a" * 32
CANCEL = "HX" + "b" * 32


def sender(h: Harness, public: str | None = None) -> TwilioWebhookSender:
    # Twilio signs the public URL; the request may arrive through a proxy at another address.
    return TwilioWebhookSender(f"{h.url}/webhooks/twilio", DEFAULT_AUTH_TOKEN, h.session,
                               public_url=f"{public or h.url}/webhooks/twilio")


async def thread_of(h: Harness, address: str, timeout: float = 5.0) -> str:
    return await h.thread_at(address, timeout)


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioStandin]:
    async with TwilioStandin() as standin:
        yield standin


@pytest.fixture
def clock() -> OffsetClock:
    return OffsetClock()


def twilio_config(twilio: TwilioStandin) -> dict[str, dict[str, Any]]:
    return {"connectors.twilio": {
        "enabled": True, "account_sid": DEFAULT_ACCOUNT_SID, "auth_token": DEFAULT_AUTH_TOKEN,
        "sms_from": SMS_FROM, "whatsapp_from": WA_FROM, "api_base_url": twilio.base_url}}


@pytest.fixture
async def h(make_harness: HarnessFactory, twilio: TwilioStandin, clock: OffsetClock) -> Harness:
    return await make_harness({"connectors.twilio": {
        "enabled": True, "account_sid": DEFAULT_ACCOUNT_SID, "auth_token": DEFAULT_AUTH_TOKEN,
        "sms_from": SMS_FROM, "whatsapp_from": WA_FROM, "api_base_url": twilio.base_url,
        "templates": [{"name": "follow_up", "content_sid": FOLLOW_UP,
                       "variables": {"1": "there"}},
                      {"name": "cancel", "content_sid": CANCEL}],
    }}, clock=clock)


async def customer(h: Harness, body: str, address: str = WA) -> str:
    s = sender(h)
    form = s.whatsapp(from_=address, body=body) if address.startswith("whatsapp:") \
        else s.sms(from_=address, body=body)
    assert (await s.post(form))[0] == 200
    return await thread_of(h, address)


def out_states(h: Harness) -> list[Any]:
    return [r[0] for r in h.rows("SELECT state FROM messages WHERE direction = 'out'"
                                 " ORDER BY id")]


async def last_notice(h: Harness, thread: str, count: int) -> dict[str, Any]:
    await h.slack.wait_for("chat.postMessage", count)
    await h.drained()
    return h.slack.thread(CHANNEL, thread)[-1]


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in message.get("blocks") or [] if b["type"] == "actions"
            for e in b["elements"]]
