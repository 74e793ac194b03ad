"""The parent's words for where a conversation stands and who holds it, and the thread's
lines for each change: pure rendering, tested without Slack."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bridge.console.notices import notice_text
from bridge.console.render import (
    ASSIGN_ACTION,
    CLAIM_ACTION,
    Standing,
    parent_message,
    status_line,
)
from vocab.events import AssigneeChanged, StatusMoved
from vocab.models import ConversationStatus

AT = 1796716800.0  # 2026-12-08 08:00 UTC
PARIS = ZoneInfo("Europe/Paris")


def test_each_status_in_words_with_an_emoji_and_since_when() -> None:
    assert status_line(Standing(ConversationStatus.OPEN)) == ":large_green_circle: *Open*"
    assert status_line(Standing(ConversationStatus.OPEN, status_at=AT)).startswith(
        ":large_green_circle: *Open* since <!date^1796716800^")
    assert status_line(Standing(ConversationStatus.PENDING, status_at=AT)).startswith(
        ":hourglass_flowing_sand: *Pending* (waiting for the customer) since <!date^")
    snoozed = status_line(Standing(ConversationStatus.SNOOZED, snooze_until=AT), PARIS)
    assert snoozed == (":zzz: *Snoozed until <!date^1796716800^{date_short_pretty} {time}|"
                       "Tue 2026-12-08 09:00 CET>*")
    closed = status_line(Standing(ConversationStatus.CLOSED, closed_by="<@U1>", closed_at=AT))
    assert closed.startswith(":white_circle: *Closed* by <@U1> <!date^1796716800^")


def test_the_parent_names_the_assignee_and_offers_claim_only_while_nobody_holds_it() -> None:
    text, blocks = parent_message("*Ann*: hi", Standing(ConversationStatus.OPEN),
                                  conversation_id=7)
    assert text == "*Ann*: hi"  # open and nobody's: the text is the message alone
    actions = blocks[-1]["elements"]
    assert [e["action_id"] for e in actions] == ["bridge_close", CLAIM_ACTION, ASSIGN_ACTION]
    assert "Unassigned" in blocks[-2]["elements"][0]["text"]
    text, blocks = parent_message("*Ann*: hi", Standing(ConversationStatus.PENDING,
                                                        assignee="U9"), conversation_id=7)
    assert text.startswith("[pending] *Ann*: hi\n") and "<@U9>" in text
    assert "Assignee: <@U9>" in blocks[-2]["elements"][0]["text"]
    picker = blocks[-1]["elements"][-1]
    assert picker["type"] == "users_select" and picker["initial_user"] == "U9"
    assert CLAIM_ACTION not in [e["action_id"] for e in blocks[-1]["elements"]]


def test_each_change_is_one_line_saying_who_and_to_whom() -> None:
    assert notice_text(AssigneeChanged(actor="<@U1>", assignee="U1", how="claim")) == (
        ":bust_in_silhouette: <@U1> claimed the conversation.")
    assert notice_text(AssigneeChanged(actor="<@U1>", assignee="U2", previous="U1")) == (
        ":bust_in_silhouette: Assigned to <@U2> by <@U1> (was <@U1>).")
    assert notice_text(StatusMoved(status="snoozed", actor="<@U1>", until=AT), PARIS) == (
        ":zzz: Snoozed until <!date^1796716800^{date_short_pretty} {time}|Tue 2026-12-08 "
        "09:00 CET> by <@U1>: it opens again then, or when the customer writes.")
    assert "Snooze over" in notice_text(StatusMoved(status="open", actor="bridge",
                                                    before="snoozed"))
