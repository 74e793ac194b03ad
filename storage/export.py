"""Reads for customers' data (issue 28): finding a person, and everything held about them.

`find_people` matches a name (part of it), a phone number, an email address, a Telegram
@username, an address, or a conversation id.  `export_customer` gathers one customer's
identities, links, conversations with their messages and status changes, surveys, custom
fields and the files the bridge holds, as plain data (`bridge/privacy.py` writes it out).
"""

from __future__ import annotations

import json
from typing import Any

from storage.base import ConversationBrief, PersonFound
from storage.query import Row, Tx, one, rows
from storage.reads import IDENTITY_COLUMNS, identity_from_row


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _phone(text: str) -> str | None:
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) < 6 or any(ch not in "+0123456789 -().\u00a0" for ch in text):
        return None
    return "+" + digits


def find_people(query: str, limit: int) -> Tx[list[PersonFound]]:
    q = query.strip()
    if not q:
        return []
    ids: list[int] = []
    number = q.removeprefix("#")  # a conversation id as the bridge shows it: #12
    if number.isdigit() and len(number) <= 18:  # a longer one is no BIGINT: a phone, maybe
        found = yield from rows("SELECT customer_id FROM conversations WHERE id = ?",
                                int(number))
        ids += [int(r["customer_id"]) for r in found]
    phone = _phone(q)
    candidates = {q, q.lower(), q.lstrip("@")}
    if phone is not None:
        candidates |= {phone, f"whatsapp:{phone}", phone.lstrip("+")}
    marks = ", ".join("?" for _ in candidates)
    found = yield from rows(
        f"SELECT DISTINCT i.customer_id FROM identities i LEFT JOIN identity_claims c ON"
        f" c.identity_id = i.id WHERE i.address IN ({marks}) OR LOWER(i.address) = ? OR"
        f" c.value IN ({marks}) OR LOWER(COALESCE(i.username, '')) = ?",
        *candidates, q.lower(), *candidates, q.lower().lstrip("@"))
    ids += [int(r["customer_id"]) for r in found]
    if len(q) >= 3 and ":" not in q:  # the last part of an address: a web chat user id
        tail = _like(q)[1:-1]  # (`<site>:u-<user id>`), a WhatsApp Cloud wa_id (`<number>:<id>`)
        found = yield from rows(
            "SELECT DISTINCT customer_id FROM identities WHERE LOWER(address) LIKE ? ESCAPE"
            " '\\' OR LOWER(address) LIKE ? ESCAPE '\\' ORDER BY customer_id LIMIT ?",
            "%:" + tail, "%:u-" + tail, limit)
        ids += [int(r["customer_id"]) for r in found]
    if len(q) >= 2:
        found = yield from rows(
            "SELECT DISTINCT i.customer_id FROM identities i JOIN customers c ON"
            " c.id = i.customer_id WHERE LOWER(i.display_name) LIKE ? ESCAPE '\\' OR"
            " LOWER(c.display_name) LIKE ? ESCAPE '\\' ORDER BY i.customer_id LIMIT ?",
            _like(q), _like(q), limit)
        ids += [int(r["customer_id"]) for r in found]
    people: list[PersonFound] = []
    for customer_id in list(dict.fromkeys(ids))[:limit]:
        person = yield from _person(customer_id)
        if person is not None:
            people.append(person)
    return people


def _person(customer_id: int) -> Tx[PersonFound | None]:
    customer = yield from one("SELECT display_name, erased_at FROM customers WHERE id = ?",
                              customer_id)
    if customer is None or customer["erased_at"] is not None:
        return None
    idents = yield from rows(f"SELECT {IDENTITY_COLUMNS} FROM identities WHERE customer_id = ?"
                             " ORDER BY id", customer_id)
    convs = yield from rows("SELECT id, connector, status, created_at FROM conversations WHERE"
                            " customer_id = ? ORDER BY id", customer_id)
    return PersonFound(
        customer_id=customer_id, display_name=str(customer["display_name"]),
        identities=[identity_from_row(r) for r in idents],
        conversations=[ConversationBrief(id=int(r["id"]), connector=str(r["connector"]),
                                         status=str(r["status"]),
                                         created_at=float(r["created_at"])) for r in convs])


def _plain(row: Row, columns: str) -> dict[str, Any]:
    return {name.strip(): row[name.strip()] for name in columns.split(",")}


IDENTITY_FIELDS = ("id, channel, connector, address, display_name, username, created_at,"
                   " last_inbound_at, opted_out_at")
