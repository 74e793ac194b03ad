"""Business hours: `[hours.<name>]` calendars and the arithmetic of open time.

Pure (no I/O): a `Calendar` answers in epoch seconds (floats) whether it is open, when it opens
and closes next, how much open time lies between two instants and when a given amount of open
time has passed.  Opening times are local to the calendar's IANA time zone, so a shift keeps
its wall-clock hours across daylight-saving changes (a day of 23 or 25 hours is just that).
A date in `holidays`, or a public holiday of `holiday_country` (+ `holiday_subdivision`, from
the maintained `holidays` package), is closed all day.  A team without `hours` is always open.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cached_property
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holiday_lists
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_HHMM = r"([01]\d|2[0-3]):([0-5]\d)"
_SHIFT = re.compile(rf"\s*{_HHMM}\s*-\s*(?:{_HHMM}|(24):(00))\s*")
_HORIZON_DAYS = 800  # how far ahead an opening or a closing is looked for (then: never)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """`"90s"`, `"2m"`, `"1h"`, `"2d"`, or several (`"1h30m"`) as seconds; more than 0."""
    compact = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"{text!r} is not a duration like \"90s\", \"2m\", \"1h\" or \"2d\"")
    seconds = sum(float(n) * _UNIT[u] for n, u in parts)
    if not 0 < seconds <= 366 * 86400:
        raise ValueError(f"{text!r} must be more than 0 and at most a year")
    return seconds


def parse_shift(text: str) -> tuple[int, int]:
    """`"09:00-12:30"` as (start, end) minutes of the day; `24:00` may end a shift."""
    match = _SHIFT.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a shift like \"09:00-17:00\" (24-hour HH:MM-HH:MM)")
    start = int(match.group(1)) * 60 + int(match.group(2))
    end = 24 * 60 if match.group(5) else int(match.group(3)) * 60 + int(match.group(4))
    if end <= start:
        raise ValueError(f"{text!r} ends before it starts (a shift past midnight is two: "
                         "\"22:00-24:00\" on one day and \"00:00-02:00\" on the next)")
    return start, end


class HoursSettings(BaseModel):
    """One `[hours.<name>]` table."""

    model_config = ConfigDict(extra="forbid", strict=True)

    timezone: str = "UTC"
    monday: list[str] = Field(default_factory=list)
    tuesday: list[str] = Field(default_factory=list)
    wednesday: list[str] = Field(default_factory=list)
    thursday: list[str] = Field(default_factory=list)
    friday: list[str] = Field(default_factory=list)
    saturday: list[str] = Field(default_factory=list)
    sunday: list[str] = Field(default_factory=list)
    holidays: list[str] = Field(default_factory=list)  # YYYY-MM-DD, closed all day
    holiday_country: str | None = None  # ISO 3166-1 alpha-2, e.g. "FR"
    holiday_subdivision: str | None = None  # e.g. "CA" with "US"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("must be an IANA time zone such as \"Europe/Paris\"") from exc
        return value

    @field_validator(*WEEKDAYS)
    @classmethod
    def _shifts(cls, value: list[str]) -> list[str]:
        shifts = sorted(parse_shift(v) for v in value)
        for (_, end), (start, _) in pairwise(shifts):
            if start < end:
                raise ValueError("shifts overlap; list each opening time once")
        return value

    @field_validator("holidays", mode="before")
    @classmethod
    def _dates(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        out = []
        for item in value:
            if isinstance(item, date) and not isinstance(item, datetime):
                item = item.isoformat()  # TOML's bare 2026-12-25
            if isinstance(item, str):
                try:
                    date.fromisoformat(item)
                except ValueError:
                    raise ValueError(f"{item!r} is not a date like \"2026-12-25\"") from None
                if len(item) != 10:
                    raise ValueError(f"{item!r} is not a date like \"2026-12-25\"")
            out.append(item)
        return out

    @field_validator("holiday_country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is not None and value not in holiday_lists.list_supported_countries():
            raise ValueError(f"{value!r} is not a country the holidays package knows (an "
                             "ISO 3166-1 alpha-2 code in capitals, such as \"FR\")")
        return value

    @field_validator("holiday_subdivision")
    @classmethod
    def _subdivision(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        country = info.data.get("holiday_country")
        if country is None:
            raise ValueError("needs holiday_country (the country it belongs to)")
        known = holiday_lists.list_supported_countries()[country]
        if value not in known:
            raise ValueError(f"{value!r} is not a subdivision of {country} "
                             f"(known: {', '.join(known) or 'none'})")
        return value

    def shifts(self) -> tuple[tuple[tuple[int, int], ...], ...]:
        """Per weekday (Monday first), its shifts in minutes, sorted."""
        return tuple(tuple(sorted(parse_shift(s) for s in getattr(self, day)))
                     for day in WEEKDAYS)


def hours_problems(hours: Mapping[str, HoursSettings],
                   team_hours: Mapping[str, str | None]) -> list[tuple[str, str, str]]:
    """(key, message, fix) for each calendar that cannot work and each team naming none."""
    out: list[tuple[str, str, str]] = []
    for name, table in hours.items():
        if not any(table.shifts()):
            out.append((f"hours.{name}", "has no opening times, so it is never open",
                        f"add a weekday to [hours.{name}], such as "
                        "monday = [\"09:00-17:00\"]"))
    for team, wanted in team_hours.items():
        if wanted is not None and wanted not in hours:
            known = ", ".join(sorted(hours)) or "none defined"
            out.append((f"teams.{team}.hours", f"names unknown business hours {wanted!r}",
                        f"add an [hours.{wanted}] table or use one of: {known}"))
    return out


@dataclass(frozen=True)
class Opening:
    """What `bridge hours` prints: open now, and the next opening and closing (None: never)."""

    open: bool
    next_open: float | None
    next_close: float | None


class Calendar:
    """Open time of one `[hours.<name>]` table; `Calendar.always()` is open all the time."""

    def __init__(self, settings: HoursSettings | None, name: str = "") -> None:
        self.name = name
        self.settings = settings
        self.zone = ZoneInfo(settings.timezone) if settings else ZoneInfo("UTC")
        self._shifts = settings.shifts() if settings else ()
        self._dates = frozenset(date.fromisoformat(d) for d in settings.holidays) \
            if settings else frozenset()
        self._days: dict[date, tuple[tuple[float, float], ...]] = {}

    @classmethod
    def always(cls) -> Calendar:
        return cls(None, "")

    @property
    def always_open(self) -> bool:
        return self.settings is None

    @cached_property
    def _public(self) -> holiday_lists.HolidayBase | None:
        if self.settings is None or self.settings.holiday_country is None:
            return None
        return holiday_lists.country_holidays(self.settings.holiday_country,
                                              subdiv=self.settings.holiday_subdivision)

    def is_holiday(self, day: date) -> bool:
        public = self._public
        return day in self._dates or (public is not None and day in public)

    def _day(self, day: date) -> tuple[tuple[float, float], ...]:
        """The open intervals (epoch) of one local date."""
        cached = self._days.get(day)
        if cached is not None:
            return cached
        out: list[tuple[float, float]] = []
        if not self.is_holiday(day):
            for start, end in self._shifts[day.weekday()]:
                a = self._instant(day, start)
                b = self._instant(day, end)
                if b > a:
                    out.append((a, b))
        if len(self._days) > 4096:
            self._days.clear()
        self._days[day] = result = tuple(out)
        return result

    def _instant(self, day: date, minutes: int) -> float:
        if minutes >= 24 * 60:
            day, minutes = day + timedelta(days=1), minutes - 24 * 60
        local = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=self.zone)
        return local.timestamp()  # a time skipped by DST counts from the earlier offset

    def _local_date(self, t: float) -> date:
        return datetime.fromtimestamp(t, self.zone).date()

    def periods(self, t: float, days: int = _HORIZON_DAYS) -> Iterator[tuple[float, float]]:
        """Open periods (merged across midnight) ending after `t`, in order, within `days`."""
        day = self._local_date(t) - timedelta(days=1)
        pending: tuple[float, float] | None = None
        for _ in range(days + 2):
            for a, b in self._day(day):
                if pending is not None and a <= pending[1]:
                    pending = (pending[0], max(pending[1], b))
                    continue
                if pending is not None and pending[1] > t:
                    yield pending
                pending = (a, b)
            day += timedelta(days=1)
        if pending is not None and pending[1] > t:
            yield pending

    def is_open(self, t: float) -> bool:
        if self.always_open:
            return True
        for a, _ in self.periods(t, days=2):
            return a <= t
        return False

    def next_open(self, t: float) -> float | None:
        """The next instant after `t` at which it opens (if open at `t`: after this period
        closes); None if never (always open, or no opening within about two years)."""
        if self.always_open:
            return None
        for a, _ in self.periods(t):
            if a > t:
                return a
        return None

    def next_close(self, t: float) -> float | None:
        """When the period open at `t` (else the next one) closes; None if never."""
        if self.always_open:
            return None
        for a, b in self.periods(t):
            if b >= t + _HORIZON_DAYS * 86400.0 and a <= t:
                return None
            return b
        return None

    def open_from(self, t: float) -> float | None:
        """`t` if open then, else the next opening."""
        return t if self.is_open(t) else self.next_open(t)

    def opening(self, t: float) -> Opening:
        return Opening(self.is_open(t), self.next_open(t), self.next_close(t))

    def business_seconds(self, start: float, end: float) -> float:
        """Open time between two instants (0 when `end` is not after `start`)."""
        if end <= start:
            return 0.0
        if self.always_open:
            return end - start
        total = 0.0
        days = int((end - start) // 86400) + 3
        for a, b in self.periods(start, days=days):
            if a >= end:
                break
            total += min(b, end) - max(a, start)
        return total

    def add_business_seconds(self, start: float, seconds: float) -> float | None:
        """The instant at which `seconds` of open time have passed since `start` (counted only
        while open); None if that is beyond about two years."""
        if seconds <= 0:
            return start
        if self.always_open:
            return start + seconds
        left = seconds
        for a, b in self.periods(start, days=_HORIZON_DAYS + int(seconds // 86400)):
            begin = max(a, start)
            if b - begin >= left:
                return begin + left
            left -= b - begin
        return None


def calendars(hours: Mapping[str, HoursSettings]) -> dict[str, Calendar]:
    return {name: Calendar(table, name) for name, table in hours.items()}


def team_calendar(hours: Mapping[str, HoursSettings], name: str | None) -> Calendar:
    """The calendar a team's `hours = "<name>"` picks; always open without one."""
    if name is None:
        return Calendar.always()
    return Calendar(hours[name], name)


def iso(t: float | None, zone: ZoneInfo) -> str | None:
    """ISO 8601 with the zone's offset, to the second."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, zone).isoformat(timespec="seconds")


def opening_json(team: str, calendar: Calendar, now: float) -> dict[str, Any]:
    state = calendar.opening(now)
    return {"team": team, "open": state.open, "hours": calendar.name or None,
            "timezone": calendar.zone.key, "now": iso(now, calendar.zone),
            "next_open": iso(state.next_open, calendar.zone),
            "next_close": iso(state.next_close, calendar.zone)}


def opening_text(team: str, calendar: Calendar, now: float) -> str:
    state = calendar.opening(now)
    if calendar.always_open:
        return f"{team}: open (no business hours set: always open)"
    which = f"hours {calendar.name}, {calendar.zone.key}"
    opens = iso(state.next_open, calendar.zone) or "never"
    closes = iso(state.next_close, calendar.zone) or "never"
    if state.open:
        return f"{team}: open ({which}); closes {closes}; opens again {opens}"
    return f"{team}: closed ({which}); opens {opens}; closes {closes}"
