"""The Messenger connector's test setup (a pytest plugin, see conftest): two pages on the
Graph API stand-in, a movable clock."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import pytest

from bridge.standins.clock import OffsetClock
from bridge.standins.config import TomlValue
from bridge.standins.messenger import (
    DEFAULT_APP_ID,
    DEFAULT_APP_SECRET,
    MessengerStandin,
    MessengerWebhookSender,
)
from tests.conftest import Harness, HarnessFactory

PAGE_A, PAGE_B = "1111111111", "2222222222"
TOKEN_A, TOKEN_B = "page-a-token", "page-b-token"
VERIFY_TOKEN = "standin-verify-token"
ANN, BOB = "6001234567890123", "7009876543210987"  # page-scoped ids (PSIDs)
HOUR = 3600.0


@pytest.fixture
async def meta() -> AsyncIterator[MessengerStandin]:
    """The Graph API stand-in with two pages and two profiles, running."""
    async with standin() as s:
        yield s


def standin() -> MessengerStandin:
    meta = MessengerStandin(pages={PAGE_A: TOKEN_A, PAGE_B: TOKEN_B})
    meta.add_profile(ANN, "Ann", "Kowalski")
    meta.add_profile(BOB, "Bob", "Héloïse")
    return meta


async def messenger_harness(make_harness: HarnessFactory, meta: MessengerStandin,
                            clock: OffsetClock | None = None,
                            **keys: TomlValue) -> Harness:
    """The real bridge with [connectors.messenger] pointed at the stand-in (secrets from env)."""
    table: dict[str, TomlValue] = {
        "enabled": True, "app_secret": "${MESSENGER_APP_SECRET}",
        "verify_token": "${MESSENGER_VERIFY_TOKEN}", "app_id": DEFAULT_APP_ID,
        "graph_base_url": meta.base_url, "throttle_retry_after": 0.3,
        "pages": [{"id": PAGE_A, "access_token": "${MESSENGER_PAGE_TOKEN}"},
                  {"id": PAGE_B, "access_token": TOKEN_B}],
        **keys,
    }
    env = {"MESSENGER_APP_SECRET": DEFAULT_APP_SECRET, "MESSENGER_VERIFY_TOKEN": VERIFY_TOKEN,
           "MESSENGER_PAGE_TOKEN": TOKEN_A}
    return await make_harness({"connectors.messenger": table}, env=env,
                              clock=clock or OffsetClock())


def sender(h: Harness, clock: Callable[[], float] | None = None) -> MessengerWebhookSender:
    return MessengerWebhookSender(f"{h.url}/webhooks/messenger", DEFAULT_APP_SECRET, h.session,
                                  clock=clock or time.time)


async def thread_of(h: Harness, page: str, psid: str, timeout: float = 5.0) -> str:
    return await h.thread_at(f"{page}:{psid}", timeout)
