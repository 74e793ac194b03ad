"""What the write transactions share: outbox rows (kind, lane: the order kept, payload) and
the record of Slack events already acted on."""

from __future__ import annotations

from storage.query import Tx, execute, insert
from vocab.events import Event, event_payload
from vocab.models import ConversationId, MessageId, OutboxId, OutboxItem, OutboxKind


def lane_for(kind: OutboxKind, conversation_id: int) -> str:
    """Order is kept per conversation and direction: Slack posts and customer sends apart."""
    side = "customer" if kind.customer_side else "slack"
    return f"{side}:{conversation_id}"


def add_outbox(
    kind: OutboxKind, conversation_id: int, message_id: int | None, payload: str, now: float,
) -> Tx[OutboxItem]:
    lane = lane_for(kind, conversation_id)
    item_id = yield from insert(
        "INSERT INTO outbox (kind, lane, conversation_id, message_id, payload, status, attempts,"
        " next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, 0, ?, ?)",
        kind.value, lane, conversation_id, message_id, payload, now, now,
    )
    return OutboxItem(
        id=OutboxId(item_id), kind=kind, lane=lane,
        conversation_id=ConversationId(conversation_id),
        message_id=None if message_id is None else MessageId(message_id),
        payload=payload, created_at=now, updated_at=now,
    )


def add_event(conversation_id: int, event: Event, now: float,
              message_id: int | None = None) -> Tx[OutboxItem]:
    """Tell the agents in the conversation's thread: the event is kept as data, and the
    console renders it when the row is posted."""
    return (yield from add_outbox(OutboxKind.SLACK_NOTICE, conversation_id, message_id,
                                  event_payload(event), now))


def mark_attempted(item_id: int, now: float) -> Tx[None]:
    """A send of the row starts now: until it is finished its outcome is unknown."""
    yield from execute("UPDATE outbox SET attempted_at = ? WHERE id = ?", now, item_id)


def seen_slack_event(event_id: str, now: float) -> Tx[bool]:
    added = yield from execute("INSERT INTO slack_events (event_id, received_at) VALUES (?, ?)"
                               " ON CONFLICT (event_id) DO NOTHING", event_id, now)
    return added == 0
