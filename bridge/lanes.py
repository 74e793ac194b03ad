"""Which outbox lanes this instance works: every lane (one instance, SQLite), or the lanes it
holds a lease on (several instances on one PostgreSQL database).

The outbox worker asks its `LaneKeeper` and never looks at leases itself.  With leases, an
instance holds a lane (a row in the database, renewed every poll) before it works it, so order
per conversation holds across instances.  Rows another instance commits into a lane we hold wake
us at once (the store's `watch_lanes`: LISTEN/NOTIFY on PostgreSQL), and the poll picks up
whatever a lost notification missed; a lane whose holder dies is claimed by another instance
once its lease expires, and its pending rows are worked from there (a send in flight at the
death may repeat once).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from storage.base import Store
from vocab.models import OutboxItem

log = logging.getLogger(__name__)


class LaneWork(Protocol):
    """What a keeper may ask of the worker it keeps lanes for."""

    def submit(self, items: Iterable[OutboxItem], *, synced: bool = False) -> None: ...

    def working(self, lane: str) -> bool:
        """Rows of this lane are queued here."""
        ...

    def drop(self, lane: str) -> None:
        """Forget the lane's queued rows: another instance works it now."""
        ...


class LaneKeeper(Protocol):
    async def initial(self, work: LaneWork) -> list[OutboxItem]:
        """The pending rows to start with."""
        ...

    async def claim(self, work: LaneWork) -> list[OutboxItem]:
        """On every poll: renew what we hold, take free lanes; the pending rows of lanes new
        to us (to submit as `synced`)."""
        ...

    def holds(self, lane: str) -> bool:
        """We work this lane now (a polled row of another lane belongs to another instance)."""
        ...

    def admit(self, item: OutboxItem, synced: bool, work: LaneWork) -> bool:
        """May the worker queue this row now?  False: the keeper takes the lane first and then
        submits the lane's pending rows itself (or another instance works them)."""
        ...

    def valid(self, now: float) -> bool:
        """Whether what we hold is surely still ours: send nothing otherwise."""
        ...

    async def resync(self, lane: str) -> list[OutboxItem] | None:
        """Rows other instances committed earlier into this lane, to queue before the next
        send; None when there is nothing to re-read.  Raises when the read fails."""
        ...

    def idle(self, lane: str, work: LaneWork) -> None:
        """The lane ran empty here (hand it over unless rows come back meanwhile)."""
        ...

    def closing(self) -> list[asyncio.Task[None]]:
        """Take no more lanes; the keeper's tasks for the worker to wait for (bounded)."""
        ...

    async def stop(self) -> None:
        """Hand every lane over at once (rather than after the leases expire)."""
        ...


