"""Satisfaction surveys (issue 23): the `surveys` rows of migration 0010.

A survey is created when a conversation closes (state `scheduled`), together with its question
as an outbound message (origin 'survey') and a `customer_survey` outbox row, in one transaction.
The delivery marks it `sent` (or `cancelled`: reopened before it went out; `blocked`: a channel
rule forbade it, with the reason).  An answer moves a `sent` survey to `answered` once: a
conditional UPDATE, so a replayed or concurrent answer changes nothing.  The texts the agents
see are the core's (`notice`), stored as given.
"""

from __future__ import annotations

from storage.base import Survey
from storage.outbox_rows import add_outbox
from storage.query import Row, Tx, execute, insert, one, rows
from vocab.models import (
    ConversationId,
    CustomerId,
    DeliveryState,
    Direction,
    OutboxItem,
    OutboxKind,
)

COLUMNS = ("s.id, s.conversation_id, s.customer_id, s.kind, s.team, s.assignee, s.connector,"
           " s.token, s.state, s.reason, s.scale, s.score, s.comment, s.created_at, s.sent_at,"
           " s.answered_at, s.expires_at")


def survey_from_row(row: Row) -> Survey:
    return Survey(
        id=int(row["id"]), conversation_id=ConversationId(int(row["conversation_id"])),
        customer_id=CustomerId(int(row["customer_id"])), kind=str(row["kind"]),
        team=str(row["team"]), assignee=row["assignee"], connector=str(row["connector"]),
        token=str(row["token"]), state=str(row["state"]), reason=row["reason"],
        scale=str(row["scale"]), score=row["score"], comment=row["comment"],
        created_at=float(row["created_at"]), sent_at=row["sent_at"],
        answered_at=row["answered_at"], expires_at=row["expires_at"])


def open_survey(conversation_id: int, kind: str, team: str, scale: str, token: str,
                question: str, author: str, now: float) -> Tx[OutboxItem | None]:
    """Schedule one survey of `kind` for the conversation (None: it has one already): the
    row, the question as an outbound message, and the outbox row that sends it."""
    conv = yield from one("SELECT customer_id, identity_id, connector, assignee FROM"
                          " conversations WHERE id = ?", conversation_id)
    if conv is None:
        return None
    added = yield from execute(
        "INSERT INTO surveys (conversation_id, customer_id, kind, team, assignee, connector,"
        " token, state, scale, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'scheduled', ?, ?)"
        " ON CONFLICT (conversation_id, kind) DO NOTHING",
        conversation_id, conv["customer_id"], kind, team, conv["assignee"], conv["connector"],
        token, scale, now)
    if added == 0:
        return None
    message_id = yield from insert(
        "INSERT INTO messages (conversation_id, direction, connector, text, author_name, state,"
        " created_at, identity_id, origin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'survey')",
        conversation_id, Direction.OUTBOUND.value, conv["connector"], question, author,
        DeliveryState.QUEUED.value, now, conv["identity_id"])
    return (yield from add_outbox(OutboxKind.CUSTOMER_SURVEY, conversation_id, message_id,
                                  token, now))


def queue_follow_up(survey: Survey, question: str, author: str, payload: str,
                    now: float) -> Tx[OutboxItem]:
    """A further message of a survey (the comment request): a message and an outbox row."""
    conv = yield from one("SELECT identity_id FROM conversations WHERE id = ?",
                          survey.conversation_id)
    message_id = yield from insert(
        "INSERT INTO messages (conversation_id, direction, connector, text, author_name, state,"
        " created_at, identity_id, origin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'survey')",
        survey.conversation_id, Direction.OUTBOUND.value, survey.connector, question, author,
        DeliveryState.QUEUED.value, now, None if conv is None else conv["identity_id"])
    return (yield from add_outbox(OutboxKind.CUSTOMER_SURVEY, survey.conversation_id,
                                  message_id, payload, now))


def by_token(token: str) -> Tx[Survey | None]:
    row = yield from one(f"SELECT {COLUMNS} FROM surveys s WHERE s.token = ?", token)
    return None if row is None else survey_from_row(row)


def awaiting(connector: str, address: str, now: float) -> Tx[Survey | None]:
    """The newest survey sent to this address and not answered yet, within its days."""
    row = yield from one(
        f"SELECT {COLUMNS} FROM surveys s JOIN identities i ON i.customer_id = s.customer_id"
        " WHERE i.connector = ? AND i.address = ? AND s.state = 'sent' AND s.expires_at > ?"
        " ORDER BY s.sent_at DESC, s.id DESC LIMIT 1", connector, address, now)
    return None if row is None else survey_from_row(row)


