"""The KPI definitions (storage/kpi.py) against a hand-built history with known answers, on
SQLite and PostgreSQL (the history: tests/helpers_kpi.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.kpi import By, KpiQuery, KpiReport, percentile
from storage.sqlstore import SQLStore
from tests.helpers_kpi import CHANNELS, DAY, NOW, OfficeHours, T, load_history
from tests.test_identity_flags import opened


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SQLStore]:
    async with opened(request.param, tmp_path) as s:  # both stores, closed after
        await s.migrate()
        await load_history(s)
        yield s


async def report(store: SQLStore, by: By | None = None, team: str | None = None,
                 hours: bool = True) -> KpiReport:
    query = KpiQuery(start=T, end=T + DAY, now=NOW, by=by, team=team, channels=dict(CHANNELS),
                     days=[T, T + DAY])
    return await store.kpis(query, OfficeHours() if hours else None)


async def test_totals(store: SQLStore) -> None:
    got = (await report(store)).totals.as_json()
    assert got["conversations_opened"] == 4
    assert got["conversations_closed"] == 2
    assert got["conversations_reopened"] == 1
    assert got["customer_messages"] == 9
    assert got["agent_messages"] == 7  # the note and the automatic and FAQ answers are not
    assert got["first_response_seconds"] == {"median": 600.0, "p90": 4440.0, "count": 3}
    assert got["first_response_business_seconds"] == {"median": 600.0, "p90": 1560.0,
                                                      "count": 3}
    assert got["next_response_seconds"] == {"median": 210.0, "p90": 300.0, "count": 4}
    assert got["resolution_seconds"] == {"median": 10800.0, "p90": 13680.0, "count": 2}
    met = got["targets_met_percent"]
    assert met["first_response"] == pytest.approx(200 / 3)
    assert met["resolution"] == 100.0
    assert met["next_response"] is None
    assert got["csat"] == {"average": 4.0, "count": 2, "distribution": {"3": 1, "5": 1}}
    assert got["nps"]["count"] == 3
    assert got["nps"]["score"] == pytest.approx(100 / 3)
    assert got["backlog"] == {"open": 2, "unassigned": 1, "pending": 1, "snoozed": 1,
                              "oldest_wait_seconds": 7200.0}
    assert got["failed_deliveries"] == 1
    assert got["automatic_answers"] == 2
    assert got["faq_handoffs"] == 1
    assert got["invitations_converted"] == 1  # conversation 5's invitation was the day before


async def test_without_a_calendar_business_time_is_wall_clock(store: SQLStore) -> None:
    got = (await report(store, hours=False)).totals
    assert got.first_response_business_seconds == got.first_response_seconds


async def test_oldest_waiting_lists_threads(store: SQLStore) -> None:
    oldest = (await report(store)).oldest
    assert [(w.conversation_id, w.slack_channel, w.slack_thread_ts) for w in oldest] == [
        (3, "C0SUPPORT1", "1003.000100")]


async def test_by_channel(store: SQLStore) -> None:
    got = (await report(store, by="channel")).groups
    assert sorted(got) == ["email", "telegram", "twilio"]
    assert got["telegram"].conversations_opened == 2
    assert got["twilio"].conversations_opened == 2
    assert got["email"].conversations_opened == 0
    assert got["telegram"].first_response_seconds.as_json() == {
        "median": 60.0, "p90": 60.0, "count": 1}
    assert got["twilio"].first_response_seconds.count == 2
    assert got["email"].next_response_seconds.as_json() == {"median": 60.0, "p90": 60.0,
                                                            "count": 1}
    assert got["telegram"].csat["count"] == 1
    assert got["telegram"].invitations_converted == 1
    assert got["twilio"].invitations_converted == 0
    assert got["email"].invitations_converted == 0


async def test_by_agent_counts_who_answered(store: SQLStore) -> None:
    got = (await report(store, by="agent")).groups
    assert got["U1"].first_response_seconds.as_json() == {"median": 330.0, "p90": 546.0,
                                                         "count": 2}
    assert got["U2"].first_response_seconds.count == 1
    assert got["U1"].agent_messages == 4
    assert got["U2"].agent_messages == 3
    assert got["U1"].targets_met_percent["first_response"] == 100.0
    assert got["U2"].targets_met_percent["first_response"] == 0.0


async def test_by_team_and_one_team(store: SQLStore) -> None:
    got = (await report(store, by="team")).groups
    assert got["support"].conversations_opened == 3
    assert got["billing"].conversations_opened == 1
    assert got["billing"].csat["average"] == 3.0
    billing = (await report(store, team="billing")).totals
    assert billing.conversations_opened == 1
    assert billing.customer_messages == 2
    assert billing.first_response_seconds.count == 1
    assert billing.backlog["open"] == 1
    assert billing.nps["count"] == 1


async def test_by_day_and_an_empty_period(store: SQLStore) -> None:
    got = (await report(store, by="day")).groups
    assert list(got) == ["0"] or set(got) == {"0"}
    assert got["0"].conversations_opened == 4
    empty = await store.kpis(KpiQuery(start=T + 30 * DAY, end=T + 31 * DAY, now=NOW))
    figures = empty.totals.as_json()
    assert figures["conversations_opened"] == 0
    assert figures["first_response_seconds"] == {"median": None, "p90": None, "count": 0}
    assert figures["csat"]["average"] is None
    assert figures["nps"]["score"] is None
    assert figures["targets_met_percent"] == {"first_response": None, "next_response": None,
                                              "resolution": None}


def test_percentile_interpolates() -> None:
    assert percentile([], 0.5) is None
    assert percentile([5.0], 0.9) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([0.0, 10.0], 0.9) == 9.0
