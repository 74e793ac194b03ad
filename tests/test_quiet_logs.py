"""Quiet logs under hostile input (issue 16): a rejected request is at most one short line,
rate-limited per client address; no traceback for bad HTTP or a client that goes away; a
traceback only for a bug of ours, once."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

import connectors.base
from bridge.standins.signing import telegram_secret_headers
from tests.conftest import WEBHOOK_SECRET, Harness

pytestmark = pytest.mark.backends("sqlite")  # logging of the web layer: nothing store-specific


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info]


async def test_a_flood_of_rejected_requests_is_a_line_or_two(
    harness: Harness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = harness
    monkeypatch.setattr(connectors.base, "REJECTIONS", connectors.base.RejectionLog())
    caplog.set_level(logging.INFO)
    for _ in range(100):
        async with h.session.post(f"{h.url}/webhooks/telegram", data=b"{}") as resp:
            assert resp.status == 401
        async with h.session.post(f"{h.url}/slack/events", data=b"{}") as resp:
            assert resp.status == 401
    lines = [r for r in caplog.records if "rejected" in r.getMessage()]
    assert 1 <= len(lines) <= 2 and all(len(r.getMessage()) < 200 for r in lines)
    assert tracebacks(caplog) == []


async def test_bad_http_and_clients_gone_mid_body_leave_no_traceback(
    harness: Harness, caplog: pytest.LogCaptureFixture,
) -> None:
    h = harness
    head = "".join(f"{k}: {v}\r\n" for k, v in telegram_secret_headers(WEBHOOK_SECRET).items())
    for raw in [b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 20_000 + b"\r\n\r\n",
                b"POST /webhooks/telegram HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
                f"POST /webhooks/telegram HTTP/1.1\r\nHost: x\r\n{head}"
                "Content-Length: 5000\r\n\r\n{\"upd".encode()]:
        _, writer = await asyncio.open_connection("127.0.0.1", h.port)
        writer.write(raw)
        await writer.drain()
        writer.close()  # gone, mid-body for the last one
        await writer.wait_closed()
    async with h.session.get(f"{h.url}/healthz") as resp:
        assert resp.status == 200
    await asyncio.sleep(0.2)  # let the server see the closed connections
    assert tracebacks(caplog) == []


async def test_a_bug_of_ours_is_one_traceback_and_a_400(
    harness: Harness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = harness
    connector = h.bridge.connectors["telegram"]
    monkeypatch.setattr(connectors.base, "_BUGS", set())  # bugs seen by earlier tests

    def broken(body: bytes) -> list[object]:
        raise KeyError("a bug")

    monkeypatch.setattr(connector, "parse", broken)
    body = json.dumps(h.telegram.text_update(chat_id=3, text="hi")).encode()
    for _ in range(3):
        async with h.session.post(f"{h.url}/webhooks/telegram", data=body,
                                  headers=telegram_secret_headers(WEBHOOK_SECRET)) as resp:
            assert resp.status == 400
    assert len(tracebacks(caplog)) == 1
