"""The full loop: Telegram customer -> Slack thread -> agent reply -> Telegram, and its guards."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import AGENT, AGENT_NAME, CHANNEL, Harness

# SQLite only: console guards and wording; the tests of the pipeline's SQL (ingest, dedupe) run on
# both.
pytestmark = pytest.mark.backends("sqlite")


async def post_and_expect_nothing_relayed(h: Harness, *envelopes: dict[str, Any]) -> None:
    """Each event is acknowledged, and none of them reaches the customer or the store."""
    for envelope in envelopes:
        status, _ = await h.agent.post(envelope)
        assert status == 200
    await h.drained()
    assert h.telegram.calls_to("sendMessage") == []
    assert h.rows("SELECT COUNT(*) FROM messages WHERE direction != 'in'") == [(0,)]


@pytest.mark.backends("sqlite", "postgres")  # SQL of the pipeline
async def test_customer_message_starts_a_thread_and_agent_reply_reaches_customer(
    harness: Harness,
) -> None:
    h = harness
    assert await h.customer_says(4242, "Where is order #123?", first_name="Ann",
                                 last_name="Lee", username="ann_l") == 200
    posts = await h.slack.wait_for("chat.postMessage", 1)
    parent = posts[0].params
    assert parent["channel"] == CHANNEL and "thread_ts" not in parent
    assert "Ann Lee" in parent["text"] and "@ann_l" in parent["text"]
    assert "Telegram" in parent["text"] and "Where is order #123?" in parent["text"]

    thread = await h.thread_of(4242)
    assert thread == h.slack.parents(CHANNEL)[0]["ts"]
    # Slack escapes what people type: "&", "<" and ">" arrive as entities.
    assert await h.agent_says(thread, "It ships *today* &amp; arrives &lt;soon&gt;") == 200
    sent = await h.telegram.wait_for("sendMessage", 1)
    assert sent[0].params["chat_id"] == "4242"
    assert sent[0].params["parse_mode"] == "HTML"
    # The agent's name from users.info, never "Bot"; the text escaped for Telegram HTML.
    expected_text = f"<b>{AGENT_NAME}</b>\nIt ships <b>today</b> &amp; arrives &lt;soon&gt;"
    assert sent[0].params["text"] == expected_text

    assert await h.customer_says(4242, "Thanks!", first_name="Ann", last_name="Lee") == 200
    await h.slack.wait_for("chat.postMessage", 2)
    replies = h.slack.thread(CHANNEL, thread)
    assert [m["text"].split("\n")[-1] for m in replies][-1].endswith("Thanks!")
    assert h.slack.calls_to("chat.postMessage")[1].params["thread_ts"] == thread

    expected = [("in", "posted", "Ann Lee"), ("out", "sent", AGENT_NAME),
                ("in", "posted", "Ann Lee")]
    sql = "SELECT direction, state, author_name FROM messages ORDER BY id"
    assert await h.wait_rows(sql, expected) == expected
    assert h.count("conversations") == 1 and h.count("customers") == 1


async def test_display_name_falls_back_to_real_name(harness: Harness) -> None:
    h = harness
    h.slack.add_user("U0NODISPLAY", display_name="", real_name="Robin Real")
    await h.customer_says(77, "hello")
    thread = await h.thread_of(77)
    assert await h.agent_says(thread, "hi there", user="U0NODISPLAY") == 200
    sent = await h.telegram.wait_for("sendMessage", 1)
    assert sent[0].params["text"].startswith("<b>Robin Real</b>\n")


@pytest.mark.backends("sqlite", "postgres")  # SQL of the pipeline
async def test_redelivered_webhook_is_stored_and_posted_once(harness: Harness) -> None:
    h = harness
    update = h.telegram.text_update(chat_id=5, text="only once")
    for _ in range(3):
        status, _ = await h.telegram.deliver(update, h.session)
        assert status == 200
    await h.slack.wait_for("chat.postMessage", 1)
    await h.drained()
    assert len(h.slack.calls_to("chat.postMessage")) == 1
    assert h.count("messages") == 1 and h.count("outbox") == 1


@pytest.mark.backends("sqlite", "postgres")  # SQL of the pipeline
async def test_slack_retries_of_one_event_are_relayed_once(harness: Harness) -> None:
    h = harness
    await h.customer_says(6, "hi")
    thread = await h.thread_of(6)
    event = h.agent.message_event(channel=CHANNEL, user=AGENT, text="one reply",
                                  thread_ts=thread)
    for retry in (None, 1, 2):
        status, _ = await h.agent.post(event, retry_num=retry)
        assert status == 200
    await h.telegram.wait_for("sendMessage", 1)
    await h.drained()
    assert len(h.telegram.calls_to("sendMessage")) == 1
    assert h.rows("SELECT COUNT(*) FROM messages WHERE direction = 'out'") == [(1,)]


async def test_internal_notes_are_stored_never_sent(harness: Harness) -> None:
    h = harness
    await h.customer_says(7, "hi")
    thread = await h.thread_of(7)
    for text in ("note: VIP customer", "NOTE: check the refund", "   Note:leading spaces"):
        assert await h.agent_says(thread, text) == 200
    await h.drained()
    assert h.telegram.calls_to("sendMessage") == []
    assert h.rows("SELECT direction, state FROM messages WHERE direction != 'in'") == [
        ("note", "note")] * 3
    assert h.rows("SELECT COUNT(*) FROM outbox WHERE kind = 'customer_send'") == [(0,)]


async def test_bridge_own_posts_and_bots_are_never_relayed(harness: Harness) -> None:
    h = harness
    await h.customer_says(8, "hi")
    thread = await h.thread_of(8)
    own = h.slack.parents(CHANNEL)[0]
    # The bridge's own post echoed back by Slack, another bot, and a bot_message subtype.
    echo = h.agent.message_event(channel=CHANNEL, user=h.slack.bot_user_id, text=own["text"],
                                 thread_ts=thread, bot_id=h.slack.bot_id)
    other_bot = h.agent.message_event(channel=CHANNEL, user="U0OTHERBOT", text="beep",
                                      thread_ts=thread, bot_id="B0OTHER")
    classic = h.agent.message_event(channel=CHANNEL, user="U0X", text="beep",
                                    thread_ts=thread, subtype="bot_message")
    await post_and_expect_nothing_relayed(h, echo, other_bot, classic)


async def test_outsiders_are_never_relayed(harness: Harness) -> None:
    h = harness
    await h.customer_says(9, "hi")
    thread = await h.thread_of(9)
    # A Slack Connect guest from another team, seen in the event itself.
    assert await h.agent_says(thread, "from outside", user="U0EXT",
                              user_team="T0OTHERTEAM") == 200
    # A stranger only users.info can reveal: stored, blocked, agents told why.
    h.slack.add_user("U0STRANGER", display_name="Stranger", is_stranger=True)
    assert await h.agent_says(thread, "stranger text", user="U0STRANGER") == 200
    await h.slack.wait_for("chat.postMessage", 2)
    await h.drained()
    assert h.telegram.calls_to("sendMessage") == []
    expected = [("stranger text", "blocked")]
    sql = "SELECT text, state FROM messages WHERE direction = 'out'"
    assert await h.wait_rows(sql, expected) == expected
    notice = h.slack.calls_to("chat.postMessage")[-1].params
    assert notice["thread_ts"] == thread and "Not sent" in notice["text"]


async def test_replies_outside_bridge_threads_are_ignored(harness: Harness) -> None:
    h = harness
    await h.customer_says(10, "hi")
    await h.thread_of(10)
    unrelated = h.agent.message_event(channel=CHANNEL, user=AGENT, text="unrelated thread",
                                      thread_ts="1111111111.000001")
    top = h.agent.message_event(channel=CHANNEL, user=AGENT, text="top-level chatter")
    other = h.agent.message_event(channel="C0OTHER", user=AGENT, text="elsewhere",
                                  thread_ts="1111111111.000001")
    await post_and_expect_nothing_relayed(h, unrelated, top, other)


@pytest.mark.backends("sqlite", "postgres")  # SQL of the pipeline
async def test_each_customer_gets_one_thread(harness: Harness) -> None:
    h = harness
    for chat in (21, 22, 21, 22, 21):
        assert await h.customer_says(chat, f"msg from {chat}") == 200
    await h.slack.wait_for("chat.postMessage", 5)
    assert len(h.slack.parents(CHANNEL)) == 2
    t21, t22 = await h.thread_of(21), await h.thread_of(22)
    assert len(h.slack.thread(CHANNEL, t21)) == 3 and len(h.slack.thread(CHANNEL, t22)) == 2
