"""The store's reads and its schema bookkeeping, written once for SQLite and PostgreSQL.

Generators over `storage/query.py`'s queries, like the write transactions; rows become the
models of `bridge/models.py` here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from storage.base import MediaFile, SchemaTooNew
from storage.dialect import Dialect, Migration, split_statements
from storage.query import Row, Tx, execute, one, rows
from vocab.models import (
    Attachment,
    Conversation,
    ConversationId,
    ConversationStatus,
    CustomerId,
    DeliveryState,
    Direction,
    Identity,
    IdentityId,
    Message,
    MessageId,
    OutboxId,
    OutboxItem,
    OutboxKind,
)

OUTBOX_COLUMNS = (
    "id, kind, lane, conversation_id, message_id, payload, attempts, next_attempt_at, "
    "last_error, status, created_at, updated_at, attempted_at"
)
CONVERSATION_COLUMNS = (
    "id, customer_id, identity_id, connector, address, status, slack_channel, slack_thread_ts,"
    " created_at, last_inbound_at, closed_at, closed_by, previous_id, merged_into, assignee,"
    " status_at, status_by, snooze_until, tags,"
    " (SELECT tags FROM customers WHERE customers.id = conversations.customer_id)"
    " AS customer_tags"
)
MESSAGE_COLUMNS = (
    "id, conversation_id, direction, connector, text, attachments, platform_message_id,"
    " sent_platform_id, author_name, author_slack_user, slack_channel, slack_ts, state, error,"
    " created_at, platform_time, platform_ref, markup, edit_of, identity_id, origin"
)


def outbox_from_row(row: Row) -> OutboxItem:
    return OutboxItem(
        id=OutboxId(int(row["id"])), kind=OutboxKind(str(row["kind"])), lane=str(row["lane"]),
        conversation_id=ConversationId(int(row["conversation_id"])),
        message_id=None if row["message_id"] is None else MessageId(int(row["message_id"])),
        payload=str(row["payload"]), attempts=int(row["attempts"]),
        next_attempt_at=float(row["next_attempt_at"]),
        last_error=None if row["last_error"] is None else str(row["last_error"]),
        status=str(row["status"]), created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
        attempted_at=None if row["attempted_at"] is None else float(row["attempted_at"]),
    )


def conversation_from_row(row: Row) -> Conversation:
    return Conversation(
        id=ConversationId(row["id"]), customer_id=CustomerId(row["customer_id"]),
        identity_id=IdentityId(row["identity_id"]), connector=row["connector"],
        address=row["address"], status=ConversationStatus(row["status"]),
        slack_channel=row["slack_channel"], slack_thread_ts=row["slack_thread_ts"],
        created_at=row["created_at"], last_inbound_at=row["last_inbound_at"],
        closed_at=row["closed_at"], closed_by=row["closed_by"],
        previous_id=None if row["previous_id"] is None else ConversationId(row["previous_id"]),
        merged_into=None if row["merged_into"] is None else ConversationId(row["merged_into"]),
        assignee=row["assignee"], status_at=row["status_at"], status_by=row["status_by"],
        snooze_until=row["snooze_until"], tags=tuple(str(row["tags"] or "").split()),
        customer_tags=tuple(str(row["customer_tags"] or "").split()),
    )


def message_from_row(row: Row) -> Message:
    return Message(
        id=MessageId(row["id"]), conversation_id=ConversationId(row["conversation_id"]),
        direction=Direction(row["direction"]), connector=row["connector"], text=row["text"],
        attachments=[Attachment.model_validate(a) for a in json.loads(row["attachments"])],
        platform_message_id=row["platform_message_id"],
        sent_platform_id=row["sent_platform_id"], author_name=row["author_name"],
        author_slack_user=row["author_slack_user"], slack_channel=row["slack_channel"],
        slack_ts=row["slack_ts"], state=DeliveryState(row["state"]), error=row["error"],
        created_at=row["created_at"], platform_time=row["platform_time"],
        platform_ref=row["platform_ref"], markup=row["markup"], edit_of=row["edit_of"],
        identity_id=None if row["identity_id"] is None else IdentityId(row["identity_id"]),
        origin=str(row["origin"]),
    )


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


# -- outbox ----------------------------------------------------------------------------------
def pending_outbox(limit: int, updated_since: float) -> Tx[list[OutboxItem]]:
    found = yield from rows(f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status = 'pending'"
                            " AND updated_at >= ? ORDER BY id LIMIT ?", updated_since, limit)
    return [outbox_from_row(r) for r in found]


def list_outbox(statuses: Sequence[str]) -> Tx[list[OutboxItem]]:
    if not statuses:
        return []
    found = yield from rows(f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status IN"
                            f" ({_marks(statuses)}) ORDER BY id", *statuses)
    return [outbox_from_row(r) for r in found]


def get_outbox(ids: Sequence[int]) -> Tx[list[OutboxItem]]:
    if not ids:
        return []
    found = yield from rows(f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id IN ({_marks(ids)})"
                            " ORDER BY id", *ids)
    return [outbox_from_row(r) for r in found]


# -- conversations and messages --------------------------------------------------------------
def get_conversation(conversation_id: int) -> Tx[Conversation | None]:
    row = yield from one(f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = ?",
                         conversation_id)
    return None if row is None else conversation_from_row(row)


def conversation_by_thread(channel: str, thread_ts: str) -> Tx[Conversation | None]:
    row = yield from one(f"SELECT {CONVERSATION_COLUMNS} FROM conversations"
                         " WHERE slack_channel = ? AND slack_thread_ts = ?", channel, thread_ts)
    return None if row is None else conversation_from_row(row)


def get_message(message_id: int) -> Tx[Message | None]:
    row = yield from one(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?", message_id)
    return None if row is None else message_from_row(row)


def messages(conversation_id: int) -> Tx[list[Message]]:
    found = yield from rows(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?"
                            " ORDER BY id", conversation_id)
    return [message_from_row(r) for r in found]


def message_by_slack_ts(channel: str, ts: str) -> Tx[Message | None]:
    row = yield from one(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE slack_channel = ? AND"
                         " slack_ts = ?", channel, ts)
    return None if row is None else message_from_row(row)


def first_message(conversation_id: int) -> Tx[Message | None]:
    row = yield from one(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?"
                         " AND direction = 'in' ORDER BY id LIMIT 1", conversation_id)
    return None if row is None else message_from_row(row)


IDENTITY_COLUMNS = ("id, customer_id, connector, address, display_name, username,"
                    " last_inbound_at, opted_out_at, channel, unverified, shown_on")


def identity_from_row(row: Row) -> Identity:
    def maybe(column: str) -> float | None:
        return None if row[column] is None else float(row[column])

    return Identity(id=IdentityId(int(row["id"])), customer_id=CustomerId(int(row["customer_id"])),
                    connector=str(row["connector"]), address=str(row["address"]),
                    display_name=str(row["display_name"]),
                    username=None if row["username"] is None else str(row["username"]),
                    last_inbound_at=maybe("last_inbound_at"), opted_out_at=maybe("opted_out_at"),
                    channel=str(row["channel"]) or str(row["connector"]),
                    unverified=bool(row["unverified"]),
                    shown_on=None if row["shown_on"] is None else IdentityId(int(row["shown_on"])))


def get_identity(identity_id: int) -> Tx[Identity | None]:
    row = yield from one(f"SELECT {IDENTITY_COLUMNS} FROM identities WHERE id = ?", identity_id)
    return None if row is None else identity_from_row(row)


# -- media and connector state ---------------------------------------------------------------
def get_media(token: str, now: float) -> Tx[MediaFile | None]:
    row = yield from one("SELECT filename, mime_type, data FROM media WHERE token = ?"
                         " AND expires_at >= ?", token, now)
    if row is None:
        return None
    return MediaFile(filename=row["filename"], mime_type=row["mime_type"],
                     data=bytes(row["data"]))


def get_state(connector: str, key: str) -> Tx[str | None]:
    row = yield from one("SELECT value FROM connector_state WHERE connector = ? AND key = ?",
                         connector, key)
    return None if row is None else str(row["value"])


# -- schema ----------------------------------------------------------------------------------
def schema_version(dialect: Dialect) -> Tx[int]:
    """The highest migration applied; 0 for a database the bridge never migrated."""
    if (yield from one(dialect.table_exists, "bridge_schema")) is None:
        return 0
    row = yield from one("SELECT MAX(version) AS version FROM bridge_schema")
    return int(row["version"] or 0) if row is not None else 0


def migrate(dialect: Dialect, known: Sequence[Migration], where: str) -> Tx[list[int]]:
    """Apply the pending migrations in one transaction; a fresh database gets all of them."""
    latest = known[-1].version if known else 0
    if dialect.migration_lock is not None:
        yield from execute(dialect.migration_lock)
    yield from execute("CREATE TABLE IF NOT EXISTS bridge_schema (version INTEGER NOT NULL,"
                       f" name TEXT NOT NULL, applied_at {dialect.tokens['real']} NOT NULL)")
    current = yield from schema_version(dialect)
    if current > latest:
        raise SchemaTooNew(f"database {where} has schema version {current}, but this bridge "
                           f"only knows up to {latest}; upgrade the bridge (or restore a backup)")
    applied: list[int] = []
    for migration in known:
        if migration.version <= current:
            continue
        for stmt in split_statements(dialect.expand(migration.sql)):
            yield from execute(stmt)
        yield from execute("INSERT INTO bridge_schema (version, name, applied_at)"
                           " VALUES (?, ?, ?)", migration.version, migration.name, time.time())
        applied.append(migration.version)
    return applied


def table_columns(dialect: Dialect, table: str) -> Tx[list[str]]:
    found = yield from rows(dialect.columns, table)
    return [str(r["column_name"]) for r in found]
