"""The outbox worker: every delivery (to Slack, to a customer) is a committed row first.

Rows are grouped in lanes (one per conversation and direction); a lane is worked by one task, so
order holds within a conversation while conversations proceed in parallel.  A platform's 429
closes a *gate* (one Slack channel, one Telegram chat) for as long as the platform asked, and
only lanes behind that gate wait.  Other failures back off exponentially with jitter; after the
last attempt the row is marked failed and the agent is told in the thread.  After a crash the
pending rows are loaded again, so nothing committed is lost.

Which lanes this instance works is its `LaneKeeper`'s business (bridge/lanes.py): all of them
with one instance, the lanes it holds a lease on when several instances share a database.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Protocol

from bridge.lanes import AllLanes, LaneKeeper
from bridge.settings import OutboxSettings
from connectors.base import SendError
from storage.base import OutboxResult, Outcome, Store
from vocab.backoff import AROUND, backoff
from vocab.models import OutboxId, OutboxItem, OutboxKind

log = logging.getLogger(__name__)


class Deliverer(Protocol):
    def gate_for(self, item: OutboxItem) -> str | None: ...

    async def deliver(self, item: OutboxItem) -> OutboxResult: ...

    def failure(self, item: OutboxItem, error: SendError, attempts: int) -> OutboxResult: ...


class Recovery(Protocol):
    """Sends whose outcome is unknown, looked up before they are sent again (Slack posts carry
    their outbox id).  The hot path only marks a checked row attempted before its send."""

    @property
    def settle(self) -> float:
        """Seconds after its start by which a send has landed or never will."""
        ...

    def checked(self, item: OutboxItem) -> bool: ...

    async def recover(self, item: OutboxItem) -> OutboxResult | None:
        """The result of the earlier send when it went out, else None (send it)."""
        ...


class OutboxObserver(Protocol):
    """Told of each finished attempt and each rate limit (the metrics)."""

    async def finished(self, item: OutboxItem, outcome: Outcome) -> None: ...

    async def limited(self, item: OutboxItem, gate: str | None) -> None: ...


class OutboxWorker:
    def __init__(
        self,
        store: Store,
        deliverer: Deliverer,
        settings: OutboxSettings,
        *,
        clock: Callable[[], float] = time.time,
        poll_interval: float = 2.0,
        lanes: LaneKeeper | None = None,
        rand: Callable[[], float] = random.random,
        observer: OutboxObserver | None = None,
        recovery: Recovery | None = None,
    ) -> None:
        self.store = store
        self.observer = observer
        self.deliverer = deliverer
        self.recovery = recovery
        self.recovered = 0  # rows found already sent, adopted instead of sent again
        self.lookups = 0  # rows looked up (their outcome was unknown)
        # Rows whose last attempt was seen to end here (a failure): no need to let it settle.
        self._ended: set[OutboxId] = set()
        self.settings = settings
        self.clock = clock
        self.rand = rand  # the backoff's jitter
        self.lanes: LaneKeeper = lanes if lanes is not None else AllLanes(store)
        self.poll_interval = poll_interval
        self._lanes: dict[str, deque[OutboxItem]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._known: set[OutboxId] = set()
        self._gates: dict[str, float] = {}  # gate -> wall-clock time it opens again
        self._lane_gate: dict[str, str] = {}
        self._sem = asyncio.Semaphore(settings.concurrency)
        self._stopping = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None
        self.delivered = 0
        # Rows finished here, with when: a read that raced the delivery must not bring one
        # back (a retry rewrites the row later, so it passes).  Bounded: oldest dropped.
        self._finished: dict[OutboxId, float] = {}

    # -- feeding -----------------------------------------------------------------------------
    def submit(self, items: Iterable[OutboxItem], *, synced: bool = False) -> None:
        """Schedule committed rows.  Call only after the transaction that wrote them.

        Shared database: rows another instance committed earlier into the same lane may not
        be known here yet, so a lane that got rows from anywhere but a read of the lane itself
        (`synced`) re-reads its pending rows before the next delivery (order per lane)."""
        for item in items:
            if item.id in self._known or self._stopping.is_set():
                continue
            if item.updated_at <= self._finished.get(item.id, -1.0):
                continue  # read before we finished it (a poll racing the delivery): stale
            if not self.lanes.admit(item, synced, self):
                continue  # queued once the lane is ours
            self._known.add(item.id)
            lane = self._lanes.get(item.lane)
            if lane is None:
                lane = self._lanes[item.lane] = deque()
            if lane and lane[-1].id > item.id:  # rows of other instances, loaded late
                lane.append(item)
                ordered = sorted(lane, key=lambda i: i.id)
                lane.clear()
                lane.extend(ordered)
            else:
                lane.append(item)
            if item.lane not in self._tasks:
                self._tasks[item.lane] = asyncio.create_task(self._run_lane(item.lane),
                                                             name=f"outbox:{item.lane}")

    # -- what the lane keeper asks -------------------------------------------------------------
    def working(self, lane: str) -> bool:
        return lane in self._lanes

    def drop(self, lane: str) -> None:
        dropped = self._lanes.pop(lane, None)  # its task sees the lane gone and ends
        for item in dropped or ():
            self._known.discard(item.id)

    async def start(self) -> None:
        self.submit(await self.lanes.initial(self), synced=True)
        self._poller = asyncio.create_task(self._poll(), name="outbox-poll")

    async def _poll(self) -> None:
        """Pick up rows queued by other processes (`bridge outbox retry`, other instances)."""
        since = self.clock()
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), self.poll_interval)
            except TimeoutError:
                pass
            if self._stopping.is_set():
                return
            # Only rows written since the last look (with a margin for clock steps): a
            # backlog of our own rows is not re-read every time.
            now = self.clock()
            try:
                self.submit(await self.lanes.claim(self), synced=True)
                fresh = await self.store.pending_outbox(limit=10_000, updated_since=since - 5.0)
                # Only lanes we hold: others belong to other instances.
                self.submit(i for i in fresh
                            if i.id not in self._known and self.lanes.holds(i.lane))
                since = now
            except Exception:
                log.exception("outbox poll failed")

    async def stop(self, timeout: float) -> None:  # noqa: ASYNC109 (a drain budget)
        """Stop taking new work; let attempts in flight finish within `timeout` seconds."""
        self._stopping.set()
        tasks = [t for t in self._tasks.values() if not t.done()]
        if self._poller is not None:
            tasks.append(self._poller)
        tasks.extend(self.lanes.closing())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.lanes.stop()

    def pending_count(self) -> int:
        return sum(len(q) for q in self._lanes.values())

    def pending_items(self) -> list[OutboxItem]:
        return [item for lane in self._lanes.values() for item in lane]

    # -- working -----------------------------------------------------------------------------
    async def _pause(self, seconds: float) -> bool:
        """Sleep, waking early on stop; return False when stopping."""
        if seconds > 0:
            try:
                await asyncio.wait_for(self._stopping.wait(), seconds)
            except TimeoutError:
                pass
        return not self._stopping.is_set()

    async def _run_lane(self, lane_key: str) -> None:
        lane = self._lanes[lane_key]
        try:
            while lane and not self._stopping.is_set():
                if self._lanes.get(lane_key) is not lane:
                    return  # the lane's lease went to another instance
                item = lane[0]
                now = self.clock()
                if not self.lanes.valid(now):
                    # The lane may be another instance's soon: send nothing until renewed.
                    if not await self._pause(min(1.0, self.poll_interval)):
                        return
                    continue
                try:
                    earlier = await self.lanes.resync(lane_key)
                except Exception:
                    log.exception("reading outbox lane %s failed", lane_key)
                    if not await self._pause(self.settings.base_delay):
                        return
                    continue
                if earlier is not None:  # rows other instances committed earlier come first
                    self.submit(earlier, synced=True)
                    continue
                gate = self.deliverer.gate_for(item) or self._lane_gate.get(lane_key)
                wait = max(item.next_attempt_at - now, self._gates.get(gate, 0.0) - now
                           if gate else 0.0, self._settling(item, now))
                if wait > 0 and not await self._pause(wait):
                    return
                try:
                    finished = await self._attempt(lane_key, item)
                except Exception:  # the store failed to record the outcome: try again later
                    log.exception("outbox lane %s: recording item %s failed", lane_key, item.id)
                    if not await self._pause(self.settings.base_delay):
                        return
                    continue
                if finished:
                    lane.popleft()
                    if len(self._finished) >= 100_000:
                        for old in list(self._finished)[:50_000]:
                            del self._finished[old]
                    self._finished[item.id] = self.clock()
                    self._known.discard(item.id)
                    self._ended.discard(item.id)
        finally:
            self._tasks.pop(lane_key, None)
            if not lane:
                if self._lanes.get(lane_key) is lane:
                    self._lanes.pop(lane_key, None)
                self._lane_gate.pop(lane_key, None)
                if not self._stopping.is_set():
                    self.lanes.idle(lane_key, self)

    def _settling(self, item: OutboxItem, now: float) -> float:
        """An attempt another process started (or ours before a restart) may still be landing:
        wait until it surely has before looking it up."""
        if self.recovery is None or item.attempted_at is None or item.id in self._ended:
            return 0.0
        return item.attempted_at + self.recovery.settle - now

    async def _recover_or_mark(self, item: OutboxItem) -> OutboxResult | None:
        """A checked row: look it up when its outcome is unknown; else mark it attempted."""
        if self.recovery is None or not self.recovery.checked(item):
            return None
        if item.attempted_at is not None:
            self.lookups += 1
            log.info("outbox item %s: a send started earlier may have gone out; looking it up",
                     item.id)
            found = await self.recovery.recover(item)
            if found is not None:
                self.recovered += 1
                log.info("outbox item %s was already delivered: adopted", item.id)
                return found
        item.attempted_at = self.clock()
        self._ended.discard(item.id)
        await self.store.mark_attempted(item.id, item.attempted_at)
        return None

    async def _attempt(self, lane_key: str, item: OutboxItem) -> bool:
        """One delivery attempt; True when the item is finished (delivered or given up)."""
        sent = False  # the send itself ran (not only a lookup)
        async with self._sem:
            try:
                result = await self._recover_or_mark(item)
                if result is None:
                    sent = True
                    result = await self.deliverer.deliver(item)
            except SendError as exc:
                error = exc
            except Exception as exc:  # a bug or an SDK surprise: retry, but say what it was
                log.exception("outbox item %s (%s) raised", item.id, item.kind)
                error = SendError(f"unexpected error: {exc!r}", code="internal", retryable=True)
            else:
                result = result.model_copy(update={"attempts": item.attempts + 1})
                created = await self.store.finish_outbox([result], self.clock())
                self.delivered += 1
                self.submit(created)
                if self.observer is not None:
                    await self.observer.finished(item, result.outcome)
                return True
        return await self._failed(lane_key, item, error, sent)

    async def _failed(self, lane_key: str, item: OutboxItem, error: SendError,
                      sent: bool = True) -> bool:
        now = self.clock()
        if item.attempted_at is not None:
            self._ended.add(item.id)  # the call is over: a lookup needs no waiting
            if sent and error.retry_after is not None:
                item.attempted_at = None  # rate limited: surely not posted, nothing to look up
        if error.retry_after is not None:
            # The platform told us when to come back: wait as told, on that gate only.
            # A rate limit is not the message's fault and does not use up an attempt.
            gate = error.gate or f"lane:{lane_key}"
            self._gates[gate] = max(self._gates.get(gate, 0.0), now + error.retry_after)
            self._lane_gate[lane_key] = gate
            log.info("rate limited on %s for %.1fs", gate, error.retry_after)
            if self.observer is not None:
                await self.observer.limited(item, error.gate)
            return False
        attempts = item.attempts + 1
        # Customer messages must reach the agents: Slack posts are retried until they land.
        gives_up = not error.retryable or (
            attempts >= self.settings.max_attempts and item.kind is not OutboxKind.SLACK_POST)
        if gives_up:
            log.warning("outbox item %s failed for good: %s", item.id, error.describe())
            result = self.deliverer.failure(item, error, attempts)
            created = await self.store.finish_outbox([result], now)
            self.submit(created)
            if self.observer is not None:
                await self.observer.finished(item, result.outcome)
            return True
        delay = backoff(attempts, base=self.settings.base_delay, cap=self.settings.max_delay,
                        jitter=AROUND, rand=self.rand)
        item.attempts = attempts
        item.next_attempt_at = now + delay
        item.last_error = error.describe()
        await self.store.finish_outbox([OutboxResult(
            item_id=item.id, outcome=Outcome.RETRY, attempts=attempts,
            next_attempt_at=item.next_attempt_at, error=item.last_error)], now)
        log.info("outbox item %s attempt %d failed (%s); next in %.1fs", item.id, attempts,
                 error.describe(), delay)
        if self.observer is not None:
            await self.observer.finished(item, Outcome.RETRY)
        return False
