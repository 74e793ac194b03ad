"""GET /dashboard: the team's KPIs on a page for a phone or a wall screen (issue 24).

Only with `Authorization: Bearer <[dashboard] token>` (401 without) or a link that
`bridge dashboard-link` signed with it (`?exp=...&sig=...`); 404 while no token is set.  The
page is server-rendered HTML with inline SVG charts and a small inline script that reloads
`/dashboard/data` (same credentials) every `refresh_seconds` and redraws the figures, without
reloading the page.  No customer message text and no customer names are on it: figures,
channels, agents' Slack ids and links to threads.  Served by the bridge; no CDN.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from aiohttp import web

from bridge.kpi_service import Kpis, check_bearer, check_link
from bridge.report import DAY, DashboardSettings, duration, midnights
from storage.base import Figures

VIEWS = (("today", "Today"), ("7d", "Last 7 days"), ("30d", "Last 30 days"))


def short(seconds: float | None) -> str:
    """A duration for a card: 45s, 10m, 3h05m, 2d04h."""
    if seconds is None:
        return "-"
    s = round(seconds)
    if s < 120:
        return f"{s}s"
    if s < 3600:
        return f"{round(s / 60)}m"
    if s < 2 * 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return duration(s)


def colour(value: float | None, target: float | None, lower_is_better: bool = True) -> str:
    """green met, amber near (within 25 % of the target), red missed; grey without a target."""
    if value is None or target is None:
        return "none"
    if lower_is_better:
        return "green" if value <= target else "amber" if value <= target * 1.25 else "red"
    return "green" if value >= target else "amber" if value >= target * 0.9 else "red"


class Dashboard:
    def __init__(self, kpis: Kpis, settings: DashboardSettings,
                 targets: Mapping[str, float | None]) -> None:
        self.kpis = kpis
        self.settings = settings
        self.slack_url = settings.slack_url.rstrip("/")
        self.targets = dict(targets)  # first_response seconds, resolution seconds, csat

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/dashboard", self.page), web.get("/dashboard/data", self.data)]

    def _allowed(self, request: web.Request) -> bool:
        token = self.settings.token
        header = request.headers.get("Authorization", "")
        if check_bearer(token, header):
            return True
        return check_link(token, request.query.get("exp", ""), request.query.get("sig", ""),
                          self.kpis.clock())

    def _refuse(self) -> web.Response:
        if not self.settings.token:
            raise web.HTTPNotFound()
        return web.Response(status=401, text="a bearer token or a signed link is required\n",
                            headers={"WWW-Authenticate": "Bearer"})

    async def collect(self) -> dict[str, Any]:
        now = self.kpis.clock()
        today = midnights(now, now + 1, self.kpis.zone)[0]
        views: dict[str, Any] = {}
        for name, label in VIEWS:
            start = today if name == "today" else today - (int(name[:-1]) - 1) * DAY
            report = await self.kpis.report(start, now, cached=True)
            views[name] = {"label": label, **self._figures(report.totals)}
        month_start = today - 29 * DAY
        by_day = await self.kpis.report(month_start, now, by="day", cached=True)
        by_channel = await self.kpis.report(month_start, now, by="channel", cached=True)
        days = midnights(month_start, now, self.kpis.zone)
        series = []
        for index, midnight in enumerate(days):  # every day, those without data as 0
            f = by_day.groups.get(str(index)) or Figures()
            series.append({"day": datetime.fromtimestamp(midnight, self.kpis.zone).strftime(
                "%m-%d"), "opened": f.conversations_opened,
                "frt": f.first_response_seconds.median})
        channels = [{"channel": k, "opened": f.conversations_opened,
                     "frt": f.first_response_seconds.median}
                    for k, f in sorted(by_channel.groups.items())]
        oldest = [{"conversation": w.conversation_id, "channel": w.connector,
                   "wait": short(now - w.waiting_since), "assignee": w.assignee or "",
                   "link": self._thread(w.slack_channel, w.slack_thread_ts)}
                  for w in by_day.oldest]
        return {"now": datetime.fromtimestamp(now, self.kpis.zone).isoformat(timespec="seconds"),
                "views": views, "series": series, "channels": channels, "oldest": oldest,
                "refresh": self.settings.refresh_seconds}

    def _thread(self, channel: str | None, ts: str | None) -> str:
        if not channel or not ts:
            return ""
        return f"{self.slack_url}/archives/{channel}/p{ts.replace('.', '')}"

    def _figures(self, f: Figures) -> dict[str, Any]:
        frt = f.first_response_seconds.median
        res = f.resolution_seconds.median
        csat = f.csat["average"]
        met = f.targets_met_percent["first_response"]
        return {
            "opened": f.conversations_opened, "closed": f.conversations_closed,
            "frt": short(frt), "frt_colour": colour(frt, self.targets.get("first_response")),
            "frt_p90": short(f.first_response_seconds.p90),
            "resolution": short(res),
            "resolution_colour": colour(res, self.targets.get("resolution")),
            "csat": "-" if csat is None else f"{csat:.2f}",
            "csat_colour": colour(csat, self.targets.get("csat"), lower_is_better=False),
            "met": "-" if met is None else f"{met:.0f}%",
            "met_colour": colour(met, None if met is None else 90.0, lower_is_better=False),
            "open": f.backlog["open"], "unassigned": f.backlog["unassigned"],
            "pending": f.backlog["pending"], "snoozed": f.backlog["snoozed"],
            "oldest_wait": short(f.backlog["oldest_wait_seconds"]),
            "invitations": f.invitations_converted,
        }

    async def data(self, request: web.Request) -> web.Response:
        if not self._allowed(request):
            return self._refuse()
        return web.json_response(await self.collect(),
                                 headers={"Cache-Control": "no-store"})

    async def page(self, request: web.Request) -> web.Response:
        if not self._allowed(request):
            return self._refuse()
        data = await self.collect()
        return web.Response(text=render_page(data), content_type="text/html",
                            headers={"Cache-Control": "no-store",
                                     "Content-Security-Policy": CSP,
                                     "Referrer-Policy": "no-referrer"})


CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
       "connect-src 'self'; img-src 'self' data:")


def _card(view: str, label: str, key: str, value: Any, tone: str = "none") -> str:
    return (f'<div class="card {tone}" data-view="{view}" data-figure="{key}">'
            f'<span class="label">{html.escape(label)}</span>'
            f'<span class="value">{html.escape(str(value))}</span></div>')


def bars(points: Sequence[Mapping[str, Any]], field: str, label: str, name: str) -> str:
    """An inline SVG bar chart of `field` per point."""
    values = [float(p[field] or 0) for p in points]
    top = max(values, default=0) or 1.0
    width, height = max(len(values), 1) * 14, 80
    names = [html.escape(str(p.get("day", p.get("channel", "")))) for p in points]
    rects = "".join(
        f'<rect x="{i * 14}" y="{height - v / top * height:.1f}" width="10"'
        f' height="{v / top * height:.1f}"><title>{names[i]}: {v:g}</title></rect>'
        for i, v in enumerate(values))
    if names:
        label = f"{label}: {names[0]} to {names[-1]}" if "day" in points[0] else label
    return (f'<figure><figcaption>{html.escape(label)}</figcaption><svg id="{name}"'
            f' viewBox="0 0 {width} {height}" preserveAspectRatio="none" role="img"'
            f' aria-label="{html.escape(label)}">{rects}</svg></figure>')


def _thread_cell(o: Mapping[str, Any]) -> str:
    label = f"#{int(o['conversation'])}"
    if not o["link"]:
        return label
    return f'<a href="{html.escape(str(o["link"]))}" target="_blank" rel="noopener">{label}</a>'


def render_page(data: Mapping[str, Any]) -> str:
    sections = []
    for view, _ in VIEWS:
        v = data["views"][view]
        cards = "".join([
            _card(view, "Opened", "opened", v["opened"]),
            _card(view, "Closed", "closed", v["closed"]),
            _card(view, "First response (median)", "frt", v["frt"], v["frt_colour"]),
            _card(view, "First response p90", "frt_p90", v["frt_p90"]),
            _card(view, "Resolution (median)", "resolution", v["resolution"],
                  v["resolution_colour"]),
            _card(view, "Target met", "met", v["met"], v["met_colour"]),
            _card(view, "CSAT", "csat", v["csat"], v["csat_colour"]),
            _card(view, "Invitations converted", "invitations", v["invitations"]),
        ])
        sections.append(f'<section><h2>{html.escape(v["label"])}</h2>'
                        f'<div class="cards">{cards}</div></section>')
    now = data["views"]["today"]
    backlog = "".join([
        _card("today", "Open", "open", now["open"]),
        _card("today", "Unassigned", "unassigned", now["unassigned"]),
        _card("today", "Pending", "pending", now["pending"]),
        _card("today", "Snoozed", "snoozed", now["snoozed"]),
        _card("today", "Oldest wait", "oldest_wait", now["oldest_wait"]),
    ])
    rows = "".join(
        f'<tr><td>{_thread_cell(o)}</td>'
        f'<td>{html.escape(o["channel"])}</td><td>{html.escape(o["wait"])}</td>'
        f'<td>{html.escape(o["assignee"] or "-")}</td></tr>' for o in data["oldest"])
    charts = (bars(data["series"], "opened", "Conversations per day (30 days)", "volume")
              + bars(data["series"], "frt", "First response median per day", "frtday")
              + bars(data["channels"], "opened", "Conversations per channel", "perchannel"))
    channel_rows = "".join(
        f'<tr><td>{html.escape(c["channel"])}</td><td>{c["opened"]}</td>'
        f'<td>{short(c["frt"])}</td></tr>' for c in data["channels"])
    return PAGE.format(
        now=html.escape(data["now"]), sections="".join(sections), backlog=backlog, rows=rows,
        charts=charts, channel_rows=channel_rows, refresh=int(data["refresh"]) * 1000)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Support KPIs</title>
<style>
*{{box-sizing:border-box}}
body{{font-family:system-ui,sans-serif;margin:0;padding:1rem;background:#f6f7f9;color:#1d1c1d}}
h1{{font-size:1.4rem;margin:0 0 .5rem}} h2{{font-size:1.1rem;margin:1rem 0 .4rem}}
.cards{{display:grid;grid-template-columns:repeat(auto-fill,minmax(8rem,1fr));gap:.5rem}}
.card{{min-width:0;overflow-wrap:anywhere;background:#fff;border-radius:.5rem;padding:.6rem;
  border-left:.4rem solid #ccc}}
.card .label{{display:block;font-size:.8rem;color:#555}}
.card .value{{display:block;font-size:1.4rem;white-space:nowrap;font-weight:600}}
.card.green{{border-color:#2e7d32;background:#e8f5e9}}
.card.amber{{border-color:#ef8f00;background:#fff4e0}}
.card.red{{border-color:#c62828;background:#fdecea}}
figure{{margin:.5rem 0;background:#fff;padding:.5rem;border-radius:.5rem}}
figure svg{{display:block;width:100%;height:6rem;fill:#4a6ee0}}
table{{border-collapse:collapse;width:100%;background:#fff;table-layout:fixed}}
td a{{overflow-wrap:anywhere}} h1 small{{display:block;font-size:.8rem;color:#555}}
td,th{{padding:.3rem .5rem;border-bottom:1px solid #eee;text-align:left}}
@media (min-width:1400px){{body{{font-size:1.3rem}}}}
</style></head><body>
<h1>Support KPIs <small id="now">{now}</small></h1>
{sections}
<section><h2>Backlog now</h2><div class="cards">{backlog}</div>
<table id="oldest"><tr><th>Thread</th><th>Channel</th><th>Waiting</th>
<th>Assignee</th></tr>{rows}</table></section>
<section><h2>Last 30 days</h2>{charts}
<table id="channels"><tr><th>Channel</th><th>Opened</th><th>First response</th></tr>
{channel_rows}</table></section>
<script>
(function () {{
  var query = window.location.search;
  function set(view, key, value, tone) {{
    var el = document.querySelector('[data-view="' + view + '"][data-figure="' + key + '"]');
    if (!el) return;
    el.querySelector('.value').textContent = value;
    if (tone) el.className = 'card ' + tone;
  }}
  function refresh() {{
    fetch('/dashboard/data' + query, {{credentials: 'same-origin', cache: 'no-store'}})
      .then(function (r) {{ if (!r.ok) throw new Error(r.status); return r.json(); }})
      .then(function (d) {{
        document.getElementById('now').textContent = d.now;
        Object.keys(d.views).forEach(function (view) {{
          var v = d.views[view];
          ['opened', 'closed', 'frt_p90', 'open', 'unassigned', 'pending', 'snoozed',
           'oldest_wait'].forEach(function (k) {{ set(view, k, v[k]); }});
          ['frt', 'resolution', 'csat', 'met'].forEach(function (k) {{
            set(view, k, v[k], v[k + '_colour']); }});
        }});
        document.body.dataset.refreshed = d.now;
      }}).catch(function () {{ document.body.dataset.stale = '1'; }});
  }}
  window.dashboardRefresh = refresh;
  setInterval(refresh, {refresh});
}})();
</script></body></html>
"""
