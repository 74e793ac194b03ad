"""The demo's last act (issue 24): `bridge report` for the demo's conversations, and a signed
link to the dashboard (valid while the demo's bridge runs)."""

from __future__ import annotations

from typing import Any

from bridge.app import Bridge
from bridge.kpi_service import signed_link
from bridge.report import as_json, as_table

DASHBOARD_TOKEN = "demo-dashboard-token"
KPI_CONFIG: dict[str, dict[str, Any]] = {"dashboard": {"token": DASHBOARD_TOKEN}}
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
    link = signed_link(bridge.settings.server.public_url, DASHBOARD_TOKEN, now, 24)
    out.append(f"Dashboard (while a bridge runs on this database): {link}")
    return report.totals.conversations_opened > 0 and report.totals.agent_messages > 0
