"""Canned replies (issue 22): the replies agents save from Slack, the previews they were shown
and the custom fields of a customer that templates read.

A personal reply's scope is `user:<Slack id>`, a team's `team:<name>`; one name per scope.
A preview is claimed once (`ready` → `sending`) by the instance that got the *Send* click, so a
double click or a redelivered click sends nothing twice.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from storage.base import Preview, SaveOutcome, StoredReply
from storage.query import Row, Tx, execute, one, rows
from vocab.models import ConversationId


def save(scope: str, name: str, title: str, body: str, owner: str,
         now: float) -> Tx[SaveOutcome]:
    """Save or replace a reply; a team's reply is replaced only by the agent who saved it."""
    row = yield from one("SELECT id, owner FROM canned_replies WHERE scope = ? AND name = ?"
                         " {{for_update}}", scope, name)
    if row is None:
        yield from execute("INSERT INTO canned_replies (scope, name, title, body, owner,"
                           " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           scope, name, title, body, owner, now, now)
        return "saved"
    if row["owner"] != owner:
        return "taken"
    yield from execute("UPDATE canned_replies SET title = ?, body = ?, updated_at = ?"
                       " WHERE id = ?", title, body, now, row["id"])
    return "replaced"


def delete(scopes: Sequence[str], name: str, owner: str) -> Tx[str | None]:
    """Delete the first of `scopes` holding `name` that `owner` saved; the scope, or None."""
    for scope in scopes:
        changed = yield from execute("DELETE FROM canned_replies WHERE scope = ? AND name = ?"
                                     " AND owner = ?", scope, name, owner)
        if changed:
            return scope
    return None


def replies(scopes: Collection[str]) -> Tx[list[StoredReply]]:
    if not scopes:
        return []
    marks = ", ".join("?" for _ in scopes)
    found = yield from rows("SELECT id, scope, name, title, body, owner, updated_at FROM"
                            f" canned_replies WHERE scope IN ({marks}) ORDER BY name, scope",
                            *scopes)
    return [StoredReply(id=int(r["id"]), scope=str(r["scope"]), name=str(r["name"]),
                        title=str(r["title"]), body=str(r["body"]), owner=str(r["owner"]),
                        updated_at=float(r["updated_at"])) for r in found]


def set_field(customer_id: int, name: str, value: str, set_by: str, now: float) -> Tx[None]:
    changed = yield from execute("UPDATE customer_fields SET value = ?, set_by = ?,"
                                 " updated_at = ? WHERE customer_id = ? AND name = ?",
                                 value, set_by, now, customer_id, name)
    if not changed:
        yield from execute("INSERT INTO customer_fields (customer_id, name, value, set_by,"
                           " updated_at) VALUES (?, ?, ?, ?, ?)",
                           customer_id, name, value, set_by, now)


def fields(customer_id: int) -> Tx[dict[str, str]]:
    found = yield from rows("SELECT name, value FROM customer_fields WHERE customer_id = ?"
                            " ORDER BY name", customer_id)
    return {str(r["name"]): str(r["value"]) for r in found}


_PREVIEW = ("token, conversation_id, slack_channel, thread_ts, slack_user, name, text,"
            " attachments, state, post_ts")


def _preview(row: Row) -> Preview:
    return Preview(token=str(row["token"]), conversation_id=ConversationId(row["conversation_id"]),
                   slack_channel=str(row["slack_channel"]), thread_ts=str(row["thread_ts"]),
                   slack_user=str(row["slack_user"]), name=str(row["name"]),
                   text=str(row["text"]), attachments=str(row["attachments"]),
                   state=str(row["state"]), post_ts=row["post_ts"])


KEEP_PREVIEWS = 30 * 86_400.0  # seconds a preview is kept after its last change


def put_preview(p: Preview, now: float) -> Tx[None]:
    """Keep a new preview; those untouched for KEEP_PREVIEWS go (a click on one is refused
    as already sent or cancelled)."""
    yield from execute("DELETE FROM canned_previews WHERE updated_at < ? AND state <> 'sending'",
                       now - KEEP_PREVIEWS)
    yield from execute(f"INSERT INTO canned_previews ({_PREVIEW}, created_at, updated_at)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       p.token, p.conversation_id, p.slack_channel, p.thread_ts, p.slack_user,
                       p.name, p.text, p.attachments, p.state, p.post_ts, now, now)


def get_preview(token: str) -> Tx[Preview | None]:
    row = yield from one(f"SELECT {_PREVIEW} FROM canned_previews WHERE token = ?", token)
    return None if row is None else _preview(row)


def claim_preview(token: str, user: str, text: str | None, now: float) -> Tx[Preview | None]:
    """`ready` → `sending` for the agent it was shown to (with the edited `text`, if any);
    None when it is not theirs or was already sent or cancelled."""
    changed = yield from execute(
        "UPDATE canned_previews SET state = 'sending', text = COALESCE(?, text),"
        " updated_at = ? WHERE token = ? AND slack_user = ? AND state = 'ready'",
        text, now, token, user)
    if not changed:
        return None
    found = yield from get_preview(token)
    return found


def finish_preview(token: str, state: str, post_ts: str | None, now: float) -> Tx[None]:
    yield from execute("UPDATE canned_previews SET state = ?, post_ts = COALESCE(?, post_ts),"
                       " updated_at = ? WHERE token = ?", state, post_ts, now, token)
