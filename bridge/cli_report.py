"""`bridge report` and `bridge dashboard-link` (issue 24); wired by bridge/cli.py."""

from __future__ import annotations

import argparse
import sys
from typing import Any, cast

from bridge.kpi_service import signed_link
from bridge.report import CalendarHours, build_query, parse_when, render
from bridge.settings import Settings
from storage.base import By, Store

WEEK = 7 * 86400.0


def add_commands(sub: Any, config_help: str) -> tuple[argparse.ArgumentParser, ...]:
    """The parsers, for `bridge.cli` to wire (it sets `func`)."""
    p = sub.add_parser("report", help="the KPIs for a period, from the store (no running bridge)")
    p.add_argument("--config", help=config_help)
    p.add_argument("--from", dest="start", metavar="WHEN",
                   help="YYYY-MM-DD or an ISO 8601 instant (default: 7 days before --to)")
    p.add_argument("--to", dest="end", metavar="WHEN",
                   help="YYYY-MM-DD (that day included) or an ISO 8601 instant (default: now)")
    p.add_argument("--team", metavar="NAME", help="only this team's conversations")
    p.add_argument("--by", choices=("channel", "agent", "team", "day"),
                   help="also one group per channel, agent, team or day")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    d = sub.add_parser("dashboard-link", help="print a signed link to GET /dashboard")
    d.add_argument("--config", help=config_help)
    d.add_argument("--hours", type=float, metavar="N",
                   help="valid for N hours (default: [dashboard] link_ttl_hours)")
    return p, d


def period(settings: Settings, args: argparse.Namespace, now: float) -> tuple[float, float]:
    zone = settings.conversations.zone
    end = now if args.end is None else parse_when(args.end, zone, end=True)
    start = end - WEEK if args.start is None else parse_when(args.start, zone)
    return start, end


async def run_report(store: Store, settings: Settings, args: argparse.Namespace,
                     now: float) -> int:
    teams = settings.resolved_teams()
    if args.team is not None and args.team not in teams:
        print(f"error: there is no team {args.team!r} (teams: {', '.join(sorted(teams))})",
              file=sys.stderr)
        return 2
    try:
        start, end = period(settings, args, now)
    except (ValueError, OverflowError) as exc:  # 9999-12-31 as an end overflows
        print(f"error: --from/--to: {exc} (use YYYY-MM-DD or 2026-11-30T09:00:00+01:00)",
              file=sys.stderr)
        return 2
    if end <= start:
        print("error: --from must be before --to", file=sys.stderr)
        return 2
    zone = settings.conversations.zone
    by = cast("By | None", args.by)
    query = build_query(start, end, now, by, args.team,
                        {t.channel: t.name for t in teams.values()}, zone)
    hours = CalendarHours({name: settings.calendar(name) for name in teams})
    report = await store.kpis(query, hours)
    print(render(report, args.format, by, zone, query.days))
    return 0


def dashboard_link(settings: Settings, args: argparse.Namespace, now: float) -> int:
    token = settings.dashboard.token
    if not token:
        print("error: the dashboard is off: [dashboard] token is empty (fix: set [dashboard]"
              " token to a long random string, such as `openssl rand -hex 32` prints)",
              file=sys.stderr)
        return 2
    hours = args.hours if args.hours is not None else settings.dashboard.link_ttl_hours
    print(signed_link(settings.server.public_url, token, now, hours))
    return 0
