"""`!snooze <when>`: what each form means, in the team's time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.console.when import parse_when

PARIS = ZoneInfo("Europe/Paris")
# Wednesday 2026-12-09 14:30 in Paris (13:30 UTC).
NOW = datetime(2026, 12, 9, 14, 30, tzinfo=PARIS).timestamp()


def at(text: str, zone: ZoneInfo = PARIS) -> datetime:
    found = parse_when(text, NOW, zone)
    assert found is not None, text
    return datetime.fromtimestamp(found, zone)


@pytest.mark.parametrize(("text", "seconds"), [
    ("30m", 1800), ("2h", 7200), ("3d", 3 * 86400), ("1w", 7 * 86400), ("1h30m", 5400),
    ("1h 30m", 5400), ("45min", 2700),
])
def test_spans_count_from_now(text: str, seconds: int) -> None:
    assert parse_when(text, NOW, PARIS) == NOW + seconds


def test_days_and_times_are_read_in_the_team_zone() -> None:
    assert at("tomorrow 9:00") == datetime(2026, 12, 10, 9, 0, tzinfo=PARIS)
    assert at("tomorrow") == datetime(2026, 12, 10, 9, 0, tzinfo=PARIS)
    assert at("mon 9:00") == datetime(2026, 12, 14, 9, 0, tzinfo=PARIS)
    assert at("Friday 17:30") == datetime(2026, 12, 11, 17, 30, tzinfo=PARIS)
    assert at("wed 15:00") == datetime(2026, 12, 9, 15, 0, tzinfo=PARIS)  # today, ahead
    assert at("wed 9:00") == datetime(2026, 12, 16, 9, 0, tzinfo=PARIS)  # passed: next week
    assert at("16:00") == datetime(2026, 12, 9, 16, 0, tzinfo=PARIS)
    assert at("9:00") == datetime(2026, 12, 10, 9, 0, tzinfo=PARIS)  # passed: tomorrow
    assert at("2pm") == datetime(2026, 12, 10, 14, 0, tzinfo=PARIS)
    assert at("2026-12-24 8:15") == datetime(2026, 12, 24, 8, 15, tzinfo=PARIS)
    # The same words in UTC name another moment.
    assert parse_when("tomorrow 9:00", NOW, UTC) == datetime(2026, 12, 10, 9, 0,
                                                             tzinfo=UTC).timestamp()


def test_across_a_change_of_clocks_the_wall_time_holds() -> None:
    before = datetime(2026, 3, 28, 12, 0, tzinfo=PARIS).timestamp()  # Saturday, CET
    found = parse_when("tomorrow 9:00", before, PARIS)  # Sunday, CEST from 02:00
    assert found is not None
    assert datetime.fromtimestamp(found, PARIS) == datetime(2026, 3, 29, 9, 0, tzinfo=PARIS)
    assert found - before == 20 * 3600


@pytest.mark.parametrize("text", ["", "soon", "0m", "25:00", "today 9:00", "mon 9:61",
                                  "2026-02-30", "2020-01-01 9:00", "13pm", "3 days"])
def test_what_names_no_moment_ahead_is_refused(text: str) -> None:
    assert parse_when(text, NOW, PARIS) is None


@given(st.text(max_size=30))
def test_any_text_is_a_moment_ahead_or_none(text: str) -> None:
    found = parse_when(text, NOW, PARIS)
    assert found is None or found > NOW
