"""POST /webhooks/whatsapp through the real app with generated bodies, signed and unsigned:
never a 5xx, never a row for a rejected request; statuses for wamids we never sent change
nothing."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import strategies as st

from bridge.standins.clock import OffsetClock
from bridge.standins.whatsapp import WhatsAppStandin
from tests.conftest import HarnessFactory
from tests.helpers_whatsapp import KERRY, NUMBER_A, sender, whatsapp_harness
from tests.test_fuzz_endpoints import as_bytes, check, drawn
from tests.test_fuzz_parsers import JSON_VALUES
from tests.test_whatsapp_parse import BODY

pytestmark = pytest.mark.backends("sqlite")


async def test_whatsapp_webhook_never_5xx(make_harness: HarnessFactory, wa: WhatsAppStandin,
                                         clock: OffsetClock) -> None:
    h = await whatsapp_harness(make_harness, wa, clock)
    s = sender(h, wa, clock)

    async def send(body: Any) -> int:
        raw = as_bytes(body)
        assert (await s.post(raw, sign=False))[0] == 401
        return (await s.post(raw))[0]

    await check(h, drawn(st.binary(max_size=300) | JSON_VALUES | BODY), send)


async def test_statuses_for_unknown_messages_change_nothing(
    make_harness: HarnessFactory, wa: WhatsAppStandin, clock: OffsetClock,
) -> None:
    h = await whatsapp_harness(make_harness, wa, clock)
    s = sender(h, wa, clock)
    statuses = [s.status("wamid.never-sent", KERRY, state) for state in
                ("sent", "delivered", "read", "deleted", "warning")]
    statuses.append(s.status("wamid.never-sent-2", KERRY, "failed", (131026, "Undeliverable")))
    assert (await s.post(s.body(s.change(NUMBER_A, statuses=statuses))))[0] == 200
    assert h.count("messages") == 0 and h.count("customers") == 0
