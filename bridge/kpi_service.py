"""The KPIs for the running bridge and the CLI: one place that turns settings into a query,
caches what the dashboard asks for (every viewer's refresh reads the store at most once per
`CACHE_SECONDS` (60 s) per view), and signs dashboard links."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from bridge.report import DAY, CalendarHours, build_query, midnights, summary_lines
from storage.base import By, KpiReport, Store

CACHE_SECONDS = 60.0


def sign(token: str, expires: int) -> str:
    mac = hmac.new(token.encode(), f"dashboard:{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:18]).decode().rstrip("=")


def signed_link(public_url: str, token: str, now: float, ttl_hours: float) -> str:
    expires = int(now + ttl_hours * 3600)
    return f"{public_url}/dashboard?exp={expires}&sig={sign(token, expires)}"


def check_link(token: str, exp: str, sig: str, now: float) -> bool:
    # ASCII digits only ("²" and "٣" are digits to str.isdigit) and at most 12 of them (a
    # 5,000-digit `exp` makes int() raise); compared as bytes (a non-ASCII str makes
    # compare_digest raise): a forged link is refused, never a 500.
    if not token or not (exp.isascii() and exp.isdigit() and len(exp) <= 12) or int(exp) < now:
        return False
    return hmac.compare_digest(sign(token, int(exp)).encode(), sig.encode())


def check_bearer(token: str, header: str) -> bool:
    if not token or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer "):].strip().encode(), token.encode())


@dataclass
class Kpis:
    store: Store
    channels: dict[str, str]  # Slack channel -> team
    zone: ZoneInfo
    hours: CalendarHours
    clock: Callable[[], float]
    members: dict[str, frozenset[str]] = field(default_factory=dict)  # team -> (empty: all)
    cache_seconds: float = CACHE_SECONDS
    _cache: dict[tuple[object, ...], tuple[float, KpiReport]] = field(default_factory=dict)

    async def report(self, start: float, end: float, by: By | None = None,
                     team: str | None = None, cached: bool = False) -> KpiReport:
        key = (start // 60 if cached else start, end // 60 if cached else end, by, team)
        hit = self._cache.get(key) if cached else None
        if hit is not None and time.monotonic() - hit[0] < self.cache_seconds:
            return hit[1]
        query = build_query(start, end, self.clock(), by, team, self.channels, self.zone)
        found = await self.store.kpis(query, self.hours)
        if cached:
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = (time.monotonic(), found)
        return found

    def _today(self, now: float) -> float:
        return midnights(now, now + 1, self.zone)[0]

    async def stats(self, channel: str, period: str) -> tuple[str, list[str]] | None:
        """`!stats`: the figures of the team whose channel this is, for today, the week or
        the month up to now."""
        team = self.channels.get(channel)
        if team is None:
            return None
        now = self.clock()
        today = self._today(now)
        start = {"today": today, "week": today - 6 * DAY, "month": today - 29 * DAY}[period]
        report = await self.report(start, now, team=team, cached=True)
        return team, summary_lines(report.totals)

    async def home(self, user: str) -> list[tuple[str, list[str]]]:
        """Today's figures of each team the agent is in (a team without members: everyone's)."""
        now = self.clock()
        out = []
        for team in sorted(set(self.channels.values())):
            members = self.members.get(team, frozenset())
            if members and user not in members:
                continue
            report = await self.report(self._today(now), now, team=team, cached=True)
            out.append((team, summary_lines(report.totals)))
        return out

    async def digest(self, due: float, every: str) -> str:
        """The digest posted at `due`: the week (or day) before it, in total and per team."""
        start = due - (7 if every == "weekly" else 1) * DAY
        report = await self.report(start, due, by="team")
        sections = [("All teams", summary_lines(report.totals))]
        sections += [(f"Team {k}", summary_lines(f))
                     for k, f in sorted(report.groups.items()) if k]
        when = "last week" if every == "weekly" else "yesterday"
        lines = [f"*Support KPIs, {when}*"]
        for name, body in sections:
            lines.append(f"*{name}*")
            lines.extend(f"• {ln}" for ln in body)
        return "\n".join(lines)
