"""`GET /metrics` counts what the real app did: webhooks by status, deliveries by outcome, rate
limits, commits and the outbox."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families
from yarl import URL

from tests.conftest import Harness, HarnessFactory
from tests.waiting import poll, until

pytestmark = pytest.mark.backends("sqlite")  # counters of the web app and the worker


async def scrape(h: Harness, token: str | None = None) -> dict[tuple[str, tuple[str, ...]], float]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with h.session.get(f"{h.url}/metrics", headers=headers) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        text = await resp.text()
    return {(s.name, tuple(f"{k}={v}" for k, v in sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_metrics_count_webhooks_deliveries_and_rate_limits(harness: Harness) -> None:
    h = harness
    h.slack.fail_next("chat.postMessage", status=429, retry_after=1)
    assert await h.customer_says(501, "hello") == 200
    update = h.telegram.text_update(chat_id=502, text="unsigned")
    async with h.session.post(f"{h.url}/webhooks/telegram", json=update) as resp:
        assert resp.status == 401  # no secret header
    await h.slack.wait_for("chat.postMessage", 1)
    await h.drained()
    m = await scrape(h)
    assert m[("bridge_webhooks_total", ("connector=telegram", "status=200"))] == 1
    assert m[("bridge_webhooks_total", ("connector=telegram", "status=401"))] == 1
    assert m[("bridge_webhook_seconds_count", ("connector=telegram",))] == 2
    assert m[("bridge_deliveries_total", ("connector=slack", "outcome=done"))] == 1
    assert m[("bridge_rate_limited_total", ("platform=slack",))] == 1
    assert m[("bridge_store_commit_seconds_count", ())] == 1  # the 401 stored nothing
    assert m[("bridge_outbox_pending", ("direction=slack",))] == 0
    assert m[("bridge_outbox_oldest_seconds", ("direction=customer",))] == 0

    thread = await h.thread_of(501)
    assert await h.agent_says(thread, "hi there") == 200
    await h.telegram.wait_for("sendMessage", 1)
    await h.drained()
    # The worker counts an attempt just after it commits the row as done: wait for the count.
    done = ("bridge_deliveries_total", ("connector=telegram", "outcome=done"))
    m = await poll(lambda: scrape(h), lambda got: got.get(done) == 1,
                   "one finished delivery to Telegram in the metrics")
    assert m[("bridge_webhooks_total", ("connector=slack", "status=200"))] == 1


async def test_pending_rows_show_their_age(make_harness: HarnessFactory) -> None:
    now = [1_000_000.0]
    h = await make_harness(clock=lambda: now[0])
    h.slack.fail_next("chat.postMessage", status=500, count=50)  # Slack is down
    assert await h.customer_says(503, "anyone?") == 200
    await until(lambda: len(h.slack.calls_to("chat.postMessage", ok_only=False)) >= 1,
                "a refused chat.postMessage")
    now[0] += 42
    m = await scrape(h)
    assert m[("bridge_outbox_pending", ("direction=slack",))] == 1
    assert m[("bridge_outbox_oldest_seconds", ("direction=slack",))] == 42


async def test_a_metrics_token_is_required_when_set(make_harness: HarnessFactory) -> None:
    h = await make_harness({"server": {"metrics_token": "scrape-me-please"}})
    async with h.session.get(f"{h.url}/metrics") as resp:
        assert resp.status == 401
    async with h.session.get(f"{h.url}/metrics",
                             headers={"Authorization": "Bearer wrong-token"}) as resp:
        assert resp.status == 401
    m = await scrape(h, "scrape-me-please")
    assert ("bridge_outbox_pending", ("direction=customer",)) in m


async def raw_status(h: Harness, request: bytes) -> int:
    """The status line's code for REQUEST sent as raw bytes (headers aiohttp's client would
    refuse to send)."""
    url = URL(h.url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        writer.write(request)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()
    return int(line.split()[1])


async def test_hostile_authorization_and_methods_get_4xx_never_5xx(
        make_harness: HarnessFactory) -> None:
    h = await make_harness({"server": {"metrics_token": "scrape-me-please"}})
    for value in ("Bearer", "Basic c2NyYXBlLW1lLXBsZWFzZQ==", "bearer scrape-me-please",
                  "Bearer " + "x" * 7000):
        async with h.session.get(f"{h.url}/metrics", headers={"Authorization": value}) as resp:
            assert resp.status == 401, value
            assert "bridge_outbox_pending" not in await resp.text()
    for raw in ("Bearer scrape-me-pleas\u00e9".encode(), "Bearer \u2603\U0001f600".encode(),
                b"Bearer \xff\xfe\x80"):
        status = await raw_status(h, b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: "
                                  + raw + b"\r\nConnection: close\r\n\r\n")
        assert status in (400, 401), raw
    oversized = b"Bearer " + b"x" * 20000
    status = await raw_status(h, b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: "
                              + oversized + b"\r\nConnection: close\r\n\r\n")
    assert 400 <= status < 500
    for method in ("POST", "PUT", "DELETE"):
        async with h.session.request(method, f"{h.url}/metrics") as resp:
            assert resp.status == 405, method
    async with h.session.head(f"{h.url}/metrics") as resp:  # HEAD is GET without the body
        assert resp.status == 401
    async with h.session.head(f"{h.url}/metrics",
                              headers={"Authorization": "Bearer scrape-me-please"}) as resp:
        assert resp.status == 200
