"""Leases (written once for both backends): who works an outbox lane, who runs a singleton job.

Taking a lease is one upsert that only wins when the lease is free, expired or already ours;
the database serialises concurrent takers on the primary key, so two instances never both win.
"""

from __future__ import annotations

from collections.abc import Sequence

from storage.query import Tx, claim, execute, rows
from storage.reads import OUTBOX_COLUMNS, outbox_from_row
from vocab.models import OutboxItem

LANE = "lane"
SINGLETON = "singleton"


def take(kind: str, name: str, owner: str, until: float, now: float) -> Tx[bool]:
    taken = yield from execute(
        "INSERT INTO leases (kind, name, owner, until) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (kind, name) DO UPDATE SET owner = excluded.owner, until = excluded.until"
        " WHERE leases.owner = excluded.owner OR leases.until < ?",
        kind, name, owner, until, now,
    )
    return taken == 1


def take_many(kind: str, names: Sequence[str], owner: str, until: float,
              now: float) -> Tx[list[str]]:
    got: list[str] = []
    names = sorted(names)  # instances lock lease rows in one order
    if names:
        yield from claim(f"lease:{names[0]}")  # a group commit runs them in that order too
    for name in names:
        if (yield from take(kind, name, owner, until, now)):
            got.append(name)
    return got


def claim_lanes(owner: str, until: float, now: float, limit: int) -> Tx[list[str]]:
    """Renew our lane leases, take free or expired lanes with pending rows; all we hold."""
    # Renewed in name order (FOR UPDATE in a subquery), as every other lease write locks.
    yield from execute("UPDATE leases SET until = ? WHERE kind = ? AND owner = ? AND name IN"
                       " (SELECT name FROM leases WHERE kind = ? AND owner = ? ORDER BY name"
                       " {{for_update}})", until, LANE, owner, LANE, owner)
    free = yield from rows(
        "SELECT DISTINCT lane FROM outbox WHERE status = 'pending' AND lane NOT IN"
        " (SELECT name FROM leases WHERE kind = ? AND until >= ? AND owner <> ?) LIMIT ?",
        LANE, now, owner, limit,
    )
    yield from take_many(LANE, [str(r["lane"]) for r in free], owner, until, now)
    held = yield from rows("SELECT name FROM leases WHERE kind = ? AND owner = ?", LANE, owner)
    return [str(r["name"]) for r in held]


def release(kind: str, names: Sequence[str], owner: str) -> Tx[None]:
    names = sorted(names)
    if names:
        yield from claim(f"lease:{names[0]}")
    for name in names:
        yield from execute("DELETE FROM leases WHERE kind = ? AND name = ? AND owner = ?",
                           kind, name, owner)


def pending_in_lanes(lanes: Sequence[str]) -> Tx[list[OutboxItem]]:
    if not lanes:
        return []
    marks = ", ".join("?" for _ in lanes)
    found = yield from rows(f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status = 'pending'"
                            f" AND lane IN ({marks}) ORDER BY id", *lanes)
    return [outbox_from_row(r) for r in found]
