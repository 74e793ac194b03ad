"""The demo's last act (issue 24): `bridge report` for the demo's conversations, and how to open
the dashboard of a running bridge (the demo's own database is deleted when it exits, so a link
to it would be dead)."""

from __future__ import annotations

from bridge.app import Bridge
from bridge.report import as_json, as_table

SHOWN = ("KPIs", "opened", "closed", "customer msgs", "agent msgs", "first resp. median",
         "next resp. median", "open", "automatic")


async def play_kpis(bridge: Bridge, out: list[str]) -> bool:
    now = bridge.clock()
    kpis = bridge.kpis
    report = await kpis.report(now - 7 * 86400, now + 1, by="channel")
    table = as_table(as_json(report, "channel", kpis.zone, ()))
    lines = table.splitlines()
    out.append("KPIs of the demo's conversations (`bridge report --by channel`, a few rows):")
    out.extend(f"  {ln}" for ln in lines[:2] + [
        ln for ln in lines[2:] if ln.split("  ")[0].strip() in SHOWN])
    out.append("Dashboard: for a running bridge, set [dashboard] token and run "
               "`bridge dashboard-link` (the demo's database is deleted at exit).")
    return report.totals.conversations_opened > 0 and report.totals.agent_messages > 0
