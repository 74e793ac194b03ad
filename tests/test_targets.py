"""Response-time targets end to end (issue 20): the real bridge between the Slack and Telegram
stand-ins, on a moved business clock, on SQLite and PostgreSQL.  A wait crossing a closing
time and a holiday is due at the next opening; the parent shows the due time, 🟡 at 80 % and
🔴 when missed; one reminder and one alert fire; an agent's reply meets the target; pending
stops the clock."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bridge.queue import as_json, team_sections
from bridge.standins.clock import OffsetClock
from tests.conftest import AGENT, CHANNEL, Harness, HarnessFactory
from tests.helpers_ownership import lines, parent

PARIS = ZoneInfo("Europe/Paris")
ALERTS = "C0ALERTS01"
TARGETS: dict[str, Any] = {
    "teams.support": {"hours": "office", "first_response": "1h", "next_response": "30m",
                      "resolution": "2d", "alerts_channel": ALERTS, "members": [AGENT]},
    "hours.office": {"timezone": "Europe/Paris", "monday": ["09:00-12:00", "13:00-17:00"],
                     "tuesday": ["09:00-17:00"], "wednesday": ["09:00-17:00"],
                     "thursday": ["09:00-17:00"], "friday": ["09:00-17:00"],
                     "holidays": ["2026-12-08"]},
}
ROWS = ("SELECT kind, state, warned_at IS NOT NULL, met_at IS NOT NULL, missed_at IS NOT NULL"
        " FROM response_targets ORDER BY id")


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=PARIS).timestamp()


def move(clock: OffsetClock, text: str) -> None:
    clock.offset = at(text) - time.time()


async def settle(*hs: Harness) -> None:
    """One round of every instance's keeper (their loops run too: it changes nothing), then
    everything it queued is delivered."""
    for h in hs:
        await h.bridge.targets.tick()
    for h in hs:
        await h.drained()


def alerts(h: Harness) -> list[str]:
    return [str(m["text"]) for m in h.slack.parents(ALERTS)]


def context(h: Harness, thread: str) -> str:
    blocks = parent(h, thread)["blocks"]
    return " ".join(e["text"] for b in blocks if b["type"] == "context" for e in b["elements"])


async def test_due_over_a_closing_and_a_holiday_reminder_miss_and_late_answer(
        make_harness: HarnessFactory) -> None:
    clock = OffsetClock()
    move(clock, "2026-12-07 16:30")  # a Monday; Tuesday the 8th is a holiday
    h = await make_harness(TARGETS, clock=clock)
    assert await h.customer_says(501, "Where is my parcel?", first_name="Ann") == 200
    thread = await h.thread_of(501)
    await settle(h)
    [(due,)] = h.rows("SELECT due_at FROM response_targets WHERE kind = 'first_response'")
    assert due == pytest.approx(at("2026-12-09 09:30"), abs=20)  # 30 min Monday, 30 Wednesday
    assert "⏱ first answer due" in context(h, thread)
    assert h.rows(ROWS) == [("first_response", "running", 0, 0, 0),
                            ("resolution", "running", 0, 0, 0)]

    move(clock, "2026-12-09 09:19")  # 49 of 60 business minutes gone
    await settle(h)
    await settle(h)  # a second round reminds nobody again
    reminders = [t for t in lines(h, thread) if "80 %" in t]
    assert len(reminders) == 1 and f"<@{AGENT}>" in reminders[0]  # the team's members
    assert "🟡 first answer due" in context(h, thread)
    assert alerts(h) == []
    # The queue (Home tab, `!queue`, `bridge queue`) shows it too.
    [entry] = json.loads(as_json(team_sections(await h.bridge.store.queue(),
                                               h.bridge.settings.resolved_teams()), clock()))
    assert entry["target"] == {"kind": "first_response", "state": "running", "warned": True,
                               "due_at": entry["target"]["due_at"]}
    assert entry["target"]["due_at"].startswith("2026-12-09T08:30")
    assert await h.agent_says(thread, "!queue") == 200
    assert any("🟡 first answer due" in str(e["text"]) for e in h.slack.ephemerals)

    move(clock, "2026-12-09 09:31")
    await settle(h)
    await settle(h)
    assert len(alerts(h)) == 1 and "missed the first answer" in alerts(h)[0]
    assert "🔴" in context(h, thread)
    assert h.rows(ROWS)[0] == ("first_response", "missed", 1, 0, 1)

    assert await h.agent_says(thread, "note: checking the depot") == 200  # a note meets nothing
    await settle(h)
    assert h.rows(ROWS)[0] == ("first_response", "missed", 1, 0, 1)
    assert await h.agent_says(thread, "Sorry Ann, it ships today") == 200
    await settle(h)
    [(state, took)] = h.rows("SELECT state, business_seconds FROM response_targets"
                             " WHERE kind = 'first_response'")
    assert state == "missed" and took == pytest.approx(3600 + 60, abs=30)
    assert "🔴" not in context(h, thread) and "⏱ resolution due" in context(h, thread)
    assert len(alerts(h)) == 1 and len([t for t in lines(h, thread) if "80 %" in t]) == 1


async def test_a_reply_in_time_meets_it_and_pending_stops_the_clock(
        make_harness: HarnessFactory) -> None:
    clock = OffsetClock()
    move(clock, "2026-12-10 10:00")  # a Thursday
    h = await make_harness(TARGETS, clock=clock)
    assert await h.customer_says(502, "Hello?", first_name="Bo") == 200
    thread = await h.thread_of(502)
    await settle(h)
    move(clock, "2026-12-10 10:20")
    assert await h.agent_says(thread, "Hi Bo, how can I help?") == 200
    await settle(h)
    [(state, took)] = h.rows("SELECT state, business_seconds FROM response_targets"
                             " WHERE kind = 'first_response'")
    assert state == "met" and took == pytest.approx(20 * 60, abs=20)
    assert "first answer" not in context(h, thread)

    # The customer writes again: the next answer is due in 30 business minutes.
    assert await h.customer_says(502, "My order 42 is late", first_name="Bo") == 200
    await settle(h)
    assert await h.agent_says(thread, "!pending") == 200
    await settle(h)
    assert ("next_response", "paused", 0, 0, 0) in h.rows(ROWS)
    assert "⏸ next answer: clock stopped" in context(h, thread)
    move(clock, "2026-12-11 16:00")  # a day later, still pending: nothing is missed
    await settle(h)
    assert ("next_response", "paused", 0, 0, 0) in h.rows(ROWS) and alerts(h) == []
    assert await h.customer_says(502, "any news?", first_name="Bo") == 200  # open again
    await settle(h)
    [(due,)] = h.rows("SELECT due_at FROM response_targets WHERE kind = 'next_response'")
    assert due == pytest.approx(at("2026-12-11 16:30"), abs=30)
    assert await h.agent_says(thread, "It arrives Monday") == 200
    await settle(h)
    assert h.rows("SELECT state FROM response_targets WHERE kind = 'next_response'") == [
        ("met",)]
    assert h.rows("SELECT kind, state FROM response_targets WHERE kind = 'resolution'") == [
        ("resolution", "running")]
    assert await h.agent_says(thread, "!close") == 200
    await settle(h)
    assert h.rows("SELECT state FROM response_targets WHERE kind = 'resolution'") == [("met",)]
    assert alerts(h) == [] and not [t for t in lines(h, thread) if "80 %" in t]
    # The customer writes again: the conversation reopens, a next answer and a new resolution
    # are owed from then.
    move(clock, "2026-12-14 09:00")
    assert await h.customer_says(502, "It did not arrive", first_name="Bo") == 200
    await settle(h)
    assert h.rows("SELECT kind, state FROM response_targets ORDER BY id")[-2:] == [
        ("next_response", "running"), ("resolution", "running")]
    assert h.rows("SELECT COUNT(DISTINCT started_at) FROM response_targets"
                  " WHERE kind = 'resolution'") == [(2,)]
    assert CHANNEL in {m["channel"] for m in h.slack.parents(CHANNEL)}  # the team's channel


async def test_an_automatic_answer_meets_nothing(make_harness: HarnessFactory) -> None:
    clock = OffsetClock()
    move(clock, "2026-12-12 11:00")  # a Saturday: closed, so the closed reply goes out
    config = {**TARGETS, "teams.support": {**TARGETS["teams.support"], "closed_reply": True}}
    h = await make_harness(config, clock=clock)
    assert await h.customer_says(503, "Anyone there?", first_name="Cy") == 200
    await h.telegram.wait_for("sendMessage", 1)  # the closed reply, origin 'auto'
    await h.drained()
    await settle(h)
    assert h.rows("SELECT origin FROM messages WHERE direction = 'out'") == [("auto",)]
    [(state, due)] = h.rows("SELECT state, due_at FROM response_targets"
                            " WHERE kind = 'first_response'")
    assert state == "running" and due == at("2026-12-14 10:00")  # Monday, an hour in
