"""GET /dashboard as a person sees it: the real bridge (both stores) at a moved clock with the
hand-built history of tests/helpers_kpi.py, opened in headless Chromium at desktop and phone
sizes; the figures shown, their colours against the targets, a wrong token showing nothing,
a refresh without reloading the page.  Screenshots: tests/output/screenshots/dashboard-*.png."""

from __future__ import annotations

from urllib.parse import urlsplit

import aiohttp
from playwright.async_api import Browser, Page

from bridge.kpi_service import signed_link
from storage.query import Tx, execute
from tests.browser import screenshot
from tests.conftest import HarnessFactory
from tests.helpers_kpi import NOW, H, T, load_history
from tests.waiting import poll

TOKEN = "dashboard-test-token-0123456789"
OVERRIDES = {
    "dashboard": {"token": TOKEN, "slack_url": "https://acme.slack.com"},
    # Support answers first within 5 minutes (the median of 10 minutes is red) and resolves
    # within 4 hours (the median of 3 hours is green).
    "teams.support": {"first_response": "5m", "resolution": "4h"},
    "teams.billing": {"channel": "C0BILLING1"},
}


def new_conversation() -> Tx[None]:
    yield from execute("INSERT INTO customers (id, display_name, created_at) VALUES (9, 'x', ?)",
                       T + 17 * H)
    yield from execute("INSERT INTO identities (id, customer_id, connector, address, created_at)"
                       " VALUES (9, 9, 'telegram', 'a9', ?)", T + 17 * H)
    yield from execute(
        "INSERT INTO conversations (id, customer_id, identity_id, connector, address, status,"
        " slack_channel, created_at, updated_at) VALUES (9, 9, 9, 'telegram', 'a9', 'open',"
        " 'C0SUPPORT1', ?, ?)", T + 17 * H, T + 17 * H)


async def figure(page: Page, view: str, name: str) -> tuple[str, str]:
    card = page.locator(f'[data-view="{view}"][data-figure="{name}"]')
    value = await card.locator(".value").inner_text()
    tone = (await card.get_attribute("class") or "").replace("card", "").strip()
    return value, tone


