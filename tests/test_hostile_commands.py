"""Hostile input on the thread commands and the parent's buttons: malformed, oversized,
unicode-edge-case, huge-number and replayed input gets a private note or nothing, writes no
row, reaches no customer and never makes the bridge answer Slack with an error (Slack would
redeliver it forever)."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.console.render import ASSIGN_ACTION, CLAIM_ACTION, TRANSFER_PICKER
from tests.conftest import AGENT, CHANNEL, Harness, HarnessFactory
from tests.helpers_ownership import lines, parent, started
from tests.test_teams import TEAMS

CHANGES = "SELECT COUNT(*) FROM conversation_changes"
STATE = "SELECT status, assignee, tags, slack_channel FROM conversations"
LONG_ID = "U" + "A" * 5000


def snapshot(h: Harness) -> tuple[Any, ...]:
    return (h.rows(CHANGES), h.count("outbox"), h.rows(STATE),
            len(h.telegram.calls_to("sendMessage")))


async def settled(h: Harness) -> tuple[Any, ...]:
    await h.drained()
    return snapshot(h)


HOSTILE = [
    "!snooze 99999999999d",
    "!snooze 10000000000000000000m",
    "!snooze 9999999999999999999999999999w",
    "!snooze",
    "!snooze 31:99",
    "!snooze 0m",
    "!snooze 24:00",
    "!snooze 13pm",
    "!snooze 9999-99-99 9:00",
    "!snooze 0000-01-01",
    "!snooze 1970-01-01 0:00",
    "!snooze mon 99:99",
    "!snooze " + "9999w" * 5000,  # beyond any calendar
    "!snooze 9999-12-31 23:59",  # more than a year ahead
    "!snooze \ud800",
    "!snooze \x00",
    "!snooze ３０m",  # fullwidth digits
    "!snooze ٣٠m",  # Arabic-Indic digits
    "!assign <@" + LONG_ID + ">",
    "!assign <@U" + "1" * 5000 + "|x>",
    "!assign not-a-user",
    "!assign",
    "!assign <@U0NOBODY1>",
    "!assign <#C0SUPPORT1>",
    "!assign <@U0AGENT1> <@U0AGENT2>",
    "!assign <@\ud800>",
    "!unassign",
    "!tag " + "x" * 10_000,
    "!tag \x00",
    "!tag \ud800",
    "!tag 🎉",
    "!tag",
    "!tag customer:",
    "!tag a b",
    "!untag nothing",
    "!untag " + "x" * 10_000,
    "!transfer nowhere",
    "!transfer",
    "!transfer " + "x" * 10_000,
    "!transfer \ud800",
    "!transfer support",  # its own team
    "!queue " + "x" * 10_000,
]


@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: repr(t[:24]))
async def test_a_hostile_command_writes_nothing(harness: Harness, text: str) -> None:
    h = harness
    thread = await started(h)
    before, said = await settled(h), lines(h, thread)
    assert await h.agent_says(thread, text) == 200
    assert await settled(h) == before
    assert lines(h, thread) == said


async def test_a_nul_in_a_tag_is_never_stored(harness: Harness) -> None:
    h = harness
    thread = await started(h)
    assert await h.agent_says(thread, "!tag a\x00b") == 200
    assert all("\x00" not in str(r) for r in h.rows(STATE))


async def test_a_far_snooze_is_kept_and_drawn(harness: Harness) -> None:
    """Far but valid: a year ahead, in a span and as a date; the parent still redraws."""
    h = harness
    thread = await started(h)
    for text in ("!snooze 52w", "!snooze " + "1m" * 5000):
        assert await h.agent_says(thread, text) == 200
        await h.drained()
    assert h.rows("SELECT status FROM conversations") == [("snoozed",)]
    assert "snoozed" in str(parent(h, thread)["blocks"]).lower()


@pytest.mark.parametrize("text", [
    "!claim", "!pending", "!tag late",
    "!snooze 2h",
])
async def test_a_redelivered_command_acts_once(harness: Harness, text: str) -> None:
    h = harness
    thread = await started(h)
    event = h.agent.message_event(channel=CHANNEL, user=AGENT, text=text, thread_ts=thread)
    assert (await h.agent.post(event))[0] == 200
    await h.drained()
    once = snapshot(h)
    said = lines(h, thread)
    assert (await h.agent.post(event, retry_num=1))[0] == 200
    assert (await h.agent.post(event))[0] == 200
    assert await settled(h) == once
    assert lines(h, thread) == said


async def test_a_redelivered_transfer_moves_once(make_harness: HarnessFactory) -> None:
    h = await make_harness(TEAMS)
    thread = await started(h)
    event = h.agent.message_event(channel=CHANNEL, user=AGENT, text="!transfer billing",
                                  thread_ts=thread)
    assert (await h.agent.post(event))[0] == 200
    once = await settled(h)
    assert (await h.agent.post(event, retry_num=1))[0] == 200
    assert await settled(h) == once
    assert h.count("moved_threads") == 1


def _body(h: Harness, thread: str, action: dict[str, Any], **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "block_actions", "user": {"id": AGENT}, "channel": {"id": CHANNEL},
        "message": {"ts": thread}, "team": {"id": h.slack.team_id},
        "actions": [action]}
    body.update(over)
    return body


PICKS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("user absurd", {"action_id": ASSIGN_ACTION, "type": "users_select",
                     "selected_user": LONG_ID}, {}),
    ("user number", {"action_id": ASSIGN_ACTION, "type": "users_select",
                     "selected_user": 12345}, {}),
    ("user missing", {"action_id": ASSIGN_ACTION, "type": "users_select"}, {}),
    ("user list", {"action_id": ASSIGN_ACTION, "type": "users_select",
                   "selected_user": ["U0AGENT1"]}, {}),
    ("team absurd", {"action_id": TRANSFER_PICKER, "type": "static_select",
                     "selected_option": {"value": "x" * 10_000}}, {}),
    ("team unknown", {"action_id": TRANSFER_PICKER, "type": "static_select",
                      "selected_option": {"value": "nowhere"}}, {}),
    ("team not a dict", {"action_id": TRANSFER_PICKER, "type": "static_select",
                         "selected_option": "billing"}, {}),
    ("team missing", {"action_id": TRANSFER_PICKER, "type": "static_select"}, {}),
    ("claim elsewhere", {"action_id": CLAIM_ACTION, "type": "button", "value": ""},
     {"channel": {"id": "C0NOWHERE1"}}),
    ("claim no message", {"action_id": CLAIM_ACTION, "type": "button", "value": ""},
     {"message": None}),
    ("claim channel not a dict", {"action_id": CLAIM_ACTION, "type": "button", "value": ""},
     {"channel": "C0SUPPORT1"}),
    ("claim message not a dict", {"action_id": CLAIM_ACTION, "type": "button", "value": ""},
     {"message": "1.2"}),
    ("claim user not a dict", {"action_id": CLAIM_ACTION, "type": "button", "value": ""},
     {"user": AGENT}),
    ("claim ts absurd", {"action_id": CLAIM_ACTION, "type": "button", "value": ""},
     {"message": {"ts": "9" * 5000}}),
]


@pytest.mark.parametrize(("action", "over"), [(a, o) for _, a, o in PICKS],
                         ids=[name for name, _, _ in PICKS])
async def test_a_hostile_button_writes_nothing(make_harness: HarnessFactory,
                                               action: dict[str, Any],
                                               over: dict[str, Any]) -> None:
    h = await make_harness(TEAMS)
    thread = await started(h)
    before = await settled(h)
    status, _ = await h.agent.post_interaction(_body(h, thread, action, **over))
    # A message that is not an object is refused at the door (`parse_slack_body`: 400).
    refused = "message" in over and not isinstance(over["message"], dict)
    assert status == (400 if refused else 200)
    assert await settled(h) == before


async def test_a_replayed_claim_button_claims_once(harness: Harness) -> None:
    h = harness
    thread = await started(h)
    payload = h.agent.block_action(channel=CHANNEL, user=AGENT, message=parent(h, thread),
                                   action_id=CLAIM_ACTION, value="")
    assert (await h.agent.post_interaction(payload))[0] == 200
    once = await settled(h)
    assert (await h.agent.post_interaction(payload))[0] == 200
    assert await settled(h) == once


@pytest.mark.parametrize("where", ["not a parent", "absurd ts", "other channel", "bad item"])
@pytest.mark.parametrize("reaction", ["white_check_mark", "eyes", "\ud800", "x" * 5000])
async def test_a_hostile_reaction_writes_nothing(harness: Harness, where: str,
                                                 reaction: str) -> None:
    h = harness
    thread = await started(h)
    before = await settled(h)
    channel, ts = CHANNEL, {"not a parent": "1.000001", "absurd ts": "9" * 5000}.get(
        where, thread)
    if where == "other channel":
        channel = "C0NOWHERE1"
    envelope = h.agent.reaction_event(channel=channel, user=AGENT, ts=ts, reaction=reaction)
    if where == "bad item":
        envelope["event"]["item"] = "not an item"
    # An item that is not an object is refused at the door (`parse_slack_body`: 400).
    assert (await h.agent.post(envelope))[0] == (400 if where == "bad item" else 200)
    assert await settled(h) == before