CONVERSATION_FIELDS = ("id, connector, status, created_at, closed_at, closed_by, assignee,"
                       " tags, previous_id, merged_into, slack_channel, slack_thread_ts")
MESSAGE_FIELDS = ("id, direction, connector, identity_id, author_name, author_slack_user,"
                  " text, markup, attachments, state, origin, created_at, platform_time,"
                  " edit_of")
LINK_FIELDS = ("id, customer_id, other_customer_id, method, evidence, actor, created_at,"
               " undone_at, undone_by")
SURVEY_FIELDS = ("id, conversation_id, kind, state, scale, score, comment, created_at,"
                 " sent_at, answered_at")
FILE_FIELDS = "token, conversation_id, filename, mime_type, size, created_at, expires_at"


def export_customer(customer_id: int) -> Tx[dict[str, Any] | None]:
    """Everything the store holds about one customer, or None for an unknown id."""
    customer = yield from one("SELECT id, display_name, tags, created_at, erased_at FROM"
                              " customers WHERE id = ?", customer_id)
    if customer is None:
        return None
    idents = yield from rows(f"SELECT {IDENTITY_FIELDS} FROM identities WHERE customer_id = ?"
                             " ORDER BY id", customer_id)
    identities = []
    for row in idents:
        claims = yield from rows("SELECT kind, value, created_at FROM identity_claims WHERE"
                                 " identity_id = ? ORDER BY kind, value", row["id"])
        identities.append({**_plain(row, IDENTITY_FIELDS),
                           "claims": [_plain(c, "kind, value, created_at") for c in claims]})
    links = yield from rows(f"SELECT {LINK_FIELDS} FROM links WHERE customer_id = ? OR"
                            " other_customer_id = ? ORDER BY id", customer_id, customer_id)
    convs = yield from rows(f"SELECT {CONVERSATION_FIELDS} FROM conversations WHERE"
                            " customer_id = ? ORDER BY id", customer_id)
    conversations = []
    for conv in convs:
        msgs = yield from rows(
            "SELECT m.id, m.direction, m.connector, m.identity_id, m.author_name,"
            " m.author_slack_user, m.text, m.markup, m.attachments, m.state, m.origin,"
            " m.created_at, m.platform_time, m.edit_of, i.channel FROM messages m LEFT JOIN"
            " identities i ON i.id = m.identity_id WHERE m.conversation_id = ? ORDER BY m.id",
            conv["id"])
        changes = yield from rows("SELECT kind, old_value, new_value, until_at, actor,"
                                  " created_at FROM conversation_changes WHERE"
                                  " conversation_id = ? ORDER BY id", conv["id"])
        conversations.append({
            **_plain(conv, CONVERSATION_FIELDS),
            "messages": [{**_plain(m, MESSAGE_FIELDS),
                          "channel": m["channel"] or m["connector"],
                          "attachments": _attachments(str(m["attachments"]))} for m in msgs],
            "changes": [_plain(c, "kind, old_value, new_value, until_at, actor, created_at")
                        for c in changes]})
    surveys = yield from rows(f"SELECT {SURVEY_FIELDS} FROM surveys WHERE customer_id = ?"
                              " ORDER BY id", customer_id)
    fields = yield from rows("SELECT name, value, set_by, updated_at FROM customer_fields"
                             " WHERE customer_id = ? ORDER BY name", customer_id)
    files = yield from rows(
        f"SELECT {FILE_FIELDS} FROM media WHERE conversation_id IN (SELECT id FROM"
        f" conversations WHERE customer_id = ?) ORDER BY created_at, token", customer_id)
    return {
        "customer": _plain(customer, "id, display_name, tags, created_at, erased_at"),
        "identities": identities,
        "links": [_plain(r, LINK_FIELDS) for r in links],
        "conversations": conversations,
        "surveys": [_plain(r, SURVEY_FIELDS) for r in surveys],
        "custom_fields": [_plain(r, "name, value, set_by, updated_at") for r in fields],
        "files": [_plain(r, FILE_FIELDS) for r in files],
    }


def _attachments(raw: str) -> list[dict[str, Any]]:
    try:
        items = json.loads(raw)
    except ValueError:
        return []
    return [{key: item.get(key) for key in ("kind", "filename", "mime_type", "size")}
            for item in items if isinstance(item, dict)]


def file_data(tokens: list[str]) -> Tx[list[tuple[str, bytes]]]:
    """The bytes of files the bridge holds, by token."""
    found: list[tuple[str, bytes]] = []
    for token in tokens:
        row = yield from one("SELECT data FROM media WHERE token = ?", token)
        if row is not None:
            found.append((token, bytes(row["data"])))
    return found
