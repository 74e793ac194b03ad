"""Hostile input through the real app: never a 5xx, never a row for a rejected request, and
what can be checked without the body is checked before it is read (issue 16)."""

from __future__ import annotations

import asyncio
import gzip
import json
import time

import pytest

from bridge.console.continuity import LINK_ACTION
from bridge.console.render import RETRY_ACTION
from bridge.standins.signing import slack_signature_headers, telegram_secret_headers
from tests.conftest import AGENT, CHANNEL, SIGNING_SECRET, WEBHOOK_SECRET, Harness

pytestmark = pytest.mark.backends("sqlite")  # answers of the web layer: nothing store-specific


def nothing_stored(h: Harness) -> bool:
    return h.count("messages") == 0 and h.count("outbox") == 0 and h.count("customers") == 0


async def post(h: Harness, path: str, body: bytes, headers: dict[str, str]) -> int:
    async with h.session.post(f"{h.url}{path}", data=body, headers=headers) as resp:
        return resp.status


def signed_telegram(h: Harness, text: str = "hi") -> tuple[bytes, dict[str, str]]:
    body = json.dumps(h.telegram.text_update(chat_id=5, text=text)).encode()
    return body, telegram_secret_headers(WEBHOOK_SECRET)


async def test_a_compressed_body_is_415_unread_and_a_strangers_401(harness: Harness) -> None:
    h = harness
    _, headers = signed_telegram(h)
    for encoding in ("gzip", "deflate", "br", "x-anything"):
        for extra, status in (({}, 401), (headers, 415)):
            sent = {**extra, "Content-Type": "application/json", "Content-Encoding": encoding}
            assert await post(h, "/webhooks/telegram", b"not gzip at all", sent) == status
    slack = slack_signature_headers(SIGNING_SECRET, b"{}")
    assert await post(h, "/slack/events", b"\x1f\x8bnot",
                      {**slack, "Content-Encoding": "gzip"}) == 415
    assert nothing_stored(h)


async def test_a_gzip_bomb_is_answered_at_once_and_healthz_does_not_stall(
    harness: Harness,
) -> None:
    h = harness
    bomb = gzip.compress(b"\0" * (64 << 20), compresslevel=9)  # 64 MiB in ~64 KB
    started = time.monotonic()
    statuses = await asyncio.gather(*[
        post(h, "/webhooks/telegram", bomb, {"Content-Encoding": "gzip",
                                              "Content-Type": "application/json",
                                              **telegram_secret_headers(WEBHOOK_SECRET)})
        for _ in range(4)])
    async with h.session.get(f"{h.url}/healthz") as resp:
        assert resp.status == 200
    assert statuses == [415] * 4 and time.monotonic() - started < 2.0


async def test_an_unsupported_content_type_is_415(harness: Harness) -> None:
    h = harness
    body, headers = signed_telegram(h)
    assert await post(h, "/webhooks/telegram", body, {**headers,
                                                      "Content-Type": "text/xml"}) == 415
    slack = slack_signature_headers(SIGNING_SECRET, b"{}", content_type="text/plain")
    assert await post(h, "/slack/events", b"{}", slack) == 415
    assert nothing_stored(h)


async def test_a_stalled_body_without_the_secret_gets_its_401_at_once(harness: Harness) -> None:
    h = harness
    reader, writer = await asyncio.open_connection("127.0.0.1", h.port)
    writer.write(b"POST /webhooks/telegram HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n{")
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 2.0)
    assert status.startswith(b"HTTP/1.1 401")
    writer.close()


async def test_signed_nested_json_is_400(harness: Harness) -> None:
    h = harness
    deep = b'{"update_id": 1, "message": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    assert await post(h, "/webhooks/telegram", deep, telegram_secret_headers(WEBHOOK_SECRET)) \
        == 400
    deep_slack = b'{"type": "event_callback", "event": {"x": ' + b"[" * 20_000 + \
        b"]" * 20_000 + b"}}"
    assert await post(h, "/slack/events", deep_slack,
                      slack_signature_headers(SIGNING_SECRET, deep_slack)) == 400
    assert nothing_stored(h)


async def test_lone_surrogates_and_nul_are_stored_cleaned(harness: Harness) -> None:
    h = harness
    raw = json.dumps(h.telegram.text_update(chat_id=7, text="PLACEHOLDER")).encode()
    raw = raw.replace(b"PLACEHOLDER", b"order\\u0000 42 \\ud800!")
    assert await post(h, "/webhooks/telegram", raw, telegram_secret_headers(WEBHOOK_SECRET)) \
        == 200
    thread = await h.thread_of(7)
    event = h.agent.message_event(channel=CHANNEL, user=AGENT, text="PLACEHOLDER",
                                  thread_ts=thread)
    body = json.dumps(event).encode().replace(b"PLACEHOLDER", b"ok \\udfff\\u0000done")
    assert (await h.agent.post(body))[0] == 200
    await h.wait_rows("SELECT text FROM messages ORDER BY id",
                      [("order 42 ?!",), ("ok ?done",)])


async def test_an_agents_huge_number_and_a_huge_button_value_are_not_5xx(
    harness: Harness,
) -> None:
    h = harness
    await h.customer_says(8, "hi")
    thread = await h.thread_of(8)
    for text in ("!unlink 99999999999999999999", "!unlink 0", "!unlink ٣"):
        event = h.agent.message_event(channel=CHANNEL, user=AGENT, text=text, thread_ts=thread)
        assert (await h.agent.post(event))[0] == 200
    parent = h.slack.parents(CHANNEL)[0]
    for value in ("9" * 10_000, "-1", "1e9", "99999999999999999999"):
        payload = h.agent.block_action(channel=CHANNEL, user=AGENT, message=parent,
                                       action_id=RETRY_ACTION, value=value)
        assert (await h.agent.post_interaction(payload))[0] == 200
    link = h.agent.block_action(channel=CHANNEL, user=AGENT, message=parent,
                                action_id=LINK_ACTION,
                                value=json.dumps({"conversation": 10**30, "customer": [1]}))
    assert (await h.agent.post_interaction(link))[0] == 200


@pytest.mark.parametrize("payload", [
    {"type": "view_submission", "view": None, "user": {"id": AGENT}},
    {"type": "block_actions", "actions": "retry", "user": {"id": AGENT}},
    {"type": "block_actions", "message": "text", "user": {"id": AGENT}},
    {"type": "block_actions", "user": 7},
])
async def test_interactivity_of_the_wrong_shape_is_400(harness: Harness,
                                                       payload: dict[str, object]) -> None:
    assert (await harness.agent.post_interaction(payload))[0] == 400


async def test_message_changed_with_a_string_message_is_400(harness: Harness) -> None:
    h = harness
    event = h.agent.message_event(channel=CHANNEL, user=AGENT, text="x", thread_ts="1.0")
    event["event"].update(subtype="message_changed", message="not an object")
    assert (await h.agent.post(event))[0] == 400
    assert nothing_stored(h)
