"""The SQLite store's transactions, as plain synchronous functions.

They run on aiosqlite's worker thread, many to one transaction (group commit), so a batch
of webhooks costs one commit.  Each takes the raw `sqlite3.Connection` as first argument.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from bridge.models import (
    AgentEdit,
    AgentReply,
    ConversationId,
    ConversationStatus,
    DeliveryState,
    Direction,
    InboundMessage,
    IngestResult,
    MessageId,
    OutboxId,
    OutboxItem,
    OutboxKind,
)
from storage.base import OutboxResult, Outcome

OUTBOX_COLUMNS = (
    "id, kind, lane, conversation_id, message_id, payload, attempts, next_attempt_at, "
    "last_error, status, created_at"
)


def outbox_from_row(row: Sequence[object]) -> OutboxItem:
    return OutboxItem(
        id=OutboxId(int(row[0])),  # type: ignore[call-overload]
        kind=OutboxKind(str(row[1])),
        lane=str(row[2]),
        conversation_id=ConversationId(int(row[3])),  # type: ignore[call-overload]
        message_id=None if row[4] is None else MessageId(int(row[4])),  # type: ignore[call-overload]
        payload=str(row[5]),
        attempts=int(row[6]),  # type: ignore[call-overload]
        next_attempt_at=float(row[7]),  # type: ignore[arg-type]
        last_error=None if row[8] is None else str(row[8]),
        status=str(row[9]),
        created_at=float(row[10]),  # type: ignore[arg-type]
    )


CUSTOMER_SIDE = frozenset({OutboxKind.CUSTOMER_SEND, OutboxKind.CUSTOMER_FILE,
                           OutboxKind.CUSTOMER_EDIT, OutboxKind.CUSTOMER_DELETE})


def lane_for(kind: OutboxKind, conversation_id: int) -> str:
    """Order is kept per conversation and direction: Slack posts and customer sends apart."""
    side = "customer" if kind in CUSTOMER_SIDE else "slack"
    return f"{side}:{conversation_id}"


def add_outbox(
    c: sqlite3.Connection, kind: OutboxKind, conversation_id: int, message_id: int | None,
    payload: str, now: float,
) -> OutboxItem:
    lane = lane_for(kind, conversation_id)
    cur = c.execute(
        "INSERT INTO outbox (kind, lane, conversation_id, message_id, payload, status, attempts,"
        " next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, 0, ?, ?)",
        (kind.value, lane, conversation_id, message_id, payload, now, now),
    )
    assert cur.lastrowid is not None
    return OutboxItem(
        id=OutboxId(cur.lastrowid), kind=kind, lane=lane,
        conversation_id=ConversationId(conversation_id),
        message_id=None if message_id is None else MessageId(message_id),
        payload=payload, created_at=now,
    )


def ingest_inbound(
    c: sqlite3.Connection, item: InboundMessage, slack_channel: str, now: float,
    reopen_within: float = 0.0,
) -> IngestResult:
    dup = c.execute(
        "SELECT id, conversation_id FROM messages WHERE connector = ? AND platform_message_id = ?",
        (item.connector, item.platform_message_id),
    ).fetchone()
    if dup is not None:
        return IngestResult(message_id=MessageId(dup[0]),
                            conversation_id=ConversationId(dup[1]), duplicate=True)

    ident = c.execute(
        "SELECT id, customer_id, display_name, username FROM identities"
        " WHERE connector = ? AND address = ?",
        (item.connector, item.address),
    ).fetchone()
    if ident is None:
        cur = c.execute("INSERT INTO customers (display_name, created_at) VALUES (?, ?)",
                        (item.sender_name, now))
        customer_id = cur.lastrowid
        cur = c.execute(
            "INSERT INTO identities (customer_id, connector, address, display_name, username,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (customer_id, item.connector, item.address, item.sender_name, item.username, now),
        )
        identity_id = cur.lastrowid
    else:
        identity_id, customer_id = ident[0], ident[1]
        if (ident[2], ident[3]) != (item.sender_name, item.username) and item.sender_name:
            c.execute("UPDATE identities SET display_name = ?, username = ? WHERE id = ?",
                      (item.sender_name, item.username, identity_id))

    conv = c.execute(
        "SELECT id, status, closed_at FROM conversations WHERE customer_id = ?"
        " ORDER BY id DESC LIMIT 1",
        (customer_id,),
    ).fetchone()
    reopened = False
    if conv is not None and (conv[1] == ConversationStatus.OPEN or (
            conv[2] is not None and now - float(conv[2]) <= reopen_within)):
        conversation_id = conv[0]
        reopened = conv[1] != ConversationStatus.OPEN
        # Replies follow the customer to the channel they wrote on last.
        c.execute(
            "UPDATE conversations SET identity_id = ?, connector = ?, address = ?,"
            " last_inbound_at = ?, updated_at = ?, status = 'open', closed_at = NULL,"
            " closed_by = NULL WHERE id = ?",
            (identity_id, item.connector, item.address, now, now, conversation_id),
        )
    else:
        # No conversation yet, or one closed too long ago: a new thread that links back.
        cur = c.execute(
            "INSERT INTO conversations (customer_id, identity_id, connector, address, status,"
            " slack_channel, created_at, updated_at, last_inbound_at, previous_id)"
            " VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?, ?)",
            (customer_id, identity_id, item.connector, item.address, slack_channel, now, now, now,
             None if conv is None else conv[0]),
        )
        conversation_id = cur.lastrowid
    assert conversation_id is not None
    attachments = json.dumps([a.model_dump(exclude_none=True) for a in item.attachments])
    cur = c.execute(
        "INSERT INTO messages (conversation_id, direction, connector, platform_message_id,"
        " platform_ref, text, attachments, author_name, state, created_at, platform_time,"
        " markup, edit_of) VALUES (?, 'in', ?, ?, ?, ?, ?, ?, 'received', ?, ?, ?, ?)",
        (conversation_id, item.connector, item.platform_message_id, item.platform_ref, item.text,
         attachments, item.sender_name, now, item.platform_time, item.markup, item.edit_of),
    )
    message_id = cur.lastrowid
    assert message_id is not None
    out: list[OutboxItem] = []
    if reopened:
        out.append(add_outbox(c, OutboxKind.SLACK_NOTICE, conversation_id, None,
                              ":arrows_counterclockwise: Reopened: the customer wrote again.",
                              now))
        out.append(add_outbox(c, OutboxKind.SLACK_STATUS, conversation_id, None, "", now))
    out.append(add_outbox(c, OutboxKind.SLACK_POST, conversation_id, message_id, "", now))
    for index, attachment in enumerate(item.attachments):
        if attachment.platform_file_id or attachment.url:
            out.append(add_outbox(c, OutboxKind.SLACK_FILE, conversation_id, message_id,
                                  str(index), now))
    return IngestResult(message_id=MessageId(message_id),
                        conversation_id=ConversationId(conversation_id), duplicate=False,
                        outbox=tuple(out))


def ingest_agent_reply(c: sqlite3.Connection, reply: AgentReply, now: float) -> IngestResult:
    conv = c.execute(
        "SELECT id, connector FROM conversations WHERE slack_channel = ? AND slack_thread_ts = ?",
        (reply.slack_channel, reply.thread_ts),
    ).fetchone()
    if conv is None:
        return IngestResult(message_id=None, conversation_id=None, duplicate=False)
    if reply.event_id is not None and seen_slack_event(c, reply.event_id, now):
        return IngestResult(message_id=None, conversation_id=ConversationId(conv[0]),
                            duplicate=True)
    dup = c.execute("SELECT id FROM messages WHERE slack_channel = ? AND slack_ts = ?",
                    (reply.slack_channel, reply.slack_ts)).fetchone()
    if dup is not None:
        return IngestResult(message_id=MessageId(dup[0]), conversation_id=ConversationId(conv[0]),
                            duplicate=True)
    direction = Direction.NOTE if reply.is_note else Direction.OUTBOUND
    state = DeliveryState.NOTE if reply.is_note else DeliveryState.QUEUED
    files = json.dumps([a.model_dump(exclude_none=True) for a in reply.files])
    cur = c.execute(
        "INSERT INTO messages (conversation_id, direction, connector, text, attachments,"
        " author_slack_user, slack_channel, slack_ts, state, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (conv[0], direction.value, conv[1], reply.text, files, reply.slack_user,
         reply.slack_channel, reply.slack_ts, state.value, now),
    )
    message_id = cur.lastrowid
    assert message_id is not None
    c.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conv[0]))
    outbox: list[OutboxItem] = []
    if not reply.is_note:
        # The text first (unless the reply is only files), then each file: one row each, so a
        # failed file is retried alone and never re-sends the text.
        if reply.text.strip() or not reply.files:
            outbox.append(add_outbox(c, OutboxKind.CUSTOMER_SEND, conv[0], message_id, "", now))
        for index in range(len(reply.files)):
            outbox.append(add_outbox(c, OutboxKind.CUSTOMER_FILE, conv[0], message_id,
                                     str(index), now))
    return IngestResult(message_id=MessageId(message_id), conversation_id=ConversationId(conv[0]),
                        duplicate=False, outbox=tuple(outbox))


def ingest_agent_edit(c: sqlite3.Connection, edit: AgentEdit, now: float) -> IngestResult:
    row = c.execute(
        "SELECT id, conversation_id, direction FROM messages WHERE slack_channel = ? AND"
        " slack_ts = ?", (edit.slack_channel, edit.slack_ts),
    ).fetchone()
    if row is None or row[2] != Direction.OUTBOUND:
        return IngestResult(message_id=None, conversation_id=None, duplicate=False)
    message_id, conversation_id = MessageId(row[0]), ConversationId(row[1])
    if edit.event_id is not None and seen_slack_event(c, edit.event_id, now):
        return IngestResult(message_id=message_id, conversation_id=conversation_id,
                            duplicate=True)
    if edit.text is None:
        # A send still queued reads this state and stands down; one already made is deleted.
        c.execute("UPDATE messages SET state = 'deleted' WHERE id = ?", (message_id,))
        kind = OutboxKind.CUSTOMER_DELETE
    else:
        c.execute("UPDATE messages SET text = ? WHERE id = ?", (edit.text, message_id))
        kind = OutboxKind.CUSTOMER_EDIT
    out = add_outbox(c, kind, conversation_id, message_id, "", now)
    return IngestResult(message_id=message_id, conversation_id=conversation_id, duplicate=False,
                        outbox=(out,))


def set_status(c: sqlite3.Connection, conversation_id: int, status: ConversationStatus,
               actor: str, now: float) -> IngestResult:
    row = c.execute("SELECT status FROM conversations WHERE id = ?",
                    (conversation_id,)).fetchone()
    if row is None:
        return IngestResult(message_id=None, conversation_id=None, duplicate=False)
    conv = ConversationId(conversation_id)
    if row[0] == status:
        return IngestResult(message_id=None, conversation_id=conv, duplicate=True)
    closed = status is ConversationStatus.CLOSED
    c.execute(
        "UPDATE conversations SET status = ?, closed_at = ?, closed_by = ?, updated_at = ?"
        " WHERE id = ?",
        (status.value, now if closed else None, actor if closed else None, now, conversation_id),
    )
    text = (f":lock: Closed by {actor}." if closed else f":unlock: Reopened by {actor}.")
    out = (add_outbox(c, OutboxKind.SLACK_STATUS, conversation_id, None, "", now),
           add_outbox(c, OutboxKind.SLACK_NOTICE, conversation_id, None, text, now))
    return IngestResult(message_id=None, conversation_id=conv, duplicate=False, outbox=out)


def seen_slack_event(c: sqlite3.Connection, event_id: str, now: float) -> bool:
    cur = c.execute("INSERT INTO slack_events (event_id, received_at) VALUES (?, ?)"
                    " ON CONFLICT (event_id) DO NOTHING", (event_id, now))
    return cur.rowcount == 0


def finish_outbox(c: sqlite3.Connection, r: OutboxResult, now: float) -> list[OutboxItem]:
    created: list[OutboxItem] = []
    status = {Outcome.DONE: "done", Outcome.BLOCKED: "done", Outcome.RETRY: "pending",
              Outcome.FAILED: "failed"}[r.outcome]
    c.execute(
        "UPDATE outbox SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ?,"
        " updated_at = ? WHERE id = ?",
        (status, r.attempts, r.next_attempt_at, r.error, now, r.item_id),
    )
    if r.message_id is not None and r.message_state is not None:
        sent = ",".join(r.sent_platform_ids) or None
        c.execute(
            "UPDATE messages SET state = ?, error = COALESCE(?, error),"
            " slack_channel = COALESCE(?, slack_channel), slack_ts = COALESCE(?, slack_ts),"
            " sent_platform_id = CASE WHEN ? IS NULL THEN sent_platform_id"
            " WHEN sent_platform_id IS NULL OR sent_platform_id = '' THEN ?"
            " ELSE sent_platform_id || ',' || ? END,"
            " author_name = COALESCE(?, author_name) WHERE id = ?",
            (r.message_state.value, r.error, r.slack_channel, r.slack_ts, *[sent] * 3,
             r.author_name, r.message_id),
        )
    if r.thread_ts is not None and r.conversation_id is not None:
        c.execute(
            "UPDATE conversations SET slack_channel = ?, slack_thread_ts = ?, updated_at = ?"
            " WHERE id = ? AND slack_thread_ts IS NULL",
            (r.slack_channel, r.thread_ts, now, r.conversation_id),
        )
    if r.notice is not None and r.conversation_id is not None:
        payload = r.notice
        if r.notice_retry is not None:
            payload = json.dumps({"text": r.notice, "retry": r.notice_retry})
        created.append(add_outbox(c, OutboxKind.SLACK_NOTICE, r.conversation_id, r.message_id,
                                  payload, now))
    return created


def retry_outbox(
    c: sqlite3.Connection, ids: Sequence[int], all_failed: bool, now: float
) -> list[OutboxId]:
    if all_failed:
        rows = c.execute("SELECT id FROM outbox WHERE status = 'failed' ORDER BY id").fetchall()
    else:
        rows = [(i,) for i in ids]
    done: list[OutboxId] = []
    for (item_id,) in rows:
        cur = c.execute(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = 0,"
            " updated_at = ? WHERE id = ? AND status IN ('failed', 'pending')",
            (now, item_id),
        )
        if cur.rowcount:
            done.append(OutboxId(item_id))
            c.execute(
                "UPDATE messages SET state = 'queued', error = NULL WHERE id ="
                " (SELECT message_id FROM outbox WHERE id = ? AND kind IN"
                " ('customer_send', 'customer_file')) AND state = 'failed'",
                (item_id,),
            )
    return done


def put_media(c: sqlite3.Connection, token: str, filename: str, mime_type: str, data: bytes,
              now: float, expires_at: float) -> None:
    c.execute("DELETE FROM media WHERE expires_at < ?", (now,))
    c.execute("INSERT INTO media (token, filename, mime_type, size, data, created_at, expires_at)"
              " VALUES (?, ?, ?, ?, ?, ?, ?)",
              (token, filename, mime_type, len(data), data, now, expires_at))
