"""Business hours: the calendar's arithmetic (table cases, DST, holidays, properties) and the
`[hours.<name>]` / `[teams.<name>] hours` settings."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.hours import Calendar, HoursSettings, parse_duration, parse_shift
from bridge.settings import ConfigError, load_settings
from tests.test_cli import plain_config

PARIS = ZoneInfo("Europe/Paris")


def at(text: str) -> float:
    """A local Paris wall-clock time ("2026-12-07 09:00") as epoch seconds."""
    return datetime.fromisoformat(text).replace(tzinfo=PARIS).timestamp()


def office(**extra: object) -> Calendar:
    table: dict[str, object] = {
        "timezone": "Europe/Paris",
        "monday": ["09:00-12:00", "13:00-17:00"],
        "tuesday": ["09:00-17:00"], "wednesday": ["09:00-17:00"],
        "thursday": ["09:00-17:00"], "friday": ["09:00-17:00"],
        **extra}
    return Calendar(HoursSettings.model_validate(table), "office")


# 2026-12-07 is a Monday; 2026-12-25 (Friday) is Christmas.
@pytest.mark.parametrize(("now", "is_open", "next_open", "next_close"), [
    ("2026-12-07 08:59", False, "2026-12-07 09:00", "2026-12-07 12:00"),
    ("2026-12-07 09:00", True, "2026-12-07 13:00", "2026-12-07 12:00"),
    ("2026-12-07 12:00", False, "2026-12-07 13:00", "2026-12-07 17:00"),  # lunch: split shift
    ("2026-12-07 16:59", True, "2026-12-08 09:00", "2026-12-07 17:00"),
    ("2026-12-11 18:00", False, "2026-12-14 09:00", "2026-12-14 12:00"),  # weekend closed
    ("2026-12-24 18:00", False, "2026-12-28 09:00", "2026-12-28 12:00"),  # Christmas
])
def test_open_and_next_times(now: str, is_open: bool, next_open: str, next_close: str) -> None:
    cal = office(holidays=["2026-12-25"])
    assert cal.is_open(at(now)) is is_open
    assert cal.next_open(at(now)) == at(next_open)
    assert cal.next_close(at(now)) == at(next_close)


@pytest.mark.parametrize(("start", "seconds", "due"), [
    ("2026-12-07 09:00", 3600, "2026-12-07 10:00"),
    ("2026-12-07 11:30", 3600, "2026-12-07 13:30"),  # lunch does not count
    ("2026-12-07 16:30", 3600, "2026-12-08 09:30"),  # crossing a closing: next opening
    ("2026-12-11 16:50", 1200, "2026-12-14 09:10"),  # the weekend does not count
    ("2026-12-05 10:00", 90, "2026-12-07 09:01:30"),  # started while closed
    ("2026-12-24 16:00", 7200, "2026-12-28 10:00"),  # a holiday counts as closed
])
def test_add_business_seconds(start: str, seconds: float, due: str) -> None:
    cal = office(holidays=["2026-12-25"])
    assert cal.add_business_seconds(at(start), seconds) == at(due)
    assert cal.business_seconds(at(start), at(due)) == seconds


def test_public_holidays_by_country_and_subdivision() -> None:
    cal = office(holiday_country="FR")
    assert not cal.is_open(at("2026-12-25 10:00"))  # Noël, a Friday
    assert cal.is_open(at("2026-12-24 10:00"))
    alsace = office(holiday_country="FR", holiday_subdivision="57")  # Moselle: 26 December
    assert alsace.is_holiday(datetime(2025, 12, 26).date())
    assert not cal.is_holiday(datetime(2025, 12, 26).date())


def test_dst_keeps_local_hours() -> None:
    # Europe/Paris springs forward on 2026-03-29 (Sunday) and falls back on 2026-10-25.
    cal = Calendar(HoursSettings.model_validate(
        {"timezone": "Europe/Paris", "sunday": ["00:00-06:00"], "monday": ["09:00-17:00"]}),
        "night")
    assert cal.business_seconds(at("2026-03-29 00:00"), at("2026-03-29 06:00")) == 5 * 3600
    assert cal.business_seconds(at("2026-10-25 00:00"), at("2026-10-25 06:00")) == 7 * 3600
    assert cal.next_open(at("2026-03-29 12:00")) == at("2026-03-30 09:00")
    assert datetime.fromtimestamp(at("2026-03-30 09:00"), PARIS).utcoffset() is not None
    assert cal.add_business_seconds(at("2026-03-27 12:00"), 3600) == at("2026-03-29 01:00")
    # 01:00 + one hour of open time is 03:00 local (02:00 does not exist that night)
    assert cal.add_business_seconds(at("2026-03-29 00:00"), 2 * 3600) == at("2026-03-29 03:00")


def test_always_open_and_merged_midnight() -> None:
    always = Calendar.always()
    assert always.is_open(0.0) and always.next_open(0.0) is None
    assert always.next_close(0.0) is None
    assert always.add_business_seconds(100.0, 50.0) == 150.0
    nonstop = Calendar(HoursSettings.model_validate(
        {"timezone": "UTC", "friday": ["18:00-24:00"], "saturday": ["00:00-24:00"],
         "sunday": ["00:00-02:00"]}), "weekend")
    friday = datetime(2026, 12, 11, 20, tzinfo=ZoneInfo("UTC")).timestamp()
    assert nonstop.next_close(friday) == datetime(2026, 12, 13, 2,
                                                  tzinfo=ZoneInfo("UTC")).timestamp()


@pytest.mark.parametrize(("text", "ok"), [
    ("09:00-17:00", True), ("00:00-24:00", True), (" 9:00-17:00", False),
    ("17:00-09:00", False), ("09:00-09:00", False), ("25:00-26:00", False), ("9-5", False),
])
def test_shift_syntax(text: str, ok: bool) -> None:
    if ok:
        assert parse_shift(text)[1] > parse_shift(text)[0]
    else:
        with pytest.raises(ValueError):
            parse_shift(text)


ZONES = st.sampled_from(["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "UTC",
                         "Asia/Kolkata"])
SHIFT = st.tuples(st.integers(0, 23 * 4), st.integers(1, 24 * 4)).map(
    lambda p: (p[0] * 15, min(24 * 60, p[0] * 15 + p[1] * 15)))


@st.composite
def calendars(draw: st.DrawFn) -> Calendar:
    table: dict[str, object] = {"timezone": draw(ZONES)}
    for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"):
        start, end = draw(SHIFT)
        if draw(st.booleans()):
            table[day] = [f"{start // 60:02d}:{start % 60:02d}-"
                          f"{end // 60:02d}:{end % 60:02d}"]
    if "monday" not in table:
        table["monday"] = ["09:00-17:00"]
    table["holidays"] = draw(st.lists(st.dates(datetime(2026, 1, 1).date(),
                                               datetime(2027, 12, 31).date()), max_size=5))
    return Calendar(HoursSettings.model_validate(table), "drawn")


INSTANTS = st.floats(1_767_225_600, 1_830_297_600)  # 2026 .. 2027


@settings(max_examples=150, deadline=None)
@given(calendars(), INSTANTS, st.floats(0, 30 * 86400))
def test_adding_then_counting_gives_back_the_seconds(cal: Calendar, start: float,
                                                     seconds: float) -> None:
    due = cal.add_business_seconds(start, seconds)
    assert due is not None and due >= start
    assert cal.business_seconds(start, due) == pytest.approx(seconds, abs=1e-3)
    if seconds >= 0.01:  # the last of that time was open time
        assert cal.is_open(due - 0.005)


@settings(max_examples=150, deadline=None)
@given(calendars(), INSTANTS, st.floats(0, 10 * 86400), st.floats(0, 10 * 86400))
def test_counting_is_additive_and_bounded(cal: Calendar, a: float, d1: float,
                                          d2: float) -> None:
    b, c = a + d1, a + d1 + d2
    whole = cal.business_seconds(a, c)
    assert whole == pytest.approx(cal.business_seconds(a, b) + cal.business_seconds(b, c),
                                  abs=1e-3)
    assert 0 <= whole <= c - a + 1e-6


@settings(max_examples=150, deadline=None)
@given(calendars(), INSTANTS)
def test_next_open_and_close_agree_with_is_open(cal: Calendar, t: float) -> None:
    opens, closes = cal.next_open(t), cal.next_close(t)
    assert opens is not None and closes is not None
    assert opens > t and closes > t
    assert cal.is_open(opens) and not cal.is_open(closes)
    if cal.is_open(t):
        assert closes < opens
        assert cal.business_seconds(t, closes) == pytest.approx(closes - t, abs=1e-3)
    else:
        assert cal.business_seconds(t, opens) == pytest.approx(0, abs=1e-3)
        assert opens < closes


def config_with(tmp_path: Path, extra: str) -> Path:
    path = plain_config(tmp_path / "bridge.toml", f"sqlite:///{tmp_path / 'b.db'}")
    path.write_text(path.read_text(encoding="utf-8") + extra, encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    return [str(p) for p in caught.value.problems if p.severity == "error"]


def test_config_accepts_a_calendar_and_a_team_picking_it(tmp_path: Path) -> None:
    path = config_with(tmp_path, """
