"""Close and reopen, thread commands, the Retry button, and agents' edits and deletions."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.console.render import CLOSE_ACTION, CLOSE_SHORTCUT, REOPEN_ACTION, RETRY_ACTION
from tests.conftest import AGENT, AGENT_NAME, CHANNEL, Harness, HarnessFactory

# SQLite only: Slack interactions and console wording; reopening and retries are store contract
# tests.
pytestmark = pytest.mark.backends("sqlite")


def parent(h: Harness, thread: str) -> dict[str, Any]:
    [msg] = [m for m in h.slack.parents(CHANNEL) if m["ts"] == thread]
    return msg


def button(msg: dict[str, Any]) -> dict[str, Any]:
    [actions] = [b for b in msg["blocks"] if b["type"] == "actions"]
    return dict(actions["elements"][0])


def context(msg: dict[str, Any]) -> str:
    [ctx] = [b for b in msg["blocks"] if b["type"] == "context"]
    return str(ctx["elements"][0]["text"])


async def started(h: Harness, chat: int = 4242) -> str:
    assert await h.customer_says(chat, "My parcel is late", first_name="Ann",
                                 username="ann_k") == 200
    return await h.thread_of(chat)


async def click(h: Harness, thread: str, action_id: str, message: dict[str, Any] | None = None,
                user: str = AGENT) -> int:
    msg = message or parent(h, thread)
    payload = h.agent.block_action(channel=CHANNEL, user=user, message=msg,
                                   action_id=action_id, value="1")
    if message is not None:
        payload["actions"][0]["value"] = button(message)["value"]
    status, _ = await h.agent.post_interaction(payload)
    return status


async def status_of(h: Harness, expected: str) -> str:
    sql = "SELECT status FROM conversations"
    got = await h.wait_rows(sql, [(expected,)])
    return str(got[0][0])


async def test_parent_shows_status_and_close_button_closes(harness: Harness) -> None:
    h = harness
    thread = await started(h)
    msg = parent(h, thread)
    assert button(msg)["action_id"] == CLOSE_ACTION and "Open" in context(msg)

    assert await click(h, thread, CLOSE_ACTION) == 200
    # Committed before the 200: the row is closed already.
    assert h.rows("SELECT status, closed_by FROM conversations") == [("closed", f"<@{AGENT}>")]
    await h.slack.wait_for("chat.update", 1)
    msg = parent(h, thread)
    assert button(msg)["action_id"] == REOPEN_ACTION and "Closed" in context(msg)
    assert "(@ann_k)" in msg["text"] and "My parcel is late" in msg["text"]  # redrawn whole
    assert f"<@{AGENT}>" in context(msg)
    await h.slack.wait_for("chat.postMessage", 2)
    notices = [m["text"] for m in h.slack.thread(CHANNEL, thread)[1:]]
    assert any("Closed by" in t for t in notices)

    assert await click(h, thread, REOPEN_ACTION) == 200
    assert await status_of(h, "open") == "open"
    await h.slack.wait_for("chat.update", 2)
    assert button(parent(h, thread))["action_id"] == CLOSE_ACTION


async def test_close_command_in_thread_is_never_sent_to_the_customer(harness: Harness) -> None:
    h = harness
    thread = await started(h)
    assert await h.agent_says(thread, "!close") == 200
    assert h.rows("SELECT status FROM conversations") == [("closed",)]
    assert await h.agent_says(thread, "!CLOSE") == 200  # already closed: told, nothing else
    assert await h.agent_says(thread, "!frobnicate") == 200
    await h.drained()
    assert h.telegram.calls_to("sendMessage") == []
    assert h.rows("SELECT COUNT(*) FROM messages WHERE direction != 'in'") == [(0,)]
    ephemerals = [e["text"] for e in h.slack.ephemerals]
    assert any("already closed" in t for t in ephemerals)
    assert any("Unknown command" in t for t in ephemerals)
    # "!!!" is not a command: it is a reply and reaches the customer.
    assert await h.agent_says(thread, "!!! sorry for the wait") == 200
    sent = await h.telegram.wait_for("sendMessage", 1)
    assert sent[0].params["text"].endswith("!!! sorry for the wait")


async def test_message_shortcut_closes_from_any_message_of_the_thread(harness: Harness) -> None:
    h = harness
    thread = await started(h)
    await h.customer_says(4242, "hello?", first_name="Ann")
    await h.slack.wait_for("chat.postMessage", 2)
    reply = h.slack.thread(CHANNEL, thread)[-1]
    payload = h.agent.message_shortcut(channel=CHANNEL, user=AGENT, message=reply,
                                       callback_id=CLOSE_SHORTCUT)
    status, _ = await h.agent.post_interaction(payload)
    assert status == 200
    assert h.rows("SELECT status FROM conversations") == [("closed",)]


async def test_shortcut_outside_a_conversation_changes_nothing(harness: Harness) -> None:
    h = harness
    await started(h)
    stray = {"type": "message", "user": AGENT, "ts": "1700000000.000001", "text": "lunch?"}
    payload = h.agent.message_shortcut(channel=CHANNEL, user=AGENT, message=stray,
                                       callback_id=CLOSE_SHORTCUT)
    status, _ = await h.agent.post_interaction(payload)
    assert status == 200
    assert h.rows("SELECT status FROM conversations") == [("open",)]
    assert any("not part of a customer conversation" in e["text"] for e in h.slack.ephemerals)


async def test_customer_writing_again_reopens_the_same_thread(harness: Harness) -> None:
    h = harness
    thread = await started(h)
    assert await h.agent_says(thread, "!close") == 200
    assert await h.customer_says(4242, "Still nothing arrived", first_name="Ann") == 200
    assert await status_of(h, "open") == "open"
    assert h.count("conversations") == 1
    await h.slack.wait_for("chat.update", 2)
    await h.slack.wait_for("chat.postMessage", 4)  # parent, closed, reopened, the message
    texts = [m["text"] for m in h.slack.thread(CHANNEL, thread)]
    assert any("Reopened" in t for t in texts) and texts[-1].endswith("Still nothing arrived")
    assert button(parent(h, thread))["action_id"] == CLOSE_ACTION


async def test_customer_writing_after_the_window_starts_a_linked_thread(
    make_harness: HarnessFactory,
) -> None:
    h = await make_harness({"conversations": {"reopen_within_hours": 0}})
    old = await started(h)
    assert await h.agent_says(old, "!close") == 200
    assert await h.customer_says(4242, "New question", first_name="Ann") == 200
    await h.slack.wait_for("chat.postMessage", 3)
    rows = h.rows("SELECT id, status, previous_id FROM conversations ORDER BY id")
    assert rows == [(1, "closed", None), (2, "open", 1)]
    parents = h.slack.parents(CHANNEL)
    assert len(parents) == 2
    new = parents[-1]
    assert new["ts"] != old and "New question" in new["text"]
    assert f"/archives/{CHANNEL}/p{old.replace('.', '')}" in context(new)
    assert h.count("customers") == 1


async def test_failed_delivery_has_a_retry_button_that_queues_it_again(
    harness: Harness,
) -> None:
    h = harness
    thread = await started(h)
    h.telegram.fail_next("sendMessage", count=3, status=500)
    assert await h.agent_says(thread, "Your refund is on its way") == 200
    await h.wait_rows("SELECT status FROM outbox WHERE kind = 'customer_send'", [("failed",)])
    notices = await h.slack.wait_for("chat.postMessage", 2)
    notice = h.slack.thread(CHANNEL, thread)[-1]
    assert "Not delivered" in notice["text"] or "not delivered" in notice["text"]
    assert notices[-1].params.get("thread_ts") == thread
    retry = button(notice)
    assert retry["action_id"] == RETRY_ACTION

    assert await click(h, thread, RETRY_ACTION, message=notice) == 200
    sent = await h.telegram.wait_for("sendMessage", 1)
    assert sent[0].params["text"].endswith("Your refund is on its way")
    await h.wait_rows("SELECT state FROM messages WHERE direction = 'out'", [("sent",)])
    updates = await h.slack.wait_for("chat.update", 1)
    assert "queued again" in updates[-1].params["text"]


async def test_agent_edit_and_delete_reach_the_customer(harness: Harness) -> None:
    h = harness
    thread = await started(h)
    reply = h.agent.message_event(channel=CHANNEL, user=AGENT, text="Tracking: AB12",
                                  thread_ts=thread)
    assert (await h.agent.post(reply))[0] == 200
    await h.telegram.wait_for("sendMessage", 1)
    await h.wait_rows("SELECT state FROM messages WHERE direction = 'out'", [("sent",)])
    ts = reply["event"]["ts"]
    edit = h.agent.changed_event(channel=CHANNEL, user=AGENT, ts=ts, thread_ts=thread,
                                 old_text="Tracking: AB12", new_text="Tracking: *AB13*")
    assert (await h.agent.post(edit))[0] == 200
    assert (await h.agent.post(edit, retry_num=1))[0] == 200  # a retry edits once
    [edited] = await h.telegram.wait_for("editMessageText", 1)
    assert edited.params["text"] == f"<b>{AGENT_NAME}</b>\nTracking: <b>AB13</b>"
    [(sent_id,)] = h.rows("SELECT sent_platform_id FROM messages WHERE direction = 'out'")
    assert edited.params["message_id"] == sent_id
    await h.drained()
    assert len(h.telegram.calls_to("editMessageText")) == 1

    gone = h.agent.deleted_event(channel=CHANNEL, user=AGENT, ts=ts, thread_ts=thread,
                                 old_text="Tracking: *AB13*")
    assert (await h.agent.post(gone))[0] == 200
    [deleted] = await h.telegram.wait_for("deleteMessage", 1)
    assert deleted.params["message_id"] == edited.params["message_id"]
    await h.wait_rows("SELECT state FROM messages WHERE direction = 'out'", [("deleted",)])


async def test_edits_of_the_bridges_own_posts_are_ignored(harness: Harness) -> None:
    h = harness
    thread = await started(h)
    edit = h.agent.changed_event(channel=CHANNEL, user=AGENT, ts=thread, thread_ts=thread,
                                 old_text="a", new_text="b")
    assert (await h.agent.post(edit))[0] == 200
    await h.drained()
    assert h.telegram.calls_to("editMessageText") == []
    assert h.rows("SELECT COUNT(*) FROM outbox WHERE kind LIKE 'customer_%'") == [(0,)]


async def test_customer_edit_shows_in_the_thread_as_a_note(harness: Harness) -> None:
    h = harness
    update = h.telegram.text_update(chat_id=4242, text="Order #12", first_name="Ann")
    assert (await h.telegram.deliver(update, h.session))[0] == 200
    thread = await h.thread_of(4242)
    edit = h.telegram.edited_update(chat_id=4242, message_id=update["message"]["message_id"],
                                    text="Order #123")
    assert (await h.telegram.deliver(edit, h.session))[0] == 200
    assert (await h.telegram.deliver(edit, h.session))[0] == 200  # redelivered: once
    await h.slack.wait_for("chat.postMessage", 2)
    await h.drained()
    texts = [m["text"] for m in h.slack.thread(CHANNEL, thread)]
    assert len(texts) == 2 and "edited a message" in texts[1] and texts[1].endswith("Order #123")
    rows = h.rows("SELECT edit_of FROM messages ORDER BY id")
    assert rows == [(None,), (str(update["message"]["message_id"]),)]
