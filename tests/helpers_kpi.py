"""A hand-built history with known KPIs (tests/test_kpi.py, the dashboard and report tests).

T is Monday 2026-11-30 00:00 UTC; the period is that day; now is 18:00.  Five conversations:

1. telegram, support, U1: asks 09:00 (an automatic answer 09:00:01, a note 09:00:30), answered
   09:01; asks 10:00, answered 10:02; asks 10:05 and 10:06, answered 10:10; closed 11:00.
2. twilio, billing, U2: asks 08:00, answered 09:30; closed 12:00; the customer reopens it at
   13:00 (an FAQ answer at 13:00:10), U2 answers 13:05 (that delivery failed).
3. telegram, support, nobody: asks 16:00 (after a web chat invitation), still waiting.
4. twilio, support, U1: asks 14:00, answered 14:10; pending.
5. email, support, U2, opened the day before (asked and answered then); asks 10:00, answered
   10:01; snoozed (its first message, the day before, answered an invitation).
"""

from __future__ import annotations

from typing import Any

from storage.query import Tx, execute
from storage.sqlstore import SQLStore

T = 1_795_996_800.0  # 2026-11-30 00:00 UTC, a Monday
H = 3600.0
DAY = 86400.0
NOW = T + 18 * H
CHANNELS = {"C0SUPPORT1": "support", "C0BILLING1": "billing"}

CONVERSATIONS = [  # id, connector, channel, status, assignee, created_at, updated_at
    (1, "telegram", "C0SUPPORT1", "closed", "U1", T + 9 * H, T + 11 * H),
    (2, "twilio", "C0BILLING1", "open", "U2", T + 8 * H, T + 13 * H),
    (3, "telegram", "C0SUPPORT1", "open", None, T + 16 * H, T + 16 * H),
    (4, "twilio", "C0SUPPORT1", "pending", "U1", T + 14 * H, T + 14 * H),
    (5, "email", "C0SUPPORT1", "snoozed", "U2", T - DAY + 10 * H, T + 10 * H),
]
# Conversations opened by a message written after a web chat invitation: 3 in the period,
# 5 the day before (so not counted in it).
INVITED = {3: "Questions about sizes?", 5: "Need a hand?"}
M = 60.0
MESSAGES = [  # conversation, direction, origin, at, author, state
    (1, "in", "person", T + 9 * H, None, "posted"),
    (1, "out", "auto", T + 9 * H + 1, None, "sent"),
    (1, "note", "person", T + 9 * H + 30, "U1", "note"),
    (1, "out", "person", T + 9 * H + M, "U1", "delivered"),
    (1, "in", "person", T + 10 * H, None, "posted"),
    (1, "out", "person", T + 10 * H + 2 * M, "U1", "delivered"),
    (1, "in", "person", T + 10 * H + 5 * M, None, "posted"),
    (1, "in", "person", T + 10 * H + 6 * M, None, "posted"),
    (1, "out", "person", T + 10 * H + 10 * M, "U1", "read"),
    (2, "in", "person", T + 8 * H, None, "posted"),
    (2, "out", "person", T + 9 * H + 30 * M, "U2", "delivered"),
    (2, "in", "person", T + 13 * H, None, "posted"),
    (2, "out", "faq", T + 13 * H + 10, None, "sent"),
    (2, "out", "person", T + 13 * H + 5 * M, "U2", "failed"),
    (3, "in", "person", T + 16 * H, None, "posted"),
    (4, "in", "person", T + 14 * H, None, "posted"),
    (4, "out", "person", T + 14 * H + 10 * M, "U1", "delivered"),
    (5, "in", "person", T - DAY + 10 * H, None, "posted"),
    (5, "out", "person", T - DAY + 10 * H + M, "U2", "delivered"),
    (5, "in", "person", T + 10 * H, None, "posted"),
    (5, "out", "person", T + 10 * H + M, "U2", "delivered"),
]
CHANGES = [  # conversation, old, new, at
    (1, "open", "closed", T + 11 * H),
    (2, "open", "closed", T + 12 * H),
    (2, "closed", "open", T + 13 * H),
    (4, "open", "pending", T + 14 * H + 11 * M),
    (5, "open", "snoozed", T + 10 * H + 2 * M),
]
TARGETS = [  # conversation, team, kind, state, assignee, met_at, missed_at
    (1, "support", "first_response", "met", "U1", T + 9 * H + M, None),
    (2, "billing", "first_response", "missed", "U2", None, T + 9 * H),
    (2, "billing", "resolution", "met", "U2", T + 12 * H, None),
    (4, "support", "first_response", "met", "U1", T + 14 * H + 10 * M, None),
    (3, "support", "first_response", "running", None, None, None),
]
SURVEYS = [  # conversation, kind, team, assignee, connector, score, answered_at
    (1, "csat", "support", "U1", "telegram", 5, T + 11 * H + 30 * M),
    (2, "csat", "billing", "U2", "twilio", 3, T + 12 * H + 30 * M),
    (5, "csat", "support", "U2", "email", 1, T - DAY + 12 * H),
    (1, "nps", "support", "U1", "telegram", 10, T + 11 * H + 31 * M),
    (2, "nps", "billing", "U2", "twilio", 9, T + 12 * H + 31 * M),
    (4, "nps", "support", "U1", "twilio", 6, T + 15 * H),
]


