"""Leases between bridge instances on one PostgreSQL database: lanes and singleton jobs.

Two `PostgresStore`s on one schema stand for two instances; what one holds the other cannot
take until it expires or is released.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from bridge.singleton import Singletons, Step
from storage.postgres import PostgresStore
from tests.conftest import HarnessFactory
from tests.helpers_pg import PG_URL, fresh_schema
from tests.waiting import until
from vocab.models import InboundMessage

pytestmark = pytest.mark.services  # a real PostgreSQL


@dataclass
class Pair:
    a: PostgresStore
    b: PostgresStore


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    async with fresh_schema() as schema:
        a, b = PostgresStore(PG_URL, schema=schema), PostgresStore(PG_URL, schema=schema)
        await a.open()
        await b.open()
        await a.migrate()
        try:
            yield Pair(a, b)
        finally:
            await a.close()
            await b.close()


def message(n: int, chat: str) -> InboundMessage:
    return InboundMessage(connector="telegram", platform_message_id=str(n), address=chat,
                          sender_name="Ann", text=f"m{n}")


async def test_a_lane_is_held_by_one_instance_until_it_expires(pair: Pair) -> None:
    [r1] = await pair.a.ingest_inbound([message(1, "1")], "C1", 100.0)
    lane = r1.outbox[0].lane
    both = await asyncio.gather(pair.a.acquire_lanes("A", [lane], 110.0, 100.0),
                                pair.b.acquire_lanes("B", [lane], 110.0, 100.0))
    assert sorted(both) == [[], [lane]]  # exactly one won
    winner, loser = ("A", "B") if both[0] else ("B", "A")
    store = {"A": pair.a, "B": pair.b}
    assert await store[loser].claim_lanes(loser, 115.0, 105.0, 100) == []
    assert await store[winner].claim_lanes(winner, 120.0, 105.0, 100) == [lane]  # renewed
    assert await store[loser].claim_lanes(loser, 125.0, 119.0, 100) == []  # still valid
    # The winner dies: after the lease runs out, the other takes the lane and its rows.
    assert await store[loser].claim_lanes(loser, 131.0, 121.0, 100) == [lane]
    pending = await store[loser].pending_in_lanes([lane])
    assert [i.id for i in pending] == [r1.outbox[0].id]
    assert await store[winner].claim_lanes(winner, 132.0, 122.0, 100) == []  # lost it


async def test_claim_takes_only_lanes_with_pending_rows_and_release_frees_them(
    pair: Pair,
) -> None:
    results = await pair.a.ingest_inbound([message(1, "1"), message(2, "2")], "C1", 100.0)
    lanes = sorted(r.outbox[0].lane for r in results)
    assert sorted(await pair.a.claim_lanes("A", 110.0, 100.0, 100)) == lanes
    await pair.a.release_lanes("A", [lanes[0]])
    assert await pair.b.claim_lanes("B", 110.0, 101.0, 100) == [lanes[0]]
    await pair.b.release_lanes("A", [lanes[0]])  # not B's to release as A: nothing happens
    assert await pair.a.claim_lanes("A", 111.0, 101.0, 100) == [lanes[1]]


class Answers:
    """A store's singleton leases, recording each answer to `hold_singleton` (taken/renewed
    or refused), so a test can wait for renewals instead of sleeping through them."""

    def __init__(self, leases: PostgresStore) -> None:
        self.leases = leases
        self.held: list[bool] = []

    async def hold_singleton(self, name: str, owner: str, until: float, now: float) -> bool:
        answer = bool(await self.leases.hold_singleton(name, owner, until, now))
        self.held.append(answer)
        return answer

    async def release_singleton(self, name: str, owner: str) -> None:
        await self.leases.release_singleton(name, owner)


async def test_a_singleton_runs_in_one_instance_and_moves_when_it_stops(pair: Pair) -> None:
    runs: list[str] = []

    def job(name: str) -> tuple[Step, Step]:
        async def start() -> None:
            runs.append(f"start {name}")

        async def stop() -> None:
            runs.append(f"stop {name}")
        return start, stop

    lease = 0.6  # renewed every 0.2 s
    leases_a, leases_b = Answers(pair.a), Answers(pair.b)
    a = Singletons(leases_a, "A", lease_seconds=lease)
    b = Singletons(leases_b, "B", lease_seconds=lease)
    start_a, stop_a = job("A")
    start_b, stop_b = job("B")
    await a.run("poll", start_a, stop_a)
    await until(lambda: a.running("poll"), lambda: f"A not running: {runs}", timeout=5)
    await b.run("poll", start_b, stop_b)
    # B is refused again and again, for longer than one lease: A's renewals keep it.
    await until(lambda: leases_b.held[:5] == [False] * 5,
                lambda: f"B's answers: {leases_b.held}", timeout=10)
    assert runs == ["start A"] and a.running("poll") and not b.running("poll")
    assert all(leases_a.held) and len(leases_a.held) >= 3
    await a.stop()  # releases the lease: B takes over at its next renewal
    await until(lambda: b.running("poll"), lambda: f"B not running: {runs}", timeout=5)
    assert runs == ["start A", "stop A", "start B"]
    await b.stop()
    assert runs[-1] == "stop B"


@pytest.mark.backends("postgres")  # leases are only used where instances share a database
async def test_a_stopping_bridge_hands_its_lanes_over(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    h.slack.delay_next("chat.postMessage", 1.0)  # the post is still in flight at the stop
    assert await h.customer_says(91, "hello") == 200
    await h.wait_rows("SELECT kind, name FROM leases", [("lane", "slack:1")])
    await h.bridge.stop()
    assert h.rows("SELECT COUNT(*) FROM leases") == [(0,)]  # at once, not on expiry
