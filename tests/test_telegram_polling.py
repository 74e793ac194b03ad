"""Telegram polling mode: the real app long-polls the stand-in's getUpdates.

An update is confirmed to Telegram (a later getUpdates offset passes it) only after its row is
committed; conflicts, flood control and network errors are survived; stop is prompt.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

import pytest

from bridge.standins.telegram import CONFLICT_TERMINATED
from connectors.telegram.connector import TelegramConnector
from connectors.telegram.polling import TelegramPoller
from storage.base import StoreError
from tests.conftest import AGENT_NAME, CHANNEL, TG_TOKEN, Harness, HarnessFactory
from tests.waiting import until
from vocab.models import InboundMessage, IngestResult

# SQLite only: the getUpdates protocol (offsets, errors, stop): nothing store-specific.
pytestmark = pytest.mark.backends("sqlite")

POLLING = {"connectors.telegram": {"mode": "polling", "poll_timeout": 1}}


@pytest.fixture(autouse=True)
def quick_backoffs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The poller's backoffs start 20 times sooner (the same doubling, jitter and cap): the
    tests wait for what happens after them, not through their length."""
    monkeypatch.setattr(TelegramPoller, "network_base", 0.025)
    monkeypatch.setattr(TelegramPoller, "conflict_base", 0.1)
    monkeypatch.setattr(TelegramPoller, "store_base", 0.025)


async def long_poll_held(h: Harness) -> None:
    """Wait until the bridge's getUpdates is being held by the stand-in."""
    await until(lambda: h.telegram.polls_waiting > 0, "a getUpdates held by the stand-in",
                timeout=10)


def stored(h: Harness) -> list[tuple[str, str]]:
    return [(str(r[0]), str(r[1])) for r in
            h.rows("SELECT platform_message_id, text FROM messages WHERE direction = 'in'"
                   " ORDER BY id")]


async def polling(make_harness: HarnessFactory) -> Harness:
    h = await make_harness(overrides=POLLING)
    await h.telegram.wait_for("getUpdates", 1)  # polling, and the first (empty) poll answered
    return h


async def test_polled_messages_reach_the_thread_and_replies_go_out(
    make_harness: HarnessFactory,
) -> None:
    h = await polling(make_harness)
    methods = [c.method for c in h.telegram.calls]
    assert methods.index("deleteWebhook") < methods.index("getUpdates")
    assert "setWebhook" not in methods
    assert h.telegram.calls_to("deleteWebhook")[0].params == {"drop_pending_updates": "false"}
    poll = h.telegram.calls_to("getUpdates")[0].params
    assert json.loads(poll["allowed_updates"]) == ["message", "edited_message", "callback_query"]

    first = h.telegram.text_update(chat_id=501, text="Where is order #5?", first_name="Ann")
    h.telegram.queue_update(first)
    h.telegram.queue_update(h.telegram.text_update(chat_id=502, text="Hello?", first_name="Bo"))
    h.telegram.queue_update(h.telegram.edited_update(
        chat_id=501, message_id=first["message"]["message_id"], text="Where is order #6?"))
    await h.slack.wait_for("chat.postMessage", 3)
    thread = await h.thread_of(501)
    texts = [m["text"] for m in h.slack.thread(CHANNEL, thread)]
    assert "Where is order #5?" in texts[0] and "Where is order #6?" in texts[-1]
    assert [t for _, t in stored(h)] == ["Where is order #5?", "Hello?", "Where is order #6?"]
    assert h.rows("SELECT edit_of FROM messages WHERE text = 'Where is order #6?'") == [
        (str(first["message"]["message_id"]),)]

    # Replies still go out through sendMessage.
    assert await h.agent_says(thread, "It ships today") == 200
    sent = await h.telegram.wait_for("sendMessage", 1)
    assert sent[0].params["chat_id"] == "501"
    assert sent[0].params["text"] == f"<b>{AGENT_NAME}</b>\nIt ships today"

    # The next poll confirms all three, and the offset is stored for a restart.
    top = max(int(u) for u, _ in stored(h))
    await until(lambda: h.telegram.updates == [], "updates confirmed")
    [(value,)] = h.rows("SELECT value FROM connector_state WHERE connector = 'telegram'"
                        " AND key = 'offset'")
    assert json.loads(value)["offset"] == top + 1


