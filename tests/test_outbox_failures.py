"""The stand-in APIs failing with 429, 5xx and timeouts: delivered later, in order, visibly."""

from __future__ import annotations

import time

from bridge.registry import create_store
from tests.conftest import CHANNEL, Harness, HarnessFactory
from tests.waiting import until


def texts(calls: list[str], marker: str) -> list[str]:
    return [t for t in calls if marker in t]


async def test_slack_429_waits_as_told_then_posts_in_order(harness: Harness) -> None:
    h = harness
    h.slack.fail_next("chat.postMessage", status=429, retry_after=1)
    for i in range(4):
        assert await h.customer_says(31, f"m{i}") == 200
    calls = await h.slack.wait_for("chat.postMessage", 4, timeout=10)
    refused = h.slack.calls_to("chat.postMessage", ok_only=False)[0]
    assert refused.status == 429
    assert calls[0].at - refused.at >= 0.95  # waited for Retry-After
    assert [c.params["text"].rsplit(" ", 1)[-1].split("\n")[-1] for c in calls] == [
        "m0", "m1", "m2", "m3"]
    assert len(calls) == 4  # nothing posted twice


async def test_slack_5xx_and_timeouts_are_retried_in_order(
    make_harness: HarnessFactory,
) -> None:
    h = await make_harness({"slack": {"request_timeout": 0.5}})
    h.slack.fail_next("chat.postMessage", status=500, count=2)
    h.slack.fail_next("chat.postMessage", status=503)
    h.slack.delay_next("chat.postMessage", 1.0)  # longer than request_timeout = 0.5
    for i in range(3):
        assert await h.customer_says(32, f"n{i}") == 200
    calls = await h.slack.wait_for("chat.postMessage", 3, timeout=20)
    ok_texts = [c.params["text"].split("\n")[-1].rsplit(" ", 1)[-1] for c in calls]
    # The timed-out attempt may have reached Slack (the only allowed duplicate); order holds.
    assert ok_texts[-3:] == ["n0", "n1", "n2"] or ok_texts == ["n0", "n0", "n1", "n2"]
    attempts = h.rows("SELECT attempts FROM outbox ORDER BY id LIMIT 1")[0][0]
    assert attempts >= 4


async def test_telegram_429_pauses_only_that_chat(harness: Harness) -> None:
    h = harness
    await h.customer_says(41, "a")
    await h.customer_says(42, "b")
    slow, fast = await h.thread_of(41), await h.thread_of(42)
    h.telegram.fail_next("sendMessage", status=429, retry_after=1)
    assert await h.agent_says(slow, "to 41 first") == 200
    await until(lambda: bool(h.telegram.calls_to("sendMessage", ok_only=False)),
                "the 429 answered", timeout=5)
    assert await h.agent_says(slow, "to 41 second") == 200
    assert await h.agent_says(fast, "to 42") == 200
    sent = await h.telegram.wait_for("sendMessage", 3, timeout=10)
    order = [(c.params["chat_id"], c.params["text"].split("\n")[-1]) for c in sent]
    assert order[0] == ("42", "to 42")  # not held up by chat 41's rate limit
    assert [t for chat, t in order if chat == "41"] == ["to 41 first", "to 41 second"]
    refused = h.telegram.calls_to("sendMessage", ok_only=False)[0]
    first_41 = next(c for c in sent if c.params["chat_id"] == "41")
    assert refused.status == 429 and first_41.at - refused.at >= 0.95


async def test_permanent_telegram_error_is_shown_in_the_thread(harness: Harness) -> None:
    h = harness
    await h.customer_says(51, "hi")
    thread = await h.thread_of(51)
    h.telegram.fail_next("sendMessage", status=403,
                         error="Forbidden: bot was blocked by the user")
    assert await h.agent_says(thread, "are you there?") == 200
    posts = await h.slack.wait_for("chat.postMessage", 2, timeout=10)
    notice = posts[-1].params
    assert notice["thread_ts"] == thread and notice["channel"] == CHANNEL
    assert "Not delivered" in notice["text"] and "bot was blocked by the user" in notice["text"]
    expected = [("failed",)]
    assert await h.wait_rows("SELECT state FROM messages WHERE direction = 'out'",
                             expected) == expected
    assert h.rows("SELECT status FROM outbox WHERE kind = 'customer_send'") == [("failed",)]
    assert len(h.telegram.calls_to("sendMessage", ok_only=False)) == 1  # not retried


async def test_transient_telegram_errors_give_up_after_max_attempts(harness: Harness) -> None:
    h = harness
    await h.customer_says(52, "hi")
    thread = await h.thread_of(52)
    h.telegram.fail_next("sendMessage", status=500, count=3)  # max_attempts = 3
    assert await h.agent_says(thread, "doomed") == 200
    assert await h.agent_says(thread, "after the failure") == 200
    sent = await h.telegram.wait_for("sendMessage", 1, timeout=10)
    assert sent[0].params["text"].endswith("after the failure")
    posts = await h.slack.wait_for("chat.postMessage", 2, timeout=10)
    assert "after 3 attempts" in posts[-1].params["text"]
    assert len(h.telegram.calls_to("sendMessage", ok_only=False)) == 4


async def test_transient_telegram_error_is_retried_in_order(harness: Harness) -> None:
    h = harness
    await h.customer_says(53, "hi")
    thread = await h.thread_of(53)
    h.telegram.fail_next("sendMessage", status=502, error="Bad Gateway")
    for text in ("first", "second", "third"):
        assert await h.agent_says(thread, text) == 200
    sent = await h.telegram.wait_for("sendMessage", 3, timeout=10)
    assert [c.params["text"].split("\n")[-1] for c in sent] == ["first", "second", "third"]
    expected = [("sent",)] * 3
    assert await h.wait_rows("SELECT state FROM messages WHERE direction = 'out' ORDER BY id",
                             expected) == expected


async def test_running_bridge_picks_up_an_admin_retry(harness: Harness) -> None:
    h = harness
    await h.customer_says(54, "hi")
    thread = await h.thread_of(54)
    h.telegram.fail_next("sendMessage", status=403, error="Forbidden: bot was blocked by the user")
    assert await h.agent_says(thread, "try me again") == 200
    failed = [("failed",)]
    sql = "SELECT status FROM outbox WHERE kind = 'customer_send'"
    assert await h.wait_rows(sql, failed) == failed
    # What `bridge outbox retry --all-failed` does, from another connection (another process).
    admin = create_store(h.bridge.settings.storage)
    await admin.open()
    try:
        assert len(await admin.retry_outbox([], True, time.time())) == 1
    finally:
        await admin.close()
    sent = await h.telegram.wait_for("sendMessage", 1, timeout=10)
    assert sent[0].params["text"].endswith("try me again")
    done = [("done",)]
    assert await h.wait_rows(sql, done) == done
