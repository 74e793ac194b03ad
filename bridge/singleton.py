"""Work that must run once per deployment (Telegram long polling, the IMAP loop, scheduled jobs).

With one bridge on SQLite a job simply runs.  With several instances on one database, a job
runs only in the instance holding its lease (a row renewed every `lease_seconds / 3`); when that
instance dies, the lease expires and another instance starts the job within `lease_seconds`.
An instance that cannot renew its lease (database unreachable) stops the job before the lease
can expire, so two instances never run it at once for longer than one renewal period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger(__name__)
Step = Callable[[], Awaitable[None]]


class SingletonLeases(Protocol):
    async def hold_singleton(self, name: str, owner: str, until: float, now: float) -> bool:
        """Take the lease, or renew it if we hold it; False while another live owner does."""
        ...

    async def release_singleton(self, name: str, owner: str) -> None: ...


@dataclass
class _Job:
    name: str
    start: Step
    stop: Step
    running: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class Singletons:
    def __init__(self, leases: SingletonLeases | None, owner: str, *,
                 lease_seconds: float = 10.0, clock: Callable[[], float] = time.time) -> None:
        self.leases = leases
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.clock = clock
        self._jobs: dict[str, _Job] = {}
        self._stopping = asyncio.Event()

    def running(self, name: str) -> bool:
        job = self._jobs.get(name)
        return job is not None and job.running

    async def run(self, name: str, start: Step, stop: Step) -> None:
        """Run `start()` now (one instance) or whenever this instance holds the lease."""
        job = self._jobs[name] = _Job(name, start, stop)
        if self.leases is None:
            await start()
            job.running = True
            return
        job.task = asyncio.create_task(self._hold(job), name=f"singleton:{name}")

    async def _hold(self, job: _Job) -> None:
        assert self.leases is not None
        period = self.lease_seconds / 3
        valid_until = 0.0
        while not self._stopping.is_set():
            now = self.clock()
            try:
                held = await self.leases.hold_singleton(job.name, self.owner,
                                                        now + self.lease_seconds, now)
                if held:
                    valid_until = now + self.lease_seconds - period
            except Exception:
                log.exception("renewing the %s lease failed", job.name)
                held = self.clock() < valid_until  # keep going while surely still ours
            if held and not job.running:
                log.info("this instance now runs %s", job.name)
                await job.start()
                job.running = True
            elif not held and job.running:
                log.warning("%s moved to another instance (or its lease could not be "
                            "renewed): stopping it here", job.name)
                await self._stop_job(job)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), period)

    async def _stop_job(self, job: _Job) -> None:
        job.running = False
        try:
            await job.stop()
        except Exception:
            log.exception("stopping %s failed", job.name)

    async def stop(self) -> None:
        self._stopping.set()
        for job in self._jobs.values():
            if job.task is not None:
                await asyncio.gather(job.task, return_exceptions=True)
            if job.running:
                await self._stop_job(job)
            if self.leases is not None:
                try:  # let another instance take over at once instead of after the expiry
                    await self.leases.release_singleton(job.name, self.owner)
                except Exception:
                    log.exception("releasing the %s lease failed", job.name)
