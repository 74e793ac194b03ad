"""Response-time targets (issue 20): the rows the target keeper (`bridge/targets.py`) reads
and changes.  Every change is conditional on the state it expects, in the transaction that
queues what the agents are told, so of several instances doing the same at once exactly one
changes the row and tells; a start is unique per conversation, kind and start instant."""

from __future__ import annotations

from typing import Any

from storage.outbox_rows import add_event, add_outbox
from storage.query import Row, Tx, execute, one, rows
from vocab.events import Event
from vocab.models import OutboxItem, OutboxKind
from vocab.targets import (
    Active,
    Owed,
    Target,
    TargetChange,
    TargetKind,
    TargetStart,
    TargetState,
)

_COLUMNS = ("id, conversation_id, team, kind, state, assignee, started_at, due_at, warn_at,"
            " warned_at, met_at, missed_at, business_seconds, target_seconds, left_seconds")
_PERSON_REPLY = "direction = 'out' AND origin = 'person'"


def _target(row: Row) -> Target:
    return Target(id=int(row["id"]), conversation_id=int(row["conversation_id"]),
                  team=str(row["team"]), kind=TargetKind(row["kind"]),
                  state=TargetState(row["state"]), assignee=row["assignee"],
                  started_at=float(row["started_at"]), due_at=row["due_at"],
                  warn_at=row["warn_at"], warned_at=row["warned_at"], met_at=row["met_at"],
                  missed_at=row["missed_at"], business_seconds=row["business_seconds"],
                  target_seconds=row["target_seconds"], left_seconds=row["left_seconds"])


def owed(updated_since: float = 0.0) -> Tx[list[Owed]]:
    """Every conversation not closed (nor joined into another) and changed since
    `updated_since` (by its last customer message, status change or creation, all in
    business time), with its wait."""
    found = yield from rows(
        "SELECT c.id, c.slack_channel, c.assignee, c.created_at,"
        " (SELECT MIN(m.created_at) FROM messages m WHERE m.conversation_id = c.id"
        "   AND m.direction = 'in' AND m.id > COALESCE((SELECT MAX(o.id) FROM messages o"
        f"   WHERE o.conversation_id = c.id AND o.{_PERSON_REPLY.replace(' AND ', ' AND o.')}),"
        "   0)) AS waiting_since,"
        f" (SELECT MAX(o.id) FROM messages o WHERE o.conversation_id = c.id"
        f"   AND o.{_PERSON_REPLY.replace(' AND ', ' AND o.')}) AS answered,"
        " (SELECT MAX(h.created_at) FROM conversation_changes h WHERE h.conversation_id = c.id"
        "   AND h.kind = 'status' AND h.old_value = 'closed') AS reopened_at,"
        " (SELECT MAX(t.started_at) FROM response_targets t WHERE t.conversation_id = c.id"
        "   AND t.kind <> 'resolution') AS answer_started,"
        " (SELECT MAX(t.started_at) FROM response_targets t WHERE t.conversation_id = c.id"
        "   AND t.kind = 'resolution') AS resolution_started"
        " FROM conversations c WHERE c.status <> 'closed' AND c.merged_into IS NULL"
        " AND (c.last_inbound_at >= ? OR c.status_at >= ? OR c.created_at >= ?)",
        updated_since, updated_since, updated_since)
    return [Owed(conversation_id=int(r["id"]), slack_channel=r["slack_channel"],
                 assignee=r["assignee"], created_at=float(r["created_at"]),
                 waiting_since=r["waiting_since"], answered=r["answered"] is not None,
                 reopened_at=r["reopened_at"], answer_started=r["answer_started"],
                 resolution_started=r["resolution_started"]) for r in found]


def active() -> Tx[list[Active]]:
    """Targets still to be settled, with their conversation and its first reply since."""
    found = yield from rows(
        f"SELECT {', '.join('t.' + c.strip() for c in _COLUMNS.split(','))},"
        # A conversation joined into another owes nothing more: as if closed.
        " CASE WHEN c.merged_into IS NULL THEN c.status ELSE 'closed' END AS status,"
        " c.status_at, c.closed_at, c.assignee AS holder,"
        " (SELECT MIN(m.created_at) FROM messages m WHERE m.conversation_id = t.conversation_id"
        f"   AND m.{_PERSON_REPLY.replace(' AND ', ' AND m.')}"
        "   AND m.created_at >= t.started_at) AS replied_at"
        " FROM response_targets t JOIN conversations c ON c.id = t.conversation_id"
        " WHERE t.state IN ('running', 'paused')"
        "    OR (t.state = 'missed' AND t.met_at IS NULL AND t.left_seconds IS NULL)"
        " ORDER BY t.id")
    return [Active(target=_target(r), status=str(r["status"]), status_at=r["status_at"],
                   closed_at=r["closed_at"], assignee=r["holder"], replied_at=r["replied_at"])
            for r in found]