async def test_offset_passes_an_update_only_after_its_commit(
    make_harness: HarnessFactory, monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = await polling(make_harness)
    store = h.bridge.store
    assert store is not None
    real = store.ingest_inbound
    failures: list[float] = []
    committed: dict[int, float] = {}

    async def flaky(items: Sequence[InboundMessage], *args: Any,
                    **kw: Any) -> list[IngestResult]:
        if len(failures) < 2:
            failures.append(time.monotonic())
            raise StoreError("commit failed: disk I/O error")
        results = await real(items, *args, **kw)
        for item in items:
            committed.setdefault(int(item.platform_message_id), time.monotonic())
        return results

    monkeypatch.setattr(store, "ingest_inbound", flaky)
    update = h.telegram.text_update(chat_id=601, text="keep me")
    uid = update["update_id"]
    h.telegram.queue_update(update)
    await until(lambda: len(failures) == 2, "two failed commits")
    assert uid not in h.telegram.confirmed and h.telegram.updates == [update]
    assert stored(h) == []

    await until(lambda: stored(h) == [(str(uid), "keep me")], "the row after the retry")
    # Malformed updates are skipped, but the offset still moves past them.
    bad = {"update_id": uid + 1, "message": {"message_id": 9, "chat": {"type": "private"}}}
    h.telegram.queue_update(bad)
    h.telegram.queue_update(h.telegram.text_update(chat_id=601, text="after the bad one"))
    await until(lambda: len(stored(h)) == 2, "the update after the malformed one")
    await until(lambda: h.telegram.updates == [], "all three confirmed")
    assert set(h.telegram.confirmed) == {uid, uid + 1, uid + 2}
    for update_id, at in committed.items():
        assert at <= h.telegram.confirmed[update_id], update_id
    assert h.telegram.served[uid] == 1  # fetched once, retried from memory, never re-fetched
    await h.slack.wait_for("chat.postMessage", 2)


@pytest.mark.parametrize("status,error", [
    pytest.param(409, CONFLICT_TERMINATED, id="conflict"),  # another instance polls
    pytest.param(429, None, id="flood"),  # wait retry_after
    pytest.param(502, None, id="network"),  # back off
    pytest.param(401, None, id="token"),  # even a token refusal is retried, with a loud log
])
async def test_getupdates_errors_are_survived(
    make_harness: HarnessFactory, status: int, error: str | None,
) -> None:
    h = await polling(make_harness)
    h.telegram.fail_next("getUpdates", status=status, error=error)
    await until(lambda: any(c.status == status for c in
                            h.telegram.calls_to("getUpdates", ok_only=False)), "the failure")
    h.telegram.queue_update(h.telegram.text_update(chat_id=700 + status % 100, text="still here"))
    await h.slack.wait_for("chat.postMessage", 1, timeout=10)
    assert [t for _, t in stored(h)] == ["still here"]


async def test_a_webhook_set_elsewhere_is_deleted_again(make_harness: HarnessFactory) -> None:
    h = await polling(make_harness)
    async with h.session.post(f"{h.telegram.base_url}{TG_TOKEN}/setWebhook",
                              data={"url": "https://elsewhere.example/hook"}) as resp:
        assert resp.status == 200
    await until(lambda: len(h.telegram.calls_to("deleteWebhook")) == 2, "a second deleteWebhook")
    assert h.telegram.webhook_url is None
    h.telegram.queue_update(h.telegram.text_update(chat_id=801, text="after the webhook"))
    await h.slack.wait_for("chat.postMessage", 1)
    statuses = [c.status for c in h.telegram.calls_to("getUpdates", ok_only=False)]
    assert 409 in statuses


async def test_a_second_poller_ends_ours_and_we_resume(make_harness: HarnessFactory) -> None:
    h = await polling(make_harness)
    await long_poll_held(h)  # the bridge's next long poll is waiting in the stand-in
    async with h.session.post(f"{h.telegram.base_url}{TG_TOKEN}/getUpdates",
                              data={"timeout": "0"}) as resp:
        assert resp.status == 200  # the newer request wins...
    await until(lambda: any(c.status == 409 for c in
                            h.telegram.calls_to("getUpdates", ok_only=False)), "our 409")
    h.telegram.queue_update(h.telegram.text_update(chat_id=901, text="back again"))
    await h.slack.wait_for("chat.postMessage", 1)  # ...and ours resumes after a backoff


async def test_stop_ends_a_long_poll_promptly(make_harness: HarnessFactory) -> None:
    h = await make_harness(overrides={"connectors.telegram": {"mode": "polling"}})  # 25 s
    await h.telegram.wait_for("deleteWebhook", 1)
    await long_poll_held(h)  # the first getUpdates is being held by the stand-in
    connector = h.bridge.connectors["telegram"]
    assert isinstance(connector, TelegramConnector) and connector.poller is not None
    assert connector.poller.running
    loop = asyncio.get_running_loop()
    started = loop.time()
    await connector.stop()
    assert loop.time() - started < 1.0
    assert not connector.poller.running
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "telegram-poll"]
    await connector.stop()  # idempotent: the harness stops the bridge again


async def test_stop_lets_a_commit_under_way_finish(
    make_harness: HarnessFactory, monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = await polling(make_harness)
    store = h.bridge.store
    assert store is not None
    real = store.ingest_inbound
    entered = asyncio.Event()

    async def slow(items: Sequence[InboundMessage], *args: Any,
                   **kw: Any) -> list[IngestResult]:
        entered.set()
        await asyncio.sleep(0.3)
        return await real(items, *args, **kw)

    monkeypatch.setattr(store, "ingest_inbound", slow)
    update = h.telegram.text_update(chat_id=1001, text="in flight at stop")
    h.telegram.queue_update(update)
    await asyncio.wait_for(entered.wait(), 5)
    await h.bridge.connectors["telegram"].stop()
    assert stored(h) == [(str(update["update_id"]), "in flight at stop")]
    [(value,)] = h.rows("SELECT value FROM connector_state WHERE key = 'offset'")
    assert json.loads(value)["offset"] == update["update_id"] + 1
