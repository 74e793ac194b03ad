"""The store's write transactions, written once for SQLite and PostgreSQL.

Each is a generator over `storage/query.py`'s queries: it yields SQL and is sent the results,
so the same code runs on SQLite's worker thread (many per commit) and on an asyncpg connection.
Duplicates are stopped by unique keys: a transaction that loses a race on one (PostgreSQL, two
bridge instances) is re-run from the start by the backend and then finds the winner's row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from storage import ownership
from storage.base import OutboxResult, Outcome
from storage.links import add_code, identity_on
from storage.outbox_rows import add_event, add_outbox, seen_slack_event
from storage.query import Tx, execute, insert, one, rows
from vocab.events import NotDelivered
from vocab.models import (
    AgentEdit,
    AgentReply,
    ConversationId,
    ConversationStatus,
    DeliveryState,
    Direction,
    IngestResult,
    MessageId,
    OutboxId,
    OutboxItem,
    OutboxKind,
)


def set_opted_out(identity_id: int, opted_out: bool, now: float) -> Tx[bool]:
    """Record an opt-out learnt from the platform (Twilio 21610); True if it changed."""
    changed = yield from execute(
        "UPDATE identities SET opted_out_at = ? WHERE id = ? AND"
        f" opted_out_at IS {'' if opted_out else 'NOT '}NULL",
        now if opted_out else None, identity_id)
    return bool(changed)


def ingest_agent_reply(reply: AgentReply, now: float) -> Tx[IngestResult]:
    conv = yield from one(
        "SELECT id, connector, identity_id, customer_id, merged_into FROM conversations WHERE"
        " slack_channel = ? AND slack_thread_ts = ?",
        reply.slack_channel, reply.thread_ts,
    )
    if conv is None:
        return IngestResult(message_id=None, conversation_id=None, duplicate=False)
    conversation_id = int(conv["id"])
    # The reply goes to the channel the customer wrote on last, or the one the agent picked.
    identity_id, connector = int(conv["identity_id"]), str(conv["connector"])
    if conv["merged_into"] is not None:
        # A thread that joined another: the customer writes where that one answers.
        identity_id, connector = yield from joined_channel(int(conv["merged_into"]),
                                                           identity_id, connector)
    if reply.via is not None and not reply.is_note:
        picked = yield from identity_on(int(conv["customer_id"]), reply.via)
        if picked is None:
            return IngestResult(message_id=None, conversation_id=ConversationId(conversation_id),
                                duplicate=False)
        identity_id, connector = picked
    if reply.event_id is not None and (yield from seen_slack_event(reply.event_id, now)):
        return IngestResult(message_id=None, conversation_id=ConversationId(conversation_id),
                            duplicate=True)
    dup = yield from one("SELECT id FROM messages WHERE slack_channel = ? AND slack_ts = ?",
                         reply.slack_channel, reply.slack_ts)
    if dup is not None:
        return IngestResult(message_id=MessageId(dup["id"]),
                            conversation_id=ConversationId(conversation_id), duplicate=True)
    direction = Direction.NOTE if reply.is_note else Direction.OUTBOUND
    state = DeliveryState.NOTE if reply.is_note else DeliveryState.QUEUED
    files = json.dumps([a.model_dump(exclude_none=True) for a in reply.files])
    message_id = yield from insert(
        "INSERT INTO messages (conversation_id, direction, connector, text, attachments,"
        " author_slack_user, slack_channel, slack_ts, state, created_at, identity_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        conversation_id, direction.value, connector, reply.text, files, reply.slack_user,
        reply.slack_channel, reply.slack_ts, state.value, now, identity_id,
    )
    yield from execute("UPDATE conversations SET updated_at = ? WHERE id = ?",
                       now, conversation_id)
    outbox: list[OutboxItem] = []
    if not reply.is_note:
        # The text first (unless the reply is only files), then each file: one row each, so a
        # failed file is retried alone and never re-sends the text.
        if reply.text.strip() or not reply.files:
            outbox.append((yield from add_outbox(OutboxKind.CUSTOMER_SEND, conversation_id,
                                                 message_id, reply.template, now)))
        for index in range(len(reply.files)):
            outbox.append((yield from add_outbox(OutboxKind.CUSTOMER_FILE, conversation_id,
                                                 message_id, str(index), now)))
    return IngestResult(message_id=MessageId(message_id),
                        conversation_id=ConversationId(conversation_id), duplicate=False,
                        outbox=tuple(outbox))


def joined_channel(into: int, identity_id: int, connector: str) -> Tx[tuple[int, str]]:
    """Where the thread a conversation joined (and the one that joined, and so on) answers."""
    seen: set[int] = set()
    while into not in seen:
        seen.add(into)
        row = yield from one("SELECT identity_id, connector, merged_into FROM conversations"
                             " WHERE id = ?", into)
        if row is None:
            break
        identity_id, connector = int(row["identity_id"]), str(row["connector"])
        if row["merged_into"] is None:
            break
        into = int(row["merged_into"])
    return identity_id, connector


def issue_handoff(reply: AgentReply, invite: str, code_hash: str, channel: str,
                  expires_at: float, now: float) -> Tx[IngestResult]:
    """`!handoff <channel>`: the invitation goes to the customer like a reply (deduplicated
    on the command's Slack ts), and the code (its hash) is kept until used or expired."""
    result = yield from ingest_agent_reply(
        reply.model_copy(update={"text": invite, "files": (), "is_note": False}), now)
    if result.duplicate or result.message_id is None or result.conversation_id is None:
        return result
    yield from add_code(code_hash, result.conversation_id, channel, reply.slack_user, now,
                        expires_at)
    return result


def ingest_agent_edit(edit: AgentEdit, now: float) -> Tx[IngestResult]:
    row = yield from one(
        "SELECT id, conversation_id, direction FROM messages WHERE slack_channel = ? AND"
        " slack_ts = ?", edit.slack_channel, edit.slack_ts,
    )
    if row is None or row["direction"] != Direction.OUTBOUND:
        return IngestResult(message_id=None, conversation_id=None, duplicate=False)
    message_id = MessageId(row["id"])
    conversation_id = ConversationId(row["conversation_id"])
    if edit.event_id is not None and (yield from seen_slack_event(edit.event_id, now)):
        return IngestResult(message_id=message_id, conversation_id=conversation_id,
                            duplicate=True)
    if edit.text is None:
        # A send still queued reads this state and stands down; one already made is deleted.
        yield from execute("UPDATE messages SET state = 'deleted' WHERE id = ?", message_id)
        kind = OutboxKind.CUSTOMER_DELETE
    else:
        yield from execute("UPDATE messages SET text = ? WHERE id = ?", edit.text, message_id)
        kind = OutboxKind.CUSTOMER_EDIT
    out = yield from add_outbox(kind, conversation_id, message_id, "", now)
    return IngestResult(message_id=message_id, conversation_id=conversation_id, duplicate=False,
                        outbox=(out,))


def set_status(conversation_id: int, status: ConversationStatus, actor: str,
               now: float, until: float | None = None,
               request: str | None = None) -> Tx[IngestResult]:
    """Close, reopen, pending, snooze: see `storage/ownership.py`."""
    return (yield from ownership.set_status(conversation_id, status, actor, now, until,
                                            request))


def notice_payload(text: str, retry: int | None, templates: Sequence[str]) -> str:
    """A SLACK_NOTICE row's payload for a notice the core wrote (`OutboxResult.notice`): the
    text alone, or JSON with the buttons it carries (a Retry for that outbox row, a Send
    template per name); the Slack side of delivery reads it."""
    if retry is None and not templates:
        return text
    return json.dumps({"text": text, "retry": retry, "templates": list(templates)})


def finish_outbox_many(results: Sequence[OutboxResult], now: float) -> Tx[list[OutboxItem]]:
    created: list[OutboxItem] = []
    for r in results:
        created.extend((yield from finish_outbox(r, now)))
    return created


def finish_outbox(r: OutboxResult, now: float) -> Tx[list[OutboxItem]]:
    created: list[OutboxItem] = []
    status = {Outcome.DONE: "done", Outcome.BLOCKED: "done", Outcome.RETRY: "pending",
              Outcome.FAILED: "failed"}[r.outcome]
    yield from execute(
        "UPDATE outbox SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ?,"
        " updated_at = ? WHERE id = ?",
        status, r.attempts, r.next_attempt_at, r.error, now, r.item_id,
    )
    if r.message_id is not None and r.message_state is not None:
        sent = ",".join(r.sent_platform_ids) or None
        yield from execute(
            "UPDATE messages SET state = ?, error = COALESCE(?, error),"
            " slack_channel = COALESCE(?, slack_channel), slack_ts = COALESCE(?, slack_ts),"
            " sent_platform_id = CASE WHEN CAST(? AS TEXT) IS NULL THEN sent_platform_id"
            " WHEN sent_platform_id IS NULL OR sent_platform_id = '' THEN ?"
            " ELSE sent_platform_id || ',' || ? END,"
            " author_name = COALESCE(?, author_name) WHERE id = ?",
            r.message_state.value, r.error, r.slack_channel, r.slack_ts, *[sent] * 3,
            r.author_name, r.message_id,
        )
    if r.message_id is not None and r.sent_platform_ids:
        for platform_id in r.sent_platform_ids:
            yield from execute(
                "INSERT INTO sent_ids (connector, platform_id, message_id) SELECT connector, ?,"
                " id FROM messages WHERE id = ? ON CONFLICT (connector, platform_id) DO NOTHING",
                platform_id, r.message_id)
            # Receipts that arrived before this commit apply now.
            early = yield from rows(
                "SELECT r.connector, r.state, r.error FROM receipts r JOIN messages m ON"
                " m.connector = r.connector WHERE m.id = ? AND r.platform_id = ?",
                r.message_id, platform_id)
            for receipt in early:
                created.extend((yield from apply_receipt(
                    str(receipt["connector"]), platform_id, DeliveryState(receipt["state"]),
                    receipt["error"], now)))
    if r.opted_out_identity is not None:
        yield from set_opted_out(r.opted_out_identity, True, now)
    if r.thread_ts is not None and r.conversation_id is not None:
        yield from execute(
            "UPDATE conversations SET slack_channel = ?, slack_thread_ts = ?, updated_at = ?"
            " WHERE id = ? AND slack_thread_ts IS NULL",
            r.slack_channel, r.thread_ts, now, r.conversation_id,
        )
    if r.notice is not None and r.conversation_id is not None:
        payload = notice_payload(r.notice, r.notice_retry, r.notice_templates)
        created.append((yield from add_outbox(OutboxKind.SLACK_NOTICE, r.conversation_id,
                                              r.message_id, payload, now)))
    return created


def retry_outbox(ids: Sequence[int], all_failed: bool, now: float) -> Tx[list[OutboxId]]:
    if all_failed:
        found = yield from rows("SELECT id FROM outbox WHERE status = 'failed' ORDER BY id")
        item_ids = [int(row["id"]) for row in found]
    else:
        item_ids = list(ids)
    done: list[OutboxId] = []
    for item_id in item_ids:
        changed = yield from execute(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = 0,"
            " updated_at = ? WHERE id = ? AND status IN ('failed', 'pending')",
            now, item_id,
        )
        if changed:
            done.append(OutboxId(item_id))
            yield from execute(
                "UPDATE messages SET state = 'queued', error = NULL WHERE id ="
                " (SELECT message_id FROM outbox WHERE id = ? AND kind IN"
                " ('customer_send', 'customer_file')) AND state = 'failed'",
                item_id,
            )
    return done


def put_media(token: str, filename: str, mime_type: str, data: bytes, now: float,
              expires_at: float, conversation_id: int | None = None) -> Tx[None]:
    yield from execute("DELETE FROM media WHERE expires_at < ?", now)
    yield from execute(
        "INSERT INTO media (token, filename, mime_type, size, data, created_at, expires_at,"
        " conversation_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        token, filename, mime_type, len(data), data, now, expires_at, conversation_id)


def set_state(connector: str, key: str, value: str, now: float) -> Tx[None]:
    yield from execute("INSERT INTO connector_state (connector, key, value, updated_at)"
                       " VALUES (?, ?, ?, ?) ON CONFLICT (connector, key) DO UPDATE SET"
                       " value = excluded.value, updated_at = excluded.updated_at",
                       connector, key, value, now)


def prune_state(connector: str, prefix: str, before: float) -> Tx[int]:
    # substr, not LIKE: no wildcards to escape, and case-sensitive on both backends.
    return (yield from execute(
        "DELETE FROM connector_state WHERE connector = ? AND substr(key, 1, ?) = ?"
        " AND updated_at < ?", connector, len(prefix), prefix, before))


# Receipts move a message forward only: sent < delivered/failed < read.
RANK = {DeliveryState.SENT: 1, DeliveryState.DELIVERED: 2, DeliveryState.FAILED: 2,
        DeliveryState.READ: 3}
SHOWN = frozenset({DeliveryState.DELIVERED, DeliveryState.READ, DeliveryState.FAILED})


def record_receipt(connector: str, platform_id: str, state: DeliveryState, error: str | None,
                   now: float, templates: Sequence[str] = ()) -> Tx[list[OutboxItem]]:
    """A platform's status callback: keep it, and move the message forward if we know it."""
    yield from execute(
        "INSERT INTO receipts (connector, platform_id, state, error, received_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (connector, platform_id, state) DO NOTHING",
        connector, platform_id, state.value, error, now)
    return (yield from apply_receipt(connector, platform_id, state, error, now, templates))


def apply_receipt(connector: str, platform_id: str, state: DeliveryState, error: str | None,
                  now: float, templates: Sequence[str] = ()) -> Tx[list[OutboxItem]]:
    row = yield from one(
        "SELECT m.id, m.conversation_id, m.state, m.slack_ts FROM sent_ids s JOIN messages m ON"
        " m.id = s.message_id WHERE s.connector = ? AND s.platform_id = ?",
        connector, platform_id)
    if row is None:
        return []  # not ours, or our send has not committed yet (applied when it does)
    message_id, conversation_id = row["id"], row["conversation_id"]
    if RANK.get(state, 0) <= RANK.get(DeliveryState(row["state"]), 0):
        return []  # out of order, or a repeat: states only move forward
    yield from execute("UPDATE messages SET state = ?, error = COALESCE(?, error) WHERE id = ?",
                       state.value, error, message_id)
    created: list[OutboxItem] = []
    if row["slack_ts"] and state in SHOWN:
        # The payload is the state; the console shows it as a reaction on the agent's reply.
        created.append((yield from add_outbox(OutboxKind.SLACK_REACTION, conversation_id,
                                              message_id, state.value, now)))
    if state is DeliveryState.FAILED:
        # Templates: a closed window, where an approved template may still be sent.
        created.append((yield from add_event(
            conversation_id, NotDelivered(error=error, templates=tuple(templates)), now,
            message_id)))
    return created