def commentable(connector: str, address: str, since: float) -> Tx[Survey | None]:
    """The newest survey from this address answered with a low score after `since` whose
    comment was asked for and has not come (state 'answered', reason 'comment')."""
    row = yield from one(
        f"SELECT {COLUMNS} FROM surveys s JOIN identities i ON i.customer_id = s.customer_id"
        " WHERE i.connector = ? AND i.address = ? AND s.state = 'answered'"
        " AND s.reason = 'comment' AND s.comment IS NULL AND s.answered_at > ?"
        " ORDER BY s.answered_at DESC LIMIT 1", connector, address, since)
    return None if row is None else survey_from_row(row)


def last_nps(customer_id: int) -> Tx[float | None]:
    """When this customer was last sent (or scheduled) an NPS question."""
    row = yield from one("SELECT MAX(COALESCE(sent_at, created_at)) AS at FROM surveys"
                         " WHERE customer_id = ? AND kind = 'nps'"
                         " AND state IN ('scheduled', 'sent', 'answered')", customer_id)
    return None if row is None or row["at"] is None else float(row["at"])


def mark(survey_id: int, state: str, reason: str | None, now: float,
         expires_at: float | None = None) -> Tx[bool]:
    """A scheduled survey sent, cancelled or blocked (only from `scheduled`)."""
    changed = yield from execute(
        "UPDATE surveys SET state = ?, reason = ?, sent_at = ?, expires_at = ?"
        " WHERE id = ? AND state = 'scheduled'",
        state, reason, now if state == "sent" else None, expires_at, survey_id)
    return changed == 1


def answer(survey_id: int, score: int, comment: str | None, ask_comment: bool,
           notices: tuple[str, ...], now: float,
           seen: str | None = None) -> Tx[list[OutboxItem] | None]:
    """Record the answer once (None: answered before, expired, or never sent); queue the
    thread's notices and a redraw of the parent."""
    changed = yield from execute(
        "UPDATE surveys SET state = 'answered', score = ?, comment = ?, answered_at = ?,"
        " reason = ? WHERE id = ? AND state = 'sent' AND expires_at > ?",
        score, comment, now, "comment" if ask_comment and not comment else None, survey_id,
        now)
    if changed != 1:
        return None
    yield from _seen(seen, now)
    return (yield from _notices(survey_id, notices, now))


def _seen(key: str | None, now: float) -> Tx[None]:
    """The customer's message that carried an answer, kept so a redelivery of it is known
    (it is not stored as a message)."""
    if key is not None:
        yield from execute("INSERT INTO connector_state (connector, key, value, updated_at)"
                           " VALUES ('csat', ?, '', ?) ON CONFLICT (connector, key) DO NOTHING",
                           key, now)


def add_comment(survey_id: int, comment: str, notices: tuple[str, ...], now: float,
                seen: str | None = None) -> Tx[list[OutboxItem] | None]:
    """The comment asked for after a low score (once)."""
    changed = yield from execute(
        "UPDATE surveys SET comment = ?, reason = NULL WHERE id = ? AND state = 'answered'"
        " AND comment IS NULL", comment, survey_id)
    if changed != 1:
        return None
    yield from _seen(seen, now)
    return (yield from _notices(survey_id, notices, now))


def _notices(survey_id: int, notices: tuple[str, ...], now: float) -> Tx[list[OutboxItem]]:
    row = yield from one("SELECT conversation_id FROM surveys WHERE id = ?", survey_id)
    assert row is not None
    conv = int(row["conversation_id"])
    out = []
    for text in notices:
        out.append((yield from add_outbox(OutboxKind.SLACK_NOTICE, conv, None, text, now)))
    out.append((yield from add_outbox(OutboxKind.SLACK_STATUS, conv, None, "", now)))
    return out


def of_conversation(conversation_id: int) -> Tx[list[Survey]]:
    found = yield from rows(f"SELECT {COLUMNS} FROM surveys s WHERE s.conversation_id = ?"
                            " ORDER BY s.id", conversation_id)
    return [survey_from_row(r) for r in found]


def inbound(connector: str, address: str, seen: str, now: float,
            since: float) -> Tx[tuple[bool, Survey | None, Survey | None]]:
    """What a customer message may be, read at once: a redelivered answer (`seen`), the answer
    to a survey waiting for one, or the comment asked for after a low score."""
    row = yield from one("SELECT 1 AS x FROM connector_state WHERE connector = 'csat'"
                         " AND key = ?", seen)
    if row is not None:
        return True, None, None
    waiting = yield from awaiting(connector, address, now)
    comment = yield from commentable(connector, address, since)
    return False, waiting, comment


def shared_key(value: str, now: float) -> Tx[str]:
    """The surveys' signing key: the first instance to ask makes it, every other reads it."""
    yield from execute("INSERT INTO connector_state (connector, key, value, updated_at)"
                       " VALUES ('csat', 'signing-key', ?, ?)"
                       " ON CONFLICT (connector, key) DO NOTHING", value, now)
    row = yield from one("SELECT value FROM connector_state WHERE connector = 'csat'"
                         " AND key = 'signing-key'")
    assert row is not None
    return str(row["value"])
