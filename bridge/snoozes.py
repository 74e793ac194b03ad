"""Snoozed conversations open again when their time comes: a loop asks the store every
`interval` seconds (of real time) for snoozes due by the bridge's clock.

Every instance of a deployment runs it: the store wakes each snooze in a conditional update,
so of several instances asking at once one wakes it and the others find nothing
(`storage/ownership.py`).  A failed round (the database away) is logged and tried again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class SnoozeWaker:
    def __init__(self, wake: Callable[[], Awaitable[int]], interval: float = 1.0) -> None:
        self.wake = wake  # opens what is due; returns how many rows it queued
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="snoozes")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                await self.wake()
            except Exception:
                log.exception("waking snoozed conversations failed; trying again")
            await asyncio.sleep(self.interval)
