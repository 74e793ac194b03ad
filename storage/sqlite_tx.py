"""The SQLite store's transactions, as plain synchronous functions.

They run on aiosqlite's worker thread, many to one transaction (group commit), so a batch
of webhooks costs one commit.  Each takes the raw `sqlite3.Connection` as first argument.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from bridge.models import (
    AgentReply,
    ConversationId,
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


def lane_for(kind: OutboxKind, conversation_id: int) -> str:
    """Order is kept per conversation and direction: Slack posts and customer sends apart."""
    side = "customer" if kind is OutboxKind.CUSTOMER_SEND else "slack"
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
    c: sqlite3.Connection, item: InboundMessage, slack_channel: str, now: float
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
        "SELECT id FROM conversations WHERE customer_id = ? AND status = 'open'"
        " ORDER BY id DESC LIMIT 1",
        (customer_id,),
    ).fetchone()
    if conv is None:
        cur = c.execute(
            "INSERT INTO conversations (customer_id, identity_id, connector, address, status,"
            " slack_channel, created_at, updated_at, last_inbound_at)"
            " VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?)",
            (customer_id, identity_id, item.connector, item.address, slack_channel, now, now, now),
        )
        conversation_id = cur.lastrowid
    else:
        conversation_id = conv[0]
        # Replies follow the customer to the channel they wrote on last.
        c.execute(
            "UPDATE conversations SET identity_id = ?, connector = ?, address = ?,"
            " last_inbound_at = ?, updated_at = ? WHERE id = ?",
            (identity_id, item.connector, item.address, now, now, conversation_id),
        )
    assert conversation_id is not None
    attachments = json.dumps([a.model_dump(exclude_none=True) for a in item.attachments])
    cur = c.execute(
        "INSERT INTO messages (conversation_id, direction, connector, platform_message_id,"
        " platform_ref, text, attachments, author_name, state, created_at, platform_time)"
        " VALUES (?, 'in', ?, ?, ?, ?, ?, ?, 'received', ?, ?)",
        (conversation_id, item.connector, item.platform_message_id, item.platform_ref, item.text,
         attachments, item.sender_name, now, item.platform_time),
    )
    message_id = cur.lastrowid
    assert message_id is not None
    out = add_outbox(c, OutboxKind.SLACK_POST, conversation_id, message_id, "", now)
    return IngestResult(message_id=MessageId(message_id),
                        conversation_id=ConversationId(conversation_id), duplicate=False,
                        outbox=(out,))


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
    cur = c.execute(
        "INSERT INTO messages (conversation_id, direction, connector, text, author_slack_user,"
        " slack_channel, slack_ts, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (conv[0], direction.value, conv[1], reply.text, reply.slack_user, reply.slack_channel,
         reply.slack_ts, state.value, now),
    )
    message_id = cur.lastrowid
    assert message_id is not None
    c.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conv[0]))
    outbox: tuple[OutboxItem, ...] = ()
    if not reply.is_note:
        outbox = (add_outbox(c, OutboxKind.CUSTOMER_SEND, conv[0], message_id, "", now),)
    return IngestResult(message_id=MessageId(message_id), conversation_id=ConversationId(conv[0]),
                        duplicate=False, outbox=outbox)


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
        c.execute(
            "UPDATE messages SET state = ?, error = COALESCE(?, error),"
            " slack_channel = COALESCE(?, slack_channel), slack_ts = COALESCE(?, slack_ts),"
            " sent_platform_id = COALESCE(?, sent_platform_id),"
            " author_name = COALESCE(?, author_name) WHERE id = ?",
            (r.message_state.value, r.error, r.slack_channel, r.slack_ts,
             ",".join(r.sent_platform_ids) or None, r.author_name, r.message_id),
        )
    if r.thread_ts is not None and r.conversation_id is not None:
        c.execute(
            "UPDATE conversations SET slack_channel = ?, slack_thread_ts = ?, updated_at = ?"
            " WHERE id = ? AND slack_thread_ts IS NULL",
            (r.slack_channel, r.thread_ts, now, r.conversation_id),
        )
    if r.notice is not None and r.conversation_id is not None:
        created.append(add_outbox(c, OutboxKind.SLACK_NOTICE, r.conversation_id, r.message_id,
                                  r.notice, now))
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
                " (SELECT message_id FROM outbox WHERE id = ? AND kind = 'customer_send')",
                (item_id,),
            )
    return done