class AllLanes:
    """One instance: every lane is ours, nothing to take or hand over."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def initial(self, work: LaneWork) -> list[OutboxItem]:
        return await self.store.pending_outbox(limit=1_000_000)

    async def claim(self, work: LaneWork) -> list[OutboxItem]:
        return []

    def holds(self, lane: str) -> bool:
        return True

    def admit(self, item: OutboxItem, synced: bool, work: LaneWork) -> bool:
        return True

    def valid(self, now: float) -> bool:
        return True

    async def resync(self, lane: str) -> list[OutboxItem] | None:
        return None

    def idle(self, lane: str, work: LaneWork) -> None:
        pass

    def closing(self) -> list[asyncio.Task[None]]:
        return []

    async def stop(self) -> None:
        pass


class LaneLeases(Protocol):
    """Who works which lane, when several bridge instances share one database."""

    async def acquire_lanes(self, owner: str, lanes: Sequence[str], until: float,
                            now: float) -> list[str]:
        """Take (or keep) the leases of these lanes unless another live owner holds them."""
        ...

    async def claim_lanes(self, owner: str, until: float, now: float, limit: int) -> list[str]:
        """Renew our leases and take free or expired lanes that have pending rows; return
        every lane we hold now."""
        ...

    async def release_lanes(self, owner: str, lanes: Sequence[str]) -> None: ...

    async def pending_in_lanes(self, lanes: Sequence[str]) -> list[OutboxItem]: ...

    async def watch_lanes(self, callback: Callable[[list[str]], None]) -> None:
        """Call `callback(lanes)` when another instance commits rows into these lanes."""
        ...


class LeasedLanes:
    """Several instances on one database: the lanes this one holds a lease on."""

    def __init__(self, leases: LaneLeases, owner: str, *, lease_seconds: float = 10.0,
                 hold_seconds: float | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.leases = leases
        self.owner = owner
        self.lease_seconds = lease_seconds
        # A lane that ran empty is kept this long (the next message of the conversation needs
        # no new lease), then handed over at the next poll.
        self.hold_seconds = lease_seconds / 5 if hold_seconds is None else hold_seconds
        self.clock = clock
        self._idle_since: dict[str, float] = {}
        self._owned: set[str] = set()
        self._waiting: dict[str, list[OutboxItem]] = {}  # rows waiting for their lane's lease
        self._lock = asyncio.Lock()
        self._valid_until = 0.0  # our leases are surely valid until (last renewal, margin)
        self._acquirer: asyncio.Task[None] | None = None
        self._releases: set[asyncio.Task[None]] = set()  # the one handing idle lanes over
        self._idle: set[str] = set()
        # Lanes that got rows from anywhere but a read of the lane itself: rows another
        # instance committed earlier into them may not be known here yet.
        self._unsynced: set[str] = set()
        self._closing = False
        # Lanes another instance committed rows into, to read (held) or take (released here
        # lately: the committer found them held by us and left the rows to us).
        self._woken: set[str] = set()
        self._waker: asyncio.Task[None] | None = None
        self._released: dict[str, float] = {}

    async def initial(self, work: LaneWork) -> list[OutboxItem]:
        try:
            await self.leases.watch_lanes(lambda lanes: self._wake(lanes, work))
        except Exception:
            log.exception("cannot listen for other instances' rows; the poll picks them up")
        return await self.claim(work)

    def _wake(self, lanes: list[str], work: LaneWork) -> None:
        if self._closing:
            return
        since = self.clock() - self.lease_seconds
        ours = [lane for lane in lanes
                if lane in self._owned or self._released.get(lane, 0.0) >= since]
        if not ours:
            return
        self._woken.update(ours)
        if self._waker is None or self._waker.done():
            self._waker = asyncio.create_task(self._read_woken(work), name="outbox-woken")

    async def _read_woken(self, work: LaneWork) -> None:
        while self._woken and not self._closing:
            lanes = sorted(self._woken)
            self._woken.clear()
            try:
                async with self._lock:
                    held = [lane for lane in lanes if lane in self._owned]
                    free = [lane for lane in lanes if lane not in self._owned]
                    if free:
                        now = self.clock()
                        got = await self.leases.acquire_lanes(self.owner, free,
                                                              now + self.lease_seconds, now)
                        self._owned.update(got)
                        held.extend(got)
                    pending = await self.leases.pending_in_lanes(held) if held else []
            except Exception:
                log.exception("reading woken outbox lanes failed; the next poll reads them")
                return
            work.submit(pending, synced=True)

    async def claim(self, work: LaneWork) -> list[OutboxItem]:
        """Renew our leases, drop lanes we lost, take free ones; their pending rows."""
        async with self._lock:
            now = self.clock()
            owned = set(await self.leases.claim_lanes(self.owner, now + self.lease_seconds, now,
                                                      limit=1000))
            self._valid_until = now + self.lease_seconds * 0.8
            for lane in self._owned - owned:
                log.warning("outbox lane %s is now worked by another instance", lane)
                work.drop(lane)
            new = owned - self._owned
            self._owned = owned
            pending = await self.leases.pending_in_lanes(sorted(new)) if new else []
        # Lanes idle here for a while go back (rows arriving meanwhile keep them).
        quiet = [lane for lane, since in self._idle_since.items()
                 if since <= now - self.hold_seconds]
        for lane in quiet:
            del self._idle_since[lane]
        self._release_soon(quiet, work)
        return pending

    def holds(self, lane: str) -> bool:
        return lane in self._owned

    def admit(self, item: OutboxItem, synced: bool, work: LaneWork) -> bool:
        if item.lane not in self._owned:
            self._waiting.setdefault(item.lane, []).append(item)  # after the lease
            if self._acquirer is None or self._acquirer.done():
                self._acquirer = asyncio.create_task(self._acquire_waiting(work),
                                                     name="outbox-lease")
            return False
        self._idle_since.pop(item.lane, None)
        if not synced:
            self._unsynced.add(item.lane)
        return True

    async def _acquire_waiting(self, work: LaneWork) -> None:
        while self._waiting and not self._closing:
            lanes = sorted(self._waiting)  # sorted: instances lock lease rows in one order
            for lane in lanes:
                self._waiting.pop(lane, None)
            try:
                async with self._lock:
                    now = self.clock()
                    got = await self.leases.acquire_lanes(self.owner, lanes,
                                                          now + self.lease_seconds, now)
                    self._owned.update(got)
                    # Everything pending in them, other instances' rows too, in id order.
                    pending = await self.leases.pending_in_lanes(got) if got else []
            except Exception:
                log.exception("taking outbox lanes failed; the next poll claims them")
                return
            work.submit(pending, synced=True)
            # Lanes held by another instance: that instance's poll picks these rows up.

    def valid(self, now: float) -> bool:
        # Renewals failing (database unreachable?) mean another instance may hold our lanes
        # soon.
        return now <= self._valid_until

    async def resync(self, lane: str) -> list[OutboxItem] | None:
        if lane not in self._unsynced:
            return None
        self._unsynced.discard(lane)
        try:
            return await self.leases.pending_in_lanes([lane])
        except Exception:
            self._unsynced.add(lane)
            raise

    def idle(self, lane: str, work: LaneWork) -> None:
        if self._closing:
            return
        if self.hold_seconds > 0:
            self._idle_since[lane] = self.clock()
        else:
            self._release_soon([lane], work)

    def _release_soon(self, lanes: Iterable[str], work: LaneWork) -> None:
        # Lanes running empty together are handed over in one write.
        self._idle.update(lanes)
        if self._idle and not self._releases and not self._closing:
            task = asyncio.create_task(self._release_idle(work), name="outbox-release")
            self._releases.add(task)
            task.add_done_callback(self._releases.discard)

    async def _release_idle(self, work: LaneWork) -> None:
        while self._idle:
            lanes, self._idle = self._idle, set()
            try:
                async with self._lock:
                    # Rows that arrived meanwhile keep a lane here.
                    gone = sorted(lane for lane in lanes if lane in self._owned
                                  and not work.working(lane) and lane not in self._waiting)
                    if not gone:
                        continue
                    self._owned.difference_update(gone)
                    await self.leases.release_lanes(self.owner, gone)
                    now = self.clock()
                    if len(self._released) > 10_000:
                        self._released = {k: t for k, t in self._released.items()
                                          if t >= now - self.lease_seconds}
                    self._released.update(dict.fromkeys(gone, now))
            except Exception:
                log.exception("releasing outbox lanes %s failed (their leases expire by"
                              " themselves)", ", ".join(sorted(lanes)))

    def closing(self) -> list[asyncio.Task[None]]:
        self._closing = True
        return [task for task in (self._acquirer, self._waker)
                if task is not None and not task.done()]

    async def stop(self) -> None:
        if not self._owned:
            return
        # Rows still pending in our lanes are then claimed by another instance's next poll.
        try:
            await asyncio.gather(*self._releases, return_exceptions=True)
            await self.leases.release_lanes(self.owner, sorted(self._owned))
            self._owned.clear()
        except Exception:
            log.exception("releasing outbox lanes at stop failed (they expire by themselves)")
