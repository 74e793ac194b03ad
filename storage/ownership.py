"""Who holds a conversation and where it stands: assignee and status changes, each kept in
`conversation_changes` with who and when, and told to the thread as typed events.

Each change reads the conversation `FOR UPDATE` (PostgreSQL; SQLite has one writer), so two
agents claiming at once are taken one after the other: the second finds the first's claim.
A snooze wakes in a conditional update (`WHERE status = 'snoozed'`): of several instances
waking the same snooze, one changes the row and records the change, the others find nothing.
"""

from __future__ import annotations

from storage.base import Assignment, How
from storage.outbox_rows import add_event, add_outbox, seen_slack_event
from storage.query import Tx, execute, insert, one, rows
from vocab.events import AssigneeChanged, StatusChanged, StatusMoved
from vocab.models import (
    Change,
    ConversationId,
    ConversationStatus,
    IngestResult,
    OutboxItem,
    OutboxKind,
)

WAKE_BATCH = 100  # snoozes woken per transaction


def record(conversation_id: int, kind: str, old: str | None, new: str | None, actor: str,
           now: float, until: float | None = None) -> Tx[int]:
    """One row of the history (the KPIs read it)."""
    return (yield from insert(
        "INSERT INTO conversation_changes (conversation_id, kind, old_value, new_value,"
        " until_at, actor, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        conversation_id, kind, old, new, until, actor, now))


def assign(conversation_id: int, user: str | None, actor: str, how: How,
           now: float) -> Tx[Assignment]:
    """Make `user` the assignee (None: nobody).  A claim (and a first reply) takes only a
    conversation nobody else holds; an assignment takes over."""
    row = yield from one("SELECT assignee FROM conversations WHERE id = ? {{for_update}}",
                         conversation_id)
    if row is None:
        return Assignment(found=False)
    holder = row["assignee"]
    if holder == user:
        return Assignment(found=True, holder=holder)
    if holder is not None and how in ("claim", "first_reply"):
        return Assignment(found=True, refused=True, holder=holder)
    yield from execute("UPDATE conversations SET assignee = ?, updated_at = ? WHERE id = ?",
                       user, now, conversation_id)
    yield from record(conversation_id, "assignee", holder, user, actor, now)
    redraw = yield from add_outbox(OutboxKind.SLACK_STATUS, conversation_id, None, "", now)
    told = yield from add_event(conversation_id, AssigneeChanged(
        actor=actor, assignee=user, previous=holder, how=how), now)
    return Assignment(found=True, changed=True, holder=user, outbox=(redraw, told))


def set_status(conversation_id: int, status: ConversationStatus, actor: str, now: float,
               until: float | None = None, request: str | None = None) -> Tx[IngestResult]:
    """Open, pending, snoozed (until `until`) or closed; `duplicate` when nothing changed
    (a snooze to a new time is a change) or when `request`, the Slack event that asked,
    was handled before (recorded in the same transaction as the change)."""
    if request is not None and (yield from seen_slack_event(request, now)):
        return IngestResult(message_id=None, conversation_id=ConversationId(conversation_id),
                            duplicate=True)
    row = yield from one(
        "SELECT status, snooze_until FROM conversations WHERE id = ? {{for_update}}",
        conversation_id)
    if row is None:
        return IngestResult(message_id=None, conversation_id=None, duplicate=False)
    conv = ConversationId(conversation_id)
    until = until if status is ConversationStatus.SNOOZED else None
    if row["status"] == status and row["snooze_until"] == until:
        return IngestResult(message_id=None, conversation_id=conv, duplicate=True)
    closed = status is ConversationStatus.CLOSED
    yield from execute(
        "UPDATE conversations SET status = ?, closed_at = ?, closed_by = ?, status_at = ?,"
        " status_by = ?, snooze_until = ?, updated_at = ? WHERE id = ?",
        status.value, now if closed else None, actor if closed else None, now, actor, until,
        now, conversation_id,
    )
    yield from record(conversation_id, "status", row["status"], status.value, actor, now, until)
    redraw = yield from add_outbox(OutboxKind.SLACK_STATUS, conversation_id, None, "", now)
    before = str(row["status"])
    if closed or (status is ConversationStatus.OPEN and before == ConversationStatus.CLOSED):
        event: StatusChanged | StatusMoved = StatusChanged(closed=closed, actor=actor)
    else:
        event = StatusMoved(status=status.value, actor=actor, before=before, until=until)
    told = yield from add_event(conversation_id, event, now)
    return IngestResult(message_id=None, conversation_id=conv, duplicate=False,
                        outbox=(redraw, told))


def customer_wrote(conversation_id: int, before: str, now: float) -> Tx[list[OutboxItem]]:
    """A customer's message moved a pending or snoozed conversation back to open (the
    message's own transaction already set the row): kept, and told."""
    yield from record(conversation_id, "status", before, ConversationStatus.OPEN.value,
                      "customer", now)
    told = yield from add_event(conversation_id, StatusMoved(
        status="open", actor="customer", before=before), now)
    redraw = yield from add_outbox(OutboxKind.SLACK_STATUS, conversation_id, None, "", now)
    return [told, redraw]


def wake_snoozed(now: float) -> Tx[list[OutboxItem]]:
    """Snoozes whose time has come go back to open, each exactly once."""
    due = yield from rows(
        "SELECT id, snooze_until FROM conversations WHERE status = 'snoozed'"
        " AND snooze_until <= ? ORDER BY snooze_until LIMIT ?", now, WAKE_BATCH)
    out: list[OutboxItem] = []
    for row in due:
        changed = yield from execute(
            "UPDATE conversations SET status = 'open', snooze_until = NULL, status_at = ?,"
            " status_by = 'bridge', updated_at = ? WHERE id = ? AND status = 'snoozed'"
            " AND snooze_until <= ?", now, now, row["id"], now)
        if changed != 1:
            continue  # another instance woke it, or an agent or the customer came first
        conversation_id = int(row["id"])
        yield from record(conversation_id, "status", ConversationStatus.SNOOZED.value,
                          ConversationStatus.OPEN.value, "bridge", now)
        out.append((yield from add_event(conversation_id, StatusMoved(
            status="open", actor="bridge", before="snoozed", until=row["snooze_until"]), now)))
        out.append((yield from add_outbox(OutboxKind.SLACK_STATUS, conversation_id, None, "",
                                          now)))
    return out


def changes(conversation_id: int) -> Tx[list[Change]]:
    found = yield from rows(
        "SELECT id, conversation_id, kind, old_value, new_value, until_at, actor, created_at"
        " FROM conversation_changes WHERE conversation_id = ? ORDER BY id", conversation_id)
    return [Change(id=int(r["id"]), conversation_id=ConversationId(r["conversation_id"]),
                   kind=r["kind"], old_value=r["old_value"], new_value=r["new_value"],
                   until_at=r["until_at"], actor=r["actor"], created_at=r["created_at"])
            for r in found]
