"""`!transfer <team>` and the parent's Transfer picker (issue 19, item 3): a new parent in the
target channel, the old thread closed for replies, nothing lost or sent twice."""

from __future__ import annotations

from typing import Any

from bridge.console.render import TRANSFER_PICKER
from tests.conftest import AGENT, CHANNEL, Harness, HarnessFactory
from tests.helpers_ownership import OTHER, add_other, privately
from tests.test_teams import BILLING, TEAMS, says
from tests.waiting import until


async def agent(h: Harness, channel: str, thread: str, text: str, user: str = AGENT) -> None:
    event = h.agent.message_event(channel=channel, user=user, text=text, thread_ts=thread)
    assert (await h.agent.post(event))[0] == 200


def texts(h: Harness, channel: str, thread: str) -> list[str]:
    return [str(m["text"]) for m in h.slack.thread(channel, thread)]


def sent(h: Harness) -> list[str]:
    return [str(c.params.get("text")) for c in h.telegram.calls_to("sendMessage")]


async def test_transfer_moves_the_conversation_and_back(make_harness: HarnessFactory) -> None:
    h = await make_harness(TEAMS)
    add_other(h)
    assert await says(h, 21, "My parcel is late") == 200
    old = await h.thread_of(21)
    await agent(h, CHANNEL, old, "Looking into it")
    await agent(h, CHANNEL, old, "!claim", user=OTHER)  # OTHER is not in billing
    await agent(h, CHANNEL, old, "!tag late")
    await h.drained()
    await agent(h, CHANNEL, old, "!transfer billing")
    # Committed before the 200: the conversation is billing's, its old thread kept.
    assert h.rows("SELECT slack_channel, assignee, tags FROM conversations") == [
        (BILLING, None, "late")]
    assert h.rows("SELECT slack_channel, slack_thread_ts, team FROM moved_threads") == [
        (CHANNEL, old, "billing")]
    new = await h.thread_of(21)
    assert new != old
    await h.drained()
    assert any("Transferred to team *billing* (<#C0BILLING1>)" in t
               for t in texts(h, CHANNEL, old))
    [retired] = h.slack.parents(CHANNEL)  # the old parent: where it went, no buttons
    assert "Transferred to team *billing*" in str(retired["blocks"])
    assert not any(b["type"] == "actions" for b in retired["blocks"])
    [parent] = h.slack.parents(BILLING)
    assert parent["ts"] == new and "My parcel is late" in str(parent["text"])
    assert "`late`" in str(parent["blocks"])
    notice = texts(h, BILLING, new)[1]
    assert "Transferred from team *support*" in notice and f"<@{OTHER}> is not in this team" \
        in notice
    assert "Looking into it" in notice and "My parcel is late" in notice  # the summary
    assert f"/archives/{CHANNEL}/p{old.replace('.', '')}" in notice

    # A reply in the old thread is not sent; the agent is told where to write.
    await agent(h, CHANNEL, old, "Sent from the old thread")
    await h.drained()
    assert not any("old thread" in t for t in sent(h))
    assert any("was transferred to <#C0BILLING1>" in t for t in privately(h, AGENT))
    # Replies in the new thread reach the customer; the customer's messages land there.
    await agent(h, BILLING, new, "Billing here")
    assert await says(h, 21, "Thanks") == 200
    await h.drained()
    assert [t for t in sent(h) if "Billing here" in t or "Looking" in t] != []
    assert len([t for t in sent(h) if "Billing here" in t]) == 1
    assert len([t for t in sent(h) if "Looking into it" in t]) == 1
    assert any("Thanks" in t for t in texts(h, BILLING, new))

    # And back, with the parent's picker.
    picker = [e for b in h.slack.parents(BILLING)[0]["blocks"] if b["type"] == "actions"
              for e in b["elements"] if e.get("action_id") == TRANSFER_PICKER]
    assert [o["value"] for o in picker[0]["options"]] == ["german", "support"]
    body: dict[str, Any] = {
        "type": "block_actions", "user": {"id": AGENT}, "channel": {"id": BILLING},
        "message": {"ts": new}, "team": {"id": h.slack.team_id},
        "actions": [{"action_id": TRANSFER_PICKER, "type": "static_select",
                     "selected_option": {"value": "support"}}]}
    status, _ = await h.agent.post_interaction(body)
    assert status == 200
    assert h.rows("SELECT slack_channel FROM conversations") == [(CHANNEL,)]
    third = await h.thread_of(21)
    assert third not in (old, new)
    await h.drained()
    assert len(h.slack.parents(CHANNEL)) == 2
    assert h.rows("SELECT COUNT(*) FROM messages WHERE text = 'Thanks'") == [(1,)]


async def test_transfer_refuses_an_unknown_team(make_harness: HarnessFactory) -> None:
    h = await make_harness(TEAMS)
    assert await says(h, 22, "hello") == 200
    thread = await h.thread_of(22)
    await agent(h, CHANNEL, thread, "!transfer sales")
    await agent(h, CHANNEL, thread, "!transfer support")
    await until(lambda: len(privately(h, AGENT)) == 2, "two private notes")
    assert "there is no team `sales`" in privately(h, AGENT)[0]
    assert "already with team support" in privately(h, AGENT)[1]
    assert h.rows("SELECT slack_channel FROM conversations") == [(CHANNEL,)]