def start(plan: TargetStart, now: float) -> Tx[list[OutboxItem]]:
    """Start a target once (a second start of the same wait changes nothing)."""
    added = yield from execute(
        "INSERT INTO response_targets (conversation_id, team, kind, state, assignee,"
        " started_at, due_at, warn_at, target_seconds, updated_at)"
        " VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (conversation_id, kind, started_at) DO NOTHING",
        plan.conversation_id, plan.team, plan.kind.value, plan.assignee, plan.started_at,
        plan.due_at, plan.warn_at, plan.target_seconds, now)
    if added != 1:
        return []
    return [(yield from add_outbox(OutboxKind.SLACK_STATUS, plan.conversation_id, None, "",
                                   now))]


def change(move: TargetChange, now: float, events: tuple[Event, ...] = ()) -> Tx[list[OutboxItem]]:
    """Apply `move` if the target is still as expected; then queue the redraw and `events`."""
    sets: dict[str, Any] = {"state": move.state.value, "updated_at": now}
    for name in ("due_at", "warn_at", "warned_at", "met_at", "missed_at", "business_seconds",
                 "assignee"):
        value = getattr(move, name)
        if value is not None:
            sets[name] = value
    sets["left_seconds"] = 0.0 if move.settled else move.left_seconds
    where = f"id = ? AND state IN ({', '.join('?' for _ in move.expect)})"
    params: list[Any] = [move.id, *(s.value for s in move.expect)]
    if move.unwarned:
        where += " AND warned_at IS NULL"
    if TargetState.MISSED in move.expect:  # a missed target still owed, not a settled one
        where += " AND NOT (state = 'missed' AND (met_at IS NOT NULL OR left_seconds IS NOT NULL))"
    changed = yield from execute(
        f"UPDATE response_targets SET {', '.join(f'{k} = ?' for k in sets)} WHERE {where}",
        *sets.values(), *params)
    if changed != 1:
        return []  # another instance did it, or it changed meanwhile
    out: list[OutboxItem] = []
    for event in events:
        out.append((yield from add_event(move.conversation_id, event, now)))
    if move.redraw:
        out.append((yield from add_outbox(OutboxKind.SLACK_STATUS, move.conversation_id, None,
                                          "", now)))
    return out


def shown(conversation_id: int) -> Tx[Target | None]:
    """The target the parent shows: an answer owed before a resolution, the soonest due."""
    row = yield from one(
        f"SELECT {_COLUMNS} FROM response_targets WHERE conversation_id = ?"
        " AND (state IN ('running', 'paused')"
        "      OR (state = 'missed' AND met_at IS NULL AND left_seconds IS NULL))"
        " ORDER BY CASE WHEN kind = 'resolution' THEN 1 ELSE 0 END, due_at, id LIMIT 1",
        conversation_id)
    return None if row is None else _target(row)


def displayed() -> Tx[dict[int, Target]]:
    """Per conversation, the target its parent shows (see `shown`), for the queue."""
    found = yield from rows(
        f"SELECT {_COLUMNS} FROM response_targets WHERE state IN ('running', 'paused')"
        " OR (state = 'missed' AND met_at IS NULL AND left_seconds IS NULL)")
    out: dict[int, Target] = {}
    for target in sorted((_target(r) for r in found), key=lambda t: (
            t.kind is TargetKind.RESOLUTION, t.due_at is None, t.due_at or 0.0, t.id)):
        out.setdefault(target.conversation_id, target)
    return out


def of_conversation(conversation_id: int) -> Tx[list[Target]]:
    found = yield from rows(f"SELECT {_COLUMNS} FROM response_targets WHERE"
                            " conversation_id = ? ORDER BY id", conversation_id)
    return [_target(r) for r in found]