def _history() -> Tx[None]:
    for cid, connector, channel, status, assignee, created, updated in CONVERSATIONS:
        yield from execute("INSERT INTO customers (id, display_name, created_at) VALUES (?, ?, ?)",
                           cid, f"Customer {cid}", created)
        yield from execute("INSERT INTO identities (id, customer_id, connector, address,"
                           " created_at) VALUES (?, ?, ?, ?, ?)",
                           cid, cid, connector, f"addr{cid}", created)
        yield from execute(
            "INSERT INTO conversations (id, customer_id, identity_id, connector, address, status,"
            " slack_channel, slack_thread_ts, created_at, updated_at, assignee)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            cid, cid, cid, connector, f"addr{cid}", status, channel, f"{1000 + cid}.000100",
            created, updated, assignee)
    for cid, text in INVITED.items():
        yield from execute("UPDATE conversations SET invitation = ? WHERE id = ?", text, cid)
    for mid, (cid, direction, origin, at, who, state) in enumerate(MESSAGES, 1):
        yield from execute(
            "INSERT INTO messages (id, conversation_id, direction, connector, origin, created_at,"
            " author_slack_user, state, text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            mid, cid, direction, CONVERSATIONS[cid - 1][1], origin, at, who, state,
            "secret customer words" if direction == "in" else "an answer")
    for cid, old, new, at in CHANGES:
        yield from execute("INSERT INTO conversation_changes (conversation_id, kind, old_value,"
                           " new_value, actor, created_at) VALUES (?, 'status', ?, ?, 'U1', ?)",
                           cid, old, new, at)
    for cid, team, kind, state, who, met, missed in TARGETS:
        yield from execute(
            "INSERT INTO response_targets (conversation_id, team, kind, state, assignee,"
            " started_at, met_at, missed_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            cid, team, kind, state, who, T, met, missed, T)
    for sid, (cid, kind, team, who, connector, score, answered) in enumerate(SURVEYS, 1):
        yield from execute(
            "INSERT INTO surveys (conversation_id, customer_id, kind, team, assignee, connector,"
            " token, state, scale, score, created_at, sent_at, answered_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 'answered', ?, ?, ?, ?, ?)",
            cid, cid, kind, team, who, connector, f"tok{sid}", "1-5" if kind == "csat" else "0-10",
            score, answered - 60, answered - 60, answered)


async def load_history(store: SQLStore) -> None:
    await store._write(_history)
    reset = store.dialect.reset_sequence
    if reset is not None:
        for table in ("customers", "identities", "conversations", "messages"):
            sql = reset.format(table=table)
            await store._write(lambda sql=sql: _reset(sql))  # type: ignore[misc]


def _reset(sql: str) -> Tx[Any]:
    yield from execute(sql)


class OfficeHours:
    """Mon-Fri 09:00-17:00 UTC."""

    def intervals(self, team: str, start: float, end: float) -> list[tuple[float, float]]:
        out = []
        day = start - start % DAY
        while day < end:
            if int(day // DAY + 3) % 7 < 5:  # 1970-01-01 was a Thursday
                out.append((day + 9 * H, day + 17 * H))
            day += DAY
        return out