async def test_dashboard_in_chromium(make_harness: HarnessFactory, browser: Browser) -> None:
    h = await make_harness(OVERRIDES, clock=lambda: NOW)
    assert h.bridge.store is not None
    await load_history(h.bridge.store)

    # Nothing without the token; the data endpoint neither.
    async with aiohttp.ClientSession() as http:
        for path in ("/dashboard", "/dashboard/data"):
            async with http.get(h.url + path) as r:
                assert r.status == 401
            async with http.get(h.url + path, headers={"Authorization": "Bearer wrong"}) as r:
                assert r.status == 401
        async with http.get(h.url + "/dashboard",
                            headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            assert r.status == 200
            body = await r.text()
    assert "secret customer words" not in body and "Customer 1" not in body

    link = signed_link(h.url, TOKEN, NOW, 1)
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    response = await page.goto(link)
    assert response is not None and response.status == 200
    assert await figure(page, "today", "opened") == ("4", "none")
    assert await figure(page, "today", "frt") == ("10m", "red")
    assert await figure(page, "today", "resolution") == ("3h00m", "green")
    assert await figure(page, "today", "csat") == ("4.00", "green")
    assert await figure(page, "today", "met") == ("67%", "red")
    assert (await figure(page, "today", "open"))[0] == "2"
    assert (await figure(page, "today", "oldest_wait"))[0] == "2h00m"
    assert (await figure(page, "30d", "opened"))[0] == "5"  # conversation 5, the day before
    assert (await figure(page, "today", "invitations"))[0] == "1"
    assert (await figure(page, "30d", "invitations"))[0] == "2"
    thread = page.locator("#oldest a")
    assert await thread.get_attribute("href") == \
        "https://acme.slack.com/archives/C0SUPPORT1/p1003000100"
    assert await page.locator("svg#volume rect").count() >= 2
    assert "secret customer words" not in await page.content()
    await screenshot(page, "dashboard-desktop")

    # A new conversation shows on the next refresh, without reloading the page.
    h.bridge.kpis.cache_seconds = 0
    await h.bridge.store._write(new_conversation)
    await page.evaluate("window.notReloaded = true")
    await page.evaluate("window.dashboardRefresh()")

    async def opened() -> str:
        return (await figure(page, "today", "opened"))[0]
    await poll(opened, lambda v: v == "5", "the opened figure to become 5")
    assert await page.evaluate("window.notReloaded") is True

    phone = await browser.new_page(viewport={"width": 390, "height": 844})
    await phone.goto(link)
    assert (await figure(phone, "today", "opened"))[0] == "5"
    width = await phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 400  # no sideways scrolling on a phone
    await screenshot(phone, "dashboard-phone")

    # A link signed with another token shows nothing.
    wrong = signed_link(h.url, "not-the-token", NOW, 1)
    bad = await browser.new_page()
    response = await bad.goto(wrong)
    assert response is not None and response.status == 401
    assert await bad.locator(".card").count() == 0
    assert urlsplit(bad.url).path == "/dashboard"


async def test_dashboard_is_off_without_a_token(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    async with aiohttp.ClientSession() as http:
        async with http.get(h.url + "/dashboard",
                            headers={"Authorization": "Bearer anything"}) as r:
            assert r.status == 404


async def test_dashboard_refuses_forged_links_and_junk(make_harness: HarnessFactory) -> None:
    """Forged, expired, oversized and non-ASCII `exp`/`sig`, and junk bearer headers: 401 (or
    the server's own 4xx for a request line too long), never 5xx and never the figures."""
    h = await make_harness(OVERRIDES, clock=lambda: NOW)
    good = signed_link(h.url, TOKEN, NOW, 1)
    query = urlsplit(good).query
    exp = query.split("&")[0].removeprefix("exp=")
    sig = query.split("&")[1].removeprefix("sig=")
    expired = signed_link(h.url, TOKEN, NOW - 2 * H, 1)
    far = 10 ** 30
    queries = [
        f"exp={int(NOW) - 1}&sig={sig}", f"exp={far}&sig={sig}", f"exp={'9' * 5000}&sig={sig}",
        f"exp=%C2%B2&sig={sig}", f"exp=%D9%A3%D9%A3&sig={sig}", f"exp=+{exp}&sig={sig}",
        f"exp={exp}&sig=%C3%BC{sig[1:]}", f"exp={exp}&sig={sig}%F0%9F%98%80",
        f"exp={exp}&sig={'A' * 6000}", f"exp={exp}&sig=", f"exp={exp}", f"sig={sig}",
        f"exp={exp}&exp={exp}&sig=x", f"exp={exp}&sig={sig}%00", "exp=-1&sig=x",
        f"exp={exp}&sig={sig}&view={'é' * 2000}", f"exp={exp}&sig={sig}&view=" + "v" * 20000,
    ]
    headers = ["Bearer", "Bearer ", f"Bearer  {TOKEN}x", f"Basic {TOKEN}", "Bearer \u00e9t\u00e9",
               f"Bearer {TOKEN[:-1]}", "Bearer " + "t" * 7000, f"{TOKEN}"]
    async with aiohttp.ClientSession() as http:
        async with http.get(urlsplit(expired)._replace(netloc=urlsplit(h.url).netloc).geturl()
                            ) as r:
            assert r.status == 401
        for path in ("/dashboard", "/dashboard/data"):
            for q in queries:
                async with http.get(f"{h.url}{path}?{q}") as r:
                    body = await r.text()
                    if "view=" in q and q.startswith(f"exp={exp}&sig={sig}&"):
                        # a valid link with a junk parameter: shown, or refused as too long
                        assert r.status in (200, 400, 414, 431), (q[:40], r.status)
                    else:
                        assert 400 <= r.status < 500, (path, q[:60], r.status)
                        assert "Opened" not in body and "views" not in body
            for header in headers:
                async with http.get(h.url + path, headers={"Authorization": header}) as r:
                    assert 400 <= r.status < 500, (path, header[:40], r.status)
                    assert "views" not in await r.text()
