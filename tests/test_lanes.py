"""The outbox's lane keepers: every lane (one instance), or the leased ones (several instances).

`LeasedLanes` runs here against an in-memory lease table and a recording worker, with a clock
the test moves; tests/test_multi_instance.py runs it between real bridges on PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

import pytest

from bridge.lanes import LeasedLanes
from tests.helpers_lanes import Clock, Table, row
from vocab.models import OutboxItem


@dataclass
class Work:
    """The worker, as a keeper sees it: what was submitted, which lanes it queues."""

    submitted: list[tuple[list[int], bool]] = field(default_factory=list)
    queued: set[str] = field(default_factory=set)
    dropped: list[str] = field(default_factory=list)

    def submit(self, items: Iterable[OutboxItem], *, synced: bool = False) -> None:
        self.submitted.append(([int(i.id) for i in items], synced))

    def working(self, lane: str) -> bool:
        return lane in self.queued

    def drop(self, lane: str) -> None:
        self.dropped.append(lane)


async def settled(work: Work, what: str) -> None:
    """Wait (a second at most, then fail) for the keeper's acquisition to hand rows over."""
    async def handed() -> None:
        while not work.submitted:
            await asyncio.sleep(0.001)
    try:
        await asyncio.wait_for(handed(), 1.0)
    except TimeoutError:
        pytest.fail(f"{what}: nothing submitted")


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_a_row_of_a_lane_not_held_waits_for_the_lease_then_comes_with_the_lane(
    clock: Clock,
) -> None:
    table, work = Table(pending=[row(1, "a"), row(2, "a")]), Work()
    lanes = LeasedLanes(table, "A", lease_seconds=10.0, clock=clock)
    assert not lanes.admit(row(2, "a"), False, work)
    await settled(work, "taking lane a")
    assert table.held == {"a": ("A", 1010.0)} and lanes.holds("a")
    assert work.submitted == [([1, 2], True)]  # the other instance's earlier row first


async def test_a_lane_held_elsewhere_is_left_to_its_holder(clock: Clock) -> None:
    table, work = Table(held={"a": ("B", 1005.0)}), Work()
    lanes = LeasedLanes(table, "A", clock=clock)
    assert not lanes.admit(row(1, "a"), False, work)
    await settled(work, "trying lane a")
    assert work.submitted == [([], True)] and not lanes.holds("a")


async def test_claim_takes_free_lanes_and_drops_lost_ones(clock: Clock) -> None:
    table, work = Table(pending=[row(1, "a"), row(2, "b")]), Work()
    lanes = LeasedLanes(table, "A", lease_seconds=10.0, clock=clock)
    assert [int(i.id) for i in await lanes.initial(work)] == [1, 2]
    assert await lanes.claim(work) == []  # renewed; nothing new
    table.held["b"] = ("B", 2000.0)  # our lease on b ran out and B took it
    assert await lanes.claim(work) == []
    assert work.dropped == ["b"] and lanes.holds("a") and not lanes.holds("b")


async def test_nothing_is_sent_once_the_leases_may_have_expired(clock: Clock) -> None:
    lanes = LeasedLanes(Table(), "A", lease_seconds=10.0, clock=clock)
    assert not lanes.valid(clock.now)  # never renewed
    await lanes.claim(Work())
    assert lanes.valid(clock.now + 8.0)  # 80 % of the lease: a margin for the renewal
    assert not lanes.valid(clock.now + 8.01)


async def test_a_lane_fed_from_elsewhere_is_reread_before_the_next_send(clock: Clock) -> None:
    table, work = Table(pending=[row(1, "a"), row(3, "a")]), Work()
    lanes = LeasedLanes(table, "A", clock=clock)
    await lanes.initial(work)
    assert lanes.admit(row(3, "a"), True, work)  # read from the lane itself: in order
    assert await lanes.resync("a") is None
    assert lanes.admit(row(3, "a"), False, work)  # e.g. committed by this instance's router
    table.fail_reads = 1
    with pytest.raises(ConnectionError):
        await lanes.resync("a")
    reread = await lanes.resync("a")  # still owed after the failed read
    assert reread is not None and [int(i.id) for i in reread] == [1, 3]
    assert await lanes.resync("a") is None


async def test_an_idle_lane_is_handed_over_unless_rows_came_back(clock: Clock) -> None:
    table, work = Table(pending=[row(1, "a"), row(2, "b")]), Work()
    lanes = LeasedLanes(table, "A", clock=clock)
    await lanes.initial(work)
    work.queued = {"b"}
    lanes.idle("a", work)
    lanes.idle("b", work)
    await lanes.stop()  # waits for the releases under way, then hands over the rest
    assert table.released == ["a", "b"] and table.held == {}


async def test_a_closing_keeper_takes_and_releases_nothing_more(clock: Clock) -> None:
    table, work = Table(pending=[row(1, "a")]), Work()
    lanes = LeasedLanes(table, "A", clock=clock)
    await lanes.initial(work)
    assert lanes.closing() == []
    lanes.idle("a", work)  # the worker is stopping: stop() hands it over
    assert not lanes.admit(row(2, "b"), False, work)
    await asyncio.sleep(0)
    assert "b" not in table.held and table.released == []
    await lanes.stop()
    assert table.released == ["a"]


async def test_rows_another_instance_commits_into_a_held_lane_are_read_at_once(
    clock: Clock,
) -> None:
    table, work = Table(pending=[row(1, "a")]), Work()
    lanes = LeasedLanes(table, "A", clock=clock)
    await lanes.initial(work)
    table.commit_elsewhere(row(2, "a"), row(3, "z"))  # z is nobody's here: left alone
    await settled(work, "the notification of lane a")
    assert work.submitted == [([1, 2], True)] and "z" not in table.held


async def test_a_lane_released_here_lately_is_taken_back_when_rows_land_in_it(
    clock: Clock,
) -> None:
    """The committer found the lane still ours and left its rows to us: we take it again."""
    table, work = Table(pending=[row(1, "a")]), Work()
    lanes = LeasedLanes(table, "A", lease_seconds=10.0, hold_seconds=0.0, clock=clock)
    await lanes.initial(work)
    table.pending.clear()
    lanes.idle("a", work)
    while "a" not in table.released:
        await asyncio.sleep(0.001)
    table.commit_elsewhere(row(2, "a"))
    await settled(work, "taking lane a back")
    assert work.submitted == [([2], True)] and table.held["a"][0] == "A"
    table.pending.clear()
    lanes.idle("a", work)
    while table.released.count("a") < 2:
        await asyncio.sleep(0.001)
    clock.now += 11.0  # long after the release: a notification of it is another's business
    table.commit_elsewhere(row(3, "a"))
    await asyncio.sleep(0.01)
    assert work.submitted == [([2], True)] and "a" not in table.held


async def test_an_idle_lane_is_kept_a_while_then_handed_over_at_a_poll(clock: Clock) -> None:
    table, work = Table(pending=[row(1, "a"), row(2, "b")]), Work()
    lanes = LeasedLanes(table, "A", lease_seconds=10.0, clock=clock)  # kept 2 s
    await lanes.initial(work)
    table.pending.clear()
    lanes.idle("a", work)
    lanes.idle("b", work)
    clock.now += 1.0
    assert lanes.admit(row(3, "b"), True, work)  # b is busy again: no new lease needed
    await lanes.claim(work)
    assert table.released == []
    clock.now += 1.5
    await lanes.claim(work)
    while not table.released:
        await asyncio.sleep(0.001)
    assert table.released == ["a"] and lanes.holds("b") and not lanes.holds("a")
