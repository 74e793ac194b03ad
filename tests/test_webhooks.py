"""Bad input gets a clear 4xx and changes nothing; authentic input we do not use gets 200."""

from __future__ import annotations

import json
import time

import pytest

from bridge.standins.signing import slack_signature_headers, telegram_secret_headers
from tests.conftest import AGENT, CHANNEL, SIGNING_SECRET, WEBHOOK_SECRET, Harness

# SQLite only: verification and 4xx answers of the webhook endpoints: nothing store-specific.
pytestmark = pytest.mark.backends("sqlite")


def nothing_stored(h: Harness) -> bool:
    return h.count("messages") == 0 and h.count("outbox") == 0 and h.count("customers") == 0


async def post_telegram(h: Harness, body: bytes, headers: dict[str, str]) -> int:
    async with h.session.post(f"{h.url}/webhooks/telegram", data=body,
                              headers=headers) as resp:
        return resp.status


@pytest.mark.parametrize("secret", ["", "wrong-secret", WEBHOOK_SECRET + "x"])
async def test_telegram_bad_or_missing_secret_is_401(harness: Harness, secret: str) -> None:
    h = harness
    update = json.dumps(h.telegram.text_update(chat_id=1, text="spoofed")).encode()
    headers = {"Content-Type": "application/json"}
    if secret:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    assert await post_telegram(h, update, headers) == 401
    await h.drained()
    assert nothing_stored(h) and h.slack.calls_to("chat.postMessage") == []


@pytest.mark.parametrize("body", [
    b"not json", b"[1, 2]", b'{"message": {}}', b'{"update_id": "7"}',
    b'{"update_id": 7, "message": {"chat": {"id": 1, "type": "private"}}}',
    b'{"update_id": 7, "message": "text"}', b"\xff\xfe",
])
async def test_telegram_malformed_is_400(harness: Harness, body: bytes) -> None:
    h = harness
    assert await post_telegram(h, body, telegram_secret_headers(WEBHOOK_SECRET)) == 400
    assert nothing_stored(h)


async def test_telegram_oversized_is_413_and_the_secret_is_checked_before_the_body(
    harness: Harness,
) -> None:
    h = harness
    big = json.dumps(h.telegram.text_update(chat_id=1, text="x" * 70_000)).encode()
    assert await post_telegram(h, big, telegram_secret_headers(WEBHOOK_SECRET)) == 413
    assert await post_telegram(h, big, {"Content-Type": "application/json"}) == 401
    assert nothing_stored(h)


@pytest.mark.parametrize("update", [
    {"update_id": 50, "channel_post": {"message_id": 1, "date": 1, "text": "news",
                                       "chat": {"id": -1001, "type": "channel"}}},
    {"update_id": 51, "my_chat_member": {"chat": {"id": 1, "type": "private"}, "date": 1}},
    {"update_id": 52, "callback_query": {"id": "1", "data": "x"}},
    {"update_id": 53, "message": {"message_id": 3, "date": 1, "text": "group chatter",
                                  "chat": {"id": -100, "type": "group"},
                                  "from": {"id": 5, "is_bot": False, "first_name": "G"}}},
    {"update_id": 54, "message": {"message_id": 4, "date": 1, "text": "beep",
                                  "chat": {"id": 9, "type": "private"},
                                  "from": {"id": 9, "is_bot": True, "first_name": "Bot"}}},
])
async def test_telegram_unhandled_updates_get_200_and_are_ignored(
    harness: Harness, update: dict[str, object]
) -> None:
    h = harness
    status, _ = await h.telegram.deliver(update, h.session)
    assert status == 200
    assert nothing_stored(h)


async def slack_post(h: Harness, body: bytes, headers: dict[str, str]) -> int:
    async with h.session.post(f"{h.url}/slack/events", data=body, headers=headers) as resp:
        return resp.status


async def reply_body(h: Harness) -> tuple[str, bytes]:
    await h.customer_says(3, "hi")
    thread = await h.thread_of(3)
    event = h.agent.message_event(channel=CHANNEL, user=AGENT, text="forged?", thread_ts=thread)
    return thread, json.dumps(event).encode()


