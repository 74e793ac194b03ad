"""Shared setup of the continuity tests (a pytest plugin, see conftest): one bridge with
Telegram, Twilio (SMS and WhatsApp) and Messenger on their stand-ins, and readers of what
the store and the threads hold."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pytest

from bridge.standins.clock import OffsetClock
from bridge.standins.messenger import DEFAULT_APP_ID, DEFAULT_APP_SECRET, MessengerStandin
from bridge.standins.twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, TwilioStandin
from tests.conftest import AGENT, CHANNEL, Harness, HarnessFactory
from tests.helpers_messenger import PAGE_A, PAGE_B, TOKEN_A, TOKEN_B, VERIFY_TOKEN
from tests.helpers_twilio import SMS_FROM, WA_FROM
from vocab.models import InboundMessage, IngestResult

CODE = re.compile(r"LINK-[0-9A-Z]{12}")


def channels_config(twilio: TwilioStandin, meta: MessengerStandin,
                    ) -> dict[str, dict[str, Any]]:
    return {
        "connectors.twilio": {
            "enabled": True, "account_sid": DEFAULT_ACCOUNT_SID,
            "auth_token": DEFAULT_AUTH_TOKEN, "sms_from": SMS_FROM, "whatsapp_from": WA_FROM,
            "api_base_url": twilio.base_url},
        "connectors.messenger": {
            "enabled": True, "app_secret": DEFAULT_APP_SECRET, "verify_token": VERIFY_TOKEN,
            "app_id": DEFAULT_APP_ID, "graph_base_url": meta.base_url,
            "pages": [{"id": PAGE_A, "access_token": TOKEN_A},
                      {"id": PAGE_B, "access_token": TOKEN_B}]},
    }


@pytest.fixture
async def hc(make_harness: HarnessFactory, twilio: TwilioStandin, meta: MessengerStandin,
             clock: OffsetClock) -> Harness:
    """The real bridge with Telegram, Twilio and Messenger, on a clock the test moves."""
    return await make_harness(channels_config(twilio, meta), clock=clock)


def record_ingest(h: Harness, monkeypatch: pytest.MonkeyPatch) -> list[InboundMessage]:
    """What the connectors hand the core through the real webhooks (the real ingest runs)."""
    seen: list[InboundMessage] = []
    router = h.bridge.router
    assert router is not None
    real = router.ingest

    async def record(items: Sequence[InboundMessage]) -> list[IngestResult]:
        seen.extend(items)
        return await real(items)

    monkeypatch.setattr(router, "ingest", record)
    return seen


def code_in(texts: list[str]) -> str:
    """The handoff code in the last text that carries one."""
    for text in reversed(texts):
        found = CODE.search(text)
        if found:
            return found.group(0)
    raise AssertionError(f"no handoff code in {texts!r}")


def thread_texts(h: Harness, thread: str) -> list[str]:
    return [str(m["text"]) for m in h.slack.thread(CHANNEL, thread)]


def open_conversations(h: Harness) -> list[Any]:
    return [r[0] for r in h.rows("SELECT slack_thread_ts FROM conversations WHERE"
                                 " status = 'open' AND merged_into IS NULL ORDER BY id")]


def customers_of(h: Harness) -> dict[str, int]:
    """Each identity's address -> its customer."""
    return {str(a): int(c) for a, c in h.rows("SELECT address, customer_id FROM identities")}


async def command(h: Harness, thread: str, text: str, user: str = AGENT) -> None:
    assert await h.agent_says(thread, text, user=user) == 200


def link_button(h: Harness) -> dict[str, Any]:
    """The Link button of the last candidate list `!link` showed the agent."""
    blocks = h.slack.ephemerals[-1]["blocks"] or []
    return next(b["accessory"] for b in blocks if b.get("accessory"))


async def click_link(h: Harness, button: dict[str, Any], user: str = AGENT) -> int:
    """Click a button of an ephemeral message: Slack sends no `message`, only a container."""
    payload = h.agent.block_action(channel=CHANNEL, user=user, message={"ts": "1.0"},
                                   action_id=button["action_id"], value=button["value"])
    payload.pop("message")
    payload["container"]["is_ephemeral"] = True
    status, _ = await h.agent.post_interaction(payload)
    return status
