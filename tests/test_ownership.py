"""Who holds a conversation: `!claim`, `!assign`, `!unassign`, the parent's Claim button and
Assign picker, the 👀 reaction; the parent names the assignee, the thread gets a line per
change and the store keeps the history."""

from __future__ import annotations

import pytest

from bridge.console.render import ASSIGN_ACTION, CLAIM_ACTION
from tests.conftest import AGENT, CHANNEL, Harness, HarnessFactory
from tests.helpers_ownership import (
    OTHER,
    add_other,
    context,
    elements,
    lines,
    parent,
    privately,
    started,
)
from tests.waiting import until

HISTORY = "SELECT kind, old_value, new_value, actor FROM conversation_changes ORDER BY id"


async def test_claim_assign_unassign_are_kept_shown_and_told(harness: Harness) -> None:
    h = harness
    add_other(h)
    thread = await started(h)
    assert "Unassigned" in context(h, thread)
    assert await h.agent_says(thread, "!claim") == 200
    # Committed before the 200.
    assert h.rows("SELECT assignee FROM conversations") == [(AGENT,)]
    await until(lambda: f"Assignee: <@{AGENT}>" in context(h, thread), "the parent redrawn")
    assert [e["action_id"] for e in elements(h, thread) if e["type"] == "button"] == [
        "bridge_close"]  # no Claim button while someone holds it

    # Someone else's claim is refused, privately, naming the holder.
    assert await h.agent_says(thread, "!claim", user=OTHER) == 200
    assert h.rows("SELECT assignee FROM conversations") == [(AGENT,)]
    assert any(f"<@{AGENT}> has this conversation" in t for t in privately(h, OTHER))

    assert await h.agent_says(thread, f"!assign <@{OTHER}|sam>") == 200
    await until(lambda: f"Assignee: <@{OTHER}>" in context(h, thread), "the new assignee")
    assert await h.agent_says(thread, "!unassign", user=OTHER) == 200
    await until(lambda: "Unassigned" in context(h, thread), "nobody assigned")
    await h.drained()
    said = [t for t in lines(h, thread) if t.startswith(":bust_in_silhouette:")]
    assert said == [f":bust_in_silhouette: <@{AGENT}> claimed the conversation.",
                    f":bust_in_silhouette: Assigned to <@{OTHER}> by <@{AGENT}> "
                    f"(was <@{AGENT}>).",
                    f":bust_in_silhouette: Unassigned by <@{OTHER}> (was <@{OTHER}>)."]
    assert h.rows(HISTORY) == [("assignee", None, AGENT, f"<@{AGENT}>"),
                               ("assignee", AGENT, OTHER, f"<@{AGENT}>"),
                               ("assignee", OTHER, None, f"<@{OTHER}>")]
    assert h.telegram.calls_to("sendMessage") == []  # commands never reach the customer


async def test_assign_refuses_a_user_slack_does_not_know(harness: Harness) -> None:
    h = harness
    thread = await started(h)
    assert await h.agent_says(thread, "!assign <@U0NOBODY>") == 200
    assert await h.agent_says(thread, "!assign Sam") == 200
    assert h.rows("SELECT assignee FROM conversations") == [(None,)]
    notes = privately(h, AGENT)
    assert any("Not assigned to <@U0NOBODY>" in t for t in notes)
    assert any("Usage: `!assign @someone`" in t for t in notes)
    assert h.count("conversation_changes") == 0


@pytest.mark.backends("sqlite")  # Slack interactions; the store's part runs on both above
async def test_claim_button_picker_and_eyes_reaction(harness: Harness) -> None:
    h = harness
    add_other(h)
    thread = await started(h)
    payload = h.agent.block_action(channel=CHANNEL, user=OTHER, message=parent(h, thread),
                                   action_id=CLAIM_ACTION, value="1")
    assert (await h.agent.post_interaction(payload))[0] == 200
    assert h.rows("SELECT assignee FROM conversations") == [(OTHER,)]

    payload = h.agent.picker_action(channel=CHANNEL, user=OTHER, message=parent(h, thread),
                                    action_id=ASSIGN_ACTION, selected_user=AGENT)
    assert (await h.agent.post_interaction(payload))[0] == 200
    assert h.rows("SELECT assignee FROM conversations") == [(AGENT,)]
    await until(lambda: any(e.get("initial_user") == AGENT for e in elements(h, thread)),
                "the picker showing the assignee")

    # 👀 on the parent claims; on a conversation someone holds it is refused privately.
    eyes = h.agent.reaction_event(channel=CHANNEL, user=OTHER, ts=thread, reaction="eyes")
    assert (await h.agent.post(eyes))[0] == 200
    assert h.rows("SELECT assignee FROM conversations") == [(AGENT,)]
    assert any("has this conversation" in t for t in privately(h, OTHER))
    assert await h.agent_says(thread, "!unassign") == 200
    assert (await h.agent.post(h.agent.reaction_event(channel=CHANNEL, user=OTHER, ts=thread,
                                                      reaction="eyes")))[0] == 200
    assert h.rows("SELECT assignee FROM conversations") == [(OTHER,)]


async def test_first_reply_assigns_and_the_assignee_is_mentioned(
        make_harness: HarnessFactory) -> None:
    h = await make_harness(
        {"conversations": {"assign_on_first_reply": True, "notify_assignee": True}})
    add_other(h)
    thread = await started(h)
    assert await h.agent_says(thread, "note: looking into it") == 200  # a note is no reply
    assert h.rows("SELECT assignee FROM conversations") == [(None,)]
    assert await h.agent_says(thread, "Hello Ann, checking now") == 200
    assert h.rows("SELECT assignee FROM conversations") == [(AGENT,)]
    assert await h.agent_says(thread, "Me too", user=OTHER) == 200  # held: stays
    await h.drained()
    assert h.rows("SELECT assignee FROM conversations") == [(AGENT,)]
    assert await h.customer_says(4242, "thanks!", first_name="Ann") == 200
    await h.drained()
    [line] = [t for t in lines(h, thread) if "thanks!" in t]
    assert f"<@{AGENT}>" in line
    assert h.rows(HISTORY) == [("assignee", None, AGENT, f"<@{AGENT}>")]