async def test_slack_unsigned_badly_signed_and_stale_are_401(harness: Harness) -> None:
    h = harness
    _, body = await reply_body(h)
    stale = slack_signature_headers(SIGNING_SECRET, body, int(time.time()) - 6 * 60)
    future = slack_signature_headers(SIGNING_SECRET, body, int(time.time()) + 6 * 60)
    wrong = slack_signature_headers("not-the-secret", body)
    tampered = slack_signature_headers(SIGNING_SECRET, body)
    missing_ts = {k: v for k, v in slack_signature_headers(SIGNING_SECRET, body).items()
                  if k != "X-Slack-Request-Timestamp"}
    for headers in (stale, future, wrong, missing_ts, {"Content-Type": "application/json"}):
        assert await slack_post(h, body, headers) == 401
    assert await slack_post(h, body.replace(b"forged?", b"forged!"), tampered) == 401
    await h.drained()
    assert h.telegram.calls_to("sendMessage") == []
    assert h.rows("SELECT COUNT(*) FROM messages WHERE direction != 'in'") == [(0,)]


@pytest.mark.parametrize("body,ctype", [
    (b"{not json", "application/json"),
    (b"[1,2,3]", "application/json"),
    (b'{"type": "event_callback", "event": "nope"}', "application/json"),
    (b"payload=%7Bbroken", "application/x-www-form-urlencoded"),
    (b"random=form", "application/x-www-form-urlencoded"),
    (b"\xff\xfe\x00", "application/json"),
])
async def test_slack_signed_but_malformed_is_400(harness: Harness, body: bytes,
                                                 ctype: str) -> None:
    h = harness
    headers = slack_signature_headers(SIGNING_SECRET, body, content_type=ctype)
    assert await slack_post(h, body, headers) == 400
    assert h.count("messages") == 0


async def test_slack_oversized_is_413(harness: Harness) -> None:
    h = harness
    event = h.agent.message_event(channel=CHANNEL, user=AGENT, text="x" * 70_000,
                                  thread_ts="1.0")
    body = json.dumps(event).encode()
    assert await slack_post(h, body, slack_signature_headers(SIGNING_SECRET, body)) == 413
    assert await slack_post(h, body, {"Content-Type": "application/json"}) == 401


async def test_slack_authentic_events_we_do_not_use_get_200(harness: Harness) -> None:
    h = harness
    reaction = {"type": "event_callback", "team_id": h.slack.team_id, "api_app_id": "A0BRIDGE",
                "event_id": "Ev0REACTION", "event_time": int(time.time()),
                "event": {"type": "reaction_added", "user": AGENT, "reaction": "eyes",
                          "item": {"type": "message", "channel": CHANNEL, "ts": "1.0"}}}
    status, _ = await h.agent.post(reaction)
    assert status == 200
    edit = h.agent.message_event(channel=CHANNEL, user=AGENT, text="x", thread_ts="1.0",
                                 subtype="message_changed")
    status, _ = await h.agent.post(edit)
    assert status == 200
    assert h.count("messages") == 0


async def test_slack_url_verification_echoes_challenge(harness: Harness) -> None:
    h = harness
    status, text = await h.agent.post({"type": "url_verification", "token": "t",
                                       "challenge": "c-123"})
    assert status == 200 and "c-123" in text


async def test_webhooks_refused_while_not_ready(harness: Harness) -> None:
    h = harness
    h.bridge.ready = False
    try:
        status, _ = await h.telegram.deliver(h.telegram.text_update(chat_id=1, text="x"),
                                             h.session)
        assert status == 503
        async with h.session.get(f"{h.url}/healthz") as resp:
            assert resp.status == 503
    finally:
        h.bridge.ready = True
    async with h.session.get(f"{h.url}/healthz") as resp:
        assert resp.status == 200
        health = await resp.json()
    assert health["status"] == "ok" and health["connectors"] == ["telegram"]
    assert nothing_stored(h)
