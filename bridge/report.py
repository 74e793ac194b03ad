"""The KPIs as people read them: `bridge report`, the dashboard's data and the digest's text.

The figures themselves are defined in storage/kpi.py (one module); this one builds the query
from the settings (teams, time zone, business hours), and writes a report as JSON, CSV or a
table.  `[reports]` and `[dashboard]` are configured here.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bridge.hours import Calendar
from storage.base import By, Figures, KpiQuery, KpiReport

DAY = 86400.0
_DIGEST_AT = re.compile(r"(mon|tue|wed|thu|fri|sat|sun) ([01]\d|2[0-3]):([0-5]\d)")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ReportsSettings(BaseModel):
    """`[reports]`: the digest posted to a Slack channel."""

    model_config = ConfigDict(extra="forbid", strict=True)
    digest_channel: str = ""  # a Slack channel id; empty: no digest
    digest_every: Literal["daily", "weekly"] = "weekly"
    digest_at: str = "mon 09:00"  # weekday and time in the team's zone (daily: the time only)

    @field_validator("digest_at")
    @classmethod
    def _at(cls, value: str) -> str:
        value = value.strip().lower()
        if not _DIGEST_AT.fullmatch(value):
            raise ValueError("must be a weekday and a 24-hour time such as \"mon 09:00\"")
        return value


class DashboardSettings(BaseModel):
    """`[dashboard]`: GET /dashboard, only with this bearer token or a link signed with it."""

    model_config = ConfigDict(extra="forbid", strict=True)
    token: str = ""  # empty: the dashboard is off (404)
    link_ttl_hours: float = Field(24.0 * 30, gt=0, le=24 * 366)
    refresh_seconds: int = Field(30, ge=5, le=3600)
    # Thread links of the oldest waiting conversations: <slack_url>/archives/<channel>/p<ts>
    # (your workspace's URL, such as https://acme.slack.com, opens them directly).
    slack_url: str = "https://slack.com"


class CalendarHours:
    """storage/kpi.py's `BusinessHours` from the teams' calendars (bridge/hours.py)."""

    def __init__(self, calendars: Mapping[str, Calendar]) -> None:
        self.calendars = dict(calendars)

    def intervals(self, team: str, start: float, end: float) -> list[tuple[float, float]]:
        calendar = self.calendars.get(team) or Calendar.always()
        if calendar.always_open:
            return [(start - DAY, end + DAY)]
        days = int((end - start) // DAY) + 2
        out: list[tuple[float, float]] = []
        for a, b in calendar.periods(start, days=days):
            if a >= end:
                break
            out.append((a, b))
        return out


def parse_when(text: str, zone: ZoneInfo, end: bool = False) -> float:
    """`YYYY-MM-DD` (local midnight in `zone`; as an end, the midnight after that day) or an
    ISO 8601 instant (without an offset: in `zone`)."""
    text = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        day = date.fromisoformat(text) + timedelta(days=1 if end else 0)
        return datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.timestamp()


def midnights(start: float, end: float, zone: ZoneInfo) -> list[float]:
    """Local midnights from the one starting `start`'s day up to `end` (by day's buckets)."""
    day = datetime.fromtimestamp(start, zone).date()
    out: list[float] = []
    while True:
        t = datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()
        if t >= end and out:
            return out
        out.append(t)
        day += timedelta(days=1)


def build_query(start: float, end: float, now: float, by: By | None, team: str | None,
                channels: Mapping[str, str], zone: ZoneInfo) -> KpiQuery:
    return KpiQuery(start=start, end=end, now=now, by=by, team=team, channels=dict(channels),
                    days=midnights(start, end, zone) if by == "day" else ())


def iso(t: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(t, zone).isoformat()


def group_key(report: KpiReport, by: By | None, key: str, zone: ZoneInfo,
              days: Sequence[float]) -> dict[str, str]:
    if by == "day":
        return {"day": datetime.fromtimestamp(days[int(key)], zone).date().isoformat()}
    return {str(by): key}


def as_json(report: KpiReport, by: By | None, zone: ZoneInfo, days: Sequence[float]) -> dict[
        str, Any]:
    groups = []
    for key in sorted(report.groups):
        figures = report.groups[key]
        groups.append({"key": group_key(report, by, key, zone, days), **figures.as_json()})
    if by == "day":
        groups.sort(key=lambda g: str(g["key"]["day"]))
    return {"from": iso(report.start, zone), "to": iso(report.end, zone),
            "totals": report.totals.as_json(), "groups": groups}


COLUMNS = (  # (heading, path in the JSON figures)
    ("opened", "conversations_opened"), ("closed", "conversations_closed"),
    ("reopened", "conversations_reopened"), ("customer msgs", "customer_messages"),
    ("agent msgs", "agent_messages"), ("first resp. median", "first_response_seconds.median"),
    ("first resp. p90", "first_response_seconds.p90"),
    ("first resp. business median", "first_response_business_seconds.median"),
    ("next resp. median", "next_response_seconds.median"),
    ("next resp. p90", "next_response_seconds.p90"),
    ("resolution median", "resolution_seconds.median"),
    ("first resp. met %", "targets_met_percent.first_response"),
    ("next resp. met %", "targets_met_percent.next_response"),
    ("resolution met %", "targets_met_percent.resolution"),
    ("CSAT", "csat.average"), ("CSAT answers", "csat.count"), ("NPS", "nps.score"),
    ("open", "backlog.open"), ("unassigned", "backlog.unassigned"),
    ("pending", "backlog.pending"), ("snoozed", "backlog.snoozed"),
    ("oldest wait", "backlog.oldest_wait_seconds"), ("failed", "failed_deliveries"),
    ("automatic", "automatic_answers"), ("FAQ handoffs", "faq_handoffs"),
    ("invitations converted", "invitations_converted"),
)


def pick(figures: Mapping[str, Any], path: str) -> Any:
    value: Any = figures
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = round(seconds)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 2 * 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"


def cell(path: str, value: Any) -> str:
    if value is None:
        return "-"
    if "seconds" in path:
        return duration(float(value))
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _rows(data: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    out: list[tuple[str, Mapping[str, Any]]] = [("total", data["totals"])]
    for group in data["groups"]:
        out.append((" ".join(str(v) or "(none)" for v in group["key"].values()), group))
    return out


def as_table(data: Mapping[str, Any]) -> str:
    """One line per figure, one column for the totals and each group."""
    rows = _rows(data)
    lines = [f"KPIs from {data['from']} to {data['to']}"]
    width = max(len(h) for h, _ in COLUMNS)
    names = [name[:14] for name, _ in rows]
    lines.append(" " * width + "  " + "  ".join(f"{n:>14}" for n in names))
    for heading, path in COLUMNS:
        values = [cell(path, pick(figures, path)) for _, figures in rows]
        lines.append(f"{heading:<{width}}  " + "  ".join(f"{v:>14}" for v in values))
    return "\n".join(lines)


def as_csv(data: Mapping[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["group", *(path for _, path in COLUMNS)])
    for name, figures in _rows(data):
        writer.writerow([name, *("" if (v := pick(figures, path)) is None else v
                                 for _, path in COLUMNS)])
    return out.getvalue()


def render(report: KpiReport, fmt: str, by: By | None, zone: ZoneInfo,
           days: Sequence[float]) -> str:
    data = as_json(report, by, zone, days)
    if fmt == "json":
        return json.dumps(data, indent=2)
    if fmt == "csv":
        return as_csv(data)
    return as_table(data)


def summary_lines(figures: Figures) -> list[str]:
    """A few lines for Slack (`!stats`, the digest, the Home tab)."""
    f = figures
    frt = f.first_response_seconds
    met = f.targets_met_percent.get("first_response")
    csat = f.csat.get("average")
    b = f.backlog
    return [
        f"Conversations: {f.conversations_opened} opened, {f.conversations_closed} closed,"
        f" {f.conversations_reopened} reopened"
        + (f"; {f.invitations_converted} after a web chat invitation"
           if f.invitations_converted else ""),
        f"Messages: {f.customer_messages} from customers, {f.agent_messages} from agents",
        f"First response: median {duration(frt.median)}, p90 {duration(frt.p90)}"
        f" ({frt.count}); next response median {duration(f.next_response_seconds.median)}",
        f"Resolution median {duration(f.resolution_seconds.median)}; first response target"
        f" met {'-' if met is None else f'{met:.0f}%'}",
        f"CSAT {'-' if csat is None else f'{csat:.2f}'} ({f.csat.get('count', 0)} answers)",
        f"Backlog: {b['open']} open ({b['unassigned']} unassigned), {b['pending']} pending,"
        f" {b['snoozed']} snoozed; oldest wait {duration(b['oldest_wait_seconds'])}",
    ]
