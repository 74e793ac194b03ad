"""The *Export customer data* message shortcut: an admin of `[privacy] admins` gets the
export in a direct message from the app; anyone else gets a refusal and nothing is exported.
A Slack interaction: it runs once (SQLite)."""

from __future__ import annotations

import json

import pytest

from bridge.console.export import EXPORT_SHORTCUT
from tests.conftest import AGENT, CHANNEL, HarnessFactory

STRANGER = "U0OTHER9"


@pytest.mark.backends("sqlite")
async def test_export_shortcut_sends_the_export_to_an_admin_only(
        make_harness: HarnessFactory) -> None:
    h = await make_harness({"privacy": {"admins": [AGENT]}})
    h.slack.add_user(STRANGER, display_name="Sam")
    assert await h.customer_says(4242, "hello from Ann", first_name="Ann") == 200
    assert await h.customer_says(5151, "hello from Bob", first_name="Bob") == 200
    thread = await h.thread_of(4242)
    parent = h.slack.thread(CHANNEL, thread)[0]

    refused = h.agent.message_shortcut(channel=CHANNEL, user=STRANGER, message=parent,
                                       callback_id=EXPORT_SHORTCUT)
    assert (await h.agent.post_interaction(refused))[0] == 200
    await h.slack.wait_for("chat.postEphemeral", 1)
    assert "Only the admins" in h.slack.ephemerals[-1]["text"]
    assert h.count("audit_log") == 0 and not h.slack.files

    asked = h.agent.message_shortcut(channel=CHANNEL, user=AGENT, message=parent,
                                     callback_id=EXPORT_SHORTCUT)
    assert (await h.agent.post_interaction(asked))[0] == 200
    await h.slack.wait_for("files.completeUploadExternal", 1)
    [sent] = [f for f in h.slack.files.values() if f.get("completed")]
    assert sent["channel"] == "D0AGENT1"  # the admin's direct message with the app
    doc = json.loads(sent["content"])
    assert [m["text"] for c in doc["conversations"] for m in c["messages"]] == [
        "hello from Ann"]
    assert h.rows("SELECT action, actor FROM audit_log") == [("export", f"<@{AGENT}>")]


@pytest.mark.backends("sqlite")
async def test_export_shortcut_refusals_write_nothing(make_harness: HarnessFactory) -> None:
    """A stranger's shortcut replayed, and an admin's on a message that is no customer's
    thread: each gets a private note; no export is made, sent or audited."""
    h = await make_harness({"privacy": {"admins": [AGENT]}})
    h.slack.add_user(STRANGER, display_name="Sam")
    assert await h.customer_says(4242, "hello from Ann", first_name="Ann") == 200
    thread = await h.thread_of(4242)
    parent = h.slack.thread(CHANNEL, thread)[0]
    refused = h.agent.message_shortcut(channel=CHANNEL, user=STRANGER, message=parent,
                                       callback_id=EXPORT_SHORTCUT)
    for sent in (1, 2):  # the same payload twice: refused twice
        assert (await h.agent.post_interaction(refused))[0] == 200
        await h.slack.wait_for("chat.postEphemeral", sent)
        assert "Only the admins" in h.slack.ephemerals[-1]["text"]
        assert h.slack.ephemerals[-1]["user"] == STRANGER
    stray = {**parent, "ts": "1700000000.000100", "thread_ts": None, "text": "ünïcødé 🙂"}
    elsewhere = h.agent.message_shortcut(channel=CHANNEL, user=AGENT, message=stray,
                                         callback_id=EXPORT_SHORTCUT)
    assert (await h.agent.post_interaction(elsewhere))[0] == 200
    await h.slack.wait_for("chat.postEphemeral", 3)
    assert "not a customer's thread" in h.slack.ephemerals[-1]["text"]
    assert h.slack.ephemerals[-1]["user"] == AGENT
    assert h.count("audit_log") == 0 and not h.slack.files
    assert not h.slack.calls_to("conversations.open")
