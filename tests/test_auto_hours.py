"""Automatic answers that know the hours (issue 21, item 1), end to end with a moved clock:
one closed reply per conversation per closed period naming the next opening, none within
`auto_quiet_minutes` of a person's reply, and a greeting that says the expected wait."""

from __future__ import annotations

import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from bridge.clock import FAKE_NOW
from bridge.standins import SlackStandin, TelegramStandin
from bridge.standins.clock import OffsetClock
from tests.conftest import CHANNEL, Harness, HarnessFactory, bridge_env, write_config
from tests.helpers_proc import BridgeProcess, free_port
from tests.waiting import until

BELGRADE = ZoneInfo("Europe/Belgrade")
HOURS: dict[str, Any] = {
    "hours.office": {"timezone": "Europe/Belgrade",
                     **{day: ["09:00-17:00"] for day in
                        ("monday", "tuesday", "wednesday", "thursday", "friday")}},
}


def at(clock: OffsetClock, text: str) -> None:
    """Move the business clock to a local Belgrade time ("2026-12-12 10:00")."""
    clock.offset = datetime.fromisoformat(text).replace(tzinfo=BELGRADE).timestamp() - time.time()


def sent_to(h: Harness, chat: int) -> list[str]:
    return [str(m["text"]) for m in h.telegram.sent if m["chat_id"] == chat]


async def says(h: Harness, chat: int, text: str, language: str = "en") -> None:
    update = h.telegram.text_update(chat_id=chat, text=text, first_name="Ann")
    update["message"]["from"]["language_code"] = language
    status, _ = await h.telegram.deliver(update, h.session)
    assert status == 200
    await h.drained()


async def test_one_closed_reply_per_closed_period_naming_the_next_opening(
        make_harness: HarnessFactory) -> None:
    clock = OffsetClock()
    at(clock, "2026-12-12 10:00")  # a Saturday: closed until Monday 9:00
    h = await make_harness({**HOURS, "teams.support": {
        "hours": "office", "closed_reply": True, "greeting": True}}, clock=clock)
    await says(h, 1, "Hello, my order is late")
    await until(lambda: len(sent_to(h, 1)) == 1, lambda: f"a closed reply: {sent_to(h, 1)}")
    assert "We are closed right now; we will answer from Monday 9:00." in sent_to(h, 1)[0]
    await says(h, 1, "Hello? Anyone?")
    assert len(sent_to(h, 1)) == 1  # the same closed period: no second one, no greeting

    at(clock, "2026-12-14 10:00")  # Monday, open
    await says(h, 1, "Still waiting")
    assert len(sent_to(h, 1)) == 1

    at(clock, "2026-12-14 18:00")  # Monday evening: a new closed period
    await says(h, 1, "Are you there?")
    await until(lambda: len(sent_to(h, 1)) == 2, "a second closed reply")
    assert "we will answer from Tuesday 9:00." in sent_to(h, 1)[1]

    # A person answered a few minutes ago: no closed reply now, one later in that period.
    at(clock, "2026-12-15 17:58")
    thread = await h.thread_of(1)
    assert await h.agent_says(thread, "Looking into it now") == 200
    await until(lambda: len(sent_to(h, 1)) == 3, "the agent's reply")
    at(clock, "2026-12-15 18:02")
    await says(h, 1, "Thanks, any news?")
    assert len(sent_to(h, 1)) == 3
    at(clock, "2026-12-15 18:30")
    await says(h, 1, "Hello?")
    await until(lambda: len(sent_to(h, 1)) == 4, "a closed reply after the quiet minutes")
    assert "Wednesday 9:00" in sent_to(h, 1)[3]

    # Stored as the bridge's, shown as the bridge's, never counted as an agent's response.
    assert h.rows("SELECT origin, COUNT(*) FROM messages WHERE direction = 'out'"
                  " GROUP BY origin ORDER BY origin") == [("auto", 3), ("person", 1)]
    assert h.rows("SELECT COUNT(*) FROM messages WHERE origin = 'auto'"
                  " AND author_slack_user IS NOT NULL") == [(0,)]
    shown = [str(m.get("text")) for m in h.slack.thread(CHANNEL, thread)]
    assert sum("Sent by the bridge (closed reply" in t for t in shown) == 3, shown


async def test_greeting_with_the_expected_wait_and_in_the_customers_language(
        make_harness: HarnessFactory) -> None:
    clock = OffsetClock()
    at(clock, "2026-12-11 16:55")  # Friday, five minutes before closing
    h = await make_harness({**HOURS, "teams.support": {
        "hours": "office", "greeting": True, "closed_reply": {
            "en": "Closed. Back {{ next_open }}.", "sr": "Zatvoreno do {{ next_open }}."}}},
        clock=clock)
    await says(h, 2, "Hi, a question about my invoice")
    await until(lambda: len(sent_to(h, 2)) == 1, "a greeting")
    assert "Hello Ann, thank you for writing. A person will answer shortly." in sent_to(h, 2)[0]
    thread = await h.thread_of(2)
    at(clock, "2026-12-14 09:05")  # Monday: ten minutes of open time later (64 hours' wall)
    assert await h.agent_says(thread, "Hello!") == 200
    await until(lambda: len(sent_to(h, 2)) == 2, "the agent's reply")

    at(clock, "2026-12-14 10:00")
    await says(h, 3, "Zdravo, imam pitanje", language="sr")
    await until(lambda: len(sent_to(h, 3)) == 1, "a greeting in Serbian")
    assert "Odgovoriće vam osoba iz tima za oko 10 minuta." in sent_to(h, 3)[0]
    await says(h, 3, "Još nešto", language="sr")
    assert len(sent_to(h, 3)) == 1  # a greeting starts a conversation, once

    at(clock, "2026-12-14 20:00")
    await says(h, 4, "Dobar dan", language="sr")
    await until(lambda: len(sent_to(h, 4)) == 1, "the admin's Serbian closed reply")
    assert "Zatvoreno do utorak 9:00." in sent_to(h, 4)[0]  # instead of the greeting


@pytest.mark.backends("sqlite")
async def test_bridge_run_with_bridge_fake_now_sends_the_closed_reply(
        tmp_path: Path, slack: SlackStandin, telegram: TelegramStandin,
        session: aiohttp.ClientSession) -> None:
    """Black box: `bridge run` with BRIDGE_FAKE_NOW on a Saturday (allowed by the config)."""
    port = free_port()
    config = write_config(tmp_path / "bridge.toml", port=port, db=tmp_path / "b.db",
                          slack=slack, telegram=telegram, overrides={
                              "server": {"allow_fake_clock": True}, **HOURS,
                              "teams.support": {"hours": "office", "closed_reply": True}})
    proc = BridgeProcess(config, {**bridge_env(slack), FAKE_NOW: "2026-12-12T10:00:00+01:00"},
                         tmp_path, port)
    proc.start()
    try:
        await proc.wait_healthy()
        update = telegram.text_update(chat_id=5, text="Hello?", first_name="Ann")
        status, _ = await telegram.deliver(update, session)
        assert status == 200
        await until(lambda: any("Monday 9:00" in str(m["text"]) for m in telegram.sent),
                    lambda: f"a closed reply naming Monday 9:00; sent: {telegram.sent}")
        assert await proc.signal(signal.SIGINT, timeout=10) == 0
    finally:
        proc.cleanup()
