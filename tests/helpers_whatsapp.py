"""The WhatsApp Cloud connector's test setup: two business numbers on the Graph stand-in,
the bridge pointed at it, Meta's signed webhooks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bridge.standins.clock import OffsetClock
from bridge.standins.config import TomlValue
from bridge.standins.messenger import DEFAULT_APP_SECRET
from bridge.standins.whatsapp import (
    DEFAULT_TOKEN,
    DEFAULT_WABA,
    WhatsAppStandin,
    WhatsAppWebhookSender,
)
from tests.conftest import CHANNEL, Harness, HarnessFactory

NUMBER_A, NUMBER_B = "106540352242922", "106540352242923"
VERIFY_TOKEN = "standin-verify-token"
KERRY, OLU = "16315551181", "447700900123"
HOUR = 3600.0
OUT = "SELECT state FROM messages WHERE direction = 'out' ORDER BY id"


@pytest.fixture
async def wa(clock: OffsetClock) -> AsyncIterator[WhatsAppStandin]:
    """The Graph API stand-in for WhatsApp Cloud on the test's `clock` (tests/helpers_twilio.py
    gives a fresh one; a module may override it)."""
    async with standin(clock) as s:
        yield s


def standin(clock: OffsetClock) -> WhatsAppStandin:
    wa = WhatsAppStandin(numbers=(NUMBER_A, NUMBER_B), clock=clock)
    wa.add_template("order_update", "Hi {{1}}, your order {{2}} has shipped.")
    wa.add_template("welcome_back", "Hello again! Reply to continue.", language="pl")
    wa.add_template("pending_one", "Not yet {{1}}", status="PENDING")
    return wa


async def whatsapp_harness(make_harness: HarnessFactory, wa: WhatsAppStandin,
                           clock: OffsetClock, others: dict[str, dict[str, TomlValue]] | None
                           = None, **keys: TomlValue) -> Harness:
    """The real bridge with [connectors.whatsapp] on the stand-in (secrets from env), plus
    `others` (more tables)."""
    table: dict[str, TomlValue] = {
        "enabled": True, "app_secret": "${WHATSAPP_APP_SECRET}",
        "verify_token": "${WHATSAPP_VERIFY_TOKEN}", "access_token": "${WHATSAPP_ACCESS_TOKEN}",
        "business_account_id": DEFAULT_WABA, "graph_base_url": wa.base_url,
        "throttle_retry_after": 0.3,
        "phone_numbers": [{"phone_number_id": NUMBER_A, "number": "+15550783881"},
                          {"phone_number_id": NUMBER_B, "number": "+15550783882"}],
        **keys,
    }
    env = {"WHATSAPP_APP_SECRET": DEFAULT_APP_SECRET, "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
           "WHATSAPP_ACCESS_TOKEN": DEFAULT_TOKEN}
    return await make_harness({"connectors.whatsapp": table, **(others or {})}, env=env,
                              clock=clock)


def sender(h: Harness, wa: WhatsAppStandin, clock: OffsetClock) -> WhatsAppWebhookSender:
    s = WhatsAppWebhookSender(f"{h.url}/webhooks/whatsapp", h.session, standin=wa, clock=clock)
    s.names.update({KERRY: "Kerry Fisher", OLU: "Olu Ade"})
    return s


async def customer_writes(h: Harness, s: WhatsAppWebhookSender, text: str = "hello",
                          number: str = NUMBER_A, wa_id: str = KERRY) -> str:
    assert await s.send(number, s.message(wa_id, text=text)) == 200
    return await h.thread_at(f"{number}:{wa_id}")


def out_states(h: Harness) -> list[Any]:
    return [r[0] for r in h.rows(OUT)]


async def last_notice(h: Harness, thread: str, count: int) -> dict[str, Any]:
    await h.slack.wait_for("chat.postMessage", count)
    await h.drained()
    return h.slack.thread(CHANNEL, thread)[-1]
