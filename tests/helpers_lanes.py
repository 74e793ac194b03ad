"""In-memory stand-ins for the outbox's lease table and a clock the test moves."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from vocab.models import ConversationId, OutboxId, OutboxItem, OutboxKind


def row(n: int, lane: str) -> OutboxItem:
    return OutboxItem(id=OutboxId(n), kind=OutboxKind.SLACK_POST, lane=lane,
                      conversation_id=ConversationId(1), message_id=None)


@dataclass
class Table:
    """Lane leases as the database keeps them: lane -> (owner, until); and pending rows."""

    held: dict[str, tuple[str, float]] = field(default_factory=dict)
    pending: list[OutboxItem] = field(default_factory=list)
    fail_reads: int = 0
    released: list[str] = field(default_factory=list)
    watchers: list[Callable[[list[str]], None]] = field(default_factory=list)

    def _take(self, owner: str, lane: str, until: float, now: float) -> bool:
        holder = self.held.get(lane)
        if holder is None or holder[0] == owner or holder[1] < now:
            self.held[lane] = (owner, until)
            return True
        return False

    async def acquire_lanes(self, owner: str, lanes: Sequence[str], until: float,
                            now: float) -> list[str]:
        return [lane for lane in lanes if self._take(owner, lane, until, now)]

    async def claim_lanes(self, owner: str, until: float, now: float, limit: int) -> list[str]:
        for lane in {r.lane for r in self.pending}:
            self._take(owner, lane, until, now)
        return sorted(lane for lane, (who, _) in self.held.items() if who == owner)

    async def release_lanes(self, owner: str, lanes: Sequence[str]) -> None:
        for lane in lanes:
            if self.held.get(lane, ("", 0.0))[0] == owner:
                del self.held[lane]
                self.released.append(lane)

    async def watch_lanes(self, callback: Callable[[list[str]], None]) -> None:
        self.watchers.append(callback)

    def commit_elsewhere(self, *items: OutboxItem) -> None:
        """Another instance commits rows: they are pending, and its NOTIFY names their lanes."""
        self.pending.extend(items)
        for watcher in self.watchers:
            watcher(sorted({item.lane for item in items}))

    async def pending_in_lanes(self, lanes: Sequence[str]) -> list[OutboxItem]:
        if self.fail_reads:
            self.fail_reads -= 1
            raise ConnectionError("database unreachable")
        return [r for r in self.pending if r.lane in lanes]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
