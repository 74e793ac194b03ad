"""`!snooze <when>`: a time agents type, read in the team's time zone.

`30m`, `2h`, `3d`, `1w`, `1h30m` (from now); `tomorrow`, `tomorrow 9:00`; a weekday `mon 9:00`
(the next one: today if the time is still ahead); `9:00` or `today 17:30` (today, else
tomorrow); `2026-12-24 9:00`.  A day without a time means 9:00.  Pure: tested without a clock.
Nothing further than `MAX_AHEAD` is a time: a span may repeat (`9999w9999w…`) and a date may
be year 9999, and a moment past the calendar cannot be drawn (the parent's redraw would fail).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, tzinfo

DEFAULT_TIME = time(9, 0)
MAX_AHEAD = 366 * 86400  # a year (and a day): the furthest `!snooze` goes
_UNITS = {"m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SPAN = re.compile(r"(\d{1,4})\s*(min|m|h|d|w)", re.ASCII)  # not "٣٠m": int() reads it
_CLOCK = re.compile(r"^(\d{1,2})(?::(\d{2}))?\s*(am|pm)?$", re.ASCII)
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$", re.ASCII)


def _span(text: str) -> int | None:
    compact = text.replace(" ", "")
    pos, total = 0, 0
    for found in _SPAN.finditer(compact):
        if found.start() != pos:
            return None
        total += int(found[1]) * _UNITS[found[2]]
        pos = found.end()
    return total if pos == len(compact) and total > 0 else None


def _clock(text: str) -> time | None:
    found = _CLOCK.match(text)
    if found is None:
        return None
    hour, minute = int(found[1]), int(found[2] or 0)
    if found[3]:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if found[3] == "pm" else 0)
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def _at(day: date, at: time, zone: tzinfo) -> float:
    return datetime.combine(day, at, tzinfo=zone).timestamp()


def parse_when(text: str, now: float, zone: tzinfo) -> float | None:
    """The moment `text` names, after `now` and at most `MAX_AHEAD` after it; None when it
    names none (or one in the past, or too far ahead)."""
    found = _parse(text, now, zone)
    return found if found is not None and now < found <= now + MAX_AHEAD else None


def _parse(text: str, now: float, zone: tzinfo) -> float | None:
    words = text.strip().lower().split()
    if not words:
        return None
    span = _span(" ".join(words))
    if span is not None:
        return now + span
    today = datetime.fromtimestamp(now, zone).date()
    head, rest = words[0], words[1:]
    at = DEFAULT_TIME if not rest else _clock(" ".join(rest))
    if at is None:
        return None
    found: float | None = None
    if head == "tomorrow":
        found = _at(today + timedelta(days=1), at, zone)
    elif head[:3] in _DAYS and (len(head) == 3 or head.startswith(
            ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))):
        ahead = (_DAYS.index(head[:3]) - today.weekday()) % 7
        found = _at(today + timedelta(days=ahead), at, zone)
        if found <= now:
            found = _at(today + timedelta(days=ahead + 7), at, zone)
    elif (day := _DATE.match(head)) is not None:
        try:
            found = _at(date(int(day[1]), int(day[2]), int(day[3])), at, zone)
        except ValueError:
            return None
    else:
        clock = _clock(" ".join(rest)) if head == "today" and rest else _clock(" ".join(words))
        if clock is None:
            return None
        found = _at(today, clock, zone)
        if found <= now and head != "today":
            found = _at(today + timedelta(days=1), clock, zone)
    return found if found > now else None
