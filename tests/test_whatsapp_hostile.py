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


async def test_forged_oversized_and_odd_messages_are_stored_once_and_safely(
    make_harness: HarnessFactory, wa: WhatsAppStandin, clock: OffsetClock,
) -> None:
    """Interactive replies with a forged survey id and an oversized id, an unknown type, a
    timestamp far past any date, a profile name of bidi controls and astral characters, all
    replayed: 200 each time, one row per wamid, never a 5xx, nothing taken from the forgery."""
    h = await whatsapp_harness(make_harness, wa, clock)
    s = sender(h, wa, clock)
    s.names[KERRY] = "\u202eKérry 🧪 Fïsher\u200b" + "ж" * 3000
    forged = s.message(KERRY, "interactive", {"type": "button_reply", "button_reply": {
        "id": "s:forged-token:5", "title": "5"}})
    oversized = s.message(KERRY, "interactive", {"type": "list_reply", "list_reply": {
        "id": "x" * 20_000, "title": "Billing"}})
    unknown = s.message(KERRY, "hologram", {"id": "9" * 400})
    late = s.message(KERRY, text="far future")
    late["timestamp"] = "9" * 400
    body = s.body(s.change(NUMBER_A, messages=[forged, oversized, unknown, late]))
    for _ in range(3):  # Meta redelivers until it sees a 200
        assert (await s.post(body))[0] == 200
    await h.drained()
    texts = sorted(str(r[0]) for r in h.rows(
        "SELECT text FROM messages WHERE direction = 'in'"))
    assert texts == sorted(["5", "Billing", "[a WhatsApp hologram the bridge cannot show]",
                            "far future"])
    assert h.count("customers") == 1
    assert h.rows("SELECT count(*) FROM surveys WHERE score IS NOT NULL")[0][0] == 0
    names = [str(r[0]) for r in h.rows("SELECT display_name FROM identities")]
    assert len(names) == 1 and "Fïsher" in names[0] and "🧪" in names[0]
