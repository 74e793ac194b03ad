"""The outbox worker on its own: retries spaced by the one backoff, lanes worked only where
this instance holds their lease.  An in-memory outbox stands in for the store; the deliverer
records what it was asked to send."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

import pytest

from bridge.lanes import LeasedLanes
from bridge.outbox import OutboxWorker
from bridge.settings import OutboxSettings
from connectors.base import SendError
from storage.base import OutboxResult, Outcome, Store
from tests.helpers_lanes import Clock, Table, row
from vocab.models import OutboxItem

SETTINGS = OutboxSettings(base_delay=0.02, max_delay=0.05, max_attempts=5)


@dataclass
class Outbox:
    rows: list[OutboxItem] = field(default_factory=list)
    results: list[OutboxResult] = field(default_factory=list)

    async def pending_outbox(self, limit: int, updated_since: float = 0.0) -> list[OutboxItem]:
        return [r for r in self.rows if r.updated_at >= updated_since][:limit]

    async def finish_outbox(self, results: Sequence[OutboxResult],
                            now: float) -> list[OutboxItem]:
        self.results.extend(results)
        return []


@dataclass
class Deliverer:
    failures: int = 0  # the first this many attempts fail (retryable)
    sent: list[int] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 1

    def gate_for(self, item: OutboxItem) -> str | None:
        return None

    async def deliver(self, item: OutboxItem) -> OutboxResult:
        if self.failures:
            self.failures -= 1
            raise SendError("busy", code="http_503", retryable=True)
        self.sent.append(int(item.id))
        if len(self.sent) >= self.expected:
            self.done.set()
        return OutboxResult(item_id=item.id, outcome=Outcome.DONE, attempts=item.attempts)

    def failure(self, item: OutboxItem, error: SendError, attempts: int) -> OutboxResult:
        return OutboxResult(item_id=item.id, outcome=Outcome.FAILED, attempts=attempts)


async def sent(deliverer: Deliverer, what: str, timeout: float = 2.0) -> None:
    try:
        await asyncio.wait_for(deliverer.done.wait(), timeout)
    except TimeoutError:
        pytest.fail(f"{what}: sent only {deliverer.sent}")


async def test_retries_wait_as_the_backoff_says() -> None:
    clock = Clock()
    outbox, deliverer = Outbox(rows=[row(1, "a")]), Deliverer(failures=3)
    worker = OutboxWorker(cast(Store, outbox), deliverer, SETTINGS, clock=clock,
                          rand=lambda: 0.5)  # jitter factor exactly 1
    await worker.start()
    try:
        await sent(deliverer, "the fourth attempt")
    finally:
        await worker.stop(timeout=1.0)
    retries = [(r.attempts, round(r.next_attempt_at - clock.now, 6)) for r in outbox.results
               if r.outcome is Outcome.RETRY]
    assert retries == [(1, 0.02), (2, 0.04), (3, 0.05)]  # doubling, capped at max_delay
    assert deliverer.sent == [1] and outbox.results[-1].outcome is Outcome.DONE


async def test_a_lane_held_by_another_instance_is_worked_only_once_its_lease_expires() -> None:
    clock = Clock()
    table = Table(held={"b": ("B", clock.now + 10.0)}, pending=[row(1, "a"), row(2, "b")])
    outbox, deliverer = Outbox(rows=list(table.pending)), Deliverer(expected=2)
    lanes = LeasedLanes(table, "A", lease_seconds=10.0, clock=clock)
    worker = OutboxWorker(cast(Store, outbox), deliverer, SETTINGS, clock=clock,
                          poll_interval=0.01, lanes=lanes)
    await worker.start()
    try:
        await asyncio.sleep(0.1)  # several polls: B's lease still holds
        assert deliverer.sent == [1] and table.held["b"][0] == "B"
        clock.now += 11.0  # B died: its lease runs out; our next poll takes the lane
        await sent(deliverer, "row 2 after B's lease expired")
    finally:
        await worker.stop(timeout=1.0)
    assert deliverer.sent == [1, 2]
    assert table.held == {} and set(table.released) == {"a", "b"}  # handed over
