"""Reads about customers as people: their identities, their links, their earlier
conversations, and the search behind an agent's `!link`."""

from __future__ import annotations

import json

from storage.base import CustomerCard, HistoryEntry
from storage.query import Tx, one, rows
from storage.reads import (
    CONVERSATION_COLUMNS,
    IDENTITY_COLUMNS,
    conversation_from_row,
    identity_from_row,
)
from vocab.models import CustomerId, Link, LinkMethod


def cards(customer_ids: list[int]) -> Tx[list[CustomerCard]]:
    found: list[CustomerCard] = []
    for customer_id in customer_ids:
        idents = yield from rows(f"SELECT {IDENTITY_COLUMNS} FROM identities WHERE"
                                 " customer_id = ? ORDER BY id", customer_id)
        if not idents:
            continue
        counts = yield from one(
            "SELECT COUNT(*) AS conversations, MAX(CASE WHEN status <> 'closed' AND merged_into"
            " IS NULL THEN id END) AS open_id FROM conversations WHERE customer_id = ?",
            customer_id)
        name = yield from one("SELECT display_name FROM customers WHERE id = ?", customer_id)
        found.append(CustomerCard(
            customer_id=CustomerId(customer_id),
            display_name=str(name["display_name"]) if name else "",
            identities=[identity_from_row(r) for r in idents],
            conversations=int(counts["conversations"]) if counts else 0,
            open_conversation=None if counts is None or counts["open_id"] is None
            else int(counts["open_id"])))
    return found


def identity_count(customer_id: int) -> Tx[int]:
    row = yield from one("SELECT COUNT(*) AS n FROM identities WHERE customer_id = ?",
                         customer_id)
    return 0 if row is None else int(row["n"])


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def find_customers(query: str, phone: str | None, exclude: int,
                   limit: int) -> Tx[list[CustomerCard]]:
    """Customers other than `exclude` matching a phone number (exact, E.164, on a proven
    number or an address), an email address (exact, any case) or a name (part of it)."""
    ids: list[int] = []
    if phone is not None:
        found = yield from rows(
            "SELECT DISTINCT i.customer_id FROM identities i LEFT JOIN identity_claims c ON"
            " c.identity_id = i.id AND c.kind = 'phone' WHERE (c.value = ? OR i.address IN"
            " (?, ?)) AND i.customer_id <> ? ORDER BY i.customer_id DESC LIMIT ?",
            phone, phone, f"whatsapp:{phone}", exclude, limit)
        ids += [int(r["customer_id"]) for r in found]
    if "@" in query:
        found = yield from rows(
            "SELECT DISTINCT customer_id FROM identities WHERE channel = 'email' AND"
            " LOWER(address) = ? AND customer_id <> ? ORDER BY customer_id DESC LIMIT ?",
            query.strip().lower(), exclude, limit)
        ids += [int(r["customer_id"]) for r in found]
    if not ids and len(query.strip()) >= 2:
        found = yield from rows(
            "SELECT DISTINCT customer_id FROM identities WHERE (LOWER(display_name) LIKE ?"
            " ESCAPE '\\' OR LOWER(COALESCE(username, '')) LIKE ? ESCAPE '\\') AND"
            " customer_id <> ? ORDER BY customer_id DESC LIMIT ?",
            _like(query.strip()), _like(query.strip().lstrip("@")), exclude, limit)
        ids += [int(r["customer_id"]) for r in found]
    unique = list(dict.fromkeys(ids))[:limit]
    return (yield from cards(unique))


def history(customer_id: int, exclude: int, limit: int) -> Tx[list[HistoryEntry]]:
    """The customer's latest conversations but `exclude`, newest first, with their first
    line and the channel it came on."""
    found = yield from rows(
        f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE customer_id = ? AND id <> ?"
        " ORDER BY id DESC LIMIT ?", customer_id, exclude, limit)
    entries: list[HistoryEntry] = []
    for row in found:
        conv = conversation_from_row(row)
        first = yield from one(
            "SELECT m.text, COALESCE(i.channel, m.connector) AS channel FROM messages m LEFT JOIN"
            " identities i ON i.id = m.identity_id WHERE m.conversation_id = ? AND"
            " m.direction = 'in' ORDER BY m.id LIMIT 1", conv.id)
        entries.append(HistoryEntry(
            conversation=conv, first_line=str(first["text"]) if first else "",
            channel=str(first["channel"]) if first else conv.connector))
    return entries


def links(customer_id: int) -> Tx[list[Link]]:
    found = yield from rows(
        "SELECT id, customer_id, other_customer_id, method, evidence, actor, created_at,"
        " undone_at, undone_by, moved FROM links WHERE customer_id = ? ORDER BY id",
        customer_id)
    return [Link(id=int(r["id"]), customer_id=CustomerId(int(r["customer_id"])),
                 other_customer_id=CustomerId(int(r["other_customer_id"])),
                 method=LinkMethod(str(r["method"])), evidence=str(r["evidence"]),
                 actor=str(r["actor"]), created_at=float(r["created_at"]),
                 undone_at=None if r["undone_at"] is None else float(r["undone_at"]),
                 undone_by=None if r["undone_by"] is None else str(r["undone_by"]),
                 identities=list(json.loads(str(r["moved"])).get("identities") or []))
            for r in found]