[teams.support]
hours = "office"
[hours.office]
timezone = "Europe/Paris"
monday = ["09:00-12:00", "13:00-17:00"]
holidays = ["2026-12-24", 2026-12-31]
holiday_country = "US"
holiday_subdivision = "CA"
""")
    loaded = load_settings(path, {})
    cal = loaded.settings.calendar("support")
    assert cal.name == "office" and not cal.always_open
    assert loaded.settings.calendar("nobody").always_open


@pytest.mark.parametrize(("extra", "key", "words"), [
    ('[teams.support]\nhours = "office"\n', "teams.support.hours", "[hours.office]"),
    ('[hours.x]\nmonday = ["17:00-09:00"]\n', "hours.x.monday", "ends before"),
    ('[hours.x]\nmonday = ["09:00-12:00", "11:00-13:00"]\n', "hours.x.monday", "overlap"),
    ('[hours.x]\nmonday = ["9h"]\n', "hours.x.monday", "HH:MM"),
    ('[hours.x]\ntimezone = "Mars/Base"\nmonday = ["09:00-10:00"]\n', "hours.x.timezone",
     "IANA"),
    ('[hours.x]\nholidays = ["2026-13-01"]\nmonday = ["09:00-10:00"]\n', "hours.x.holidays",
     "2026-12-25"),
    ('[hours.x]\nholiday_country = "XX"\nmonday = ["09:00-10:00"]\n',
     "hours.x.holiday_country", "ISO 3166"),
    ('[hours.x]\nholiday_subdivision = "CA"\nmonday = ["09:00-10:00"]\n',
     "hours.x.holiday_subdivision", "holiday_country"),
    ('[hours.x]\ntimezone = "UTC"\n', "hours.x", "monday = "),
    ('[hours.x]\nmonday = ["09:00-10:00"]\nmondays = []\n', "hours.x.mondays", "unknown key"),
])
def test_bad_calendars_name_file_key_and_fix(tmp_path: Path, extra: str, key: str,
                                             words: str) -> None:
    found = problems(config_with(tmp_path, extra))
    assert any(f"bridge.toml: {key}:" in p and words in p and "(fix:" in p for p in found), found


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90), ("2m", 120), ("1h", 3600), ("2d", 172800), ("1h30m", 5400), (" 15M ", 900),
    ("0.5h", 1800),
])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@given(st.text(max_size=12))
def test_any_duration_text_is_a_duration_or_a_value_error(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        assert "duration" in str(exc) or "at most" in str(exc)
    else:
        assert 0 < seconds <= 366 * 86400


@pytest.mark.parametrize("extra", [
    '[teams.support]\nfirst_response = "soon"\n', '[teams.support]\nresolution = "0m"\n',
    '[teams.support]\nalerts_channel = "#alerts"\n',
])
def test_bad_targets_are_named(tmp_path: Path, extra: str) -> None:
    found = problems(config_with(tmp_path, extra))
    assert any("bridge.toml: teams.support." in p and "(fix:" in p for p in found), found
